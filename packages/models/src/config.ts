import { type StyleGan2GeneratorConfig, validateStyleGan2Generator } from './stylegan2.js';

/**
 * Model configurations: plain JSON data. A config is stored in every weight file, so a file
 * describes itself and `loadDenoiser(path)` / `loadGenerator(path)` need nothing else.
 */

/** An MLP score network F(x_in, c_noise, label) on flat vectors of length `dim`. */
export interface MlpScoreConfig {
  kind: 'mlp';
  /** Data dimension. */
  dim: number;
  /** Hidden widths, e.g. [256, 256, 256] (the reference MLP of docs/design.md). */
  hidden: number[];
  /** Width of the noise (and class) embedding, even, e.g. 64. */
  embedDim: number;
  /** Number of classes; 0 = unconditional. */
  numClasses: number;
}

/**
 * A small UNet score network on images [N, resolution, resolution, channels], in the style of
 * EDM's DDPM++ (SongUNet): residual blocks with GroupNorm + SiLU, the noise (and class) embedding
 * injected as a per-channel scale and shift (adaptive GroupNorm), self-attention at chosen
 * resolutions, average-pool down- and nearest up-sampling, and skip connections. See `unet.ts`.
 */
export interface UnetConfig {
  kind: 'unet';
  /** Image height = width, divisible by 2^(channelMult.length − 1), e.g. 32. */
  resolution: number;
  /** Image channels, e.g. 1 for MNIST. */
  channels: number;
  /** Channels at the highest resolution, e.g. 32 (EDM CIFAR-10: 128). */
  modelChannels: number;
  /** Channel multiplier per resolution level, e.g. [1, 2, 2] for 32, 16, 8. */
  channelMult: number[];
  /** Residual blocks per level in the encoder (the decoder has one more, as in EDM). */
  numBlocks: number;
  /**
   * Resolutions with self-attention after each block, e.g. [8]; keep them ≤ 8 on wasm. As in EDM,
   * the first decoder block at the lowest resolution always has attention.
   */
  attnResolutions: number[];
  /** Dropout probability inside the residual blocks; active only with an Rng (`withDropout`). */
  dropout: number;
  /** Width of the noise (and class) embedding, even, e.g. 128. */
  embedDim: number;
  /** Number of classes; 0 = unconditional. */
  numClasses: number;

  // Architecture flags. Each is optional and its default is this UNet's original behaviour, so
  // configs without them (every preset and saved checkpoint) build the same network as before.
  // EDM's DDPM++ (`SongUNet`, as `importEdm` builds it) sets: blockModulation 'add',
  // resampleSkipConv true, decoderAttn 'last', noiseEmbedding 'positional', noiseDim =
  // model_channels·channel_mult_noise, groupNormEps 1e-6, labelBias true, labelScale 'sqrt'.

  /**
   * How a block injects the embedding: 'scale-shift' (default; adaptive GroupNorm,
   * SiLU(GN₁(h)·(1 + scale) + shift), `affine` [embedDim, 2C]) or 'add' (EDM's
   * adaptive_scale=False: SiLU(GN₁(h + affine(emb))), `affine` [embedDim, C]).
   */
  blockModulation?: 'scale-shift' | 'add';
  /**
   * Whether up/down blocks have a 1×1 `skip` conv (after the resampling) even when cin = cout, as
   * EDM's resample_proj=True. Default false: such a skip is the resampling alone.
   */
  resampleSkipConv?: boolean;
  /**
   * Decoder blocks with attention at an `attnResolutions` level: 'all' (default) or 'last' (only
   * the last block of each level, as EDM's SongUNet). `in0` always has attention either way.
   */
  decoderAttn?: 'all' | 'last';
  /**
   * The noise features of c_noise: 'fourier' (default; `noiseFeatures`, [cos | sin] over
   * geometrically spaced frequencies) or 'positional' (EDM's PositionalEmbedding with
   * endpoint=True, after SongUNet's swap: [sin(c·f_i) | cos(c·f_i)], f_i = 10000^(−i/(half−1))).
   */
  noiseEmbedding?: 'fourier' | 'positional';
  /**
   * Width of the noise features and of the class embedding (`map_label`), even (≥ 4 for
   * 'positional'); `map_layer0` maps it to `embedDim`. Default: `embedDim`.
   */
  noiseDim?: number;
  /** GroupNorm ε of every GroupNorm in the network, > 0. Default 1e-5 (EDM's SongUNet: 1e-6). */
  groupNormEps?: number;
  /**
   * Whether the class embedding has a bias, `map_label.bias` [noiseDim] (EDM's Linear). With it,
   * a call without a label adds the bias alone (the zero label, as EDMPrecond). Default false.
   */
  labelBias?: boolean;
  /** Scale of the label before `map_label`: 'none' (default) or 'sqrt' (·√numClasses, as EDM). */
  labelScale?: 'none' | 'sqrt';
}

