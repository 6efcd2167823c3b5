import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';

/**
 * Native CPU kernels for TensorFlow.js: the heavy kernels (matMul and convolution) of the `wasm`
 * and `cpu` backends, replaced by a small N-API addon: OpenBLAS's SGEMM (or a built-in blocked GEMM
 * when OpenBLAS was not found at build time) for matMul, and for convolutions a direct kernel that
 * keeps blocks of output pixels in 16-wide vector registers (AVX-512 where the CPU has it), on every
 * core. On the MNIST UNet it runs the convolutions 2.5–4× faster than XNNPACK's wasm kernels and
 * halves the time of a Diff-Instruct iteration (see the README's bench table). The addon is compiled at
 * `pnpm install` / `npm install` from Debian packages alone (g++, make, python3, and
 * libopenblas-dev for the fast GEMM); when it cannot be built or loaded, nothing changes and tfjs
 * keeps its own kernels.
 *
 * The replacement works at the kernel level: `tf.matMul`, `tf.conv2d` and `tf.fused.conv2d` (and
 * every gradient or layer built on them) take the native path with no change to the code that
 * calls them. Kernels with attributes the addon does not cover (dilations, fused activations,
 * non-float32 inputs, mismatched batch shapes) fall through to the backend's own kernel.
 */

/** The functions of the compiled addon (`src/kernels.cc`). Sizes are element counts, row-major. */
export interface NativeAddon {
  /** C_b = op(A_b)·op(B_b), b < batch, op(A) [M×K], op(B) [K×N]; a stride of 0 broadcasts that operand. */
  gemmBatched(
    batch: number, transA: boolean, transB: boolean, m: number, n: number, k: number,
    a: Float32Array, strideA: number, b: Float32Array, strideB: number, c: Float32Array, strideC: number,
  ): void;
  /** NHWC × HWIO convolution into `out` [n, outH, outW, co]; geometry = [strideH, strideW, padTop, padLeft, outH, outW]. */
  conv2d(
    x: Float32Array, xShape: [number, number, number, number], filter: Float32Array, filterShape: [number, number, number],
    geometry: [number, number, number, number, number, number], bias: Float32Array | null, out: Float32Array,
  ): void;
  /** dw [kh, kw, c, co] of a convolution from x [n, h, w, c] and dy [n, ho, wo, co]; geometry = [kh, kw, strideH, strideW, padTop, padLeft]; co % 16 == 0. */
  conv2dFilterGrad(
    x: Float32Array, xShape: [number, number, number, number], dy: Float32Array, dyShape: [number, number, number],
    geometry: [number, number, number, number, number, number], out: Float32Array,
  ): void;
  /** dims: [n, p = H·W, c, groups, gammaPerSample, betaPerSample, silu] */
  groupNorm(x: Float32Array, dims: number[], eps: number, gamma: Float32Array, beta: Float32Array, y: Float32Array): void;
  groupNormGrad(
    x: Float32Array, dy: Float32Array, dims: number[], eps: number, gamma: Float32Array, beta: Float32Array,
    dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array,
  ): void;
  /** Concat (or split) along an axis as `outer` rows; part i holds inner[i] floats of each row. */
  concatRows(parts: Float32Array[], inner: number[], outer: number, out: Float32Array): void;
  splitRows(x: Float32Array, inner: number[], outer: number, parts: Float32Array[]): void;
  /** hyper: [lr, beta1, 1 − beta1, beta2, 1 − beta2, eps, bc1, bc2, gradient scale] */
  adamUpdate(p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, hyper: number[], pOut: Float32Array, mOut: Float32Array, vOut: Float32Array): void;
  /** out = shadow·β + p·(1 − β); bc: [β, 1 − β] */
  emaUpdate(shadow: Float32Array, p: Float32Array, bc: number[], out: Float32Array): void;
  adamInPlace(ps: Float32Array[], ms: Float32Array[], vs: Float32Array[], gs: Float32Array[], h: number[]): void;
  emaInPlace(shadows: Float32Array[], ps: Float32Array[], bc: number[]): void;
  sumSquares(parts: Float32Array[]): number;
  transpose4(x: Float32Array, shape: number[], perm: number[], out: Float32Array): void;
  reverse4(x: Float32Array, shape: number[], flip: number[], out: Float32Array): void;
  upsample2x(x: Float32Array, shape: number[], out: Float32Array): void;
  avgPool2x(x: Float32Array, shape: number[], out: Float32Array): void;
  softmax(x: Float32Array, shape: number[], out: Float32Array): void;
  /** out[c] = Σ_r x[r, c], x [rows, cols] (slices fixed by the shape: the same result on any number of threads). */
  columnSums(x: Float32Array, rows: number, cols: number, out: Float32Array): void;
  /** out = a + b (op 0) or a·b (op 1); the shorter input repeats cyclically (a scalar, or [C] against [..., C]). */
  binary(op: 0 | 1, a: Float32Array, b: Float32Array, out: Float32Array): void;
  /** Fills `out` with a dropout mask drawn from an xoshiro128** state (as @diff-instruct/sde's Rng); returns the state after. */
  dropoutMask(state: number[], keep: number, out: Float32Array): [number, number, number, number];
  setThreads(n: number): void;
  /** The GEMM ('openblas' or 'builtin') or the convolution ('direct' or 'im2col') to use; for tests and benchmarks. */
  setGemm(which: 'openblas' | 'builtin' | 'direct' | 'im2col'): void;
  /** blasCore: the kernel set OpenBLAS runs (e.g. 'SkylakeX'); absent without OpenBLAS. */
  info(): { gemm: 'openblas' | 'builtin'; openblas: boolean; threads: number; blasCore?: string };
}

