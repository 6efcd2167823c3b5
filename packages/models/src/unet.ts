import * as tf from '@tensorflow/tfjs';

import type { Rng } from '@diff-instruct/sde';

import type { UnetConfig } from './config.js';
import { noiseFeatures } from './mlp.js';
import { batchMatmul, conv2dBias, dense, downsample2x, dropoutMaskTensor, groupNorm, groupNormSilu, oneHotEmbed, silu, softmax, upsample2x } from './ops.js';
import { type Init, type Params, addNormal, addOnes, addZeros, param } from './params.js';
import type { RawNet } from './precond.js';

/**
 * A small UNet score network in the style of EDM's DDPM++ (`SongUNet` in NVlabs/edm
 * `training/networks.py`), NHWC, built only from the custom ops of `ops.ts` so that it trains on
 * wasm and has second-order gradients:
 *
 *   emb = SiLU(W₁·SiLU(W₀·(Fourier(c_noise) + label·W_label)))
 *   encoder: conv_in, then per level: [down block], numBlocks blocks (attention where chosen)
 *   decoder: per level (coarse to fine): [in0 (attention) + in1 at the lowest level | up block],
 *            numBlocks + 1 blocks, each on concat(h, skip)
 *   out = conv(SiLU(GroupNorm(h)))
 *
 * A block (EDM `UNetBlock`, adaptive scale):
 *   h = conv0(resample(SiLU(GN₀(x))));  (scale, shift) = affine(emb)
 *   h = conv1(dropout(SiLU(GN₁(h)·(1 + scale) + shift)));  x = (h + skip(resample(x)))·√½
 *   attention: x = (proj(softmax(qᵀk/√C)·v) + x)·√½, q, k, v = 1×1 conv of GN₂(x)
 *
 * The optional flags of UnetConfig (`blockModulation`, `resampleSkipConv`, `decoderAttn`,
 * `noiseEmbedding`, `noiseDim`, `groupNormEps`, `labelBias`, `labelScale`) switch each of these
 * departures to EDM's DDPM++ exactly (`importEdm`); their defaults are this network:
 *
 * Departures from EDM: Fourier noise features (as the MLP, `noiseFeatures`) instead of its
 * positional embedding; a single attention head; conv kernels stored [kh, kw, in, out].
 */

/**
 * Scale of the initial weights of the layers that end a residual branch (conv1, attention proj)
 * and of the output conv, relative to 1/√fan_in. EDM initialises them at 1e-5 (each block starts
 * as the identity, F starts at zero); 0.1, as for the MLP, keeps that nearly so while every layer
 * receives a gradient at the first step and differently seeded models differ.
 */
const OUT_INIT_SCALE = 0.1;
/** EDM's skip_scale: the sum of a residual branch and its skip is scaled by √½ to keep the variance. */
export const SKIP_SCALE = Math.SQRT1_2;
/** GroupNorm as in EDM: at most 32 groups, at least 4 channels per group. */
const MAX_GROUPS = 32;
const MIN_CHANNELS_PER_GROUP = 4;

/** The number of GroupNorm groups for C channels: the largest divisor of C ≤ min(32, C/4), at least 1. */
export function groupsFor(c: number): number {
  for (let g = Math.min(MAX_GROUPS, Math.floor(c / MIN_CHANNELS_PER_GROUP)); g > 1; g--) if (c % g === 0) return g;
  return 1;
}

/** One residual block of the UNet (read by the ONNX exporter, which mirrors the forward pass). */
export interface BlockSpec {
  name: string;
  cin: number;
  cout: number;
  resample: 'up' | 'down' | null;
  attn: boolean;
  /** Decoder blocks that take the next skip connection (concatenated to their input). */
  takesSkip: boolean;
  /** Whether the skip path has a 1×1 conv (cin ≠ cout, or a resampling block with `resampleSkipConv`). */
  skipConv: boolean;
}

/** The UnetConfig's optional architecture flags, defaults filled in (see {@link UnetConfig}). */
export interface UnetOptions {
  blockModulation: 'scale-shift' | 'add';
  resampleSkipConv: boolean;
  decoderAttn: 'all' | 'last';
  noiseEmbedding: 'fourier' | 'positional';
  noiseDim: number;
  groupNormEps: number;
  labelBias: boolean;
  labelScale: 'none' | 'sqrt';
}

/** The default GroupNorm ε (that of `groupNorm` in ops.ts). */
const DEFAULT_GN_EPS = 1e-5;

/** The architecture flags of a UNet config, each defaulting to this UNet's original behaviour. */
export function unetOptions(config: UnetConfig): UnetOptions {
  return {
    blockModulation: config.blockModulation ?? 'scale-shift',
    resampleSkipConv: config.resampleSkipConv ?? false,
    decoderAttn: config.decoderAttn ?? 'all',
    noiseEmbedding: config.noiseEmbedding ?? 'fourier',
    noiseDim: config.noiseDim ?? config.embedDim,
    groupNormEps: config.groupNormEps ?? DEFAULT_GN_EPS,
    labelBias: config.labelBias ?? false,
    labelScale: config.labelScale ?? 'none',
  };
}