/** A network wrapped into a denoiser by EDM preconditioning. */
export interface EdmDenoiserConfig {
  kind: 'edm';
  /** σ_data, the standard deviation of the data (EDM: 0.5 for images in [-1, 1]). */
  sigmaData: number;
  net: MlpScoreConfig | UnetConfig;
}

/** An MLP generator z ↦ x. */
export interface MlpGeneratorConfig {
  kind: 'mlp-generator';
  latentDim: number;
  outDim: number;
  hidden: number[];
  numClasses: number;
}

/** Eq. (B.3): the generator x = D(σ*·z; σ*), a denoiser evaluated at one fixed noise level. */
export interface TweedieGeneratorConfig {
  kind: 'tweedie';
  sigmaStar: number;
  denoiser: EdmDenoiserConfig;
}

/**
 * A LeNet-style image classifier, conv-pool-conv-pool-fc-fc-logits with SiLU, whose penultimate
 * features give "FID (LeNet features)". See `lenet.ts`.
 */
export interface LenetConfig {
  kind: 'lenet';
  /** Image height = width, a multiple of 4 (two 2× poolings), e.g. 32. */
  resolution: number;
  /** Image channels, e.g. 1 for MNIST. */
  channels: number;
  numClasses: number;
  /** Width of the penultimate layer, the features used for FID, e.g. 128. */
  featureDim: number;
}

export type DenoiserConfig = EdmDenoiserConfig;
export type GeneratorConfig = MlpGeneratorConfig | TweedieGeneratorConfig | StyleGan2GeneratorConfig;
export type ClassifierConfig = LenetConfig;
export type ModelConfig = DenoiserConfig | GeneratorConfig | ClassifierConfig;
export type ModelRole = 'denoiser' | 'generator' | 'classifier';

/** 'denoiser', 'generator' or 'classifier', the role stored in weight files. */
export function roleOf(config: ModelConfig): ModelRole {
  return config.kind === 'edm' ? 'denoiser' : config.kind === 'lenet' ? 'classifier' : 'generator';
}

