import * as tf from '@tensorflow/tfjs';

import { conv2d, downsample2x, matmul, upsample2x } from './ops.js';
import { type Init, type Params, addNormal, addOnes, addZeros, param } from './params.js';

/**
 * StyleGAN2 (Karras et al. 2020) at the small scale of this project, in its "skip" generator and
 * "resnet" discriminator architectures, built from the custom ops so that it trains on wasm and
 * differentiates twice (R1). Every weight is stored N(0, 1) and scaled at run time (equalised
 * learning rate). Differences from the reference, for 32×32 images on two cores:
 * - resampling is nearest-neighbour up / 2×2 mean down (no [1, 3, 3, 1] FIR filter);
 * - one w for every layer (no style mixing) and no truncation;
 * - the per-layer noise inputs are part of the latent (see `stylegan2LatentSize`), so the generator
 *   is a deterministic function of one standard-normal vector: Diff-Instruct differentiates it like
 *   any other generator, and the GAN's and DI's samples come from the same function.
 */

/** A StyleGAN2 generator z ↦ x for square images. */
export interface StyleGan2GeneratorConfig {
  kind: 'stylegan2';
  /** Image height = width: a power of two ≥ 8, e.g. 32. */
  resolution: number;
  /** Image channels, e.g. 1 for MNIST. */
  channels: number;
  /** Width of z (the style part of the latent), e.g. 64. */
  latentDim: number;
  /** Width of w, e.g. 128. */
  wDim: number;
  /** Layers of the mapping network (8 in StyleGAN2), e.g. 4. */
  mappingLayers: number;
  /** Learning-rate multiplier of the mapping network (0.01 in StyleGAN2). */
  mappingLrMultiplier: number;
  /** Channels at 4×4, 8×8, …, resolution×resolution (log2(resolution) − 1 entries), e.g. [128, 128, 64, 32]. */
  channelsAt: number[];
  /** Number of classes; 0 = unconditional. */
  numClasses: number;
  /**
   * 'linear' (StyleGAN2; the default when absent) or 'tanh': squash the image into (−1, 1), as
   * DCGAN does. MNIST is saturated (most pixels are exactly −1), and a discriminator can tell
   * fakes by their out-of-range pixels alone.
   */
  output?: 'linear' | 'tanh';
}

/** A StyleGAN2 residual discriminator x ↦ logit. */
export interface StyleGan2DiscriminatorConfig {
  kind: 'stylegan2-discriminator';
  resolution: number;
  channels: number;
  /** Channels at resolution×resolution, …, 8×8, 4×4 (log2(resolution) − 1 entries), e.g. [32, 64, 128, 128]. */
  channelsAt: number[];
  /** Group size of the minibatch standard deviation (4 in StyleGAN2); the batch must be a multiple of min(group, N). */
  mbstdGroup: number;
  /** Number of classes; 0 = unconditional. Conditional: projection onto an embedding of the label. */
  numClasses: number;
  /** Width of the label embedding of the projection (conditional only), e.g. 128. */
  cmapDim: number;
}

const SQRT2 = Math.SQRT2;

/** Leaky ReLU (slope 0.2) with StyleGAN2's gain √2, written so that its second-order gradient is right. */
function lrelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.add(tf.mul(tf.step(x), 0.8 * SQRT2), 0.2 * SQRT2));
}

/** x · rsqrt(mean(x²) + 1e-8) over the last axis (the mapping network's input normalisation). */
function normalize2ndMoment(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.sqrt(tf.add(tf.mean(tf.square(x), 1, true), 1e-8))) as tf.Tensor2D;
}

/** Resolutions 4, 8, …, R. */
function levels(resolution: number): number[] {
  const out: number[] = [];
  for (let r = 4; r <= resolution; r *= 2) out.push(r);
  return out;
}

function checkSquare(resolution: number, channelsAt: number[], what: string): void {
  const ok = Number.isInteger(Math.log2(resolution)) && resolution >= 8;
  if (!ok) throw new Error(`${what}: resolution must be a power of two ≥ 8, got ${resolution}`);
  const n = levels(resolution).length;
  if (channelsAt.length !== n || !channelsAt.every((c) => Number.isInteger(c) && c > 0)) {
    throw new Error(`${what}: channelsAt needs ${n} positive integers (one per resolution 4…${resolution}), got ${JSON.stringify(channelsAt)}`);
  }
}

