/**
 * Imports EDM's DDPM++ denoisers, `EDMPrecond(SongUNet)` of NVlabs/edm, from safetensors written by
 * `bench/reference/export_edm.py` (EDM's state_dict with its own key names, `__metadata__.format` =
 * "edm" and `__metadata__.edm_kwargs` = the constructor's kwargs as JSON). Bytes in, a
 * {@link DenoiserModel} out: browser-safe, the caller reads the files.
 *
 * The network is our UNet with the EDM flags of {@link UnetConfig} set, so that it computes EDM's
 * function exactly. Parameters are mapped with their layouts changed: Linear [out, in] → [in, out],
 * Conv2d [out, in, kh, kw] → [kh, kw, in, out], the attention's `qkv` output channels from EDM's
 * interleaved order (3c + j = (q, k, v)[j] of channel c) to ours ([q | k | v]), and
 * `dec.RxR_aux_{norm,conv}` → `dec.out_{norm,conv}`.
 */
import * as tf from '@tensorflow/tfjs';

import type { DenoiserConfig, UnetConfig } from './config.js';
import { type DenoiserModel, initDenoiser } from './model.js';
import { type SafetensorsTensor, decodeSafetensors } from './safetensors.js';
import { type ShardBytes, decodeShardedSafetensors } from './sharded.js';
import { groupsFor, unetPlan } from './unet.js';

/** The files of an EDM export: one safetensors file (`bytes`), or a sharded one (`index` + `readShard`). */
export interface EdmFiles {
  bytes?: Uint8Array;
  /** `model.safetensors.index.json`, as text, bytes or parsed JSON. */
  index?: string | Uint8Array | object;
  /** Reads a shard named in the index (undefined/null when it does not exist). */
  readShard?: (fileName: string) => ShardBytes;
}

/** `__metadata__.edm_kwargs` of an EDM export. */
export interface EdmKwargs {
  class_name?: string;
  img_resolution: number;
  img_channels: number;
  label_dim?: number;
  use_fp16?: boolean;
  sigma_min?: number | null;
  sigma_max?: number | null;
  sigma_data?: number;
  model_type?: string;
  model_kwargs?: Record<string, unknown>;
}

export interface EdmImport {
  /** The denoiser: `denoise(x, sigma, label?)` is EDM's D(x; σ, label), x NHWC [N, H, W, C]. */
  model: DenoiserModel;
  config: DenoiserConfig;
  /** The export's kwargs, as read. */
  edmKwargs: EdmKwargs;
  /** EDMPrecond's sigma_min and sigma_max (null in the file = ∞), the noise range it was built for. */
  sigmaMin: number;
  sigmaMax: number;
}

const ERR = 'importEdm';

/** SongUNet's kwargs and their EDM defaults. */
const SONG_UNET_DEFAULTS: Record<string, unknown> = {
  label_dim: 0,
  augment_dim: 0,
  model_channels: 128,
  channel_mult: [1, 2, 2, 2],
  channel_mult_emb: 4,
  num_blocks: 4,
  attn_resolutions: [16],
  dropout: 0.1,
  label_dropout: 0,
  embedding_type: 'positional',
  channel_mult_noise: 1,
  encoder_type: 'standard',
  decoder_type: 'standard',
  resample_filter: [1, 1],
};
const SONG_UNET_SHAPE_KEYS = ['img_resolution', 'in_channels', 'out_channels'];
const DDPMPP = "only EDM's DDPM++ (SongUNet with embedding_type 'positional', encoder_type and decoder_type 'standard', resample_filter [1, 1]) can be imported";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;
const json = (v: unknown) => JSON.stringify(v);

function fail(msg: string): never {
  throw new Error(`${ERR}: ${msg}`);
}

/** What the network needs from an export's kwargs. */
interface EdmNet {
  config: DenoiserConfig & { net: UnetConfig };
  augmentDim: number;
  sigmaMin: number;
  sigmaMax: number;
}

/**
 * The {@link DenoiserConfig} of an EDM DDPM++ export's kwargs (`__metadata__.edm_kwargs`). Throws one
 * line naming the field for anything that is not EDMPrecond(SongUNet) in the DDPM++ configuration.
 */
export function edmDenoiserConfig(kwargs: unknown): DenoiserConfig & { net: UnetConfig } {
  return parseKwargs(kwargs).config;
}

