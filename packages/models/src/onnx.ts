import * as tf from '@tensorflow/tfjs';

import { type MlpGeneratorConfig, type MlpScoreConfig, type TweedieGeneratorConfig, type UnetConfig, validateGeneratorConfig } from './config.js';
import { noiseFeatures } from './mlp.js';
import { DENOISER, GEN, type GeneratorModel, NET } from './model.js';
import { type OnnxAttribute, type OnnxNode, type OnnxTensor, type OnnxValueInfo, encodeOnnxModel } from './onnx-proto.js';
import { type Params, param } from './params.js';
import { describeModel } from './presets.js';
import { type BlockSpec, SKIP_SCALE, groupsFor, unetOptions, unetPlan } from './unet.js';

/**
 * ONNX export of one-step generators: the graph of `generate(z, label?)` written as standard
 * `ai.onnx` operators, with the weights as initializers, so that a generator runs in
 * onnxruntime (web, node, Python) or any other ONNX runtime without TensorFlow.js.
 */

/** The ONNX operator set the export uses (GroupNormalization would need 18; see {@link exportOnnx}). */
export const ONNX_OPSET = 17;
/** The ONNX IR version of the exported ModelProto (the one that goes with opset 17). */
export const ONNX_IR_VERSION = 8;

/** Names of the graph's inputs and output. */
const Z = 'z';
const LABEL = 'label';
const SAMPLE = 'sample';
/** GroupNorm's ε, as `groupNorm` of ops.ts. */
const GROUP_NORM_EPS = 1e-5;

export interface ExportOnnxOptions {
  /** The batch dimension of the inputs and the output: a symbolic name (default 'N') or a fixed size. */
  batch?: string | number;
  /**
   * Extra entries of the model's `metadata_props` (e.g. the file the generator came from). The
   * exporter's own keys (`config`, `layout`, `latent_shape`, …) cannot be replaced.
   */
  metadata?: Record<string, string>;
}

/**
 * Writes a one-step generator as an ONNX model (the bytes of a ModelProto), opset 17, IR version
 * 8, standard `ai.onnx` operators only.
 *
 * - **Inputs**: `z` [N, ...latentShape], float32, standard normal; for a conditional generator
 *   also `label` [N, numClasses], float32 one-hot (an all-zero row adds no class embedding, as
 *   `generate(z)` without a label). N is symbolic ('N') unless `options.batch` fixes it.
 * - **Output**: `sample` [N, ...outputShape], float32: `generate(z, label)` of TensorFlow.js.
 *   Images are in [-1, 1] nominally and are **not clipped** (clip before display, as
 *   `distill sample` does); points are on the data's own scale.
 * - **Layout**: NHWC, as TensorFlow.js: images are [N, H, W, C] in and out. ONNX's Conv is NCHW,
 *   so the graph transposes z to NCHW once, runs the UNet in NCHW and transposes the sample back.
 *   Point generators take and give [N, D].
 *
 * Supported: `mlp-generator`, and `tweedie` around an EDM denoiser whose network is `mlp` or
 * `unet`. The Tweedie generator is D(σ*·z; σ*) at one fixed σ*, so EDM's c_skip, c_out, c_in and
 * c_noise are constants, folded into the graph (the noise embedding's Fourier features become a
 * constant vector). Dropout is off, as in `generate`. GroupNorm is written as Reshape +
 * InstanceNormalization + Mul/Add (ONNX's GroupNormalization needs opset 18), SiLU as
 * x·Sigmoid(x), nearest 2× upsampling as Resize, 2× downsampling as AveragePool. StyleGAN2
 * generators are refused.
 *
 * `metadata_props` hold `config` (the generator's JSON config), `description`, `layout`,
 * `latent_shape`, `latent_distribution`, `output_shape`, `value_range`, `num_classes` (and
 * `label`, `sigma_star` where they apply), plus `options.metadata`.
 */
