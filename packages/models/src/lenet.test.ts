import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { Rng } from '@diff-instruct/sde';

import type { LenetConfig } from './config.js';
import { createClassifier } from './lenet.js';
import { cloneModel } from './model.js';
import { countParams, disposeModel } from './params.js';
import { describeModel } from './presets.js';

const config: LenetConfig = { kind: 'lenet', resolution: 32, channels: 1, numClasses: 3, featureDim: 16 };
const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('LeNet classifier', () => {
  it('maps [N, 32, 32, C] to logits [N, K] and features [N, featureDim]', () => {
    const m = createClassifier(config, new Rng(0));
    expect(Object.keys(m.params)).toEqual(
      ['conv0', 'conv1', 'fc0', 'fc1', 'out'].flatMap((n) => [`net.${n}.weight`, `net.${n}.bias`]),
    );
    expect(m.params['net.fc0.weight']!.shape).toEqual([8 * 8 * 32, 256]);
    const x = new Rng(1).normalTensor([4, 32, 32, 1]);
    expect(m.logits(x).shape).toEqual([4, 3]);
    expect(m.features(x).shape).toEqual([4, 16]);
    expect(describeModel(config)).toBe(`LeNet classifier 32×32×1, 16 features, 3 classes: ${countParams(m.params).toLocaleString('en-US')} parameters`);
    expect(() => m.logits(tf.zeros([1, 28, 28, 1]))).toThrow(/expected images of shape \[N, 32, 32, 1\], got \[1,28,28,1\]/);
    const c = cloneModel(m);
    expect(values(c.logits(x))).toEqual(values(m.logits(x)));
    expect(() => createClassifier({ ...config, resolution: 30 }, new Rng(0))).toThrow(/resolution must be a positive multiple of 4/);
    disposeModel(m);
  });

  it('a few Adam steps reduce the cross-entropy on a toy separable dataset', () => {
    const m = createClassifier(config, new Rng(2));
    // class k: a bright horizontal band in the k-th third of the image, plus noise
    const rng = new Rng(3);
    const ks = Array.from({ length: 24 }, (_, i) => i % 3);
    const x = tf.tidy(() => {
      const rows = tf.range(0, 32).reshape([1, 32, 1, 1]);
      const k = tf.tensor1d(ks).reshape([-1, 1, 1, 1]);
      const band = tf.logicalAnd(tf.greaterEqual(rows, tf.mul(k, 11)), tf.less(rows, tf.add(tf.mul(k, 11), 10)));
      return tf.add(tf.sub(tf.mul(tf.cast(band, 'float32'), 2), 1).tile([1, 1, 32, 1]), tf.mul(rng.normalTensor([24, 32, 32, 1]), 0.3));
    });
    const y = tf.oneHot(tf.tensor1d(ks, 'int32'), 3);
    const opt = tf.train.adam(2e-3);
    const loss = () => tf.tidy(() => tf.losses.softmaxCrossEntropy(y, m.logits(x)) as tf.Scalar);
    const first = loss().dataSync()[0]!;
    for (let i = 0; i < 10; i++) opt.minimize(loss, false, Object.values(m.params))?.dispose();
    expect(loss().dataSync()[0]!).toBeLessThan(0.5 * first);
    const acc = tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(m.logits(x), 1), tf.tensor1d(ks, 'int32')), 'float32')).dataSync()[0]!);
    expect(acc).toBe(1);
    opt.dispose();
  });
});
