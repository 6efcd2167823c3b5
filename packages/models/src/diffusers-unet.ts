import * as tf from '@tensorflow/tfjs';

import type { Denoiser } from '@diff-instruct/sde';

import { batchMatmul, conv2dBias, dense, groupNorm, groupNormSilu, silu, softmax, upsample2x } from './ops.js';
import type { Params } from './params.js';
import { type SafetensorsTensor, decodeSafetensors } from './safetensors.js';
import { decodeShardedSafetensors } from './sharded.js';

/**
 * diffusers' `UNet2DModel` (DDPM-style: DownBlock2D / AttnDownBlock2D, UpBlock2D / AttnUpBlock2D,
 * UNetMidBlock2D, 'positional' time embedding, resnet_time_scale_shift 'default', conv down/up
 * sampling, unconditional) as an NHWC TensorFlow.js network, its weights read from diffusers'
 * `state_dict` (safetensors, single file or sharded; legacy attention keys accepted), and its
 * ε-prediction turned into a VE-space denoiser through the DDPM schedule.
 *
 * The PyTorch reference is `bench/reference/diffusers_unet2d.py` (diffusers' key names and maths).
 * Parameters keep diffusers' key names (legacy attention keys renamed to `to_q`, `to_k`, `to_v`,
 * `to_out.0`), with Linear weights stored [in, out] and Conv2d weights [kh, kw, in, out].
 */

const ERR = 'diffusers UNet2DModel';

/** The fields of a diffusers `UNet2DModel` `config.json` (keys starting with '_' are ignored). */
export interface DiffusersUnetConfig {
  sample_size?: number | number[] | null;
  in_channels?: number;
  out_channels?: number;
  center_input_sample?: boolean;
  time_embedding_type?: string;
  time_embedding_dim?: number | null;
  freq_shift?: number;
  flip_sin_to_cos?: boolean;
  down_block_types?: string[];
  mid_block_type?: string | null;
  up_block_types?: string[];
  block_out_channels?: number[];
  layers_per_block?: number;
  mid_block_scale_factor?: number;
  downsample_padding?: number;
  downsample_type?: string;
  upsample_type?: string;
  dropout?: number;
  act_fn?: string;
  attention_head_dim?: number | null;
  norm_num_groups?: number | null;
  attn_norm_num_groups?: number | null;
  norm_eps?: number;
  resnet_time_scale_shift?: string;
  add_attention?: boolean;
  class_embed_type?: string | null;
  num_class_embeds?: number | null;
  num_train_timesteps?: number | null;
  [key: `_${string}`]: unknown;
}

/** A validated config with diffusers' `__init__` defaults filled in (block types without a 'UNetRes' prefix). */
export interface ResolvedDiffusersUnetConfig {
  inChannels: number;
  outChannels: number;
  centerInputSample: boolean;
  flipSinToCos: boolean;
  freqShift: number;
  downBlockTypes: ('DownBlock2D' | 'AttnDownBlock2D')[];
  upBlockTypes: ('UpBlock2D' | 'AttnUpBlock2D')[];
  midBlock: boolean;
  addAttention: boolean;
  blockOutChannels: number[];
  layersPerBlock: number;
  midBlockScaleFactor: number;
  downsamplePadding: number;
  /** Channels per attention head; null: one head per attention. */
  attentionHeadDim: number | null;
  normNumGroups: number;
  /** Groups of the mid block's attention GroupNorm. */
  attnNormNumGroups: number;
  normEps: number;
  timeEmbedDim: number;
}