export function exportOnnx(model: GeneratorModel, options: ExportOnnxOptions = {}): Uint8Array {
  const config = model.config;
  validateGeneratorConfig(config, 'exportOnnx: generator config');
  if (config.kind === 'stylegan2') {
    throw new Error(
      "exportOnnx: cannot export a 'stylegan2' generator to ONNX; supported: 'mlp-generator', and 'tweedie' around an EDM denoiser with an 'mlp' or 'unet' network",
    );
  }
  const batch = options.batch ?? 'N';
  if (typeof batch === 'number' ? !(Number.isInteger(batch) && batch > 0) : !/^[A-Za-z_][A-Za-z0-9_]*$/.test(batch)) {
    throw new Error(`exportOnnx: batch must be a positive integer or a symbolic name such as 'N', got ${JSON.stringify(batch)}`);
  }

  const g = new GraphBuilder(model.params);
  const label = model.numClasses > 0 ? LABEL : null;
  if (config.kind === 'mlp-generator') mlpGeneratorGraph(g, config, label);
  else tweedieGraph(g, config, label);

  const image = model.outputShape.length === 3;
  const metadata: Record<string, string> = {
    config: JSON.stringify(config),
    description: describeModel(config),
    layout: image ? 'NHWC' : 'ND',
    latent_shape: JSON.stringify(model.latentShape),
    latent_distribution: 'standard normal, N(0, I)',
    output_shape: JSON.stringify(model.outputShape),
    value_range: image ? '[-1, 1], not clipped' : "unbounded (the data's own scale)",
    num_classes: String(model.numClasses),
  };
  if (label !== null) metadata.label = `one-hot [N, ${model.numClasses}], float32; an all-zero row adds no class embedding`;
  if (config.kind === 'tweedie') metadata.sigma_star = String(config.sigmaStar);
  for (const [k, v] of Object.entries(options.metadata ?? {})) {
    if (k in metadata) throw new Error(`exportOnnx: metadata key '${k}' is reserved`);
    metadata[k] = v;
  }

  const inputs: OnnxValueInfo[] = [{ name: Z, dims: [batch, ...model.latentShape] }];
  if (label !== null) inputs.push({ name: LABEL, dims: [batch, model.numClasses] });
  const layout = image ? 'NHWC images' : 'points';
  return encodeOnnxModel({
    irVersion: ONNX_IR_VERSION,
    opsetVersion: ONNX_OPSET,
    producerName: '@diff-instruct/models',
    docString: `${metadata.description}. Inputs: z [N, ${model.latentShape.join(', ')}] standard normal${label !== null ? `, label [N, ${model.numClasses}] one-hot` : ''}; output: sample [N, ${model.outputShape.join(', ')}] (${layout}).`,
    graphName: 'generator',
    nodes: g.nodes,
    initializers: g.initializers,
    inputs,
    outputs: [{ name: SAMPLE, dims: [batch, ...model.outputShape] }],
    metadata,
  });
}

/** The nodes and initializers of one graph, with unique names. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  /** A prefix of the names of new nodes and values, e.g. the block being written. */
  scope = '';
  private readonly names = new Set<string>([Z, LABEL, SAMPLE]);
  private readonly cache = new Map<string, string>();

  constructor(private readonly params: Params) {}

  private unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** A float32 initializer; `name` is made unique. */
  constant(name: string, data: Float32Array, dims: readonly number[]): string {
    const unique = this.unique(name);
    this.initializers.push({ name: unique, dims, data });
    return unique;
  }

  /** A float32 scalar constant, shared between the nodes that use the same value. */
  scalar(value: number): string {
    const key = `f32:${Math.fround(value)}`;
    let name = this.cache.get(key);
    if (name === undefined) {
      name = this.constant(`const_${Math.fround(value)}`, Float32Array.of(value), []);
      this.cache.set(key, name);
    }
    return name;
  }

  /** An int64 vector constant (a shape, scales of Resize take floats), shared between its users. */
  int64s(values: readonly number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.cache.get(key);
    if (name === undefined) {
      name = this.unique(`shape_${values.map((v) => (v < 0 ? `m${-v}` : String(v))).join('_')}`);
      this.initializers.push({ name, dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) });
      this.cache.set(key, name);
    }
    return name;
  }

  /** A float32 vector constant shared between its users (e.g. InstanceNormalization's ones and zeros). */
  shared(key: string, data: Float32Array, dims: readonly number[]): string {
    let name = this.cache.get(key);
    if (name === undefined) {
      name = this.constant(key, data, dims);
      this.cache.set(key, name);
    }
    return name;
  }

  /** The values and shape of a model parameter (float32). */
  value(name: string): { data: Float32Array; shape: number[] } {
    const v = param<tf.Variable>(this.params, name);
    return { data: v.dataSync() as Float32Array, shape: v.shape.slice() };
  }

  /** A model parameter as an initializer of the same name, its values as they are, with `dims` (default: its own shape). */
  weight(name: string, dims?: readonly number[]): string {
    const { data, shape } = this.value(name);
    return this.constant(name, data, dims ?? shape);
  }

  /** Adds a node; returns the name of its (single) output, `out` when given. */
  op(opType: string, inputs: readonly string[], attributes: readonly OnnxAttribute[] = [], out?: string): string {
    const output = out ?? this.unique(`${this.scope}${this.scope === '' ? '' : '/'}${opType}`);
    this.nodes.push({ opType, name: this.unique(`${output}:node`), inputs, outputs: [output], attributes });
    return output;
  }
}

