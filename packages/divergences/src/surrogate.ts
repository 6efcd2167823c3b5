import * as tf from '@tensorflow/tfjs';

/**
 * The stop-gradient ("gradient as loss") surrogate that every generator-side objective here is
 * built on: a scalar whose gradient w.r.t. `x0` is exactly the `grad` that `f(x0)` returns, with
 * the `value` it returns (for logging only). `f` runs in the forward function of `tf.customGrad`,
 * where tfjs records nothing (the engine's kernelDepth is > 0): the models it calls contribute no
 * Jacobian, and their variables get no gradient.
 */
export function gradientAsLoss(x0: tf.Tensor, f: (x: tf.Tensor) => { grad: tf.Tensor; value: tf.Scalar }): tf.Scalar {
  const surrogate = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, save] = inputs as [tf.Tensor, tf.GradSaveFunc];
    const { grad, value } = tf.tidy(() => f(x));
    save([grad]); // the engine keeps a clone
    grad.dispose();
    return { value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, saved[0]!) };
  });
  return surrogate(x0) as tf.Scalar;
}