/** diffusers' UNet2DModel.__init__ defaults (unet_2d.py). */
const DEFAULTS = {
  sample_size: null,
  in_channels: 3,
  out_channels: 3,
  center_input_sample: false,
  time_embedding_type: 'positional',
  time_embedding_dim: null,
  freq_shift: 0,
  flip_sin_to_cos: true,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D'],
  mid_block_type: 'UNetMidBlock2D',
  up_block_types: ['AttnUpBlock2D', 'AttnUpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
  block_out_channels: [224, 448, 672, 896],
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  downsample_padding: 1,
  downsample_type: 'conv',
  upsample_type: 'conv',
  dropout: 0,
  act_fn: 'silu',
  attention_head_dim: 8,
  norm_num_groups: 32,
  attn_norm_num_groups: null,
  norm_eps: 1e-5,
  resnet_time_scale_shift: 'default',
  add_attention: true,
  class_embed_type: null,
  num_class_embeds: null,
  num_train_timesteps: null,
} as const;

function parseJson(what: string, v: string | object): Record<string, unknown> {
  let o: unknown = v;
  if (typeof v === 'string') {
    try {
      o = JSON.parse(v);
    } catch (e) {
      throw new Error(`${ERR}: ${what} is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error(`${ERR}: ${what} is not a JSON object`);
  return o as Record<string, unknown>;
}

const isPosInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;

/**
 * Validates a `config.json` (text or parsed) and fills in diffusers' defaults. Unsupported fields
 * and options are refused with a one-line error naming the field and what is supported.
 */
export function resolveDiffusersUnetConfig(config: string | object): ResolvedDiffusersUnetConfig {
  const raw = parseJson('config', config);
  const c: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith('_')) continue;
    if (!(k in DEFAULTS)) throw new Error(`${ERR}: unsupported config field '${k}' (supported: ${Object.keys(DEFAULTS).join(', ')})`);
    c[k] = v;
  }
  const bad = (field: string, supported: string): never => {
    throw new Error(`${ERR}: unsupported ${field} ${JSON.stringify(c[field])} (supported: ${supported})`);
  };
  if (c.time_embedding_type !== 'positional') bad('time_embedding_type', "'positional'");
  if (c.resnet_time_scale_shift !== 'default') bad('resnet_time_scale_shift', "'default'");
  if (c.act_fn !== 'silu' && c.act_fn !== 'swish') bad('act_fn', "'silu', 'swish'");
  if (c.class_embed_type !== null) bad('class_embed_type', 'null (unconditional models)');
  if (c.num_class_embeds !== null) bad('num_class_embeds', 'null (unconditional models)');
  if (c.downsample_type !== 'conv' && c.downsample_type !== null) bad('downsample_type', "'conv'");
  if (c.upsample_type !== 'conv' && c.upsample_type !== null) bad('upsample_type', "'conv'");
  if (c.mid_block_type !== 'UNetMidBlock2D' && c.mid_block_type !== null) bad('mid_block_type', "'UNetMidBlock2D', null");
  if (!isPosInt(c.norm_num_groups)) bad('norm_num_groups', 'a positive integer');
  if (c.attn_norm_num_groups !== null && !isPosInt(c.attn_norm_num_groups)) bad('attn_norm_num_groups', 'null or a positive integer');
  if (c.attention_head_dim !== null && !isPosInt(c.attention_head_dim)) bad('attention_head_dim', 'null or a positive integer');
  if (c.time_embedding_dim !== null && !isPosInt(c.time_embedding_dim)) bad('time_embedding_dim', 'null or a positive integer');
  for (const f of ['in_channels', 'out_channels', 'layers_per_block'] as const) if (!isPosInt(c[f])) bad(f, 'a positive integer');
  if (!(Number.isInteger(c.downsample_padding) && (c.downsample_padding as number) >= 0)) bad('downsample_padding', 'an integer ≥ 0');
  for (const f of ['freq_shift', 'norm_eps', 'mid_block_scale_factor'] as const) if (typeof c[f] !== 'number' || !Number.isFinite(c[f])) bad(f, 'a number');
  for (const f of ['center_input_sample', 'flip_sin_to_cos', 'add_attention'] as const) if (typeof c[f] !== 'boolean') bad(f, 'true, false');
  const boc = c.block_out_channels;
  if (!Array.isArray(boc) || boc.length === 0 || !boc.every(isPosInt)) bad('block_out_channels', 'a non-empty list of positive integers');
  const n = (boc as number[]).length;
  const strip = (t: unknown) => (typeof t === 'string' && t.startsWith('UNetRes') ? t.slice(7) : t);
  const down = c.down_block_types;
  const up = c.up_block_types;
  if (!Array.isArray(down) || down.length !== n) bad('down_block_types', `a list of ${n} block types, one per block_out_channels entry`);
  if (!Array.isArray(up) || up.length !== n) bad('up_block_types', `a list of ${n} block types, one per block_out_channels entry`);
  const downTypes = (down as unknown[]).map(strip);
  const upTypes = (up as unknown[]).map(strip);
  downTypes.forEach((t, i) => {
    if (t !== 'DownBlock2D' && t !== 'AttnDownBlock2D') {
      throw new Error(`${ERR}: unsupported down_block_types[${i}] ${JSON.stringify((down as unknown[])[i])} (supported: 'DownBlock2D', 'AttnDownBlock2D')`);
    }
  });
  upTypes.forEach((t, i) => {
    if (t !== 'UpBlock2D' && t !== 'AttnUpBlock2D') {
      throw new Error(`${ERR}: unsupported up_block_types[${i}] ${JSON.stringify((up as unknown[])[i])} (supported: 'UpBlock2D', 'AttnUpBlock2D')`);
    }
  });
  const groups = c.norm_num_groups as number;
  const c0 = (boc as number[])[0]!;
  if (c0 % 2 !== 0) bad('block_out_channels', 'an even first entry (the sinusoidal embedding has C0/2 frequencies)');
  if (c0 / 2 - (c.freq_shift as number) === 0) bad('freq_shift', `a value other than ${c0 / 2} (C0/2)`);
  for (const ch of boc as number[]) {
    if (ch % groups !== 0) throw new Error(`${ERR}: block_out_channels entry ${ch} is not divisible by norm_num_groups ${groups}`);
  }
  const hd = c.attention_head_dim as number | null;
  const attnAt = (ch: number) => {
    if (hd !== null && ch % hd !== 0) throw new Error(`${ERR}: attention_head_dim ${hd} does not divide the ${ch} channels of an attention`);
  };
  downTypes.forEach((t, i) => t === 'AttnDownBlock2D' && attnAt((boc as number[])[i]!));
  const rev = [...(boc as number[])].reverse();
  upTypes.forEach((t, i) => t === 'AttnUpBlock2D' && attnAt(rev[i]!));
  const midBlock = c.mid_block_type !== null;
  if (midBlock && c.add_attention) attnAt(rev[0]!);
  const attnGroups = (c.attn_norm_num_groups as number | null) ?? groups;
  if (midBlock && c.add_attention && rev[0]! % attnGroups !== 0) {
    throw new Error(`${ERR}: attn_norm_num_groups ${attnGroups} does not divide the mid block's ${rev[0]} channels`);
  }
  return {
    inChannels: c.in_channels as number,
    outChannels: c.out_channels as number,
    centerInputSample: c.center_input_sample as boolean,
    flipSinToCos: c.flip_sin_to_cos as boolean,
    freqShift: c.freq_shift as number,
    downBlockTypes: downTypes as ResolvedDiffusersUnetConfig['downBlockTypes'],
    upBlockTypes: upTypes as ResolvedDiffusersUnetConfig['upBlockTypes'],
    midBlock,
    addAttention: c.add_attention as boolean,
    blockOutChannels: [...(boc as number[])],
    layersPerBlock: c.layers_per_block as number,
    midBlockScaleFactor: c.mid_block_scale_factor as number,
    downsamplePadding: c.downsample_padding as number,
    attentionHeadDim: hd,
    normNumGroups: groups,
    attnNormNumGroups: attnGroups,
    normEps: c.norm_eps as number,
    timeEmbedDim: (c.time_embedding_dim as number | null) ?? c0 * 4,
  };
}

/** How a PyTorch tensor is laid out, and so how it is converted. */
/** How a diffusers tensor becomes ours: Linear [out, in] → [in, out], Conv2d [out, in, kh, kw] → [kh, kw, in, out], or as is. */
export type DiffusersLayout = 'linear' | 'conv' | 'vector';

/** One parameter the network expects: diffusers key, PyTorch shape, layout. */
export interface DiffusersUnetParamSpec {
  key: string;
  torchShape: number[];
  layout: DiffusersLayout;
}

/** Every parameter of the network that `config` describes, in diffusers' `state_dict` order. */
export function diffusersUnetParamSpecs(config: ResolvedDiffusersUnetConfig): DiffusersUnetParamSpec[] {
  const specs: DiffusersUnetParamSpec[] = [];
  const linear = (key: string, i: number, o: number) => {
    specs.push({ key: `${key}.weight`, torchShape: [o, i], layout: 'linear' }, { key: `${key}.bias`, torchShape: [o], layout: 'vector' });
  };
  const conv = (key: string, i: number, o: number, k: number) => {
    specs.push({ key: `${key}.weight`, torchShape: [o, i, k, k], layout: 'conv' }, { key: `${key}.bias`, torchShape: [o], layout: 'vector' });
  };
  const norm = (key: string, c: number) => {
    specs.push({ key: `${key}.weight`, torchShape: [c], layout: 'vector' }, { key: `${key}.bias`, torchShape: [c], layout: 'vector' });
  };
  const te = config.timeEmbedDim;
  const resnet = (key: string, i: number, o: number) => {
    norm(`${key}.norm1`, i);
    conv(`${key}.conv1`, i, o, 3);
    linear(`${key}.time_emb_proj`, te, o);
    norm(`${key}.norm2`, o);
    conv(`${key}.conv2`, o, o, 3);
    if (i !== o) conv(`${key}.conv_shortcut`, i, o, 1);
  };
  const attention = (key: string, c: number) => {
    norm(`${key}.group_norm`, c);
    for (const p of ['to_q', 'to_k', 'to_v', 'to_out.0']) linear(`${key}.${p}`, c, c);
  };
  const boc = config.blockOutChannels;
  const n = boc.length;
  const L = config.layersPerBlock;
  conv('conv_in', config.inChannels, boc[0]!, 3);
  linear('time_embedding.linear_1', boc[0]!, te);
  linear('time_embedding.linear_2', te, te);
  let out = boc[0]!;
  config.downBlockTypes.forEach((t, b) => {
    const inCh = out;
    out = boc[b]!;
    const attn = t === 'AttnDownBlock2D';
    // diffusers registers attentions before resnets in AttnDownBlock2D (state_dict order)
    if (attn) for (let j = 0; j < L; j++) attention(`down_blocks.${b}.attentions.${j}`, out);
    for (let j = 0; j < L; j++) resnet(`down_blocks.${b}.resnets.${j}`, j === 0 ? inCh : out, out);
    if (b !== n - 1) conv(`down_blocks.${b}.downsamplers.0.conv`, out, out, 3);
  });
  if (config.midBlock) {
    const c = boc[n - 1]!;
    if (config.addAttention) attention('mid_block.attentions.0', c);
    resnet('mid_block.resnets.0', c, c);
    resnet('mid_block.resnets.1', c, c);
  }
  const rev = [...boc].reverse();
  out = rev[0]!;
  config.upBlockTypes.forEach((t, b) => {
    const prev = out;
    out = rev[b]!;
    const inCh = rev[Math.min(b + 1, n - 1)]!;
    if (t === 'AttnUpBlock2D') for (let j = 0; j <= L; j++) attention(`up_blocks.${b}.attentions.${j}`, out);
    for (let j = 0; j <= L; j++) resnet(`up_blocks.${b}.resnets.${j}`, (j === 0 ? prev : out) + (j === L ? inCh : out), out);
    if (b !== n - 1) conv(`up_blocks.${b}.upsamplers.0.conv`, out, out, 3);
  });
  norm('conv_norm_out', boc[0]!);
  conv('conv_out', boc[0]!, config.outChannels, 3);
  return specs;
}

const LEGACY: Record<string, string> = { query: 'to_q', key: 'to_k', value: 'to_v', proj_attn: 'to_out.0' };
const LEGACY_RE = /^((?:mid_block|(?:down|up)_blocks\.\d+)\.attentions\.\d+)\.(query|key|value|proj_attn)\.(weight|bias)$/;

/**
 * diffusers' renaming of deprecated attention-block keys (ModelMixin._fix_state_dict_keys_on_load):
 * inside an attention module, `query`/`key`/`value`/`proj_attn` → `to_q`/`to_k`/`to_v`/`to_out.0`.
 */
export function renameLegacyDiffusersKey(key: string): string {
  const m = LEGACY_RE.exec(key);
  return m ? `${m[1]}.${LEGACY[m[2]!]}.${m[3]}` : key;
}

const list = (keys: string[]) => {
  const shown = keys.slice(0, 8).map((k) => `'${k}'`).join(', ');
  return keys.length > 8 ? `${shown} and ${keys.length - 8} more` : shown;
};

/**
 * The network's parameters from a diffusers `state_dict` (decoded safetensors tensors, float32 in
 * memory): legacy attention keys renamed, every key checked (unknown, missing, shape), Linear
 * weights transposed to [in, out], Conv2d weights to [kh, kw, in, out]. Named by diffusers' keys.
 */
export function diffusersUnetParams(config: ResolvedDiffusersUnetConfig, tensors: Record<string, SafetensorsTensor>): Params {
  const specs = diffusersUnetParamSpecs(config);
  const byKey = new Map<string, SafetensorsTensor>();
  const renamedFrom = new Map<string, string>();
  for (const [k, t] of Object.entries(tensors)) {
    const key = renameLegacyDiffusersKey(k);
    if (byKey.has(key)) throw new Error(`${ERR}: weight '${key}' is given twice (as '${renamedFrom.get(key)}' and '${k}')`);
    byKey.set(key, t);
    renamedFrom.set(key, k);
  }
  const expected = new Set(specs.map((s) => s.key));
  const unknown = [...byKey.keys()].filter((k) => !expected.has(k)).map((k) => renamedFrom.get(k)!);
  if (unknown.length > 0) throw new Error(`${ERR}: unknown weight${unknown.length > 1 ? 's' : ''} ${list(unknown)} (not part of the network config.json describes)`);
  const missing = specs.map((s) => s.key).filter((k) => !byKey.has(k));
  if (missing.length > 0) throw new Error(`${ERR}: missing weight${missing.length > 1 ? 's' : ''} ${list(missing)}`);
  for (const s of specs) {
    const t = byKey.get(s.key)!;
    if (t.dtype !== 'F32') throw new Error(`${ERR}: weight '${renamedFrom.get(s.key)}' has dtype ${t.sourceDtype ?? t.dtype}, expected a float tensor (F32, F16, BF16)`);
    if (t.shape.length !== s.torchShape.length || t.shape.some((d, i) => d !== s.torchShape[i])) {
      throw new Error(`${ERR}: weight '${renamedFrom.get(s.key)}' has shape [${t.shape.join(', ')}], expected [${s.torchShape.join(', ')}]`);
    }
  }
  const params: Params = {};
  for (const s of specs) {
    const t = byKey.get(s.key)!;
    params[s.key] = tf.tidy(() => {
      const v = tf.tensor(t.data as Float32Array, t.shape, 'float32');
      const converted = s.layout === 'linear' ? tf.transpose(v, [1, 0]) : s.layout === 'conv' ? tf.transpose(v, [2, 3, 1, 0]) : v;
      return tf.variable(converted, true);
    });
  }
  return params;
}

/**
 * diffusers' `get_timestep_embedding` (float32): half = dim/2, f_i = exp(−ln(10000)·i/(half − freqShift)),
 * a = t·f_i, [sin a | cos a] ([cos a | sin a] if flipSinToCos). `t` [N] may be fractional. → [N, dim].
 */
export function diffusersTimestepEmbedding(t: tf.Tensor1D, dim: number, flipSinToCos: boolean, freqShift: number): tf.Tensor2D {
  const half = Math.floor(dim / 2);
  const f = new Float32Array(half);
  // as torch: the exponent in float32, then exp
  const lnMax = Math.fround(-Math.log(10000));
  for (let i = 0; i < half; i++) f[i] = Math.exp(Math.fround(Math.fround(lnMax * i) / (half - freqShift)));
  return tf.tidy(() => {
    const a = tf.mul(t.cast('float32').reshape([-1, 1]), tf.tensor2d(f, [1, half]));
    const parts = flipSinToCos ? [tf.cos(a), tf.sin(a)] : [tf.sin(a), tf.cos(a)];
    let emb = tf.concat(parts, 1);
    if (dim % 2 === 1) emb = tf.pad(emb, [[0, 0], [0, 1]]);
    return emb as tf.Tensor2D;
  });
}

/** The raw network: x [N, H, W, in_channels] (NHWC), timestep [N] (float; integers at training) → ε̂ [N, H, W, out_channels]. */
export type DiffusersUnetNet = (x: tf.Tensor4D, timestep: tf.Tensor1D) => tf.Tensor4D;

/**
 * A 3×3 stride-2 conv as PyTorch's Conv2d(padding = p), with diffusers' (0, 1, 0, 1) zero pad first
 * when p = 0, built from the 'same'-padded `conv2dBias` (so its gradients are the ops' own): pad to
 * what PyTorch convolves, round up to even sizes, convolve ('same' adds one zero row/column at the
 * end, which no kept output reads), keep PyTorch's output size.
 */
export function diffusersDownsampleConv(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, p: number): tf.Tensor4D {
  const [n, h, wd] = x.shape;
  if (p === 0 && h % 2 === 0 && wd % 2 === 0) return conv2dBias(x, w, b, 2); // 'same' pads exactly (0, 1)
  const hp = h + 2 * p + (p === 0 ? 1 : 0);
  const wp = wd + 2 * p + (p === 0 ? 1 : 0);
  const ho = Math.floor((hp - 3) / 2) + 1;
  const wo = Math.floor((wp - 3) / 2) + 1;
  const xp = tf.pad(x, [
    [0, 0],
    [p, hp - h - p + (hp % 2)],
    [p, wp - wd - p + (wp % 2)],
    [0, 0],
  ]) as tf.Tensor4D;
  const y = conv2dBias(xp, w, b, 2);
  return tf.slice(y, [0, 0, 0, 0], [n, ho, wo, y.shape[3]]);
}

/** Builds the network of `config` (a config.json, or one already resolved) over `params` (as `diffusersUnetParams` makes them). */
export function diffusersUnet(cfg: ResolvedDiffusersUnetConfig | DiffusersUnetConfig | string, params: Params): DiffusersUnetNet {
  const config = typeof cfg === 'object' && 'blockOutChannels' in cfg ? (cfg as ResolvedDiffusersUnetConfig) : resolveDiffusersUnetConfig(cfg);
  const missing = diffusersUnetParamSpecs(config)
    .map((s) => s.key)
    .filter((k) => !(k in params));
  if (missing.length > 0) throw new Error(`${ERR}: missing parameter${missing.length > 1 ? 's' : ''} ${list(missing)}`);
  const P = <T extends tf.Tensor>(k: string) => params[k] as unknown as T;
  const G = config.normNumGroups;
  const eps = config.normEps;
  const boc = config.blockOutChannels;
  const n = boc.length;
  const L = config.layersPerBlock;

  const lin = (key: string, x: tf.Tensor2D) => dense(x, P<tf.Tensor2D>(`${key}.weight`), P<tf.Tensor1D>(`${key}.bias`));
  const conv = (key: string, x: tf.Tensor4D) => conv2dBias(x, P<tf.Tensor4D>(`${key}.weight`), P<tf.Tensor1D>(`${key}.bias`));

  const resnet = (key: string, x: tf.Tensor4D, tembAct: tf.Tensor2D, scale: number): tf.Tensor4D => {
    let h = conv(`${key}.conv1`, groupNormSilu(x, P(`${key}.norm1.weight`), P(`${key}.norm1.bias`), G, eps));
    const t = lin(`${key}.time_emb_proj`, tembAct);
    h = tf.add(h, t.reshape([t.shape[0], 1, 1, t.shape[1]])) as tf.Tensor4D;
    h = conv(`${key}.conv2`, groupNormSilu(h, P(`${key}.norm2.weight`), P(`${key}.norm2.bias`), G, eps));
    const skip = `${key}.conv_shortcut.weight` in params ? conv(`${key}.conv_shortcut`, x) : x;
    const out = tf.add(skip, h) as tf.Tensor4D;
    return scale === 1 ? out : (tf.div(out, scale) as tf.Tensor4D);
  };

  const attention = (key: string, x: tf.Tensor4D, groups: number, scale: number): tf.Tensor4D => {
    const [b, hh, ww, c] = x.shape;
    const d = config.attentionHeadDim ?? c;
    const heads = c / d;
    const m = hh * ww;
    const hn = groupNorm(x, P(`${key}.group_norm.weight`), P(`${key}.group_norm.bias`), groups, eps).reshape([b * m, c]) as tf.Tensor2D;
    // [B·HW, C] → [B·heads, HW, d], channel = head·d + i
    const split = (t: tf.Tensor2D) => tf.transpose(t.reshape([b, m, heads, d]), [0, 2, 1, 3]).reshape([b * heads, m, d]) as tf.Tensor3D;
    const q = split(lin(`${key}.to_q`, hn));
    const k = split(lin(`${key}.to_k`, hn));
    const v = split(lin(`${key}.to_v`, hn));
    const probs = softmax(tf.mul(batchMatmul(q, k, true), 1 / Math.sqrt(d)) as tf.Tensor3D);
    const o = tf.transpose(batchMatmul(probs, v).reshape([b, heads, m, d]), [0, 2, 1, 3]).reshape([b * m, c]) as tf.Tensor2D;
    const out = tf.add(lin(`${key}.to_out.0`, o).reshape([b, hh, ww, c]), x) as tf.Tensor4D;
    return scale === 1 ? out : (tf.div(out, scale) as tf.Tensor4D);
  };

  return (x, timestep) =>
    tf.tidy(() => {
      if (x.rank !== 4 || x.shape[3] !== config.inChannels) {
        throw new Error(`${ERR}: expected x of shape [N, H, W, ${config.inChannels}] (NHWC), got [${x.shape}]`);
      }
      if (timestep.rank !== 1 || timestep.shape[0] !== x.shape[0]) {
        throw new Error(`${ERR}: timestep must have shape [${x.shape[0]}], got [${timestep.shape}]`);
      }
      const f = 2 ** (n - 1);
      if (x.shape[1] % f !== 0 || x.shape[2] % f !== 0) {
        throw new Error(`${ERR}: H and W must be multiples of ${f} (${n - 1} downsamplings), got [${x.shape}]`);
      }
      let h: tf.Tensor4D = config.centerInputSample ? (tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D) : x;
      const emb = diffusersTimestepEmbedding(timestep, boc[0]!, config.flipSinToCos, config.freqShift);
      const temb = lin('time_embedding.linear_2', silu(lin('time_embedding.linear_1', emb)));
      const tembAct = silu(temb); // every resnet's time_emb_proj reads silu(temb)
      h = conv('conv_in', h);
      const skips: tf.Tensor4D[] = [h];
      config.downBlockTypes.forEach((t, b) => {
        for (let j = 0; j < L; j++) {
          h = resnet(`down_blocks.${b}.resnets.${j}`, h, tembAct, 1);
          if (t === 'AttnDownBlock2D') h = attention(`down_blocks.${b}.attentions.${j}`, h, G, 1);
          skips.push(h);
        }
        if (b !== n - 1) {
          const k = `down_blocks.${b}.downsamplers.0.conv`;
          h = diffusersDownsampleConv(h, P(`${k}.weight`), P(`${k}.bias`), config.downsamplePadding);
          skips.push(h);
        }
      });
      if (config.midBlock) {
        const s = config.midBlockScaleFactor;
        h = resnet('mid_block.resnets.0', h, tembAct, s);
        if (config.addAttention) h = attention('mid_block.attentions.0', h, config.attnNormNumGroups, s);
        h = resnet('mid_block.resnets.1', h, tembAct, s);
      }
      config.upBlockTypes.forEach((t, b) => {
        for (let j = 0; j <= L; j++) {
          const skip = skips.pop()!;
          h = resnet(`up_blocks.${b}.resnets.${j}`, tf.concat([h, skip], 3) as tf.Tensor4D, tembAct, 1);
          if (t === 'AttnUpBlock2D') h = attention(`up_blocks.${b}.attentions.${j}`, h, G, 1);
        }
        if (b !== n - 1) h = conv(`up_blocks.${b}.upsamplers.0.conv`, upsample2x(h));
      });
      return conv('conv_out', groupNormSilu(h, P('conv_norm_out.weight'), P('conv_norm_out.bias'), G, eps));
    });
}

// ---------------------------------------------------------------------------------------------
// The DDPM schedule and the ε → D conversion
// ---------------------------------------------------------------------------------------------

/** A DDPMScheduler's training schedule, and the VE noise level of each timestep. */
export interface DdpmSchedule {
  numTrainTimesteps: number;
  /** β_t, float32 values. */
  betas: Float32Array;
  /** ᾱ_t = Π_{s ≤ t} (1 − β_s), accumulated in float32 as diffusers does. */
  alphasCumprod: Float32Array;
  /** σ_t = √((1 − ᾱ_t)/ᾱ_t) rounded to float32, increasing in t. */
  sigmas: Float32Array;
}

const SCHEDULER_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
};

/** torch.linspace in float32 (start + i·step for the first half, end − (N−1−i)·step for the rest). */
function linspaceF32(start: number, end: number, n: number): Float32Array {
  const out = new Float32Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const s = Math.fround(start);
  const e = Math.fround(end);
  const step = Math.fround((e - s) / (n - 1));
  const halfway = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < halfway ? Math.fround(s + Math.fround(step * i)) : Math.fround(e - Math.fround(step * (n - 1 - i)));
  return out;
}

/**
 * The schedule of a DDPMScheduler `scheduler_config.json` (text or parsed; defaults when absent):
 * 'linear' (float32 linspace of β), 'scaled_linear' (linspace of √β, squared), 'squaredcos_cap_v2'
 * (β_i = min(1 − ᾱ((i+1)/N)/ᾱ(i/N), 0.999), ᾱ(t) = cos²((t + 0.008)/1.008·π/2)), or `trained_betas`.
 * Only prediction_type 'epsilon' is supported.
 */
export function ddpmSchedule(scheduler: string | object = {}): DdpmSchedule {
  const raw = parseJson('scheduler config', scheduler);
  const c: Record<string, unknown> = { ...SCHEDULER_DEFAULTS };
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) c[k] = v;
  if (c.prediction_type !== 'epsilon') {
    throw new Error(`${ERR}: unsupported scheduler prediction_type ${JSON.stringify(c.prediction_type)} (supported: 'epsilon')`);
  }
  const N = c.num_train_timesteps;
  if (!isPosInt(N) || N < 2) throw new Error(`${ERR}: unsupported scheduler num_train_timesteps ${JSON.stringify(N)} (supported: an integer ≥ 2)`);
  let betas: Float32Array;
  if (c.trained_betas !== null) {
    const tb = c.trained_betas;
    if (!Array.isArray(tb) || tb.length !== N || !tb.every((v) => typeof v === 'number')) {
      throw new Error(`${ERR}: scheduler trained_betas must be a list of ${N} numbers`);
    }
    betas = Float32Array.from(tb as number[]);
  } else {
    const bs = c.beta_start as number;
    const be = c.beta_end as number;
    if (typeof bs !== 'number' || typeof be !== 'number') throw new Error(`${ERR}: scheduler beta_start and beta_end must be numbers`);
    if (c.beta_schedule === 'linear') betas = linspaceF32(bs, be, N);
    else if (c.beta_schedule === 'scaled_linear') betas = linspaceF32(Math.sqrt(bs), Math.sqrt(be), N).map((v) => Math.fround(v * v));
    else if (c.beta_schedule === 'squaredcos_cap_v2') {
      const abar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
      betas = new Float32Array(N);
      for (let i = 0; i < N; i++) betas[i] = Math.min(1 - abar((i + 1) / N) / abar(i / N), 0.999);
    } else {
      throw new Error(`${ERR}: unsupported scheduler beta_schedule ${JSON.stringify(c.beta_schedule)} (supported: 'linear', 'scaled_linear', 'squaredcos_cap_v2', or trained_betas)`);
    }
  }
  const alphasCumprod = new Float32Array(N);
  const sigmas = new Float32Array(N);
  let acc = 1;
  for (let i = 0; i < N; i++) {
    acc = Math.fround(acc * Math.fround(1 - betas[i]!));
    alphasCumprod[i] = acc;
    sigmas[i] = Math.sqrt((1 - acc) / acc);
  }
  for (let i = 1; i < N; i++) {
    if (!(sigmas[i]! > sigmas[i - 1]!)) throw new Error(`${ERR}: the schedule's σ_t is not strictly increasing at t = ${i} (betas must be in (0, 1))`);
  }
  return { numTrainTimesteps: N, betas, alphasCumprod, sigmas };
}

/**
 * The continuous DDPM timestep of a VE noise level σ: t is interpolated linearly in ln σ between
 * the two integer steps whose σ_t bracket σ, t = i + (ln σ − ln σ_i)/(ln σ_{i+1} − ln σ_i), and
 * clamped to [0, N − 1] outside [σ_0, σ_{N−1}]. At σ = σ_t (the float32 table value) it gives
 * exactly t; it is continuous and increasing in σ. DDPM models were trained at integer t only:
 * a fractional t feeds the sinusoidal embedding a value between two trained ones, which the
 * network has seen nowhere but which it interpolates smoothly in practice.
 */
export function ddpmTimestepOfSigma(schedule: DdpmSchedule, sigma: number): number {
  const s = schedule.sigmas;
  const N = s.length;
  if (Number.isNaN(sigma)) return Number.NaN;
  if (sigma <= s[0]!) return 0;
  if (sigma >= s[N - 1]!) return N - 1;
  // the largest i with s[i] ≤ σ (then s[i] ≤ σ < s[i + 1])
  let lo = 0;
  let hi = N - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (s[mid]! <= sigma) lo = mid;
    else hi = mid;
  }
  if (sigma === s[lo]) return lo;
  const a = Math.log(s[lo]!);
  const b = Math.log(s[lo + 1]!);
  return lo + (Math.log(sigma) - a) / (b - a);
}