// ---------------------------------------------------------------------------------------------
// Layers, written as mlp.ts, unet.ts and ops.ts compute them.
// ---------------------------------------------------------------------------------------------

/** SiLU, x·sigmoid(x). */
function silu(g: GraphBuilder, x: string): string {
  return g.op('Mul', [x, g.op('Sigmoid', [x])]);
}

/** x·W + b, with W [in, out] and b [out] the parameters `${name}.weight` and `${name}.bias`. */
function dense(g: GraphBuilder, x: string, name: string, out?: string): string {
  return g.op('Add', [g.op('MatMul', [x, g.weight(`${name}.weight`)]), g.weight(`${name}.bias`)], [], out);
}

/** A feature map in NCHW: its value's name, channels and height (= width). */
interface Feature {
  name: string;
  c: number;
  res: number;
}

/**
 * Conv2d with 'same' padding, stride 1, and bias, as `conv2dBias` of ops.ts: the kernel
 * `${name}.weight` [kh, kw, in, out] (tfjs HWIO) becomes ONNX's [out, in, kh, kw].
 */
function conv(g: GraphBuilder, x: Feature, name: string): Feature {
  const { data, shape } = g.value(`${name}.weight`);
  const [kh, kw, ci, co] = shape as [number, number, number, number];
  if (ci !== x.c) throw new Error(`exportOnnx: ${name} expects ${ci} input channels, the graph has ${x.c}`);
  const oihw = new Float32Array(data.length);
  for (let y = 0; y < kh; y++)
    for (let xx = 0; xx < kw; xx++)
      for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) oihw[((o * ci + i) * kh + y) * kw + xx] = data[((y * kw + xx) * ci + i) * co + o]!;
  const w = g.constant(`${name}.weight`, oihw, [co, ci, kh, kw]);
  // 'same' at stride 1: k − 1 padding pixels, the odd one at the bottom/right (as TensorFlow)
  const [pt, pl] = [Math.floor((kh - 1) / 2), Math.floor((kw - 1) / 2)];
  const attrs: OnnxAttribute[] = [
    { name: 'kernel_shape', type: 'ints', value: [kh, kw] },
    { name: 'pads', type: 'ints', value: [pt, pl, kh - 1 - pt, kw - 1 - pl] },
    { name: 'strides', type: 'ints', value: [1, 1] },
  ];
  return { name: g.op('Conv', [x.name, w, g.weight(`${name}.bias`)], attrs), c: co, res: x.res };
}

/**
 * GroupNorm's normalisation without its affine: x [N, C, H, W] as [N, G, C/G·H·W], normalised per
 * (sample, group) by InstanceNormalization (scale 1, bias 0), back to [N, C, H, W]. Channels
 * g·C/G … (g+1)·C/G − 1 form group g, as in `groupNorm` of ops.ts.
 */
function normalise(g: GraphBuilder, x: Feature): string {
  const groups = groupsFor(x.c);
  const grouped = g.op('Reshape', [x.name, g.int64s([0, groups, -1])]);
  const ones = g.shared(`instance_norm.ones_${groups}`, new Float32Array(groups).fill(1), [groups]);
  const zeros = g.shared(`instance_norm.zeros_${groups}`, new Float32Array(groups), [groups]);
  const n = g.op('InstanceNormalization', [grouped, ones, zeros], [{ name: 'epsilon', type: 'float', value: GROUP_NORM_EPS }]);
  return g.op('Reshape', [n, g.int64s([0, x.c, x.res, x.res])]);
}