/** Validates a generator config; the error names the field. */
export function validateStyleGan2Generator(c: StyleGan2GeneratorConfig, where = 'stylegan2 generator'): void {
  checkSquare(c.resolution, c.channelsAt, where);
  for (const k of ['channels', 'latentDim', 'wDim', 'mappingLayers'] as const) {
    if (!(Number.isInteger(c[k]) && c[k] > 0)) throw new Error(`${where}: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`);
  }
  if (!(c.mappingLrMultiplier > 0)) throw new Error(`${where}: mappingLrMultiplier must be > 0, got ${JSON.stringify(c.mappingLrMultiplier)}`);
  if (!(Number.isInteger(c.numClasses) && c.numClasses >= 0)) throw new Error(`${where}: numClasses must be an integer >= 0, got ${JSON.stringify(c.numClasses)}`);
  if (c.output !== undefined && c.output !== 'linear' && c.output !== 'tanh') throw new Error(`${where}: output must be 'linear' or 'tanh', got ${JSON.stringify(c.output)}`);
}

/** The convolution layers of the synthesis network, in order, with their resolution and channels. */
function synthesisLayers(c: StyleGan2GeneratorConfig): { name: string; res: number; cin: number; cout: number; up: boolean }[] {
  const out: { name: string; res: number; cin: number; cout: number; up: boolean }[] = [];
  levels(c.resolution).forEach((res, i) => {
    const ch = c.channelsAt[i]!;
    if (i === 0) {
      out.push({ name: `b${res}.conv1`, res, cin: ch, cout: ch, up: false });
    } else {
      out.push({ name: `b${res}.conv0`, res, cin: c.channelsAt[i - 1]!, cout: ch, up: true });
      out.push({ name: `b${res}.conv1`, res, cin: ch, cout: ch, up: false });
    }
  });
  return out;
}

/** The latent length: latentDim for the style, then one standard-normal noise map per conv layer. */
export function stylegan2LatentSize(c: StyleGan2GeneratorConfig): number {
  return c.latentDim + synthesisLayers(c).reduce((s, l) => s + l.res * l.res, 0);
}

/**
 * Creates the generator's parameters under `prefix`: `mapping.fc{i}`, `mapping.embed` (with
 * classes), `synthesis.const`, and per conv layer `synthesis.b{res}.conv{0,1}.{affine.weight,
 * affine.bias, weight, bias, noise_strength}`, per resolution `synthesis.b{res}.torgb.…`.
 */
export function initStyleGan2Generator(c: StyleGan2GeneratorConfig, init: Init, prefix: string, params: Params = {}): Params {
  validateStyleGan2Generator(c);
  const lrmul = c.mappingLrMultiplier;
  if (c.numClasses > 0) addNormal(params, `${prefix}.mapping.embed.weight`, [c.numClasses, c.wDim], 1, init);
  for (let i = 0; i < c.mappingLayers; i++) {
    const fanIn = i === 0 ? c.latentDim + (c.numClasses > 0 ? c.wDim : 0) : c.wDim;
    addNormal(params, `${prefix}.mapping.fc${i}.weight`, [fanIn, c.wDim], 1 / lrmul, init);
    addZeros(params, `${prefix}.mapping.fc${i}.bias`, [c.wDim]);
  }
  const s = `${prefix}.synthesis`;
  addNormal(params, `${s}.const`, [4, 4, c.channelsAt[0]!], 1, init);
  const modConv = (name: string, cin: number, cout: number, k: number, noise: boolean) => {
    addNormal(params, `${s}.${name}.affine.weight`, [c.wDim, cin], 1, init);
    addOnes(params, `${s}.${name}.affine.bias`, [cin], init); // styles start at 1
    addNormal(params, `${s}.${name}.weight`, [k, k, cin, cout], 1, init);
    addZeros(params, `${s}.${name}.bias`, [cout]);
    if (noise) addZeros(params, `${s}.${name}.noise_strength`, [1]);
  };
  for (const l of synthesisLayers(c)) modConv(l.name, l.cin, l.cout, 3, true);
  levels(c.resolution).forEach((res, i) => modConv(`b${res}.torgb`, c.channelsAt[i]!, c.channels, 1, false));
  return params;
}

/**
 * Modulated convolution (StyleGAN2 Fig. 2d, as its non-fused path): scale the input channels by
 * the styles, convolve with the shared weight, and — with `demodulate` — scale each output channel
 * by 1/√(Σ (w·s)² + 1e-8), which is the weight demodulation of the per-sample weights.
 */