/**
 * An ε-prediction DDPM network as a VE-space denoiser D(x_σ; σ), x_σ = x0 + σ·n: the DDPM sample at
 * the matching timestep is x_t = x_σ/√(1 + σ²) (σ = √((1 − ᾱ_t)/ᾱ_t)), so the network is fed that
 * at t(σ) = `ddpmTimestepOfSigma` and D = x_σ − σ·ε̂. Class labels are not supported.
 */
export function ddpmEpsDenoiser(net: DiffusersUnetNet, schedule: DdpmSchedule): Denoiser {
  return (x, sigma, label) =>
    tf.tidy(() => {
      if (label !== undefined) throw new Error(`${ERR}: the model is unconditional; got a label`);
      if (x.rank !== 4) throw new Error(`${ERR}: expected x of shape [N, H, W, C], got [${x.shape}]`);
      if (sigma.rank !== 1 || sigma.shape[0] !== x.shape[0]) throw new Error(`${ERR}: sigma must have shape [${x.shape[0]}], got [${sigma.shape}]`);
      const t = Float32Array.from(sigma.dataSync(), (v) => ddpmTimestepOfSigma(schedule, v));
      const s = sigma.reshape([-1, 1, 1, 1]);
      const xIn = tf.div(x, tf.sqrt(tf.add(tf.square(s), 1))) as tf.Tensor4D;
      const eps = net(xIn, tf.tensor1d(t, 'float32'));
      return tf.sub(x, tf.mul(s, eps));
    });
}