/** GroupNorm with the parameters `${name}.weight` and `${name}.bias` [C], then SiLU when `act`. */
function groupNorm(g: GraphBuilder, x: Feature, name: string, act: boolean): Feature {
  const y = g.op('Add', [g.op('Mul', [normalise(g, x), g.weight(`${name}.weight`, [x.c, 1, 1])]), g.weight(`${name}.bias`, [x.c, 1, 1])]);
  return { ...x, name: act ? silu(g, y) : y };
}

/** 2× nearest-neighbour upsampling (`upsample2x`): output pixel (i, j) is input pixel (⌊i/2⌋, ⌊j/2⌋). */
function upsample(g: GraphBuilder, x: Feature): Feature {
  const scales = g.shared('resize.scales_2x', Float32Array.of(1, 1, 2, 2), [4]);
  const attrs: OnnxAttribute[] = [
    { name: 'mode', type: 'string', value: 'nearest' },
    { name: 'coordinate_transformation_mode', type: 'string', value: 'asymmetric' },
    { name: 'nearest_mode', type: 'string', value: 'floor' },
  ];
  return { ...x, name: g.op('Resize', [x.name, '', scales], attrs), res: 2 * x.res };
}

/** 2×2 average pooling (`downsample2x`). */
function downsample(g: GraphBuilder, x: Feature): Feature {
  const attrs: OnnxAttribute[] = [
    { name: 'kernel_shape', type: 'ints', value: [2, 2] },
    { name: 'strides', type: 'ints', value: [2, 2] },
  ];
  return { ...x, name: g.op('AveragePool', [x.name], attrs), res: x.res / 2 };
}

/** Columns [from, to) of a row-major [rows, cols] matrix (or the range of a vector: rows = 1). */
function columns(data: Float32Array, rows: number, cols: number, from: number, to: number): Float32Array {
  const out = new Float32Array(rows * (to - from));
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * cols + from, r * cols + to), r * (to - from));
  return out;
}

/**
 * The embedding of the noise level (and class): emb = SiLU(W₁·SiLU(W₀·(Fourier(c_noise) + label·W_label))).
 * c_noise = ln(σ*)/4 is a constant, so its Fourier features are a constant [1, E], computed by
 * `noiseFeatures` itself. Unconditional: emb is [1, E] (broadcast over the batch); else [N, E].
 */
function embedding(g: GraphBuilder, net: MlpScoreConfig | UnetConfig, prefix: string, sigma: number, label: string | null): string {
  const fourier = tf.tidy(() => noiseFeatures(tf.div(tf.log(tf.fill([1], sigma)), 4) as tf.Tensor1D, net.embedDim));
  const data = fourier.dataSync() as Float32Array;
  fourier.dispose();
  let emb = g.constant(`${prefix}.noise_features`, data, [1, net.embedDim]);
  if (label !== null) emb = g.op('Add', [emb, g.op('MatMul', [label, g.weight(`${prefix}.map_label.weight`)])]);
  emb = silu(g, dense(g, emb, `${prefix}.map_layer0`));
  return silu(g, dense(g, emb, `${prefix}.map_layer1`));
}

/** The MLP score network F(x_in, c_noise, label) of mlp.ts on x_in [N, dim]. */
function mlpScoreGraph(g: GraphBuilder, net: MlpScoreConfig, prefix: string, xIn: string, sigma: number, label: string | null): string {
  const emb = embedding(g, net, prefix, sigma, label);
  let h = xIn;
  net.hidden.forEach((_, i) => {
    const pre = g.op('Add', [dense(g, h, `${prefix}.layers.${i}`), g.op('MatMul', [emb, g.weight(`${prefix}.layers.${i}.emb.weight`)])]);
    h = silu(g, pre);
  });
  return dense(g, h, `${prefix}.out`);
}

/**
 * A UNet block (`block` of unet.ts): h = conv0(resample(SiLU(GN₀(x)))), then the adaptive
 * GroupNorm GN₁(h)·(1 + scale) + shift with (scale, shift) = affine(emb), SiLU, conv1, the skip,
 * ×√½, and attention where the block has it.
 */