function parseKwargs(kwargs: unknown): EdmNet {
  if (!isObject(kwargs)) fail(`edm_kwargs must be a JSON object, got ${json(kwargs)}`);
  const k = kwargs;
  const cls = k.class_name ?? 'EDMPrecond';
  if (cls !== 'EDMPrecond') {
    fail(`class_name ${json(cls)} is not supported: only EDMPrecond (EDM's own preconditioning) is; VP/VE/iDDPM-preconditioned networks cannot be imported`);
  }
  if (k.model_type !== 'SongUNet') {
    fail(
      `model_type ${json(k.model_type)} is not supported: ${DDPMPP}` +
        (k.model_type === 'DhariwalUNet' || k.model_type === undefined ? " (DhariwalUNet, EDM's ADM, is not)" : ''),
    );
  }
  const res = k.img_resolution;
  const ch = k.img_channels;
  const labelDim = k.label_dim ?? 0;
  if (!isInt(res, 1)) fail(`img_resolution must be a positive integer, got ${json(res)}`);
  if (!isInt(ch, 1)) fail(`img_channels must be a positive integer, got ${json(ch)}`);
  if (!isInt(labelDim, 0)) fail(`label_dim must be an integer >= 0, got ${json(labelDim)}`);
  const sigmaData = k.sigma_data ?? 0.5;
  if (typeof sigmaData !== 'number' || !(sigmaData > 0)) fail(`sigma_data must be a number > 0, got ${json(sigmaData)}`);
  const sigmaMin = k.sigma_min ?? 0;
  const sigmaMax = k.sigma_max === null || k.sigma_max === undefined ? Infinity : k.sigma_max;
  if (typeof sigmaMin !== 'number' || typeof sigmaMax !== 'number') fail(`sigma_min and sigma_max must be numbers (or null = ∞), got ${json(k.sigma_min)}, ${json(k.sigma_max)}`);

  const given = k.model_kwargs ?? {};
  if (!isObject(given)) fail(`model_kwargs must be a JSON object, got ${json(given)}`);
  const unknown = Object.keys(given).filter((name) => !(name in SONG_UNET_DEFAULTS) && !SONG_UNET_SHAPE_KEYS.includes(name));
  if (unknown.length > 0) fail(`model_kwargs has keys SongUNet does not: ${unknown.map(json).join(', ')}; ${DDPMPP}`);
  const m: Record<string, unknown> = { ...SONG_UNET_DEFAULTS, ...given };
  const same = (name: string, want: unknown) => {
    if (given[name] !== undefined && given[name] !== want) fail(`model_kwargs.${name} = ${json(given[name])} differs from the precond's ${json(want)}; EDMPrecond passes its own`);
  };
  same('img_resolution', res);
  same('in_channels', ch);
  same('out_channels', ch);
  same('label_dim', labelDim);

  const only = (name: string, want: string, what: string) => {
    if (m[name] !== want) fail(`model_kwargs.${name} = ${json(m[name])} is not supported (${what}): ${DDPMPP}`);
  };
  only('embedding_type', 'positional', "'fourier' is NCSN++");
  only('encoder_type', 'standard', "'skip'/'residual' are NCSN++");
  only('decoder_type', 'standard', "'skip' is NCSN++");
  const rf = m.resample_filter;
  if (!Array.isArray(rf) || rf.length !== 2 || rf[0] !== 1 || rf[1] !== 1) {
    fail(`model_kwargs.resample_filter = ${json(rf)} is not supported ([1, 3, 3, 1] is NCSN++): ${DDPMPP}`);
  }
  const posInt = (name: string) => {
    if (!isInt(m[name], 1)) fail(`model_kwargs.${name} must be a positive integer, got ${json(m[name])}`);
    return m[name] as number;
  };
  const mc = posInt('model_channels');
  const multEmb = posInt('channel_mult_emb');
  const multNoise = posInt('channel_mult_noise');
  const numBlocks = posInt('num_blocks');
  const augmentDim = m.augment_dim;
  if (!isInt(augmentDim, 0)) fail(`model_kwargs.augment_dim must be an integer >= 0, got ${json(augmentDim)}`);
  const mult = m.channel_mult;
  if (!Array.isArray(mult) || mult.length === 0 || !mult.every((v) => isInt(v, 1))) fail(`model_kwargs.channel_mult must be a non-empty list of positive integers, got ${json(mult)}`);
  const attn = m.attn_resolutions;
  if (!Array.isArray(attn) || !attn.every((v) => isInt(v, 1))) fail(`model_kwargs.attn_resolutions must be a list of positive integers, got ${json(attn)}`);
  const dropout = m.dropout;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) fail(`model_kwargs.dropout must be a number in [0, 1), got ${json(dropout)}`);
  const levels = (mult as number[]).map((_, i) => (res as number) >> i);
  if ((res as number) % 2 ** (mult.length - 1) !== 0) fail(`img_resolution ${res} is not divisible by 2^${mult.length - 1} (channel_mult has ${mult.length} levels)`);

  const net: UnetConfig = {
    kind: 'unet',
    resolution: res as number,
    channels: ch as number,
    modelChannels: mc,
    channelMult: (mult as number[]).slice(),
    numBlocks,
    // EDM tests `res in attn_resolutions` per level: values at no level have no effect
    attnResolutions: (attn as number[]).filter((a) => levels.includes(a)),
    dropout,
    embedDim: mc * multEmb,
    numClasses: labelDim as number,
    blockModulation: 'add',
    resampleSkipConv: true,
    decoderAttn: 'last',
    noiseEmbedding: 'positional',
    noiseDim: mc * multNoise,
    groupNormEps: 1e-6,
    labelBias: true,
    labelScale: 'sqrt',
  };
  if (net.noiseDim! < 4 || net.noiseDim! % 2 !== 0) fail(`model_channels·channel_mult_noise = ${net.noiseDim} must be even and >= 4 (the positional embedding)`);
  const config = { kind: 'edm' as const, sigmaData, net };
  // EDM's GroupNorm has min(32, C // 4) groups (PyTorch requires them to divide C); ours the largest divisor ≤ that
  const { encoder, decoder, top } = unetPlan(net);
  for (const c of [...encoder, ...decoder].flatMap((b) => [b.cin, b.cout]).concat(top)) {
    if (groupsFor(c) !== Math.min(32, Math.floor(c / 4))) fail(`a GroupNorm over ${c} channels would have ${Math.min(32, Math.floor(c / 4))} groups in EDM, which PyTorch cannot run`);
  }
  return { config, augmentDim: augmentDim as number, sigmaMin, sigmaMax };
}