/** What `importDiffusersUnet2d` reads: the files of a diffusers UNet2DModel folder (bytes, no file system). */
export interface DiffusersUnetFiles {
  /** `config.json` (text or parsed). */
  config: string | object;
  /** `scheduler_config.json` of the pipeline (text or parsed); DDPMScheduler defaults when absent. */
  scheduler?: string | object;
  /** `diffusion_pytorch_model.safetensors` (a single file); or give `index` and `readShard`. */
  bytes?: Uint8Array;
  /** `diffusion_pytorch_model.safetensors.index.json` of a sharded checkpoint. */
  index?: string | object;
  /** Reads a shard named in the index (undefined/null: no such file). */
  readShard?: (name: string) => Uint8Array | undefined | null;
}

export interface DiffusersUnetImport {
  config: ResolvedDiffusersUnetConfig;
  schedule: DdpmSchedule;
  /** The parameters, named by diffusers' keys (Linear [in, out], Conv2d [kh, kw, in, out]). */
  params: Params;
  /** The raw network: x NHWC, timestep [N] → ε̂ NHWC. */
  net: DiffusersUnetNet;
  /** The VE-space denoiser (see `ddpmEpsDenoiser`). */
  denoiser: Denoiser;
}

/**
 * Imports a diffusers UNet2DModel (config + safetensors weights, F32/F16/BF16, single or sharded)
 * with its DDPM schedule, as parameters, a network and a denoiser. Browser-safe: bytes in.
 */
export function importDiffusersUnet2d(files: DiffusersUnetFiles): DiffusersUnetImport {
  const config = resolveDiffusersUnetConfig(files.config);
  const schedule = ddpmSchedule(files.scheduler ?? {});
  let tensors: Record<string, SafetensorsTensor>;
  if (files.bytes !== undefined) {
    if (files.index !== undefined) throw new Error(`${ERR}: give either bytes (one safetensors file) or index and readShard, not both`);
    tensors = decodeSafetensors(files.bytes).tensors;
  } else if (files.index !== undefined) {
    if (files.readShard === undefined) throw new Error(`${ERR}: a sharded checkpoint needs readShard`);
    tensors = decodeShardedSafetensors(files.index, files.readShard).tensors;
  } else {
    throw new Error(`${ERR}: no weights: give bytes (one safetensors file) or index and readShard`);
  }
  const params = diffusersUnetParams(config, tensors);
  const net = diffusersUnet(config, params);
  return { config, schedule, params, net, denoiser: ddpmEpsDenoiser(net, schedule) };
}