function unetBlock(g: GraphBuilder, x: Feature, emb: string, b: BlockSpec, prefix: string): Feature {
  const name = `${prefix}.${b.name}`;
  g.scope = name;
  const resample = (t: Feature) => (b.resample === 'up' ? upsample(g, t) : b.resample === 'down' ? downsample(g, t) : t);
  let h = conv(g, resample(groupNorm(g, x, `${name}.norm0`, true)), `${name}.conv0`);
  // (scale, shift) = emb·W + b split in two halves of the output: W's columns split here
  const c = b.cout;
  const { data: w, shape } = g.value(`${name}.affine.weight`);
  const { data: bias } = g.value(`${name}.affine.bias`);
  const e = shape[0]!;
  const half = (from: number, part: string) => {
    const wPart = g.constant(`${name}.affine.${part}.weight`, columns(w, e, 2 * c, from, from + c), [e, c]);
    const bPart = g.constant(`${name}.affine.${part}.bias`, bias.slice(from, from + c), [c]);
    return g.op('Add', [g.op('MatMul', [emb, wPart]), bPart]);
  };
  const gain = g.op('Add', [half(0, 'scale'), g.scalar(1)]); // [N or 1, C]
  const shift = half(c, 'shift');
  const perSample = g.int64s([-1, c, 1, 1]);
  const gamma = g.op('Reshape', [g.op('Mul', [g.weight(`${name}.norm1.weight`), gain]), perSample]);
  const beta = g.op('Reshape', [g.op('Add', [g.op('Mul', [g.weight(`${name}.norm1.bias`), gain]), shift]), perSample]);
  h = { ...h, name: silu(g, g.op('Add', [g.op('Mul', [normalise(g, h), gamma]), beta])) };
  h = conv(g, h, `${name}.conv1`); // dropout: off at inference
  const skip = b.cin !== b.cout ? conv(g, resample(x), `${name}.skip`) : resample(x);
  const out: Feature = { ...h, name: g.op('Mul', [g.op('Add', [h.name, skip.name]), g.scalar(SKIP_SCALE)]) };
  const result = b.attn ? attention(g, out, name) : out;
  g.scope = '';
  return result;
}

/**
 * Self-attention (`attention` of unet.ts), one head: q, k, v = 1×1 convs of GN₂(x) (the qkv conv's
 * output channels split in three), softmax(qᵀk/√C)·v, proj, + x, ×√½. In NCHW, q reshaped to
 * [N, C, HW] is qᵀ, so the logits are MatMul(Transpose(qᵀ), kᵀ) and the output's transpose is
 * MatMul(vᵀ, Transpose(weights)).
 */
function attention(g: GraphBuilder, x: Feature, name: string): Feature {
  const { c, res } = x;
  const t = groupNorm(g, x, `${name}.norm2`, false);
  const { data: w } = g.value(`${name}.qkv.weight`); // [1, 1, C, 3C]
  const { data: bias } = g.value(`${name}.qkv.bias`);
  const tokens = g.int64s([0, c, res * res]);
  const part = (i: number, which: string) => {
    const oihw = new Float32Array(c * c);
    for (let ci = 0; ci < c; ci++) for (let o = 0; o < c; o++) oihw[o * c + ci] = w[ci * 3 * c + i * c + o]!;
    const wPart = g.constant(`${name}.qkv.${which}.weight`, oihw, [c, c, 1, 1]);
    const bPart = g.constant(`${name}.qkv.${which}.bias`, bias.slice(i * c, (i + 1) * c), [c]);
    return g.op('Reshape', [g.op('Conv', [t.name, wPart, bPart], [{ name: 'kernel_shape', type: 'ints', value: [1, 1] }]), tokens]); // [N, C, HW]
  };
  const [qT, kT, vT] = [part(0, 'q'), part(1, 'k'), part(2, 'v')];
  const swap: OnnxAttribute[] = [{ name: 'perm', type: 'ints', value: [0, 2, 1] }];
  const logits = g.op('Div', [g.op('MatMul', [g.op('Transpose', [qT], swap), kT]), g.scalar(Math.sqrt(c))]); // [N, query, key]
  const weights = g.op('Softmax', [logits], [{ name: 'axis', type: 'int', value: -1 }]);
  const aT = g.op('MatMul', [vT, g.op('Transpose', [weights], swap)]); // [N, C, query]
  const a: Feature = { name: g.op('Reshape', [aT, g.int64s([0, c, res, res])]), c, res };
  return { ...x, name: g.op('Mul', [g.op('Add', [conv(g, a, `${name}.proj`).name, x.name]), g.scalar(SKIP_SCALE)]) };
}