type Layout = 'vector' | 'linear' | 'conv' | 'qkv-conv' | 'qkv-vector';

/** Our parameter name (under `net.`) → EDM's key and how the layout changes. */
function edmKeyOf(name: string, res: number): { key: string; layout: Layout } {
  let rest = name.replace(/^net\./, '');
  rest = rest.replace(/^dec\.out_(norm|conv)\./, `dec.${res}x${res}_aux_$1.`);
  const key = `model.${rest}`;
  const isQkv = /\.qkv\.(weight|bias)$/.test(name);
  return { key, layout: isQkv ? (name.endsWith('.weight') ? 'qkv-conv' : 'qkv-vector') : 'vector' };
}

/** EDM's shape for one of our parameter shapes (the qkv reordering keeps the shape). */
function edmShape(shape: number[]): number[] {
  if (shape.length === 2) return [shape[1]!, shape[0]!];
  if (shape.length === 4) return [shape[3]!, shape[2]!, shape[0]!, shape[1]!];
  return shape.slice();
}

/** EDM's data (PyTorch layout) in our layout. */
function convert(src: Float32Array, ours: number[], layout: Layout): Float32Array {
  const out = new Float32Array(src.length);
  // qkv output channels: EDM o = 3c + j, ours o' = j·C + c
  const C = layout === 'qkv-conv' ? ours[3]! / 3 : layout === 'qkv-vector' ? ours[0]! / 3 : 0;
  const outIndex = (o: number) => (C > 0 ? (o % 3) * C + Math.floor(o / 3) : o);
  if (ours.length === 1) {
    for (let o = 0; o < src.length; o++) out[outIndex(o)] = src[o]!;
  } else if (ours.length === 2) {
    const [I, O] = ours as [number, number]; // EDM [O, I]
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) out[i * O + o] = src[o * I + i]!;
  } else {
    const [kh, kw, I, O] = ours as [number, number, number, number]; // EDM [O, I, kh, kw]
    for (let o = 0; o < O; o++) {
      const oo = outIndex(o);
      for (let i = 0; i < I; i++) {
        for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) out[((y * kw + x) * I + i) * O + oo] = src[((o * I + i) * kh + y) * kw + x]!;
      }
    }
  }
  return out;
}

function readFiles(files: EdmFiles): { tensors: Record<string, SafetensorsTensor>; metadata: Record<string, string> } {
  if (files.bytes !== undefined) {
    if (files.index !== undefined) fail('give either bytes (one file) or index + readShard (sharded), not both');
    return decodeSafetensors(files.bytes);
  }
  if (files.index === undefined || files.readShard === undefined) fail('give bytes (one safetensors file) or index and readShard (a sharded checkpoint)');
  const sharded = decodeShardedSafetensors(files.index, files.readShard);
  const metas = Object.entries(sharded.shardMetadata);
  const first = metas.find(([, m]) => m.edm_kwargs !== undefined);
  for (const [file, m] of metas) {
    if (first !== undefined && m.edm_kwargs !== undefined && m.edm_kwargs !== first[1].edm_kwargs) fail(`shard '${file}' has edm_kwargs that differ from those of '${first[0]}'`);
  }
  const fromIndex: Record<string, string> = {};
  for (const [key, v] of Object.entries(sharded.metadata)) if (typeof v === 'string') fromIndex[key] = v;
  return { tensors: sharded.tensors, metadata: { ...fromIndex, ...(first?.[1] ?? metas[0]?.[1] ?? {}) } };
}