export function modulatedConv(x: tf.Tensor4D, styles: tf.Tensor2D, weight: tf.Tensor4D, demodulate: boolean): tf.Tensor4D {
  const [n] = x.shape;
  const [k, , cin, cout] = weight.shape;
  const w = tf.mul(weight, 1 / Math.sqrt(cin * k * k)) as tf.Tensor4D;
  const y = conv2d(tf.mul(x, styles.reshape([n, 1, 1, cin])) as tf.Tensor4D, w);
  if (!demodulate) return y;
  const wsq = tf.sum(tf.square(w), [0, 1]) as tf.Tensor2D; // [cin, cout]
  const d = tf.div(1, tf.sqrt(tf.add(matmul(tf.square(styles) as tf.Tensor2D, wsq), 1e-8))); // [n, cout]
  return tf.mul(y, d.reshape([n, 1, 1, cout])) as tf.Tensor4D;
}

/** The generator over existing parameters: z [N, stylegan2LatentSize], label one-hot [N, K] ↦ x [N, R, R, C]. */
export function stylegan2Generator(c: StyleGan2GeneratorConfig, params: Params, prefix: string): (z: tf.Tensor, label?: tf.Tensor2D) => tf.Tensor4D {
  validateStyleGan2Generator(c);
  const p = <T extends tf.Tensor>(name: string) => param<T>(params, `${prefix}.${name}`);
  const layers = synthesisLayers(c);
  const latent = stylegan2LatentSize(c);
  const lrmul = c.mappingLrMultiplier;
  p('synthesis.const'); // fail early on a missing parameter
  return (z, label) =>
    tf.tidy(() => {
      if (z.rank !== 2 || z.shape[1] !== latent) throw new Error(`stylegan2: expected z of shape [N, ${latent}], got [${z.shape}]`);
      const n = z.shape[0]!;
      if (c.numClasses > 0 && label === undefined) throw new Error(`stylegan2: the generator is conditional (${c.numClasses} classes): pass a one-hot label`);
      if (c.numClasses === 0 && label !== undefined) throw new Error('stylegan2: got a label, but the generator is unconditional (numClasses = 0)');
      // mapping network
      let h = normalize2ndMoment(tf.slice(z, [0, 0], [n, c.latentDim]) as tf.Tensor2D);
      if (label !== undefined) h = tf.concat([h, normalize2ndMoment(matmul(label, p('mapping.embed.weight')))], 1);
      for (let i = 0; i < c.mappingLayers; i++) {
        const wt = p<tf.Tensor2D>(`mapping.fc${i}.weight`);
        const gain = lrmul / Math.sqrt(wt.shape[0]);
        h = lrelu(tf.add(matmul(h, tf.mul(wt, gain) as tf.Tensor2D), tf.mul(p(`mapping.fc${i}.bias`), lrmul))) as tf.Tensor2D;
      }
      const w = h;
      const styles = (name: string) => {
        const a = p<tf.Tensor2D>(`synthesis.${name}.affine.weight`);
        return tf.add(matmul(w, tf.mul(a, 1 / Math.sqrt(a.shape[0])) as tf.Tensor2D), p(`synthesis.${name}.affine.bias`)) as tf.Tensor2D;
      };
      // synthesis network, skip architecture
      let offset = c.latentDim;
      const convLayer = (x: tf.Tensor4D, l: (typeof layers)[number]): tf.Tensor4D => {
        const xin = l.up ? upsample2x(x) : x;
        let y = modulatedConv(xin, styles(l.name), p(`synthesis.${l.name}.weight`), true);
        const noise = tf.slice(z, [0, offset], [n, l.res * l.res]).reshape([n, l.res, l.res, 1]);
        offset += l.res * l.res;
        y = tf.add(y, tf.mul(noise, p(`synthesis.${l.name}.noise_strength`))) as tf.Tensor4D;
        return lrelu(tf.add(y, p(`synthesis.${l.name}.bias`))) as tf.Tensor4D;
      };
      const toRgb = (x: tf.Tensor4D, res: number) =>
        tf.add(modulatedConv(x, styles(`b${res}.torgb`), p(`synthesis.b${res}.torgb.weight`), false), p(`synthesis.b${res}.torgb.bias`)) as tf.Tensor4D;
      let x = tf.tile(tf.expandDims(p('synthesis.const'), 0), [n, 1, 1, 1]) as tf.Tensor4D;
      let img: tf.Tensor4D | null = null;
      for (const res of levels(c.resolution)) {
        for (const l of layers.filter((q) => q.res === res)) x = convLayer(x, l);
        const rgb = toRgb(x, res);
        img = img === null ? rgb : (tf.add(upsample2x(img), rgb) as tf.Tensor4D);
      }
      return c.output === 'tanh' ? (tf.tanh(img!) as tf.Tensor4D) : img!;
    });
}

