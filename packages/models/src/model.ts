import * as tf from '@tensorflow/tfjs';

import type { Denoiser, Rng } from '@diff-instruct/sde';

import {
  type DenoiserConfig,
  type GeneratorConfig,
  type TweedieGeneratorConfig,
  sampleShape,
  validateDenoiserConfig,
  validateGeneratorConfig,
} from './config.js';
import { type ClassifierModel, classifierFromParams } from './lenet.js';
import { initMlpGenerator, initMlpScore, mlpFeatures, mlpGenerator, mlpScore } from './mlp.js';
import { type Init, type Params, cloneParams } from './params.js';
import { edmFeatures, edmPrecond } from './precond.js';
import { initStyleGan2Generator, stylegan2Generator, stylegan2LatentSize } from './stylegan2.js';
import { initUnet, unetFeatures, unetScore } from './unet.js';

/** A denoiser network: plain data (config, params) and the denoiser closure over them. */
export interface DenoiserModel {
  readonly config: DenoiserConfig;
  readonly params: Params;
  /** D(x, σ, label): evaluation mode (no dropout), deterministic. */
  readonly denoise: Denoiser;
  /**
   * The same denoiser with dropout active (UNet `dropout` > 0), its masks drawn from `rng`, for
   * training. Equal to `denoise` for networks without dropout.
   */
  readonly withDropout?: (rng: Rng) => Denoiser;
  /**
   * The network's internal features at (x, σ, label), evaluation mode: the UNet's bottleneck
   * [N, h, w, C] or the MLP's last hidden layer [N, h]. A discriminator head on the fake score's
   * features (DMD2; `featureHead`) reads them.
   */
  readonly features: Denoiser;
}

/** A one-step generator x = G(z, label). */
export interface GeneratorModel {
  readonly config: GeneratorConfig;
  readonly params: Params;
  /** Shape of one latent sample, e.g. [dim]. */
  readonly latentShape: number[];
  /** Shape of one output sample. */
  readonly outputShape: number[];
  readonly numClasses: number;
  /** z: [N, ...latentShape], standard normal; label: one-hot [N, numClasses]. Differentiable wrt params. */
  generate(z: tf.Tensor, label?: tf.Tensor2D): tf.Tensor;
}

/** Name prefix of the raw network inside a denoiser. */
export const NET = 'net';
/** Name prefix of the denoiser inside a Tweedie generator: its params are `denoiser.net.…`. */
export const DENOISER = 'denoiser';
/** Name prefix of an MLP generator's params. */
export const GEN = 'gen';

/** Creates the parameters of a denoiser; names are `${prefix}net.…`. */
function initDenoiserParams(config: DenoiserConfig, init: Init, prefix: string, params: Params = {}): Params {
  const net = config.net;
  return net.kind === 'mlp' ? initMlpScore(net, init, `${prefix}${NET}`, params) : initUnet(net, init, `${prefix}${NET}`, params);
}

/** The denoiser closure over existing parameters; with `dropoutRng`, dropout is active. */
function denoiserOf(config: DenoiserConfig, params: Params, prefix: string, dropoutRng: Rng | null = null): Denoiser {
  const net = config.net;
  const raw = net.kind === 'mlp' ? mlpScore(net, params, `${prefix}${NET}`) : unetScore(net, params, `${prefix}${NET}`, dropoutRng);
  return edmPrecond(raw, config.sigmaData);
}

/** Builds a denoiser model around existing parameters (which it then owns). */
export function denoiserFromParams(config: DenoiserConfig, params: Params): DenoiserModel {
  validateDenoiserConfig(config);
  const denoise = denoiserOf(config, params, '');
  const hasDropout = config.net.kind === 'unet' && config.net.dropout > 0;
  const net = config.net;
  const raw = net.kind === 'mlp' ? mlpFeatures(net, params, NET) : unetFeatures(net, params, NET);
  return {
    config,
    params,
    denoise,
    withDropout: (rng) => (hasDropout ? denoiserOf(config, params, '', rng) : denoise),
    features: edmFeatures(raw, config.sigmaData),
  };
}