/**
 * Imports an EDM DDPM++ denoiser (`EDMPrecond(SongUNet)`, e.g. edm-cifar10-32x32-cond-vp) from an
 * export of `bench/reference/export_edm.py`: one safetensors file (`bytes`) or a sharded checkpoint
 * (`index` + `readShard`), F32, F16 or BF16 (widened to float32). Every problem is one line of the
 * thrown error: unsupported kwargs (naming the field), unknown keys, missing keys, shape mismatches.
 * The `resample_filter` buffers are checked (all 0.25) and `model.map_augment.weight` (augmentation
 * labels, training only) is ignored.
 */
export function importEdm(files: EdmFiles): EdmImport {
  const { tensors, metadata } = readFiles(files);
  if (metadata.format !== 'edm') {
    fail(`__metadata__.format is ${json(metadata.format)}, expected "edm": export the network pickle with bench/reference/export_edm.py`);
  }
  if (metadata.edm_kwargs === undefined) fail('__metadata__ has no edm_kwargs: export the network pickle with bench/reference/export_edm.py');
  let kwargs: unknown;
  try {
    kwargs = JSON.parse(metadata.edm_kwargs);
  } catch (e) {
    fail(`__metadata__.edm_kwargs is not valid JSON (${(e as Error).message})`);
  }
  const { config, augmentDim, sigmaMin, sigmaMax } = parseKwargs(kwargs);
  const net = config.net;
  const res = net.resolution;

  const model = initDenoiser(config, null);
  const wanted = new Map<string, { name: string; layout: Layout; shape: number[] }>();
  for (const [name, v] of Object.entries(model.params)) {
    const { key, layout } = edmKeyOf(name, res);
    wanted.set(key, { name, layout, shape: edmShape(v.shape) });
  }
  const problems: string[] = [];
  const unknown: string[] = [];
  const shapeStr = (s: number[]) => `[${s.join(', ')}]`;
  for (const [key, t] of Object.entries(tensors)) {
    if (wanted.has(key)) continue;
    if (key.endsWith('.resample_filter')) {
      const conv = key.slice(0, -'.resample_filter'.length).replace(/^model\./, 'net.');
      const known = model.params[`${conv}.weight`] !== undefined && /_(up|down)\.(conv0|skip)$/.test(conv);
      if (!known) unknown.push(key);
      else if (t.shape.join() !== '1,1,2,2' || !Array.from(t.data).every((v) => v === 0.25)) {
        problems.push(`'${key}' is not the [1, 1] filter (shape [1, 1, 2, 2], all 0.25): got shape ${shapeStr(t.shape)}, values ${json(Array.from(t.data.slice(0, 4)))}`);
      }
      continue;
    }
    if (key === 'model.map_augment.weight' && augmentDim > 0) {
      const want = [net.noiseDim!, augmentDim];
      if (t.shape.join() !== want.join()) problems.push(`shape of 'model.map_augment.weight' is ${shapeStr(t.shape)}, expected ${shapeStr(want)}`);
      continue; // augmentation labels: training only
    }
    unknown.push(key);
  }
  if (unknown.length > 0) problems.unshift(`unknown keys (not in this DDPM++ network): ${unknown.map((k) => `'${k}'`).join(', ')}`);
  const missing = [...wanted.keys()].filter((k) => tensors[k] === undefined);
  if (missing.length > 0) problems.push(`missing keys: ${missing.map((k) => `'${k}'`).join(', ')}`);
  for (const [key, w] of wanted) {
    const t = tensors[key];
    if (t === undefined) continue;
    if (t.shape.join() !== w.shape.join()) problems.push(`shape of '${key}' is ${shapeStr(t.shape)}, expected ${shapeStr(w.shape)}`);
    else if (t.dtype !== 'F32') problems.push(`'${key}' has dtype ${t.sourceDtype}, expected a float (F32, F16 or BF16)`);
  }
  if (problems.length > 0) {
    for (const v of Object.values(model.params)) v.dispose();
    throw new Error(`${ERR}: the file does not match the network of its edm_kwargs:\n${problems.join('\n')}`);
  }
  for (const [key, w] of wanted) {
    const v = model.params[w.name]!;
    const data = convert(tensors[key]!.data as Float32Array, v.shape, w.layout);
    tf.tidy(() => v.assign(tf.tensor(data, v.shape, 'float32')));
  }
  return { model, config, edmKwargs: kwargs as EdmKwargs, sigmaMin, sigmaMax };
}