export interface NativeStatus {
  /** Whether the addon was built and loads. */
  available: boolean;
  /** Why it is not available (with the fix), when it is not. */
  reason?: string;
  /** The GEMM in use: OpenBLAS, or the built-in one. */
  gemm?: 'openblas' | 'builtin';
  /** The kernel set OpenBLAS runs, e.g. 'SkylakeX' (with OpenBLAS only). */
  blasCore?: string;
  threads?: number;
}

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ADDON_PATH = join(PACKAGE_ROOT, 'build', 'Release', 'di_native.node');
const BUILD_HINT =
  'build it with `pnpm rebuild @diff-instruct/native` (or `npm rebuild @diff-instruct/native`) after ' +
  '`apt-get install g++ make python3 libopenblas-dev`';

let loaded: { addon: NativeAddon | null; reason?: string } | undefined;

/**
 * OpenBLAS's kernels for this CPU, from /proc/cpuinfo's flags: 'SkylakeX' with AVX-512
 * (F, CD, BW, DQ, VL), 'Haswell' with AVX2 and FMA, else null (OpenBLAS's own detection stands).
 * Debian's OpenBLAS 0.3.21 does not recognise CPUs that a hypervisor names plainly "Intel(R) Xeon(R)
 * Processor" and falls back to its SSE3 'Prescott' kernels: 17 GFLOP/s on a 1024³ SGEMM where
 * SkylakeX runs 94, on one core of this project's machine.
 */
export function openblasCoretypeFor(cpuinfo: string): string | null {
  const line = cpuinfo.split('\n').find((l) => /^flags\s*:/.test(l));
  if (line === undefined) return null;
  const flags = new Set(line.split(':')[1]!.trim().split(/\s+/));
  if (['avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f))) return 'SkylakeX';
  if (flags.has('avx2') && flags.has('fma')) return 'Haswell';
  return null;
}

/** Sets OPENBLAS_CORETYPE (read once, when the addon loads OpenBLAS) unless the user has set it. */
function chooseOpenblasCore(): void {
  if (process.env.OPENBLAS_CORETYPE !== undefined || process.platform !== 'linux') return;
  let cpuinfo: string;
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return;
  }
  const core = openblasCoretypeFor(cpuinfo);
  if (core !== null) process.env.OPENBLAS_CORETYPE = core;
}

/** The compiled addon, or null (with `nativeStatus().reason`) when it is not built or fails to load. */
export function loadNative(): NativeAddon | null {
  if (loaded === undefined) {
    if (!existsSync(ADDON_PATH)) {
      loaded = { addon: null, reason: `the native addon is not built (${ADDON_PATH} is missing); ${BUILD_HINT}` };
    } else {
      try {
        chooseOpenblasCore();
        loaded = { addon: createRequire(import.meta.url)(ADDON_PATH) as NativeAddon };
      } catch (e) {
        loaded = { addon: null, reason: `the native addon failed to load: ${(e as Error).message.split('\n')[0]}; ${BUILD_HINT}` };
      }
    }
  }
  return loaded.addon;
}

/** Whether the addon is usable, which GEMM it runs and on how many threads. */
export function nativeStatus(): NativeStatus {
  const addon = loadNative();
  if (addon === null) return { available: false, reason: loaded!.reason! };
  const { gemm, threads, blasCore } = addon.info();
  return { available: true, gemm, threads, ...(blasCore !== undefined ? { blasCore } : {}) };
}

/** The number of threads the native GEMM uses (default: every core, or DI_NATIVE_THREADS). */
export function setNativeThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`setNativeThreads: expected a positive integer, got ${String(n)}`);
  const addon = loadNative();
  if (addon === null) throw new Error(`setNativeThreads: ${loaded!.reason!}`);
  addon.setThreads(n);
}

// ---------------------------------------------------------------------------------------------
// Kernel overrides
// ---------------------------------------------------------------------------------------------

type TensorInfo = tf.TensorInfo;
type KernelArgs = { inputs: Record<string, TensorInfo | undefined>; attrs?: Record<string, unknown>; backend: unknown };

/** Read/write access to the float32 storage of a backend's tensors, without copies. */
interface Storage {
  read(t: TensorInfo): Float32Array;
  /** A new int32 tensor of this shape, and its storage to fill. */
  outputInt32(shape: number[]): { info: TensorInfo; data: Int32Array };
  /** A new float32 tensor of this shape, and its storage to fill. */
  output(shape: number[]): { info: TensorInfo; data: Float32Array };
  /** Several new tensors; every view is taken after the last allocation (which may move the heap). */
  outputs(shapes: number[][]): { info: TensorInfo; data: Float32Array }[];
}

interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(id: unknown): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: 'float32' | 'int32'): TensorInfo;
}
interface CpuBackend {
  data: { get(id: unknown): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32' | 'int32', values: Float32Array | Int32Array): TensorInfo;
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** One Storage per backend instance (made once: a kernel call should not allocate closures). */
const storages = new WeakMap<object, Storage | null>();

function storageFor(backendName: string, backend: unknown): Storage | null {
  let s = storages.get(backend as object);
  if (s === undefined) {
    s = makeStorage(backendName, backend);
    storages.set(backend as object, s);
  }
  return s;
}

function makeStorage(backendName: string, backend: unknown): Storage | null {
  if (backendName === 'wasm') {
    const b = backend as WasmBackend;
    // a view of the heap is taken after every allocation: malloc may grow (and so detach) it
    const view = (t: TensorInfo) => new Float32Array(b.wasm.HEAPU8.buffer, b.dataIdMap.get(t.dataId).memoryOffset, sizeOf(t.shape));
    return {
      read: view,
      output: (shape) => {
        const info = b.makeOutput(shape, 'float32');
        return { info, data: view(info) };
      },
      outputs: (shapes) => shapes.map((shape) => b.makeOutput(shape, 'float32')).map((info) => ({ info, data: view(info) })),
      outputInt32: (shape) => {
        const info = b.makeOutput(shape, 'int32');
        return { info, data: new Int32Array(b.wasm.HEAPU8.buffer, b.dataIdMap.get(info.dataId).memoryOffset, sizeOf(shape)) };
      },
    };
  }
  if (backendName === 'cpu') {
    const b = backend as CpuBackend;
    return {
      read: (t) => b.data.get(t.dataId).values as Float32Array,
      output: (shape) => {
        const data = new Float32Array(sizeOf(shape));
        return { info: b.makeTensorInfo(shape, 'float32', data), data };
      },
      outputs: (shapes) =>
        shapes.map((shape) => {
          const data = new Float32Array(sizeOf(shape));
          return { info: b.makeTensorInfo(shape, 'float32', data), data };
        }),
      outputInt32: (shape) => {
        const data = new Int32Array(sizeOf(shape));
        return { info: b.makeTensorInfo(shape, 'int32', data), data };
      },
    };
  }
  return null;
}

const KERNELS = ['BatchMatMul', 'Conv2D', 'FusedConv2D', 'Concat', 'SplitV', 'Identity', 'Cast', 'Transpose', 'Reverse', 'ResizeNearestNeighbor', 'AvgPool', 'Softmax', 'Add', 'Multiply'] as const;
/**
 * A kernel of this project's own, which `@diff-instruct/models` calls for the filter gradient of its
 * convolutions when a backend has it (inputs x, dy; attrs filterShape [kh, kw, c, co], strides
 * [sh, sw], pads [top, bottom, left, right]); C_out must be a multiple of 16.
 */
export const FILTER_GRAD_KERNEL = 'DiConv2DFilterGrad';
/**
 * Kernels of this project's own for `groupNorm` (and `groupNormSilu`) in `@diff-instruct/models`:
 * y = act((x − μ)·rstd·γ + β) with statistics per sample and group. Inputs x [N, H, W, C], gamma
 * and beta [1 or N, 1, 1, C] (and dy for the gradient); attrs groups, eps, silu. The gradient kernel
 * returns [dx, dgamma, dbeta], dgamma and dbeta per sample, [N, 1, 1, C].
 */
export const GROUP_NORM_KERNEL = 'DiGroupNorm';
export const GROUP_NORM_GRAD_KERNEL = 'DiGroupNormGrad';
/**
 * Optimiser kernels for `@diff-instruct/trainer`'s Adam and EMA (one call per parameter where the
 * tfjs ops take ~14 and 3), in float32 in the order of those ops (equal to them up to rounding; on
 * wasm the tests see the same bits):
 * - DiAdam: inputs p, m, v, g; attrs lr, beta1, beta2, eps, bc1, bc2 (bias corrections), scale
 *   (of the gradient); returns [p, m, v] updated;
 * - DiEma: inputs shadow, p; attr beta; returns shadow·β + p·(1 − β);
 * - DiSumSquares: any number of inputs; returns the scalar Σ x² over all of them (gradient norms).
 */
export const ADAM_KERNEL = 'DiAdam';
export const EMA_KERNEL = 'DiEma';
/**
 * DiAdam and DiEma for many parameters in one call (wasm only), written into their storage where no other tensor
 * shares it (a variable's buffer after its first update; a parameter cloned from another shares
 * its buffer until then):
 * - DiAdamInPlace: inputs p0, m0, v0, g0, p1, …; the attrs of DiAdam; returns an int32 tensor of
 *   the indices i whose p, m or v storage is shared, then [p, m, v] updated for each of them, in
 *   that order (the caller assigns those); the others are updated in place.
 * - DiEmaInPlace: inputs s0, p0, s1, p1, …; attr beta; returns the indices whose shadow is shared,
 *   then their updated shadows.
 */
export const ADAM_IN_PLACE_KERNEL = 'DiAdamInPlace';
export const EMA_IN_PLACE_KERNEL = 'DiEmaInPlace';
export const SUM_SQUARES_KERNEL = 'DiSumSquares';
/**
 * A dropout mask drawn as `@diff-instruct/sde`'s `Rng.dropoutMask` draws it (the same values, the
 * same stream), in native code: no inputs; attrs shape, keep, state (the Rng's four words); returns
 * [mask (float32, `shape`), the state after (int32 [4], the words' bits)].
 */
export const DROPOUT_MASK_KERNEL = 'DiDropoutMask';
/** The gradient of a bias added along the last axis: input dy [..., C]; returns Σ over the leading axes, [C]. */
export const BIAS_GRAD_KERNEL = 'DiBiasGrad';
/** The kernels that only this package provides (registered beside the overrides). */
const OWN_KERNELS = [FILTER_GRAD_KERNEL, GROUP_NORM_KERNEL, GROUP_NORM_GRAD_KERNEL, ADAM_KERNEL, EMA_KERNEL, ADAM_IN_PLACE_KERNEL, EMA_IN_PLACE_KERNEL, SUM_SQUARES_KERNEL, DROPOUT_MASK_KERNEL, BIAS_GRAD_KERNEL];
type KernelName = (typeof KERNELS)[number];
type KernelFunc = (args: KernelArgs) => TensorInfo | TensorInfo[];

/** The backends' own kernels that the overrides replaced, to fall back on and to restore. */
const originals = new Map<string, tf.KernelConfig>();
/** Backends for which this package's own kernels (filter gradient, GroupNorm) were registered. */
const added = new Set<string>();

const isF32 = (...ts: (TensorInfo | undefined)[]) => ts.every((t) => t === undefined || t.dtype === 'float32');

function batchMatMul(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo | null {
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA = false, transposeB = false } = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
  if (!isF32(a, b) || a.shape.length < 2 || b.shape.length < 2) return null;
  const ra = a.shape.length, rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const k2 = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (k !== k2) return null; // let the backend's kernel raise its own error
  const batchA = a.shape.slice(0, -2), batchB = b.shape.slice(0, -2);
  const na = sizeOf(batchA), nb = sizeOf(batchB);
  let batchShape: number[];
  if (na === nb && batchA.join() === batchB.join()) batchShape = batchA;
  else if (na === 1) batchShape = batchB;
  else if (nb === 1) batchShape = batchA;
  else return null;
  const batch = Math.max(na, nb);
  const outShape = [...batchShape, m, n];
  if (sizeOf(outShape) === 0) return null;
  const out = s.output(outShape);
  if (batch === 1 && transposeA && !transposeB && n % 16 === 0 && k >= 64 * m) {
    // Aᵀ·B with a long inner axis (the weight gradient of a 1×1 conv taken as a matmul): the filter
    // gradient kernel, a 1×1 "conv" over k rows of one pixel, sums k in fixed parts on every thread
    // (a row split of the m outputs re-reads all of A and B on each thread, and is 4× slower)
    addon.conv2dFilterGrad(s.read(a), [1, k, 1, m], s.read(b), [k, 1, n], [1, 1, 1, 1, 0, 0], out.data);
    return out.info;
  }
  addon.gemmBatched(batch, transposeA, transposeB, m, n, k, s.read(a), na === 1 ? 0 : m * k, s.read(b), nb === 1 ? 0 : k * n, out.data, m * n);
  return out.info;
}

function conv(addon: NativeAddon, s: Storage, args: KernelArgs, fused: boolean): TensorInfo | null {
  const { x, filter, bias, preluActivationWeights } = args.inputs;
  const attrs = (args.attrs ?? {}) as {
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
    dataFormat?: 'NHWC' | 'NCHW';
    dilations?: number | [number, number];
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    activation?: string;
  };
  if (x === undefined || filter === undefined || !isF32(x, filter, bias)) return null;
  if (fused && ((attrs.activation ?? 'linear') !== 'linear' || preluActivationWeights !== undefined)) return null;
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || x.shape.length !== 4 || filter.shape.length !== 4) return null;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast',
  );
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  if (bias !== undefined && !(bias.shape.length === 1 && bias.shape[0] === info.outChannels) && sizeOf(bias.shape) !== info.outChannels) return null;
  if (sizeOf(info.outShape) === 0 || sizeOf(x.shape) === 0) return null;
  const out = s.output(info.outShape);
  addon.conv2d(
    s.read(x), [info.batchSize, info.inHeight, info.inWidth, info.inChannels],
    s.read(filter), [info.filterHeight, info.filterWidth, info.outChannels],
    [info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left, info.outHeight, info.outWidth],
    bias === undefined ? null : s.read(bias), out.data,
  );
  return out.info;
}