/**
 * EDM's positional noise embedding (`PositionalEmbedding(endpoint=True)` followed by SongUNet's
 * sin/cos swap): [sin(c·f_i) | cos(c·f_i)], f_i = 10000^(−i/(half−1)), i < half = dim/2.
 */
export function positionalNoiseFeatures(cNoise: tf.Tensor1D, dim: number): tf.Tensor2D {
  return tf.tidy(() => {
    const half = dim / 2;
    const f = new Float32Array(half);
    for (let i = 0; i < half; i++) f[i] = Math.fround(1 / 10000) ** (i / (half - 1));
    const phase = tf.mul(cNoise.reshape([-1, 1]), tf.tensor2d(f, [1, half]));
    return tf.concat([tf.sin(phase), tf.cos(phase)], 1) as tf.Tensor2D;
  });
}

export interface UnetPlan {
  encoder: BlockSpec[];
  decoder: BlockSpec[];
  /** Channels of the last decoder block. */
  top: number;
}

/** The block layout of a UNet config: EDM's SongUNet loop, written out. */
export function unetPlan(config: UnetConfig): UnetPlan {
  const { resolution, modelChannels: mc, channelMult, numBlocks, attnResolutions } = config;
  const { resampleSkipConv, decoderAttn } = unetOptions(config);
  const spec = (name: string, cin: number, cout: number, resample: 'up' | 'down' | null, attn: boolean, takesSkip: boolean): BlockSpec => ({
    name,
    cin,
    cout,
    resample,
    attn,
    takesSkip,
    skipConv: cin !== cout || (resampleSkipConv && resample !== null),
  });
  const encoder: BlockSpec[] = [];
  const skips = [mc];
  let cout = mc;
  channelMult.forEach((mult, level) => {
    const res = resolution >> level;
    if (level > 0) {
      encoder.push(spec(`enc.${res}x${res}_down`, cout, cout, 'down', false, false));
      skips.push(cout);
    }
    for (let i = 0; i < numBlocks; i++) {
      const cin = cout;
      cout = mc * mult;
      encoder.push(spec(`enc.${res}x${res}_block${i}`, cin, cout, null, attnResolutions.includes(res), false));
      skips.push(cout);
    }
  });
  const decoder: BlockSpec[] = [];
  const pending = skips.slice();
  for (let level = channelMult.length - 1; level >= 0; level--) {
    const res = resolution >> level;
    if (level === channelMult.length - 1) {
      decoder.push(spec(`dec.${res}x${res}_in0`, cout, cout, null, true, false));
      decoder.push(spec(`dec.${res}x${res}_in1`, cout, cout, null, false, false));
    } else {
      decoder.push(spec(`dec.${res}x${res}_up`, cout, cout, 'up', false, false));
    }
    for (let i = 0; i <= numBlocks; i++) {
      const cin = cout + pending.pop()!;
      cout = mc * channelMult[level]!;
      const attn = attnResolutions.includes(res) && (decoderAttn === 'all' || i === numBlocks);
      decoder.push(spec(`dec.${res}x${res}_block${i}`, cin, cout, null, attn, true));
    }
  }
  return { encoder, decoder, top: cout };
}

function addConv(params: Params, name: string, k: number, cin: number, cout: number, init: Init, gain = 1): void {
  addNormal(params, `${name}.weight`, [k, k, cin, cout], gain / Math.sqrt(k * k * cin), init);
  addZeros(params, `${name}.bias`, [cout]);
}

function addNorm(params: Params, name: string, c: number, init: Init): void {
  addOnes(params, `${name}.weight`, [c], init);
  addZeros(params, `${name}.bias`, [c]);
}

function addBlock(params: Params, b: BlockSpec, embedDim: number, init: Init, modulation: UnetOptions['blockModulation']): void {
  const affineOut = modulation === 'add' ? b.cout : 2 * b.cout;
  addNorm(params, `${b.name}.norm0`, b.cin, init);
  addConv(params, `${b.name}.conv0`, 3, b.cin, b.cout, init);
  addNormal(params, `${b.name}.affine.weight`, [embedDim, affineOut], 1 / Math.sqrt(embedDim), init);
  addZeros(params, `${b.name}.affine.bias`, [affineOut]);
  addNorm(params, `${b.name}.norm1`, b.cout, init);
  addConv(params, `${b.name}.conv1`, 3, b.cout, b.cout, init, OUT_INIT_SCALE);
  if (b.skipConv) addConv(params, `${b.name}.skip`, 1, b.cin, b.cout, init);
  if (b.attn) {
    addNorm(params, `${b.name}.norm2`, b.cout, init);
    addConv(params, `${b.name}.qkv`, 1, b.cout, 3 * b.cout, init);
    addConv(params, `${b.name}.proj`, 1, b.cout, b.cout, init, OUT_INIT_SCALE);
  }
}