/** Builds a generator model around existing parameters (which it then owns). */
export function generatorFromParams(config: GeneratorConfig, params: Params): GeneratorModel {
  validateGeneratorConfig(config);
  if (config.kind === 'mlp-generator') {
    const g = mlpGenerator(config, params, GEN);
    return {
      config,
      params,
      latentShape: [config.latentDim],
      outputShape: [config.outDim],
      numClasses: config.numClasses,
      generate: g,
    };
  }
  if (config.kind === 'stylegan2') {
    const g = stylegan2Generator(config, params, GEN);
    return {
      config,
      params,
      latentShape: [stylegan2LatentSize(config)],
      outputShape: [config.resolution, config.resolution, config.channels],
      numClasses: config.numClasses,
      generate: (z, label) => g(z, label),
    };
  }
  return tweedieFromParams(config, params);
}

/** Eq. (B.3): x = D(σ*·z; σ*) = z' + σ*² s(z'), z' = σ*·z, the teacher's denoiser at one noise level. */
function tweedieFromParams(config: TweedieGeneratorConfig, params: Params): GeneratorModel {
  const D = denoiserOf(config.denoiser, params, `${DENOISER}.`);
  const sigmaStar = config.sigmaStar;
  const shape = sampleShape(config.denoiser);
  return {
    config,
    params,
    latentShape: shape.slice(),
    outputShape: shape.slice(),
    numClasses: config.denoiser.net.numClasses,
    generate: (z, label) =>
      tf.tidy(() => {
        const sigma = tf.fill([z.shape[0]!], sigmaStar) as tf.Tensor1D;
        return D(tf.mul(z, sigmaStar), sigma, label);
      }),
  };
}

/** A new denoiser with weights drawn from `rng` (deterministic given its seed). */
export function createDenoiser(config: DenoiserConfig, rng: Rng): DenoiserModel {
  return initDenoiser(config, rng);
}

/** A denoiser initialised from `init` (an Rng, or null for zeros before loading weights). */
export function initDenoiser(config: DenoiserConfig, init: Init): DenoiserModel {
  validateDenoiserConfig(config);
  return denoiserFromParams(config, initDenoiserParams(config, init, ''));
}

/**
 * A new generator with weights drawn from `rng`. A 'tweedie' generator created this way has a
 * randomly initialised denoiser; to start from a teacher use {@link tweedieGenerator}.
 */
export function createGenerator(config: GeneratorConfig, rng: Rng): GeneratorModel {
  return initGenerator(config, rng);
}

/** A generator initialised from `init` (an Rng, or null for zeros before loading weights). */
export function initGenerator(config: GeneratorConfig, init: Init): GeneratorModel {
  validateGeneratorConfig(config);
  const params =
    config.kind === 'mlp-generator'
      ? initMlpGenerator(config, init, GEN)
      : config.kind === 'stylegan2'
        ? initStyleGan2Generator(config, init, GEN)
        : initDenoiserParams(config.denoiser, init, `${DENOISER}.`);
  return generatorFromParams(config, params);
}

/**
 * Eq. (B.3), the Tweedie initialisation: the generator x = D_teacher(σ*·z; σ*) = z' + σ*² s(z'),
 * z' = σ*·z, with a copy of the teacher's params named `denoiser.` + the teacher's name
 * (`net.layers.0.weight` → `denoiser.net.layers.0.weight`), so that a saved Tweedie generator
 * loads back with {@link loadGenerator}.
 */
export function tweedieGenerator(teacher: DenoiserModel, sigmaStar: number): GeneratorModel {
  if (!(sigmaStar > 0)) throw new Error(`tweedieGenerator: sigmaStar must be > 0, got ${sigmaStar}`);
  const copy = cloneParams(teacher.params);
  const params: Params = {};
  for (const [name, v] of Object.entries(copy)) params[`${DENOISER}.${name}`] = v;
  return generatorFromParams({ kind: 'tweedie', sigmaStar, denoiser: structuredClone(teacher.config) }, params);
}

/** A model with new variables holding the same values (the fake score starts as a copy of the teacher). */
export function cloneModel<M extends DenoiserModel | GeneratorModel | ClassifierModel>(m: M): M {
  const config = structuredClone(m.config);
  const params = cloneParams(m.params);
  if (config.kind === 'edm') return denoiserFromParams(config, params) as M;
  if (config.kind === 'lenet') return classifierFromParams(config, params) as M;
  return generatorFromParams(config, params) as M;
}