// -----------------------------------------------------------------------------------------------
// Discriminator
// -----------------------------------------------------------------------------------------------

/** Validates a discriminator config; the error names the field. */
export function validateStyleGan2Discriminator(c: StyleGan2DiscriminatorConfig, where = 'stylegan2 discriminator'): void {
  checkSquare(c.resolution, c.channelsAt, where);
  if (!(Number.isInteger(c.channels) && c.channels > 0)) throw new Error(`${where}: channels must be a positive integer, got ${JSON.stringify(c.channels)}`);
  if (!(Number.isInteger(c.mbstdGroup) && c.mbstdGroup >= 1)) throw new Error(`${where}: mbstdGroup must be a positive integer, got ${JSON.stringify(c.mbstdGroup)}`);
  if (!(Number.isInteger(c.numClasses) && c.numClasses >= 0)) throw new Error(`${where}: numClasses must be an integer >= 0, got ${JSON.stringify(c.numClasses)}`);
  if (c.numClasses > 0 && !(Number.isInteger(c.cmapDim) && c.cmapDim > 0)) throw new Error(`${where}: cmapDim must be a positive integer, got ${JSON.stringify(c.cmapDim)}`);
}

/**
 * Creates the discriminator's parameters under `prefix`: `fromrgb`, per resolution R…8
 * `b{res}.{conv0, conv1, skip}`, and the 4×4 epilogue `b4.{conv, fc, out}` (+ `b4.cmap` with classes).
 */
export function initStyleGan2Discriminator(c: StyleGan2DiscriminatorConfig, init: Init, prefix: string, params: Params = {}): Params {
  validateStyleGan2Discriminator(c);
  const layer = (name: string, shape: number[], bias = true) => {
    addNormal(params, `${prefix}.${name}.weight`, shape, 1, init);
    if (bias) addZeros(params, `${prefix}.${name}.bias`, [shape[shape.length - 1]!]);
  };
  const res = levels(c.resolution).reverse(); // R, …, 8, 4
  layer('fromrgb', [1, 1, c.channels, c.channelsAt[0]!]);
  for (let i = 0; i < res.length - 1; i++) {
    const [ci, co] = [c.channelsAt[i]!, c.channelsAt[i + 1]!];
    layer(`b${res[i]}.conv0`, [3, 3, ci, ci]);
    layer(`b${res[i]}.conv1`, [3, 3, ci, co]);
    layer(`b${res[i]}.skip`, [1, 1, ci, co], false);
  }
  const c4 = c.channelsAt[res.length - 1]!;
  layer('b4.conv', [3, 3, c4 + 1, c4]);
  layer('b4.fc', [c4 * 16, c4]);
  layer('b4.out', [c4, c.numClasses > 0 ? c.cmapDim : 1]);
  if (c.numClasses > 0) addNormal(params, `${prefix}.b4.cmap.weight`, [c.numClasses, c.cmapDim], 1, init);
  return params;
}

/** Minibatch standard deviation (one feature), appended as a channel: x [N, H, W, C] → [N, H, W, C + 1]. */
export function minibatchStd(x: tf.Tensor4D, groupSize: number): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const g = Math.min(groupSize, n);
  if (n % g !== 0) throw new Error(`minibatchStd: the batch (${n}) must be a multiple of the group size ${g}`);
  const y = x.reshape([g, n / g, h, w, c]);
  const centred = tf.sub(y, tf.mean(y, 0, true));
  const std = tf.sqrt(tf.add(tf.mean(tf.square(centred), 0), 1e-8)); // [n/g, h, w, c]
  const s = tf.mean(std.reshape([n / g, h * w * c]), 1); // [n/g]
  // sample i belongs to group i mod n/g; broadcast its value over the map (no rank-5 tile: no gradient on wasm)
  const perSample = tf.tile(s.reshape([1, n / g]), [g, 1]).reshape([n, 1, 1, 1]);
  const feat = tf.mul(tf.ones([n, h, w, 1]), perSample);
  return tf.concat([x, feat], 3) as tf.Tensor4D;
}