/**
 * Creates the parameters of a UNet score network under `prefix` (e.g. 'net'): `map_label.weight`
 * [C, E] (conditional only), `map_layer{0,1}.{weight,bias}`, `enc.32x32_conv.{weight,bias}`, the
 * blocks `enc.RxR_{down,blockI}.…` and `dec.RxR_{in0,in1,up,blockI}.…` (each with `norm0`, `conv0`,
 * `affine`, `norm1`, `conv1`, [`skip`], [`norm2`, `qkv`, `proj`]), and `dec.out_norm`, `dec.out_conv`.
 */
export function initUnet(config: UnetConfig, init: Init, prefix: string, params: Params = {}): Params {
  const E = config.embedDim;
  const opts = unetOptions(config);
  const D = opts.noiseDim;
  const { encoder, decoder, top } = unetPlan(config);
  if (config.numClasses > 0) {
    addNormal(params, `${prefix}.map_label.weight`, [config.numClasses, D], 1, init);
    if (opts.labelBias) addZeros(params, `${prefix}.map_label.bias`, [D]);
  }
  for (const [name, fanIn] of [['map_layer0', D], ['map_layer1', E]] as const) {
    addNormal(params, `${prefix}.${name}.weight`, [fanIn, E], 1 / Math.sqrt(fanIn), init);
    addZeros(params, `${prefix}.${name}.bias`, [E]);
  }
  const r = config.resolution;
  addConv(params, `${prefix}.enc.${r}x${r}_conv`, 3, config.channels, config.modelChannels, init);
  for (const b of [...encoder, ...decoder]) addBlock(params, { ...b, name: `${prefix}.${b.name}` }, E, init, opts.blockModulation);
  addNorm(params, `${prefix}.dec.out_norm`, top, init);
  addConv(params, `${prefix}.dec.out_conv`, 3, top, config.channels, init, OUT_INIT_SCALE);
  return params;
}

type Tensor4D = tf.Tensor4D;

/**
 * The UNet F(x_in, c_noise, label), the "raw" network inside EDM preconditioning, x_in
 * [N, res, res, channels]. With `dropoutRng`, dropout (config.dropout) is active and its masks are
 * drawn from that Rng; without, the network is deterministic (evaluation).
 */
export function unetScore(config: UnetConfig, params: Params, prefix: string, dropoutRng: Rng | null = null): RawNet {
  return unetNet(config, params, prefix, dropoutRng).score;
}

/**
 * The UNet's bottleneck features at (x_in, c_noise, label): the encoder's output
 * [N, res/2^(L−1), res/2^(L−1), channels of the last level], before the decoder (evaluation mode).
 * DMD2 puts its discriminator head there.
 */
export function unetFeatures(config: UnetConfig, params: Params, prefix: string): RawNet {
  return unetNet(config, params, prefix, null).features;
}

