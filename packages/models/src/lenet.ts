import * as tf from '@tensorflow/tfjs';

import type { Rng } from '@diff-instruct/sde';

import { type ClassifierConfig, type LenetConfig, validateClassifierConfig } from './config.js';
import { conv2dBias, dense, downsample2x, silu } from './ops.js';
import { type Init, type Params, addNormal, addZeros, param } from './params.js';

/**
 * A LeNet-style classifier (LeCun et al. 1998) for the "FID (LeNet features)" of docs/design.md:
 *
 *   x [N, R, R, C] → conv 5×5 → SiLU → avg-pool 2× → conv 5×5 → SiLU → avg-pool 2×
 *     → flatten → fc → SiLU → fc → SiLU = features [N, featureDim] → fc = logits [N, numClasses]
 *
 * 'same' padding, so a 32×32 image gives 8×8 maps before the flatten. Built from the custom ops,
 * so it trains on wasm.
 */

/** Channels of the two convolutions (LeNet-5 has 6 and 16; a little wider learns MNIST faster). */
const CONV_CHANNELS = [16, 32] as const;
/** Kernel size of both convolutions, as LeNet-5. */
const KERNEL = 5;
/** Width of the first fully connected layer (LeNet-5: 120). */
const HIDDEN = 256;

/** A classifier: plain data (config, params) and its two functions. */
export interface ClassifierModel {
  readonly config: ClassifierConfig;
  readonly params: Params;
  /** x: [N, R, R, C] images in [-1, 1] → logits [N, numClasses]. Differentiable wrt params. */
  logits(x: tf.Tensor): tf.Tensor2D;
  /** x: [N, R, R, C] → the penultimate activations [N, featureDim] (for FID). */
  features(x: tf.Tensor): tf.Tensor2D;
}

/** Name prefix of a classifier's params: `net.conv0.weight`, …, `net.out.bias`. */
const NET = 'net';

/**
 * Creates the parameters of a LeNet under `prefix`: `conv0`, `conv1` ([5, 5, in, out] and [out]),
 * `fc0`, `fc1` and `out` ([in, out] and [out]).
 */
export function initLenet(config: LenetConfig, init: Init, prefix: string, params: Params = {}): Params {
  const [c0, c1] = CONV_CHANNELS;
  const flat = (config.resolution / 4) ** 2 * c1;
  const layer = (name: string, shape: number[], fanIn: number) => {
    addNormal(params, `${prefix}.${name}.weight`, shape, 1 / Math.sqrt(fanIn), init);
    addZeros(params, `${prefix}.${name}.bias`, [shape[shape.length - 1]!]);
  };
  layer('conv0', [KERNEL, KERNEL, config.channels, c0], KERNEL * KERNEL * config.channels);
  layer('conv1', [KERNEL, KERNEL, c0, c1], KERNEL * KERNEL * c0);
  layer('fc0', [flat, HIDDEN], flat);
  layer('fc1', [HIDDEN, config.featureDim], HIDDEN);
  layer('out', [config.featureDim, config.numClasses], config.featureDim);
  return params;
}

/** The LeNet's two functions over existing parameters. */
export function lenet(config: LenetConfig, params: Params, prefix: string): Pick<ClassifierModel, 'logits' | 'features'> {
  const p = <T extends tf.Tensor>(name: string) => param<T>(params, `${prefix}.${name}`);
  const r = config.resolution;
  const conv = (x: tf.Tensor4D, name: string) => silu(conv2dBias(x, p(`${name}.weight`), p<tf.Tensor1D>(`${name}.bias`)));
  const fc = (x: tf.Tensor2D, name: string) => dense(x, p(`${name}.weight`), p(`${name}.bias`));
  const features = (x: tf.Tensor) =>
    tf.tidy(() => {
      if (x.rank !== 4 || x.shape[1] !== r || x.shape[2] !== r || x.shape[3] !== config.channels) {
        throw new Error(`lenet: expected images of shape [N, ${r}, ${r}, ${config.channels}], got [${x.shape}]`);
      }
      let h = downsample2x(conv(x as tf.Tensor4D, 'conv0'));
      h = downsample2x(conv(h, 'conv1'));
      const flat = h.reshape([x.shape[0]!, -1]) as tf.Tensor2D;
      return silu(fc(silu(fc(flat, 'fc0')), 'fc1'));
    });
  return { features, logits: (x) => tf.tidy(() => fc(features(x), 'out')) };
}

/** Builds a classifier model around existing parameters (which it then owns). */
export function classifierFromParams(config: ClassifierConfig, params: Params): ClassifierModel {
  validateClassifierConfig(config);
  return { config, params, ...lenet(config, params, NET) };
}

/** A classifier initialised from `init` (an Rng, or null for zeros before loading weights). */
export function initClassifier(config: ClassifierConfig, init: Init): ClassifierModel {
  validateClassifierConfig(config);
  return classifierFromParams(config, initLenet(config, init, NET));
}

/** A new classifier with weights drawn from `rng` (deterministic given its seed). */
export function createClassifier(config: ClassifierConfig, rng: Rng): ClassifierModel {
  return initClassifier(config, rng);
}