/** The discriminator over existing parameters: x [N, R, R, C] (label one-hot [N, K]) ↦ logits [N]. */
export function stylegan2Discriminator(c: StyleGan2DiscriminatorConfig, params: Params, prefix: string): (x: tf.Tensor4D, label?: tf.Tensor2D) => tf.Tensor1D {
  validateStyleGan2Discriminator(c);
  const p = <T extends tf.Tensor>(name: string) => param<T>(params, `${prefix}.${name}`);
  const res = levels(c.resolution).reverse();
  p('fromrgb.weight');
  const conv = (x: tf.Tensor4D, name: string, bias = true) => {
    const wt = p<tf.Tensor4D>(`${name}.weight`);
    const [k, , ci] = wt.shape;
    const y = conv2d(x, tf.mul(wt, 1 / Math.sqrt(k * k * ci)) as tf.Tensor4D);
    return bias ? (tf.add(y, p(`${name}.bias`)) as tf.Tensor4D) : y;
  };
  const fc = (x: tf.Tensor2D, name: string) => {
    const wt = p<tf.Tensor2D>(`${name}.weight`);
    return tf.add(matmul(x, tf.mul(wt, 1 / Math.sqrt(wt.shape[0])) as tf.Tensor2D), p(`${name}.bias`)) as tf.Tensor2D;
  };
  return (x, label) =>
    tf.tidy(() => {
      const [n, hh, ww, cc] = x.shape;
      if (x.rank !== 4 || hh !== c.resolution || ww !== c.resolution || cc !== c.channels) {
        throw new Error(`stylegan2 discriminator: expected x of shape [N, ${c.resolution}, ${c.resolution}, ${c.channels}], got [${x.shape}]`);
      }
      if (c.numClasses > 0 && label === undefined) throw new Error(`stylegan2 discriminator: it is conditional (${c.numClasses} classes): pass a one-hot label`);
      let h = lrelu(conv(x, 'fromrgb')) as tf.Tensor4D;
      for (let i = 0; i < res.length - 1; i++) {
        const name = `b${res[i]}`;
        const skip = conv(downsample2x(h), `${name}.skip`, false);
        let y = lrelu(conv(h, `${name}.conv0`)) as tf.Tensor4D;
        y = lrelu(conv(downsample2x(y), `${name}.conv1`)) as tf.Tensor4D;
        h = tf.mul(tf.add(y, skip), Math.SQRT1_2) as tf.Tensor4D;
      }
      h = lrelu(conv(minibatchStd(h, c.mbstdGroup), 'b4.conv')) as tf.Tensor4D;
      const f = lrelu(fc(h.reshape([n, -1]) as tf.Tensor2D, 'b4.fc')) as tf.Tensor2D;
      const out = fc(f, 'b4.out');
      if (c.numClasses === 0) return out.reshape([n]) as tf.Tensor1D;
      // projection: ⟨out, embed(label)⟩ / √cmapDim
      const cmap = matmul(label!, p<tf.Tensor2D>('b4.cmap.weight'));
      return tf.div(tf.sum(tf.mul(out, cmap), 1), Math.sqrt(c.cmapDim)) as tf.Tensor1D;
    });
}

/** A StyleGAN2 discriminator: plain data (config, params) and its logit function. */
export interface StyleGan2Discriminator {
  readonly config: StyleGan2DiscriminatorConfig;
  readonly params: Params;
  logits(x: tf.Tensor, label?: tf.Tensor2D): tf.Tensor1D;
}

/** A discriminator initialised from `init` (an Rng, or null for zeros before loading weights); params `disc.…`. */
export function createStyleGan2Discriminator(config: StyleGan2DiscriminatorConfig, init: Init): StyleGan2Discriminator {
  return discriminatorFromParams(config, initStyleGan2Discriminator(config, init, DISC));
}

/** A discriminator around existing parameters (named `disc.…`). */
export function discriminatorFromParams(config: StyleGan2DiscriminatorConfig, params: Params): StyleGan2Discriminator {
  const d = stylegan2Discriminator(config, params, DISC);
  return { config, params, logits: (x, label) => d(x as tf.Tensor4D, label) };
}

/** Name prefix of a discriminator's params. */
const DISC = 'disc';