function filterGrad(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo {
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const { filterShape, strides, pads } = args.attrs as { filterShape: number[]; strides: [number, number]; pads: [number, number, number, number] };
  const [kh, kw, c, co] = filterShape as [number, number, number, number];
  const [n, h, w, xc] = x.shape as [number, number, number, number];
  const [dn, ho, wo, dco] = dy.shape as [number, number, number, number];
  if (!isF32(x, dy) || x.shape.length !== 4 || dy.shape.length !== 4 || xc !== c || dco !== co || dn !== n || co % 16 !== 0) {
    throw new Error(`${FILTER_GRAD_KERNEL}: unsupported shapes x [${x.shape}], dy [${dy.shape}], filter [${filterShape}] (float32, C_out a multiple of 16)`);
  }
  const [sh, sw] = strides;
  const [pt, pb, pl, pr] = pads;
  if (Math.floor((h + pt + pb - kh) / sh) + 1 !== ho || Math.floor((w + pl + pr - kw) / sw) + 1 !== wo) {
    throw new Error(`${FILTER_GRAD_KERNEL}: dy [${dy.shape}] does not match x [${x.shape}], filter [${filterShape}], strides [${strides}], pads [${pads}]`);
  }
  const out = s.output([kh, kw, c, co]);
  addon.conv2dFilterGrad(s.read(x), [n, h, w, c], s.read(dy), [ho, wo, co], [kh, kw, sh, sw, pt, pl], out.data);
  return out.info;
}

/** The dims array of the addon's groupNorm entry points, after checking the shapes. */
function groupNormDims(kernel: string, x: TensorInfo, gamma: TensorInfo, beta: TensorInfo, attrs: Record<string, unknown> | undefined): number[] {
  const { groups, silu } = attrs as { groups: number; silu: boolean };
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const perSample = (t: TensorInfo, what: string): number => {
    const [b, one1, one2, tc] = t.shape;
    if (t.shape.length !== 4 || one1 !== 1 || one2 !== 1 || tc !== c || (b !== 1 && b !== n)) {
      throw new Error(`${kernel}: ${what} must be [1, 1, 1, ${c}] or [${n}, 1, 1, ${c}], got [${t.shape}]`);
    }
    return b === n && n !== 1 ? 1 : 0;
  };
  if (!isF32(x, gamma, beta) || x.shape.length !== 4) throw new Error(`${kernel}: expected float32 x [N, H, W, C], got ${x.dtype} [${x.shape}]`);
  if (!(Number.isInteger(groups) && groups > 0 && c % groups === 0)) throw new Error(`${kernel}: ${c} channels cannot be split into ${groups} groups`);
  return [n, h * w, c, groups, perSample(gamma, 'gamma'), perSample(beta, 'beta'), silu ? 1 : 0];
}

function groupNormKernel(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo {
  const { x, gamma, beta } = args.inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const dims = groupNormDims(GROUP_NORM_KERNEL, x, gamma, beta, args.attrs);
  const out = s.output(x.shape);
  addon.groupNorm(s.read(x), dims, (args.attrs as { eps: number }).eps, s.read(gamma), s.read(beta), out.data);
  return out.info;
}

function groupNormGradKernel(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo[] {
  const { x, gamma, beta, dy } = args.inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo; dy: TensorInfo };
  const dims = groupNormDims(GROUP_NORM_GRAD_KERNEL, x, gamma, beta, args.attrs);
  if (!isF32(dy) || dy.shape.join() !== x.shape.join()) throw new Error(`${GROUP_NORM_GRAD_KERNEL}: dy [${dy.shape}] must have the shape of x [${x.shape}]`);
  const [n, , , c] = x.shape as [number, number, number, number];
  const [dx, dg, db] = s.outputs([x.shape, [n, 1, 1, c], [n, 1, 1, c]]);
  addon.groupNormGrad(s.read(x), s.read(dy), dims, (args.attrs as { eps: number }).eps, s.read(gamma), s.read(beta), dx!.data, dg!.data, db!.data);
  return [dx!.info, dg!.info, db!.info];
}

/** Concat of float32 tensors along any axis: one memcpy per row and part (tfjs: a typed-array copy each, from JS). */
function concat(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo | null {
  const inputs = Object.values(args.inputs) as TensorInfo[];
  if (inputs.length < 2 || !isF32(...inputs)) return null;
  const axis = tf.util.parseAxisParam((args.attrs as { axis: number }).axis, inputs[0]!.shape)[0]!;
  const shapes = inputs.map((t) => t.shape);
  tf.backend_util.assertParamsConsistent(shapes, axis);
  if (inputs.some((t) => sizeOf(t.shape) === 0)) return null;
  const outShape = tf.backend_util.computeOutShape(shapes, axis);
  const out = s.output(outShape);
  addon.concatRows(inputs.map((t) => s.read(t)), shapes.map((sh) => sizeOf(sh.slice(axis))), sizeOf(outShape.slice(0, axis)), out.data);
  return out.info;
}

/** SplitV of a float32 tensor along any axis (the gradient of concat), as rows. */
function splitV(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo[] | null {
  const { x } = args.inputs as { x: TensorInfo };
  if (!isF32(x) || x.shape.length === 0) return null;
  const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
  const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax);
  if (sizes.some((n) => n <= 0) || sizes.reduce((a, b) => a + b, 0) !== x.shape[ax]) return null;
  const rest = sizeOf(x.shape.slice(ax + 1));
  const outs = s.outputs(sizes.map((n) => x.shape.map((d, i) => (i === ax ? n : d))));
  addon.splitRows(s.read(x), sizes.map((n) => n * rest), sizeOf(x.shape.slice(0, ax)), outs.map((o) => o.data));
  return outs.map((o) => o.info);
}

/**
 * Identity (tf.clone; every tensor a custom gradient saves goes through it) shares the input's
 * storage, as the cpu backend does, instead of copying it as wasm does. Safe: no kernel writes
 * into its inputs, and the storage is freed when its last tensor is.
 */
function identity(args: KernelArgs, backendName: string): TensorInfo | null {
  const { x } = args.inputs as { x: TensorInfo };
  if (backendName !== 'wasm' || x.dtype === 'string') return null;
  (args.backend as { incRef(dataId: unknown): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** A cast to the dtype the tensor already has (tfjs's Multiply gradient casts both factors): no copy. */
function castSame(args: KernelArgs, backendName: string): TensorInfo | null {
  const { x } = args.inputs as { x: TensorInfo };
  return (args.attrs as { dtype: string }).dtype === x.dtype ? identity(args, backendName) : null;
}

function sameSizeF32(kernel: string, ts: Record<string, TensorInfo>): number {
  const sizes = Object.values(ts).map((t) => sizeOf(t.shape));
  if (!isF32(...Object.values(ts)) || sizes.some((n) => n !== sizes[0])) {
    throw new Error(`${kernel}: ${Object.keys(ts).join(', ')} must be float32 tensors of one size, got ${Object.entries(ts).map(([k, t]) => `${k} ${t.dtype} [${t.shape}]`).join(', ')}`);
  }
  return sizes[0]!;
}

function adamKernel(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo[] {
  const { p, m, v, g } = args.inputs as { p: TensorInfo; m: TensorInfo; v: TensorInfo; g: TensorInfo };
  sameSizeF32(ADAM_KERNEL, { p, m, v, g });
  const a = args.attrs as { lr: number; beta1: number; beta2: number; eps: number; bc1: number; bc2: number; scale: number };
  const outs = s.outputs([p.shape, m.shape, v.shape]);
  addon.adamUpdate(s.read(p), s.read(m), s.read(v), s.read(g), [a.lr, a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.eps, a.bc1, a.bc2, a.scale], outs[0]!.data, outs[1]!.data, outs[2]!.data);
  return outs.map((o) => o.info);
}

function emaKernel(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo {
  const { shadow, p } = args.inputs as { shadow: TensorInfo; p: TensorInfo };
  sameSizeF32(EMA_KERNEL, { shadow, p });
  const { beta } = args.attrs as { beta: number };
  const out = s.output(shadow.shape);
  addon.emaUpdate(s.read(shadow), s.read(p), [beta, 1 - beta], out.data);
  return out.info;
}

/** Whether no other tensor shares this tensor's storage (the backend's reference count is 1). */
function exclusive(backend: unknown, t: TensorInfo): boolean {
  return (backend as { refCount(dataId: unknown): number }).refCount(t.dataId) === 1;
}

/** The inputs named prefix + index, for every prefix, as lists; checks they are float32 and sized alike. */
function indexedInputs(kernel: string, inputs: KernelArgs['inputs'], prefixes: string[]): TensorInfo[][] {
  const count = Object.keys(inputs).length / prefixes.length;
  if (!Number.isInteger(count)) throw new Error(`${kernel}: expected inputs ${prefixes.map((p) => `${p}0`).join(', ')}, … in groups of ${prefixes.length}`);
  const lists = prefixes.map(() => [] as TensorInfo[]);
  for (let i = 0; i < count; i++) {
    const group: Record<string, TensorInfo> = {};
    prefixes.forEach((p, j) => {
      const t = inputs[`${p}${i}`];
      if (t === undefined) throw new Error(`${kernel}: input ${p}${i} is missing`);
      group[`${p}${i}`] = t;
      lists[j]!.push(t);
    });
    sameSizeF32(kernel, group);
  }
  return lists;
}

function adamInPlaceKernel(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo[] {
  const [ps, ms, vs, gs] = indexedInputs(ADAM_IN_PLACE_KERNEL, args.inputs, ['p', 'm', 'v', 'g']) as [TensorInfo[], TensorInfo[], TensorInfo[], TensorInfo[]];
  const a = args.attrs as { lr: number; beta1: number; beta2: number; eps: number; bc1: number; bc2: number; scale: number };
  const h = [a.lr, a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.eps, a.bc1, a.bc2, a.scale];
  const shared = ps.map((_, i) => i).filter((i) => ![ps[i]!, ms[i]!, vs[i]!].every((t) => exclusive(args.backend, t)));
  const own = ps.map((_, i) => i).filter((i) => !shared.includes(i));
  // every allocation first (the index last): on wasm a malloc may grow (and detach) the heap under earlier views
  const outs = s.outputs(shared.flatMap((i) => [ps[i]!.shape, ms[i]!.shape, vs[i]!.shape])).map((o) => o.info);
  const idx = s.outputInt32([shared.length]);
  shared.forEach((i, k) => {
    idx.data[k] = i;
    addon.adamUpdate(s.read(ps[i]!), s.read(ms[i]!), s.read(vs[i]!), s.read(gs[i]!), h, s.read(outs[3 * k]!), s.read(outs[3 * k + 1]!), s.read(outs[3 * k + 2]!));
  });
  const read = (list: TensorInfo[]) => own.map((i) => s.read(list[i]!));
  addon.adamInPlace(read(ps), read(ms), read(vs), read(gs), h);
  return [idx.info, ...outs];
}

function emaInPlaceKernel(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo[] {
  const [ss, ps] = indexedInputs(EMA_IN_PLACE_KERNEL, args.inputs, ['s', 'p']) as [TensorInfo[], TensorInfo[]];
  const { beta } = args.attrs as { beta: number };
  const shared = ss.map((_, i) => i).filter((i) => !exclusive(args.backend, ss[i]!));
  const own = ss.map((_, i) => i).filter((i) => !shared.includes(i));
  const outs = s.outputs(shared.map((i) => ss[i]!.shape)).map((o) => o.info);
  const idx = s.outputInt32([shared.length]);
  shared.forEach((i, k) => {
    idx.data[k] = i;
    addon.emaUpdate(s.read(ss[i]!), s.read(ps[i]!), [beta, 1 - beta], s.read(outs[k]!));
  });
  addon.emaInPlace(own.map((i) => s.read(ss[i]!)), own.map((i) => s.read(ps[i]!)), [beta, 1 - beta]);
  return [idx.info, ...outs];
}

function sumSquaresKernel(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo {
  const parts = Object.values(args.inputs) as TensorInfo[];
  if (!isF32(...parts)) throw new Error(`${SUM_SQUARES_KERNEL}: expected float32 tensors`);
  const out = s.output([]);
  out.data[0] = addon.sumSquares(parts.map((t) => s.read(t)));
  return out.info;
}

function biasGradKernel(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo {
  const { dy } = args.inputs as { dy: TensorInfo };
  if (dy === undefined || !isF32(dy) || dy.shape.length < 1 || dy.shape[dy.shape.length - 1]! < 1) {
    throw new Error(`${BIAS_GRAD_KERNEL}: expected a float32 dy [..., C], got ${dy?.dtype} [${dy?.shape}]`);
  }
  const c = dy.shape[dy.shape.length - 1]!;
  const out = s.output([c]);
  addon.columnSums(s.read(dy), sizeOf(dy.shape) / c, c, out.data);
  return out.info;
}

function dropoutMaskKernel(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo[] {
  const { shape, keep, state } = args.attrs as { shape: number[]; keep: number; state: readonly number[] };
  if (!Array.isArray(shape) || shape.some((d) => !(Number.isInteger(d) && d >= 0)) || !Array.isArray(state) || state.length !== 4) {
    throw new Error(`${DROPOUT_MASK_KERNEL}: expected attrs shape (non-negative integers) and state (four integers), got shape ${JSON.stringify(shape)}, state ${JSON.stringify(state)}`);
  }
  const mask = s.output(shape);
  const after = addon.dropoutMask([...state], keep, mask.data);
  const st = s.outputInt32([4]);
  for (let i = 0; i < 4; i++) st.data[i] = after[i]! | 0;
  return [mask.info, st.info];
}

/** Whether `small` broadcasts against `full` by repetition: its shape, without leading 1s, ends `full`'s shape. */
function repeatsInto(small: number[], full: number[]): boolean {
  let k = 0;
  while (k < small.length && small[k] === 1) k++;
  const tail = small.slice(k);
  return tail.length <= full.length && tail.every((d, i) => d === full[full.length - tail.length + i]);
}

/**
 * Add and Multiply of float32 tensors where one input has the output's shape and the other repeats
 * into it (the same shape, a scalar, or [C] against [..., C]): on the threads, one IEEE operation
 * per element as the backend's own kernel does. Other broadcasts fall through.
 */
function binary(addon: NativeAddon, s: Storage, args: KernelArgs, op: 0 | 1): TensorInfo | null {
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  if (a === undefined || b === undefined || a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const na = sizeOf(a.shape), nb = sizeOf(b.shape);
  // small tensors: the backend's own kernel costs less than the call
  if (Math.max(na, nb) < 4096 || Math.min(na, nb) === 0) return null;
  const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const n = sizeOf(outShape);
  if (!((na === n && repeatsInto(b.shape, outShape)) || (nb === n && repeatsInto(a.shape, outShape)))) return null;
  const out = s.output(outShape);
  addon.binary(op, s.read(a), s.read(b), out.data);
  return out.info;
}

/** A shape of rank ≤ 4 padded with leading 1s to rank 4, or null for higher ranks. */
const pad4 = (shape: number[]): number[] | null => (shape.length > 4 ? null : [...new Array<number>(4 - shape.length).fill(1), ...shape]);

function transpose(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo | null {
  const { x } = args.inputs as { x: TensorInfo };
  const { perm } = args.attrs as { perm: number[] };
  const shape = pad4(x.shape);
  if (!isF32(x) || shape === null || perm.length !== x.shape.length || sizeOf(x.shape) === 0) return null;
  const lead = 4 - x.shape.length;
  const perm4 = [...Array.from({ length: lead }, (_, i) => i), ...perm.map((p) => p + lead)];
  const out = s.output(perm.map((p) => x.shape[p]!));
  addon.transpose4(s.read(x), shape, perm4, out.data);
  return out.info;
}

function reverse(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo | null {
  const { x } = args.inputs as { x: TensorInfo };
  const shape = pad4(x.shape);
  if (!isF32(x) || shape === null || sizeOf(x.shape) === 0) return null;
  const axes = tf.util.parseAxisParam((args.attrs as { dims: number | number[] }).dims, x.shape);
  const lead = 4 - x.shape.length;
  const flip = [0, 1, 2, 3].map((k) => (axes.includes(k - lead) ? 1 : 0));
  const out = s.output(x.shape);
  addon.reverse4(s.read(x), shape, flip, out.data);
  return out.info;
}

/** Nearest-neighbour resize by exactly 2× (the UNets' upsampling); other resizes fall through. */
function resizeNearest(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo | null {
  const { images } = args.inputs as { images: TensorInfo };
  const { size, alignCorners } = args.attrs as { size: [number, number]; alignCorners: boolean };
  if (!isF32(images) || images.shape.length !== 4 || alignCorners || sizeOf(images.shape) === 0) return null;
  const [n, h, w, c] = images.shape as [number, number, number, number];
  // with half-pixel centres or without, output pixel i reads input pixel ⌊i/2⌋ at exactly 2×
  if (size[0] !== 2 * h || size[1] !== 2 * w) return null;
  const out = s.output([n, 2 * h, 2 * w, c]);
  addon.upsample2x(s.read(images), [n, h, w, c], out.data);
  return out.info;
}

/** 2×2 average pooling with stride 2 and no padding over even sizes (the UNets' downsampling); others fall through. */
function avgPool2x(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo | null {
  const { x } = args.inputs as { x: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as { filterSize: number | [number, number]; strides: number | [number, number]; pad: unknown; dimRoundingMode?: string };
  const pair = (v: number | [number, number]) => (Array.isArray(v) ? v : [v, v]);
  if (!isF32(x) || x.shape.length !== 4 || sizeOf(x.shape) === 0 || dimRoundingMode !== undefined) return null;
  if (pair(filterSize).some((k) => k !== 2) || pair(strides).some((k) => k !== 2) || (pad !== 'valid' && pad !== 0)) return null;
  const [n, h, w, c] = x.shape as [number, number, number, number];
  if (h % 2 !== 0 || w % 2 !== 0) return null;
  const out = s.output([n, h / 2, w / 2, c]);
  addon.avgPool2x(s.read(x), [n, h, w, c], out.data);
  return out.info;
}

/** Softmax over the last axis (attention weights), threaded over the rows; other axes fall through. */
function softmaxLastAxis(addon: NativeAddon, s: Storage, args: KernelArgs): TensorInfo | null {
  const { logits } = args.inputs as { logits: TensorInfo };
  const dim = (args.attrs as { dim?: number }).dim ?? -1;
  const rank = logits.shape.length;
  if (!isF32(logits) || rank === 0 || sizeOf(logits.shape) === 0 || (dim !== -1 && dim !== rank - 1)) return null;
  const n = logits.shape[rank - 1]!;
  const out = s.output([...logits.shape]);
  addon.softmax(s.read(logits), [sizeOf(logits.shape) / n, n], out.data);
  return out.info;
}

function override(addon: NativeAddon, name: KernelName, args: KernelArgs, backendName: string): TensorInfo | TensorInfo[] | null {
  const s = storageFor(backendName, args.backend);
  if (s === null) return null;
  switch (name) {
    case 'BatchMatMul':
      return batchMatMul(addon, s, args);
    case 'Conv2D':
      return conv(addon, s, args, false);
    case 'FusedConv2D':
      return conv(addon, s, args, true);
    case 'Concat':
      return concat(addon, s, args);
    case 'SplitV':
      return splitV(addon, s, args);
    case 'Identity':
      return identity(args, backendName);
    case 'Transpose':
      return transpose(addon, s, args);
    case 'Reverse':
      return reverse(addon, s, args);
    case 'ResizeNearestNeighbor':
      return resizeNearest(addon, s, args);
    case 'AvgPool':
      return avgPool2x(addon, s, args);
    case 'Cast':
      return castSame(args, backendName);
    case 'Softmax':
      return softmaxLastAxis(addon, s, args);
    case 'Add':
      return binary(addon, s, args, 0);
    case 'Multiply':
      return binary(addon, s, args, 1);
  }
}

export interface EnableOptions {
  /** The backend whose kernels to replace: `wasm` or `cpu` (default: the active backend). */
  backend?: string;
  /** GEMM threads (default: DI_NATIVE_THREADS, else every core). */
  threads?: number;
}

export interface EnableResult extends NativeStatus {
  enabled: boolean;
  backend: string;
  kernels: string[];
}

/**
 * Routes the backend's matMul, convolution and data-movement kernels (concat, split, transpose,
 * reverse, 2× nearest resize, 2×2 average pooling, identity and same-dtype casts) and softmax through the native addon. Returns what it
 * did: `enabled: false` with a `reason` when the addon is missing, DI_NATIVE=0 is set, or the
 * backend is not one it can serve (tfjs-node has its own native kernels). Calling it again is
 * harmless; {@link disableNativeKernels} restores the backend's own kernels.
 */
export function enableNativeKernels(options: EnableOptions = {}): EnableResult {
  const backendName = options.backend ?? tf.getBackend();
  const none = (reason: string): EnableResult => ({ available: loadNative() !== null, enabled: false, backend: backendName, kernels: [], reason });
  if (process.env.DI_NATIVE === '0') return none('DI_NATIVE=0 is set');
  if (backendName !== 'wasm' && backendName !== 'cpu') return none(`the ${backendName} backend has its own kernels; native kernels serve wasm and cpu`);
  const addon = loadNative();
  if (addon === null) return none(loaded!.reason!);
  const threads = options.threads ?? (process.env.DI_NATIVE_THREADS ? Number(process.env.DI_NATIVE_THREADS) : availableParallelism());
  setNativeThreads(threads);
  for (const name of KERNELS) {
    const key = `${backendName}/${name}`;
    if (originals.has(key)) continue;
    const original = tf.getKernel(name, backendName);
    if (original === undefined) continue;
    originals.set(key, original);
    const fallback = original.kernelFunc as unknown as KernelFunc;
    tf.unregisterKernel(name, backendName);
    tf.registerKernel({
      kernelName: name,
      backendName,
      kernelFunc: ((args: KernelArgs) => override(addon, name, args, backendName) ?? fallback(args)) as unknown as tf.KernelFunc,
    });
  }
  if (!added.has(backendName)) {
    const own: [string, (s: Storage, args: KernelArgs) => TensorInfo | TensorInfo[]][] = [
      [FILTER_GRAD_KERNEL, (s, args) => filterGrad(addon, s, args)],
      [GROUP_NORM_KERNEL, (s, args) => groupNormKernel(addon, s, args)],
      [GROUP_NORM_GRAD_KERNEL, (s, args) => groupNormGradKernel(addon, s, args)],
      [ADAM_KERNEL, (s, args) => adamKernel(addon, s, args)],
      [EMA_KERNEL, (s, args) => emaKernel(addon, s, args)],
      [ADAM_IN_PLACE_KERNEL, (s, args) => adamInPlaceKernel(addon, s, args)],
      [EMA_IN_PLACE_KERNEL, (s, args) => emaInPlaceKernel(addon, s, args)],
      [SUM_SQUARES_KERNEL, (s, args) => sumSquaresKernel(addon, s, args)],
      [DROPOUT_MASK_KERNEL, (s, args) => dropoutMaskKernel(addon, s, args)],
      [BIAS_GRAD_KERNEL, (s, args) => biasGradKernel(addon, s, args)],
    ];
    for (const [kernelName, run] of own) {
      // in place only on wasm: the cpu backend's dataSync() hands out the storage itself, which a
      // caller may hold across an update
      if (backendName !== 'wasm' && (kernelName === ADAM_IN_PLACE_KERNEL || kernelName === EMA_IN_PLACE_KERNEL)) continue;
      if (tf.getKernel(kernelName, backendName) !== undefined) tf.unregisterKernel(kernelName, backendName);
      tf.registerKernel({
        kernelName,
        backendName,
        kernelFunc: ((args: KernelArgs) => run(storageFor(backendName, args.backend)!, args)) as unknown as tf.KernelFunc,
      });
    }
    added.add(backendName);
  }
  patchSavedTensorClones();
  const kernels = [...KERNELS.filter((n) => originals.has(`${backendName}/${n}`)), ...(added.has(backendName) ? OWN_KERNELS.filter((k) => tf.getKernel(k, backendName) !== undefined) : [])];
  return { ...nativeStatus(), enabled: true, backend: backendName, kernels };
}

/** The parts of tfjs-core's Engine (4.x) that the clone below uses. */
interface EngineInternals {
  state: { gradientDepth: number; tensorInfo: Map<unknown, { backend: { incRef(dataId: unknown): void } }> };
  backendName: string;
  makeTensorFromTensorInfo(info: TensorInfo, backend?: unknown): tf.Tensor;
  clone(x: tf.Tensor): tf.Tensor;
}

/**
 * tfjs saves every tensor that a gradient needs as `engine.clone(x)`: an Identity kernel call plus a
 * tape node linking the copy to x (which only a gradient of that gradient follows), about 1,200 a
 * UNet teacher step. When the engine records a first-order gradient only (gradientDepth 1), the
 * backward pass runs untaped and nothing follows that node, so on a backend these kernels serve
 * the copy is made directly: a new tensor on the same storage, its reference count raised, as the
 * Identity override above does. Nested gradients (R1 penalties) keep tfjs's clone.
 */
function patchSavedTensorClones(): void {
  const engine = tf.engine() as unknown as EngineInternals;
  if (Object.prototype.hasOwnProperty.call(engine, 'clone')) return;
  const tfjsClone = (Object.getPrototypeOf(engine) as EngineInternals).clone;
  engine.clone = function (this: EngineInternals, x: tf.Tensor): tf.Tensor {
    if (this.state.gradientDepth === 1 && x.dtype !== 'string' && originals.has(`${this.backendName}/Identity`)) {
      const info = this.state.tensorInfo.get(x.dataId);
      if (info !== undefined) {
        info.backend.incRef(x.dataId);
        return this.makeTensorFromTensorInfo({ dataId: x.dataId, shape: x.shape, dtype: x.dtype }, info.backend);
      }
    }
    return tfjsClone.call(this, x);
  };
}

/** Restores the backend's own kernels that {@link enableNativeKernels} replaced. */
export function disableNativeKernels(backend?: string): void {
  for (const b of [...added]) {
    if (backend !== undefined && b !== backend) continue;
    for (const k of OWN_KERNELS) if (tf.getKernel(k, b) !== undefined) tf.unregisterKernel(k, b);
    added.delete(b);
  }
  for (const [key, config] of originals) {
    const [b, name] = key.split('/') as [string, string];
    if (backend !== undefined && b !== backend) continue;
    tf.unregisterKernel(name, b);
    tf.registerKernel(config);
    originals.delete(key);
  }
  if (originals.size === 0) delete (tf.engine() as unknown as Partial<EngineInternals>).clone;
}

/** Whether the native kernels currently serve this backend (default: the active one). */
export function nativeKernelsEnabled(backend: string = tf.getBackend()): boolean {
  return KERNELS.some((n) => originals.has(`${backend}/${n}`)) || added.has(backend);
}

/** A one-line description for logs: "native kernels (OpenBLAS SkylakeX SGEMM, 2 threads)" or why not. */
export function describeNative(result: EnableResult): string {
  if (!result.enabled) return `native kernels off: ${result.reason ?? 'unknown reason'}`;
  const gemm = result.gemm === 'openblas' ? `OpenBLAS${result.blasCore ? ` ${result.blasCore}` : ''}` : 'built-in';
  return `native kernels (${gemm} SGEMM, ${result.threads} thread${result.threads === 1 ? '' : 's'})`;
}