/** The score network and its bottleneck features, sharing one encoder. */
function unetNet(config: UnetConfig, params: Params, prefix: string, dropoutRng: Rng | null): { score: RawNet; features: RawNet } {
  const p = <T extends tf.Tensor>(name: string) => param<T>(params, `${prefix}.${name}`);
  const { encoder, decoder } = unetPlan(config);
  const opts = unetOptions(config);
  const eps = opts.groupNormEps;
  const r = config.resolution;
  const mapLabel = config.numClasses > 0 ? p<tf.Tensor2D>('map_label.weight') : null;
  const mapLabelBias = mapLabel !== null && opts.labelBias ? p<tf.Tensor1D>('map_label.bias') : null;
  for (const b of [...encoder, ...decoder]) p(`${b.name}.conv0.weight`); // fail early on a missing parameter
  const conv = (x: Tensor4D, name: string, stride: 1 | 2 = 1) => conv2dBias(x, p(`${name}.weight`), p<tf.Tensor1D>(`${name}.bias`), stride);
  const norm = (x: Tensor4D, name: string) => groupNorm(x, p(`${name}.weight`), p(`${name}.bias`), groupsFor(x.shape[3]), eps);
  const normSilu = (x: Tensor4D, name: string) => groupNormSilu(x, p(`${name}.weight`), p(`${name}.bias`), groupsFor(x.shape[3]), eps);

  const dropout = (x: Tensor4D): Tensor4D => {
    if (dropoutRng === null || config.dropout === 0) return x;
    return tf.mul(x, dropoutMaskTensor(dropoutRng, x.shape, 1 - config.dropout)) as Tensor4D;
  };

  const attention = (x: Tensor4D, name: string): Tensor4D => {
    const [n, h, w, c] = x.shape;
    const qkv = conv(norm(x, `${name}.norm2`), `${name}.qkv`);
    const [q, k, v] = tf.split(qkv, 3, 3).map((t) => t.reshape([n, h * w, c]) as tf.Tensor3D) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
    const weights = softmax(tf.div(batchMatmul(q, k, true), Math.sqrt(c)) as tf.Tensor3D); // [N, query, key]
    const a = batchMatmul(weights, v).reshape([n, h, w, c]) as Tensor4D;
    return tf.mul(tf.add(conv(a, `${name}.proj`), x), SKIP_SCALE) as Tensor4D;
  };

  const block = (x: Tensor4D, emb: tf.Tensor2D, b: BlockSpec): Tensor4D => {
    const resample = (t: Tensor4D) => (b.resample === 'up' ? upsample2x(t) : b.resample === 'down' ? downsample2x(t) : t);
    let h = conv(resample(normSilu(x, `${b.name}.norm0`)), `${b.name}.conv0`);
    const n = x.shape[0];
    if (opts.blockModulation === 'add') {
      // EDM's adaptive_scale=False: h = SiLU(GN₁(h + affine(emb)))
      const a = dense(emb, p(`${b.name}.affine.weight`), p(`${b.name}.affine.bias`)).reshape([n, 1, 1, b.cout]);
      h = normSilu(tf.add(h, a) as Tensor4D, `${b.name}.norm1`);
    } else {
      // adaptive GroupNorm: GN₁(h)·(1 + scale) + shift, folded into GN₁'s own gain and bias
      const ss = dense(emb, p(`${b.name}.affine.weight`), p(`${b.name}.affine.bias`)).reshape([n, 1, 1, 2 * b.cout]);
      const [scale, shift] = tf.split(ss, 2, 3) as [tf.Tensor, tf.Tensor];
      const gain = tf.add(scale, 1);
      const gamma = tf.mul(p(`${b.name}.norm1.weight`), gain);
      const beta = tf.add(tf.mul(p(`${b.name}.norm1.bias`), gain), shift);
      h = groupNormSilu(h, gamma, beta, groupsFor(b.cout), eps);
    }
    h = conv(dropout(h), `${b.name}.conv1`);
    const skip = b.skipConv ? conv(resample(x), `${b.name}.skip`) : resample(x);
    const out = tf.mul(tf.add(h, skip), SKIP_SCALE) as Tensor4D;
    return b.attn ? attention(out, b.name) : out;
  };

  const encode = (xIn: tf.Tensor, cNoise: tf.Tensor1D, label?: tf.Tensor2D) => {
    const [, hh, ww, cc] = xIn.shape;
    if (xIn.rank !== 4 || hh !== r || ww !== r || cc !== config.channels) {
      throw new Error(`unet: expected x of shape [N, ${r}, ${r}, ${config.channels}], got [${xIn.shape}]`);
    }
    let emb = opts.noiseEmbedding === 'positional' ? positionalNoiseFeatures(cNoise, opts.noiseDim) : noiseFeatures(cNoise, opts.noiseDim);
    if (label !== undefined) {
      if (mapLabel === null) throw new Error('unet: got a label, but the network is unconditional (numClasses = 0)');
      const l = opts.labelScale === 'sqrt' ? (tf.mul(label, Math.sqrt(config.numClasses)) as tf.Tensor2D) : label;
      emb = tf.add(emb, oneHotEmbed(l, mapLabel));
      if (mapLabelBias !== null) emb = tf.add(emb, mapLabelBias);
    } else if (mapLabelBias !== null) {
      emb = tf.add(emb, mapLabelBias); // no label = the zero label, as EDMPrecond does
    }
    emb = silu(dense(emb, p('map_layer0.weight'), p('map_layer0.bias')));
    emb = silu(dense(emb, p('map_layer1.weight'), p('map_layer1.bias')));

    let h = conv(xIn as Tensor4D, `enc.${r}x${r}_conv`);
    const skips: Tensor4D[] = [h];
    for (const b of encoder) {
      h = block(h, emb, b);
      skips.push(h);
    }
    return { emb, h, skips };
  };

  return {
    score: (xIn, cNoise, label) =>
      tf.tidy(() => {
        const { emb, skips } = encode(xIn, cNoise, label);
        let h = skips[skips.length - 1]!;
        for (const b of decoder) {
          if (b.takesSkip) h = tf.concat([h, skips.pop()!], 3) as Tensor4D;
          h = block(h, emb, b);
        }
        return conv(normSilu(h, 'dec.out_norm'), 'dec.out_conv');
      }),
    features: (xIn, cNoise, label) => tf.tidy(() => encode(xIn, cNoise, label).h),
  };
}
