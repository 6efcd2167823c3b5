import * as tf from '@tensorflow/tfjs';

import { simpson } from './quadrature.js';


/**
 * Eq. (A.4): the IKL between P_θ = (θ, U[0,1]) and P_0 = (0, U[0,1]) under the Brownian motion
 * (A.3), θ²·∫_0^∞ w(t)/(2t) dt. The integral is taken by Simpson's rule in u = log t, where it is
 * ∫ w(e^u)/2 du; the default grid [−40, 40] with 8001 nodes has a node on t = 1.
 */
export function iklDisjointSupport(
  theta: number,
  w: (t: number) => number,
  opts: { logTRange?: [number, number]; nodes?: number } = {},
): number {
  const [a, b] = opts.logTRange ?? [-40, 40];
  const { nodes, weights } = simpson(a, b, opts.nodes ?? 8001);
  let integral = 0;
  nodes.forEach((u, k) => {
    integral += (weights[k]! * w(Math.exp(u))) / 2;
  });
  return theta * theta * integral;
}

/**
 * log erfc(z), stable for all z: the Chebyshev fit of Numerical Recipes (erfcc, relative error
 * < 1.2e-7 everywhere), kept in log form so that it never underflows; erfc(−z) = 2 − erfc(z).
 */
function logErfc(z: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const az = tf.abs(z);
    const t = tf.div(1, tf.add(1, tf.mul(0.5, az)));
    const coeffs = [
      1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587, -0.82215223,
      0.17087277,
    ];
    let poly: tf.Tensor = tf.scalar(0);
    for (let i = coeffs.length - 1; i >= 0; i--) poly = tf.add(coeffs[i]!, tf.mul(t, poly));
    const logPos = tf.add(tf.log(t), tf.sub(tf.mul(t, poly), tf.add(tf.square(az), 1.26551223)));
    const logNeg = tf.log(tf.sub(2, tf.exp(logPos)));
    return tf.where(tf.greaterEqual(z, 0), logPos, logNeg);
  });
}

/** log Φ(x) of the standard normal CDF, stable in the lower tail. */
function logNormalCdf(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.add(Math.log(0.5), logErfc(tf.mul(x, -Math.SQRT1_2))));
}

/** log(Φ(hi) − Φ(lo)) for lo < hi, reflected into the lower tail so no difference of ones is taken. */
function logNormalCdfDiff(lo: tf.Tensor, hi: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const flip = tf.greater(tf.add(lo, hi), 0);
    const a = tf.where(flip, tf.neg(hi), lo);
    const b = tf.where(flip, tf.neg(lo), hi);
    const la = logNormalCdf(a);
    const lb = logNormalCdf(b);
    return tf.add(lb, tf.log(tf.neg(tf.expm1(tf.sub(la, lb)))));
  });
}

/**
 * The log-density of P_θ diffused by (A.3) to time t (appendix A.1), for rows (x, z):
 *   log N(x; θ, t) + log ∫_0^1 N(z; s, t) ds = log N(x; θ, t) + log(Φ(z/√t) − Φ((z − 1)/√t)).
 */
export function disjointSupportLogDensity(theta: number, x: tf.Tensor2D, t: number): tf.Tensor1D {
  if (x.rank !== 2 || x.shape[1] !== 2) {
    throw new Error(`disjointSupportLogDensity: x must have shape [N, 2] (rows (x, z)), got [${x.shape.join(', ')}]`);
  }
  if (!(t > 0)) throw new Error(`disjointSupportLogDensity: t must be > 0, got ${t}`);
  return tf.tidy(() => {
    const [xs, zs] = tf.split(x, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
    const sd = Math.sqrt(t);
    const logGauss = tf.sub(tf.div(tf.square(tf.sub(xs, theta)), -2 * t), 0.5 * Math.log(2 * Math.PI * t));
    const logBox = logNormalCdfDiff(tf.div(tf.sub(zs, 1), sd), tf.div(zs, sd));
    return tf.add(logGauss, logBox).reshape([-1]) as tf.Tensor1D;
  });
}