/** The UNet F(x_in, c_noise, label) of unet.ts on x_in [N, channels, res, res] (NCHW); returns [N, channels, res, res]. */
function unetGraph(g: GraphBuilder, net: UnetConfig, prefix: string, xIn: string, sigma: number, label: string | null): string {
  // the graph below is today's UNet; the options that imported EDM networks set are not written yet
  const defaults = unetOptions({ ...net, blockModulation: undefined, resampleSkipConv: undefined, decoderAttn: undefined, noiseEmbedding: undefined, noiseDim: undefined, groupNormEps: undefined, labelBias: undefined, labelScale: undefined });
  const options = unetOptions(net);
  const changed = (Object.keys(options) as (keyof typeof options)[]).filter((k) => options[k] !== defaults[k]);
  if (changed.length > 0) {
    throw new Error(
      `exportOnnx: this UNet sets ${changed.map((k) => `${k} ${JSON.stringify(options[k])}`).join(', ')} (an imported EDM network's options), which the ONNX export does not write yet; export a network built with the default options`,
    );
  }
  const { encoder, decoder } = unetPlan(net);
  const r = net.resolution;
  const emb = embedding(g, net, prefix, sigma, label);
  const skips: Feature[] = [conv(g, { name: xIn, c: net.channels, res: r }, `${prefix}.enc.${r}x${r}_conv`)];
  for (const b of encoder) skips.push(unetBlock(g, skips[skips.length - 1]!, emb, b, prefix));
  let h = skips[skips.length - 1]!;
  for (const b of decoder) {
    if (b.takesSkip) {
      const s = skips.pop()!;
      h = { name: g.op('Concat', [h.name, s.name], [{ name: 'axis', type: 'int', value: 1 }]), c: h.c + s.c, res: h.res };
    }
    h = unetBlock(g, h, emb, b, prefix);
  }
  return conv(g, groupNorm(g, h, `${prefix}.dec.out_norm`, true), `${prefix}.dec.out_conv`).name;
}

/**
 * Eq. (B.3): sample = D(σ*·z; σ*) = c_skip·σ*·z + c_out·F(c_in·σ*·z; c_noise), EDM's
 * preconditioning (precond.ts) at the one noise level σ*, its coefficients folded into constants.
 */
function tweedieGraph(g: GraphBuilder, config: TweedieGeneratorConfig, label: string | null): void {
  const sigma = config.sigmaStar;
  const sd = config.denoiser.sigmaData;
  const s2 = sigma * sigma + sd * sd;
  const c_skip = (sd * sd) / s2; // σ_d² / (σ² + σ_d²)
  const c_out = (sigma * sd) / Math.sqrt(s2); // σ·σ_d / √(σ² + σ_d²)
  const c_in = 1 / Math.sqrt(s2); // 1 / √(σ² + σ_d²)
  const net = config.denoiser.net;
  const prefix = `${DENOISER}.${NET}`;
  if (net.kind === 'mlp') {
    const F = mlpScoreGraph(g, net, prefix, g.op('Mul', [Z, g.scalar(c_in * sigma)]), sigma, label);
    g.op('Add', [g.op('Mul', [Z, g.scalar(c_skip * sigma)]), g.op('Mul', [F, g.scalar(c_out)])], [], SAMPLE);
    return;
  }
  // NHWC in and out; NCHW inside, for Conv
  const zNchw = g.op('Transpose', [Z], [{ name: 'perm', type: 'ints', value: [0, 3, 1, 2] }]);
  const F = unetGraph(g, net, prefix, g.op('Mul', [zNchw, g.scalar(c_in * sigma)]), sigma, label);
  const fNhwc = g.op('Transpose', [F], [{ name: 'perm', type: 'ints', value: [0, 2, 3, 1] }]);
  g.op('Add', [g.op('Mul', [Z, g.scalar(c_skip * sigma)]), g.op('Mul', [fNhwc, g.scalar(c_out)])], [], SAMPLE);
}

/** The MLP generator of mlp.ts: h ← SiLU(h·W + b + label·W_label), then a linear output layer. */
function mlpGeneratorGraph(g: GraphBuilder, config: MlpGeneratorConfig, label: string | null): void {
  let h = Z;
  config.hidden.forEach((_, i) => {
    let pre = dense(g, h, `${GEN}.layers.${i}`);
    if (label !== null) pre = g.op('Add', [pre, g.op('MatMul', [label, g.weight(`${GEN}.layers.${i}.label.weight`)])]);
    h = silu(g, pre);
  });
  dense(g, h, `${GEN}.out`, SAMPLE);
}