/** The shape of one sample a denoiser works on: [dim] for an MLP, [H, W, C] for a UNet. */
export function sampleShape(config: DenoiserConfig): number[] {
  const net = config.net;
  return net.kind === 'mlp' ? [net.dim] : [net.resolution, net.resolution, net.channels];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function check(cond: boolean, where: string, msg: string): void {
  if (!cond) throw new Error(`invalid ${where}: ${msg}`);
}

function posInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

function checkWidths(v: unknown, where: string): void {
  check(Array.isArray(v) && v.length > 0 && v.every(posInt), where, `hidden must be a non-empty list of positive integers, got ${JSON.stringify(v)}`);
}

function checkClasses(v: unknown, where: string): void {
  check(typeof v === 'number' && Number.isInteger(v) && v >= 0, where, `numClasses must be an integer >= 0, got ${JSON.stringify(v)}`);
}

/** Throws a message naming the field when `config` is not a valid {@link DenoiserConfig}. */
export function validateDenoiserConfig(config: unknown, where = 'denoiser config'): asserts config is DenoiserConfig {
  check(isObject(config), where, 'expected an object');
  const c = config as Record<string, unknown>;
  check(c.kind === 'edm', where, `unknown denoiser kind ${JSON.stringify(c.kind)} (expected 'edm')`);
  check(typeof c.sigmaData === 'number' && c.sigmaData > 0, where, `sigmaData must be > 0, got ${JSON.stringify(c.sigmaData)}`);
  const net = c.net;
  check(isObject(net), where, 'net must be an object');
  const n = net as Record<string, unknown>;
  check(n.kind === 'mlp' || n.kind === 'unet', where, `unknown network kind ${JSON.stringify(n.kind)} (expected 'mlp' or 'unet')`);
  if (n.kind === 'mlp') {
    check(posInt(n.dim), where, `net.dim must be a positive integer, got ${JSON.stringify(n.dim)}`);
    checkWidths(n.hidden, `${where} (net)`);
  } else {
    validateUnet(n, where);
  }
  check(posInt(n.embedDim) && (n.embedDim as number) % 2 === 0, where, `net.embedDim must be a positive even integer, got ${JSON.stringify(n.embedDim)}`);
  checkClasses(n.numClasses, `${where} (net)`);
}

function validateUnet(n: Record<string, unknown>, where: string): void {
  const field = (name: string, ok: boolean, expected: string) =>
    check(ok, where, `net.${name} must be ${expected}, got ${JSON.stringify(n[name])}`);
  field('channels', posInt(n.channels), 'a positive integer');
  field('modelChannels', posInt(n.modelChannels), 'a positive integer');
  field('channelMult', Array.isArray(n.channelMult) && n.channelMult.length > 0 && n.channelMult.every(posInt), 'a non-empty list of positive integers');
  field('numBlocks', posInt(n.numBlocks), 'a positive integer');
  field('dropout', typeof n.dropout === 'number' && n.dropout >= 0 && n.dropout < 1, 'a number in [0, 1)');
  const levels = (n.channelMult as number[]).length;
  const r = n.resolution;
  field('resolution', posInt(r) && (r as number) % 2 ** (levels - 1) === 0, `a positive integer divisible by 2^${levels - 1} (channelMult has ${levels} levels)`);
  const resolutions = Array.from({ length: levels }, (_, i) => (r as number) >> i);
  const oneOf = (name: string, values: readonly unknown[]) =>
    field(name, n[name] === undefined || values.includes(n[name]), `one of ${values.map((v) => JSON.stringify(v)).join(', ')} (or absent)`);
  oneOf('blockModulation', ['scale-shift', 'add']);
  oneOf('resampleSkipConv', [true, false]);
  oneOf('decoderAttn', ['all', 'last']);
  oneOf('noiseEmbedding', ['fourier', 'positional']);
  oneOf('labelBias', [true, false]);
  oneOf('labelScale', ['none', 'sqrt']);
  const minNoise = n.noiseEmbedding === 'positional' ? 4 : 2;
  field(
    'noiseDim',
    n.noiseDim === undefined || (posInt(n.noiseDim) && (n.noiseDim as number) % 2 === 0 && (n.noiseDim as number) >= minNoise),
    `an even integer >= ${minNoise} (or absent)`,
  );
  field('groupNormEps', n.groupNormEps === undefined || (typeof n.groupNormEps === 'number' && n.groupNormEps > 0 && Number.isFinite(n.groupNormEps)), 'a finite number > 0 (or absent)');
  field(
    'attnResolutions',
    Array.isArray(n.attnResolutions) && n.attnResolutions.every((a) => resolutions.includes(a as number)),
    `a list of level resolutions (${resolutions.join(', ')})`,
  );
}

/** Throws a message naming the field when `config` is not a valid {@link ClassifierConfig}. */
export function validateClassifierConfig(config: unknown, where = 'classifier config'): asserts config is ClassifierConfig {
  check(isObject(config), where, 'expected an object');
  const c = config as Record<string, unknown>;
  check(c.kind === 'lenet', where, `unknown classifier kind ${JSON.stringify(c.kind)} (expected 'lenet')`);
  check(posInt(c.resolution) && (c.resolution as number) % 4 === 0, where, `resolution must be a positive multiple of 4, got ${JSON.stringify(c.resolution)}`);
  check(posInt(c.channels), where, `channels must be a positive integer, got ${JSON.stringify(c.channels)}`);
  check(typeof c.numClasses === 'number' && Number.isInteger(c.numClasses) && c.numClasses >= 2, where, `numClasses must be an integer >= 2, got ${JSON.stringify(c.numClasses)}`);
  check(posInt(c.featureDim), where, `featureDim must be a positive integer, got ${JSON.stringify(c.featureDim)}`);
}

/** Throws a message naming the field when `config` is not a valid {@link GeneratorConfig}. */
export function validateGeneratorConfig(config: unknown, where = 'generator config'): asserts config is GeneratorConfig {
  check(isObject(config), where, 'expected an object');
  const c = config as Record<string, unknown>;
  if (c.kind === 'mlp-generator') {
    check(posInt(c.latentDim), where, `latentDim must be a positive integer, got ${JSON.stringify(c.latentDim)}`);
    check(posInt(c.outDim), where, `outDim must be a positive integer, got ${JSON.stringify(c.outDim)}`);
    checkWidths(c.hidden, where);
    checkClasses(c.numClasses, where);
  } else if (c.kind === 'tweedie') {
    check(typeof c.sigmaStar === 'number' && c.sigmaStar > 0, where, `sigmaStar must be > 0, got ${JSON.stringify(c.sigmaStar)}`);
    validateDenoiserConfig(c.denoiser, `${where} (denoiser)`);
  } else if (c.kind === 'stylegan2') {
    check(Array.isArray(c.channelsAt), where, `channelsAt must be a list, got ${JSON.stringify(c.channelsAt)}`);
    validateStyleGan2Generator(c as unknown as StyleGan2GeneratorConfig, `invalid ${where}`);
  } else {
    check(false, where, `unknown generator kind ${JSON.stringify(c.kind)} (expected 'mlp-generator', 'tweedie' or 'stylegan2')`);
  }
}
