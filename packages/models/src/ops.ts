import * as tf from '@tensorflow/tfjs';

import type { Rng } from '@diff-instruct/sde';

/**
 * The layer primitives every network in this package is built from.
 *
 * On the `wasm` backend, tfjs's own matMul gradient uses the transposeA/transposeB flags, which
 * run 10–20× slower than a plain matMul (see docs/design.md, "Backends"). So `matmul` carries its
 * own gradient written with explicit transposes. Its backward pass calls `matmul` again, so second
 * order gradients (R1 penalties, gradients of scores) take the fast path too. Gradients use only
 * saved inputs, never saved outputs (see `silu`), so second-order gradients are correct.
 */

type MatMul = (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** Whether the active backend has this kernel (the `@diff-instruct/native` ones are registered per backend). */
function hasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/**
 * Whether the backend's matMul runs the transposeA/B flags at full speed: true where
 * `@diff-instruct/native` serves it (OpenBLAS or the built-in GEMM take op(A), op(B) directly; its
 * filter-gradient kernel is registered with it), false on plain wasm and cpu.
 */
function fastTransposeFlags(): boolean {
  return hasKernel(FILTER_GRAD_KERNEL);
}

/** One function per input, each giving that input's gradient. */
type LazyGrads = (dy: tf.Tensor, saved: tf.Tensor[]) => (() => tf.Tensor)[];

/** The engine method that tf.customGrad runs on (tfjs-core 4.x). */
interface KernelFuncEngine {
  runKernelFunc(config: {
    forwardFunc: (backend: unknown, save: tf.GradSaveFunc) => tf.Tensor;
    backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, () => tf.Tensor>;
    inputs: Record<string, tf.Tensor>;
  }): tf.Tensor;
}

/**
 * tf.customGrad with the gradient given as one function per input. tf.customGrad computes every
 * input's gradient; the engine only asks for those of inputs on the path to what is differentiated,
 * so with this a frozen network's weight gradients are never computed when only ∂/∂x is wanted
 * (SiD's generator step back-propagates through two denoisers), nor ∂x of a network's first layer
 * when it trains on data. `f` gets the inputs and tfjs's save function.
 */
function lazyCustomGrad<F>(f: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; grads: LazyGrads }): F {
  return ((...inputs: tf.Tensor[]) => {
    let grads: LazyGrads | undefined;
    const named: Record<string, tf.Tensor> = {};
    inputs.forEach((t, i) => {
      named[i] = t;
    });
    return (tf.engine() as unknown as KernelFuncEngine).runKernelFunc({
      forwardFunc: (_backend, save) => {
        const r = f(inputs, save);
        grads = r.grads;
        return r.value;
      },
      backwardsFunc: (dy, saved) => Object.fromEntries(grads!(dy, saved).map((g, i) => [String(i), g])),
      inputs: named,
    });
  }) as unknown as F;
}

type MatMulT = (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
const flagged = new Map<string, MatMulT>();

/**
 * op(A)·op(B) with the transpose flags (2-D or batched 3-D), as a custom op whose gradients are
 * calls of itself with other flags (so every order of gradient works), e.g. for C = A·Bᵀ:
 * dA = dC·B, dB = dCᵀ·A. No transpose kernel runs, forward or backward.
 */
function matmulFlags(ta: boolean, tb: boolean): MatMulT {
  const key = `${ta}${tb}`;
  let f = flagged.get(key);
  if (f === undefined) {
    f = lazyCustomGrad<MatMulT>(([a, b], save) => {
      save([a!, b!]);
      return {
        value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, ta, tb),
        grads: (dy, [sa, sb]) => {
          if (!ta && !tb) return [() => matmulFlags(false, true)(dy, sb!), () => matmulFlags(true, false)(sa!, dy)];
          if (!ta && tb) return [() => matmulFlags(false, false)(dy, sb!), () => matmulFlags(true, false)(dy, sa!)];
          if (ta && !tb) return [() => matmulFlags(false, true)(sb!, dy), () => matmulFlags(false, false)(sa!, dy)];
          return [() => matmulFlags(true, true)(sb!, dy), () => matmulFlags(true, true)(dy, sa!)];
        },
      };
    });
    flagged.set(key, f);
  }
  return f;
}

const matmulWithGrad = lazyCustomGrad<MatMul>(([a, b], save) => {
  save([a!, b!]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    // dA = dy·Bᵀ, dB = Aᵀ·dy
    grads: (dy, [sa, sb]) => [() => matmul(dy as tf.Tensor2D, tf.transpose(sb as tf.Tensor2D)), () => matmul(tf.transpose(sa as tf.Tensor2D), dy as tf.Tensor2D)],
  };
});

/**
 * A·B for [n, k]·[k, m]. Its gradient uses the transpose flags where the native kernels serve
 * matMul, and explicit transposes otherwise (wasm's own flagged matMul is 10–20× slower).
 */
export function matmul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2) {
    throw new Error(`matmul: expected two rank-2 tensors, got shapes [${a.shape}] and [${b.shape}]`);
  }
  if (a.shape[1] !== b.shape[0]) {
    throw new Error(`matmul: inner dimensions differ: [${a.shape}]·[${b.shape}]`);
  }
  return (fastTransposeFlags() ? matmulFlags(false, false)(a, b) : matmulWithGrad(a, b)) as tf.Tensor2D;
}

/** An affine layer x·W + b, with x [N, in], W [in, out], b [out]. */
export function dense(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return addBias(matmul(x, w), b);
}

/** A kernel of `@diff-instruct/native` (its BIAS_GRAD_KERNEL): Σ of dy [..., C] over the leading axes. */
export const BIAS_GRAD_KERNEL = 'DiBiasGrad';

/**
 * Σ of dy [..., C] over every axis but the last, → [C]: the gradient of a bias added along the last
 * axis. One native kernel where the backend has it (and no outer gradient is being recorded);
 * otherwise ones[1, M]·dy[M, C], a plain matmul, about 10× faster on wasm than tf.sum over the
 * leading axes (which transposes first), and differentiable again.
 */
function biasGrad(dy: tf.Tensor): tf.Tensor1D {
  const c = dy.shape[dy.rank - 1]!;
  const m = dy.size / c;
  if (dy.dtype === 'float32' && !recordingHigherOrder() && hasKernel(BIAS_GRAD_KERNEL)) {
    return tf.engine().runKernel(BIAS_GRAD_KERNEL, { dy }, {}) as tf.Tensor1D;
  }
  return matmul(tf.ones([1, m]) as tf.Tensor2D, dy.reshape([m, c]) as tf.Tensor2D).reshape([c]);
}

const addBiasWithGrad = lazyCustomGrad<<T extends tf.Tensor>(x: T, b: tf.Tensor1D) => T>(([x, b]) => ({
  value: tf.add(x!, b!),
  grads: (dy) => [() => dy, () => biasGrad(dy)],
}));

/** x + b along the last axis, b [C], with the bias gradient of {@link biasGrad}. */
export function addBias<T extends tf.Tensor>(x: T, b: tf.Tensor1D): T {
  if (b.rank !== 1 || b.shape[0] !== x.shape[x.rank - 1]) {
    throw new Error(`addBias: expected a bias of shape [${x.shape[x.rank - 1]}], got [${b.shape}]`);
  }
  return addBiasWithGrad(x, b);
}

const siluWithGrad = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  return {
    value: tf.mul(x, tf.sigmoid(x)),
    // d/dx x·s(x) = s·(1 + x·(1 − s)), written from the saved input only
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const sx = saved[0]!;
      const s = tf.sigmoid(sx);
      return [tf.mul(dy, tf.mul(s, tf.add(1, tf.mul(sx, tf.sub(1, s)))))];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * SiLU (swish), x·sigmoid(x). Its gradient is written in terms of the input x only: tfjs 4.22
 * computes second-order gradients wrongly (silently) through ops whose gradient reuses their saved
 * output (sigmoid, tanh, exp, pow, softmax, elu, max), because the tape records the saved copy
 * before the op that produces it. A custom gradient from the input avoids that.
 */
export function silu<T extends tf.Tensor>(x: T): T {
  return siluWithGrad(x) as T;
}

/**
 * An embedding lookup written as a matmul, label [N, C] · table [C, E] → [N, E], because tfjs has
 * no gradient for gather on wasm. One-hot rows select a row of the table; an all-zero row gives a
 * zero embedding, the "unconditional" label of classifier-free guidance.
 */
export function oneHotEmbed(label: tf.Tensor2D, table: tf.Tensor2D): tf.Tensor2D {
  if (label.rank !== 2 || label.shape[1] !== table.shape[0]) {
    throw new Error(`oneHotEmbed: label must have shape [N, ${table.shape[0]}], got [${label.shape}]`);
  }
  return matmul(label, table);
}

// ---------------------------------------------------------------------------------------------
// Image layers. NHWC throughout; conv kernels are [kh, kw, in, out] (tfjs HWIO; PyTorch's
// Conv2d stores [out, in, kh, kw]).
//
// tfjs's own conv2d gradient needs Conv2DBackpropFilter, which the wasm backend lacks, and its
// second-order gradients (AvgPool, resize) fail. So every image op below is a tf.customGrad whose
// backward pass is written with the same custom ops (forward convs, pads, slices, reshapes,
// transposes), which makes every order of gradient work and keeps wasm on its fast kernels.
// ---------------------------------------------------------------------------------------------

/** Explicit spatial padding [top, bottom, left, right]; a negative entry crops the input. */
type Pads = readonly [number, number, number, number];

type Conv = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;

/**
 * Inserts s − 1 zeros after every row and column: [N, H, W, C] → [N, H·s, W·s, C], so that a
 * stride-s convolution's gradient becomes a stride-1 convolution.
 */
function dilate(x: tf.Tensor4D, s: number): tf.Tensor4D {
  if (s === 1) return x;
  const [n, h, w, c] = x.shape;
  const x6 = x.reshape([n, h, 1, w, 1, c]);
  const padded = tf.pad(x6, [[0, 0], [0, 0], [0, s - 1], [0, 0], [0, s - 1], [0, 0]]);
  return padded.reshape([n, h * s, w * s, c]);
}

/**
 * A valid convolution of x padded by `pads`, with stride s: y[o] = Σ_k x_pad[o·s + k]·w[k].
 * Gradients, with dyd = dilate(dy, s):
 * - ∂x = conv(dyd, w flipped in space and with in/out swapped), stride 1, padded to give [H, W];
 * - ∂w = conv(x with the batch as channels [C_in, H, W, N], dyd as a filter [H_out·s, W_out·s, N, C_out]),
 *   stride 1, padded to give [kh, kw].
 * Both are calls of this same function, so the gradient is differentiable again.
 */
function convPadded(x: tf.Tensor4D, w: tf.Tensor4D, s: number, pads: Pads, bias: tf.Tensor1D | null = null): tf.Tensor4D {
  let xc = x;
  if (pads.some((p) => p < 0)) {
    const [n, h, wd, c] = x.shape;
    const [t, b, l, r] = pads.map((p) => Math.max(0, -p)) as [number, number, number, number];
    xc = tf.slice(x, [0, t, l, 0], [n, h - t - b, wd - l - r, c]);
  }
  const [pt, pb, pl, pr] = pads.map((p) => Math.max(0, p)) as [number, number, number, number];
  const pad = pt + pb + pl + pr === 0 ? 'valid' : ([[0, 0], [pt, pb], [pl, pr], [0, 0]] as Parameters<typeof tf.conv2d>[3]);
  if (bias !== null) {
    // conv + bias as one fused kernel (XNNPACK adds the bias in its output loop: one pass less)
    const fb = lazyCustomGrad<(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.Tensor4D>(([xx, ww, bb], save) => {
      save([xx!, ww!]);
      return {
        value: tf.fused.conv2d({ x: xx as tf.Tensor4D, filter: ww as tf.Tensor4D, strides: s, pad, bias: bb }),
        grads: (dy, saved) => {
          const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
          const d = dy as tf.Tensor4D;
          return [() => convInputGrad(d, sw, sx.shape, s, [pt, pb, pl, pr]), () => convWeightGrad(d, sx, sw.shape, s, [pt, pb, pl, pr]), () => biasGrad(d)];
        },
      };
    });
    return fb(xc, w, bias);
  }
  const f = lazyCustomGrad<Conv>(([xx, ww], save) => {
    save([xx!, ww!]);
    return {
      value: tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, s, pad),
      grads: (dy, saved) => {
        const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
        const d = dy as tf.Tensor4D;
        return [() => convInputGrad(d, sw, sx.shape, s, [pt, pb, pl, pr]), () => convWeightGrad(d, sx, sw.shape, s, [pt, pb, pl, pr])];
      },
    };
  });
  return f(xc, w);
}

/** ∂x of convPadded: a stride-1 conv of the dilated dy with the kernel flipped and in/out swapped. */
function convInputGrad(dy: tf.Tensor4D, w: tf.Tensor4D, xShape: number[], s: number, pads: Pads): tf.Tensor4D {
  const [, h, wd] = xShape as [number, number, number, number];
  const [kh, kw] = w.shape;
  const [pt, , pl] = pads;
  const [, ho, wo] = dy.shape;
  const wT = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  // dx[j] = Σ_m dyd_pad[j + m]·w[kh − 1 − m], dyd_pad = dyd with kh − 1 − top zeros in front and
  // enough behind for H outputs (dyd has H_out·s rows, its last s − 1 of them zero).
  return convPadded(dilate(dy, s), wT, 1, [kh - 1 - pt, h - ho * s + pt, kw - 1 - pl, wd - wo * s + pl]);
}

/**
 * The kernel that `@diff-instruct/native` registers for a backend: the filter gradient of a
 * convolution, dw = Σ x_pad[o·s + k]·dy[o], for C_out a multiple of 16. When it is present,
 * `convWeightGrad` uses it (no transposes, no dilation of dy); otherwise the forward-conv path below.
 */
export const FILTER_GRAD_KERNEL = 'DiConv2DFilterGrad';

type FilterGrad = (x: tf.Tensor4D, dy: tf.Tensor4D) => tf.Tensor4D;

/** ∂w of convPadded by the native kernel, with the gradients of that gradient written as convs (second order). */
function nativeWeightGrad(dy: tf.Tensor4D, x: tf.Tensor4D, wShape: number[], s: number, pads: Pads): tf.Tensor4D | null {
  if (wShape[3]! % 16 !== 0 || !hasKernel(FILTER_GRAD_KERNEL)) return null;
  const f = lazyCustomGrad<FilterGrad>(([xx, dyy], save) => {
    save([xx!, dyy!]);
    return {
      value: tf.engine().runKernel(FILTER_GRAD_KERNEL, { x: xx!, dy: dyy! }, { filterShape: wShape, strides: [s, s], pads: [...pads] }) as tf.Tensor4D,
      // dw is bilinear in (x, dy): ∂/∂dy = conv(x, g), ∂/∂x = the input gradient of a conv with filter g
      grads: (g, saved) => {
        const [sx, sdy] = saved as [tf.Tensor4D, tf.Tensor4D];
        return [() => convInputGrad(sdy, g as tf.Tensor4D, sx.shape, s, pads), () => convPadded(sx, g as tf.Tensor4D, s, pads)];
      },
    };
  });
  return f(x, dy);
}

/** ∂w of convPadded: one stride-1 conv with the batch axis taken as channels. */
function convWeightGrad(dy: tf.Tensor4D, x: tf.Tensor4D, wShape: number[], s: number, pads: Pads): tf.Tensor4D {
  const viaKernel = nativeWeightGrad(dy, x, wShape, s, pads);
  if (viaKernel !== null) return viaKernel;
  const [kh, kw] = wShape as [number, number, number, number];
  const [, h, wd] = x.shape;
  const [pt, , pl] = pads;
  const [, ho, wo] = dy.shape;
  const xT = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D; // [C_in, H, W, N]
  const dyT = tf.transpose(dilate(dy, s), [1, 2, 0, 3]) as tf.Tensor4D; // [H_out·s, W_out·s, N, C_out]
  // dw[a] = Σ_i x_pad[a + i]·dyd[i]: pad x so that exactly kh (kw) outputs remain.
  const out = convPadded(xT, dyT, 1, [pt, kh - 1 + ho * s - h - pt, pl, kw - 1 + wo * s - wd - pl]); // [C_in, kh, kw, C_out]
  return tf.transpose(out, [1, 2, 0, 3]) as tf.Tensor4D;
}

/**
 * A 2-D convolution with 'same' padding (as TensorFlow: out = ⌈in / stride⌉, the odd padding
 * pixel at the bottom/right), x [N, H, W, C_in], w [kh, kw, C_in, C_out]. Its gradient is built
 * from forward convolutions only (see `convPadded`), so it runs on wasm and can be differentiated
 * again (R1 penalties). A 1×1, stride-1 conv is a `matmul`.
 */
export function conv2d(x: tf.Tensor4D, w: tf.Tensor4D, stride: 1 | 2 = 1): tf.Tensor4D {
  return conv2dBias(x, w, null, stride);
}

/**
 * `conv2d(x, w, stride) + b` (b [C_out], or null for none) in one fused kernel, with the bias
 * gradient as a matmul against ones (see {@link biasGrad}).
 */
export function conv2dBias(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D | null, stride: 1 | 2 = 1): tf.Tensor4D {
  if (x.rank !== 4 || w.rank !== 4) {
    throw new Error(`conv2d: expected x [N, H, W, C] and w [kh, kw, in, out], got shapes [${x.shape}] and [${w.shape}]`);
  }
  const [n, h, wd, c] = x.shape;
  const [kh, kw, ci, co] = w.shape;
  if (c !== ci) throw new Error(`conv2d: x has ${c} channels but w expects ${ci}: [${x.shape}] * [${w.shape}]`);
  if (stride !== 1 && stride !== 2) throw new Error(`conv2d: stride must be 1 or 2, got ${String(stride)}`);
  return tf.tidy(() => {
    if (b !== null && (b.rank !== 1 || b.shape[0] !== co)) throw new Error(`conv2d: expected a bias of shape [${co}], got [${b.shape}]`);
    if (kh === 1 && kw === 1 && stride === 1) {
      const y = matmul(x.reshape([n * h * wd, c]), w.reshape([ci, co]));
      return (b === null ? y : addBias(y, b)).reshape([n, h, wd, co]);
    }
    const same = (size: number, k: number): [number, number] => {
      const total = Math.max(0, (Math.ceil(size / stride) - 1) * stride + k - size);
      return [Math.floor(total / 2), total - Math.floor(total / 2)];
    };
    return convPadded(x, w, stride, [...same(h, kh), ...same(wd, kw)], b);
  });
}

type Unary4D = (x: tf.Tensor4D) => tf.Tensor4D;

const upsampleWithGrad = tf.customGrad(((x: tf.Tensor4D) => {
  const [, h, w] = x.shape;
  return {
    value: tf.image.resizeNearestNeighbor(x, [2 * h, 2 * w]),
    // each input pixel feeds four outputs: the gradient is their sum, 4 × their mean
    gradFunc: (dy: tf.Tensor4D) => [tf.mul(downsample2x(dy), 4)],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as Unary4D;

const downsampleWithGrad = tf.customGrad(((x: tf.Tensor4D) => ({
  value: tf.avgPool(x, 2, 2, 'valid'),
  // each output is the mean of four inputs
  gradFunc: (dy: tf.Tensor4D) => [tf.mul(upsample2x(dy), 0.25)],
})) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as Unary4D;

/**
 * Nearest-neighbour 2× upsampling, [N, H, W, C] → [N, 2H, 2W, C]. Its gradient is 4·downsample2x
 * and vice versa, so every order of gradient works (tfjs's ResizeNearestNeighborGrad has none).
 */
export function upsample2x(x: tf.Tensor4D): tf.Tensor4D {
  if (x.rank !== 4) throw new Error(`upsample2x: expected [N, H, W, C], got [${x.shape}]`);
  return upsampleWithGrad(x);
}

/** 2×2 average pooling, [N, H, W, C] → [N, H/2, W/2, C]; H and W must be even. See `upsample2x`. */
export function downsample2x(x: tf.Tensor4D): tf.Tensor4D {
  if (x.rank !== 4 || x.shape[1] % 2 !== 0 || x.shape[2] % 2 !== 0) {
    throw new Error(`downsample2x: expected [N, H, W, C] with even H and W, got [${x.shape}]`);
  }
  return downsampleWithGrad(x);
}

/**
 * The mean of x [N, H·W, groups, C/groups] over axes 1 and 3, kept as [N, 1, groups, 1]. Two steps,
 * innermost axis first: wasm reduces over non-innermost axes by transposing, 2–3× slower.
 */
function groupMean(x: tf.Tensor4D): tf.Tensor4D {
  return tf.mean(tf.mean(x, 3, true), 1, true);
}

/**
 * Group normalisation (Wu & He 2018) of x [N, H, W, C] over (H, W, C/groups) per sample and
 * group, then x̂·gamma + beta, with gamma and beta each [C] (the usual affine), [1, 1, 1, C], or
 * [N, 1, 1, C] (an adaptive, per-sample one); other shapes are refused. The op has its own
 * gradient (`groupNormAffine`: about half the passes over x of tfjs's autodiff), built from ops
 * whose gradients read their inputs only, so second-order gradients are correct. Where the
 * backend has `@diff-instruct/native`'s GroupNorm kernels, forward and backward run there (one
 * pass for the statistics and one for the output, where the composed ops take about 8 and 11).
 */
export function groupNorm(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps = 1e-5): tf.Tensor4D {
  return groupNormAct(x, gamma, beta, groups, eps, false);
}

/** silu(groupNorm(x, gamma, beta, groups)), the UNet's pre-activation, fused where the native kernels are. */
export function groupNormSilu(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps = 1e-5): tf.Tensor4D {
  return groupNormAct(x, gamma, beta, groups, eps, true);
}

function groupNormAct(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps: number, act: boolean): tf.Tensor4D {
  const [n, , , c] = x.shape;
  const name = act ? 'groupNormSilu' : 'groupNorm';
  if (x.rank !== 4) throw new Error(`${name}: expected x of shape [N, H, W, C], got [${x.shape}]`);
  if (!(Number.isInteger(groups) && groups > 0 && c % groups === 0)) {
    throw new Error(`${name}: ${c} channels cannot be split into ${groups} groups`);
  }
  return tf.tidy(() => {
    const g4 = perSampleChannels(name, 'gamma', gamma, n, c);
    const b4 = perSampleChannels(name, 'beta', beta, n, c);
    if (x.dtype === 'float32' && hasKernel(GROUP_NORM_KERNEL)) return nativeGroupNorm(x, g4, b4, groups, eps, act);
    return composedGroupNorm(x, g4, b4, groups, eps, act);
  });
}

function composedGroupNorm(x: tf.Tensor4D, gamma: tf.Tensor4D, beta: tf.Tensor4D, groups: number, eps: number, act: boolean): tf.Tensor4D {
  const y = groupNormAffine(x, gamma, beta, groups, eps);
  return act ? silu(y) : y;
}

/** Kernels of `@diff-instruct/native` (see its GROUP_NORM_KERNEL); used when the backend has them. */
export const GROUP_NORM_KERNEL = 'DiGroupNorm';
export const GROUP_NORM_GRAD_KERNEL = 'DiGroupNormGrad';

/** Whether an outer gradient is being recorded while a gradient function runs (second order). */
const recordingHigherOrder = () => (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;

/**
 * GroupNorm (+ SiLU) by the native kernels, gamma and beta [1 or N, 1, 1, C]. Its gradient is the
 * native backward kernel; when a gradient of that gradient is being taken (R1-style penalties), it
 * is the composed ops' gradient instead, which differentiates again.
 */
function nativeGroupNorm(x: tf.Tensor4D, gamma: tf.Tensor4D, beta: tf.Tensor4D, groups: number, eps: number, act: boolean): tf.Tensor4D {
  const attrs = { groups, eps, silu: act };
  const f = tf.customGrad(((xx: tf.Tensor4D, gg: tf.Tensor4D, bb: tf.Tensor4D, save: tf.GradSaveFunc) => {
    save([xx, gg, bb]);
    return {
      value: tf.engine().runKernel(GROUP_NORM_KERNEL, { x: xx, gamma: gg, beta: bb }, attrs) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [sx, sg, sb] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
        if (recordingHigherOrder()) {
          return tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
            composedGroupNorm(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, groups, eps, act),
          )([sx, sg, sb], dy);
        }
        const [dx, dg, db] = tf.engine().runKernel(GROUP_NORM_GRAD_KERNEL, { x: sx, gamma: sg, beta: sb, dy }, attrs) as tf.Tensor4D[];
        // per-sample [N, 1, 1, C] → the input's own shape
        const reduce = (t: tf.Tensor4D, batch: number) => (batch === t.shape[0] ? t : tf.sum(t, 0, true));
        return [dx!, reduce(dg!, sg.shape[0]), reduce(db!, sb.shape[0])];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor4D, g: tf.Tensor4D, b: tf.Tensor4D) => tf.Tensor4D;
  return f(x, gamma, beta);
}

/** gamma (or beta) as [1 or N, 1, 1, C] when it is [C], [1, 1, 1, C] or [N, 1, 1, C]; other shapes throw. */
function perSampleChannels(op: string, what: string, t: tf.Tensor, n: number, c: number): tf.Tensor4D {
  if (t.rank === 1 && t.shape[0] === c) return t.reshape([1, 1, 1, c]) as tf.Tensor4D;
  if (t.rank === 4 && (t.shape[0] === 1 || t.shape[0] === n) && t.shape[1] === 1 && t.shape[2] === 1 && t.shape[3] === c) return t as tf.Tensor4D;
  throw new Error(`${op}: ${what} must have shape [${c}], [1, 1, 1, ${c}] or [${n}, 1, 1, ${c}], got [${t.shape.join(', ')}]`);
}

/** Per-(sample, group) mean μ and 1/√(σ² + ε) of x [N, H, W, C], each spread to [N, 1, 1, C]; and x − μ. */
function groupStats(x: tf.Tensor4D, groups: number, eps: number): { xc: tf.Tensor4D; rstd: tf.Tensor4D } {
  const [n, h, w, c] = x.shape;
  const cg = c / groups;
  const spread = (t: tf.Tensor) => tf.tile(t, [1, 1, 1, cg]).reshape([n, 1, 1, c]); // [N, 1, G, 1] → [N, 1, 1, C]
  const mean = spread(groupMean(x.reshape([n, h * w, groups, cg])));
  const xc = tf.sub(x, mean) as tf.Tensor4D; // two passes, as before: the variance of the centred x
  const rstd = spread(tf.div(1, tf.sqrt(tf.add(groupMean(tf.square(xc).reshape([n, h * w, groups, cg]) as tf.Tensor4D), eps))));
  return { xc, rstd: rstd as tf.Tensor4D };
}

/** Σ over the groups' channels of t [N, C], spread back to each channel, [N, 1, 1, C]. */
function groupSum(t: tf.Tensor, groups: number): tf.Tensor4D {
  const [n, c] = t.shape as [number, number];
  const cg = c / groups;
  return tf.tile(tf.sum(t.reshape([n, groups, cg]), 2, true), [1, 1, cg]).reshape([n, 1, 1, c]);
}

/**
 * GroupNorm with a per-channel or per-sample affine, y = (x − μ)·(rstd·γ) + β, γ and β
 * [1 or N, 1, 1, C], as one custom op. Forward: the two group statistics, then one scale and one
 * shift of x by [N, 1, 1, C] factors (the old path scaled by the group's rstd, then by γ, then
 * shifted: 2 more passes, and the [N, 1, G, 1] broadcasts run at half the speed of [N, 1, 1, C]).
 * Backward, with T₁ = Σ_hw dy and T₂ = Σ_hw dy·(x − μ) per (sample, channel), M = H·W·C/G:
 *   ∂β = T₁,  ∂γ = rstd·T₂,
 *   ∂x = rstd·(dy·γ − mean_g(dy·γ) − x̂·mean_g(dy·γ·x̂))
 *      = dy·(rstd·γ) + (x − μ)·(−rstd²·μ₂) − rstd·μ₁,  μ₁ = Σ_g γT₁/M, μ₂ = rstd·Σ_g γT₂/M,
 * so every full-size pass is a multiply or add with [N, 1, 1, C] factors or a sum over (H, W).
 * All of it is built from ops whose gradients read their inputs only, so it differentiates again.
 */
function groupNormAffine(x: tf.Tensor4D, gamma: tf.Tensor4D, beta: tf.Tensor4D, groups: number, eps: number): tf.Tensor4D {
  const f = tf.customGrad(((xx: tf.Tensor4D, gg: tf.Tensor4D, bb: tf.Tensor4D, save: tf.GradSaveFunc) => {
    save([xx, gg]);
    const betaBatch = bb.shape[0];
    const { xc, rstd } = groupStats(xx, groups, eps);
    return {
      value: tf.add(tf.mul(xc, tf.mul(rstd, gg)), bb) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [sx, sg] = saved as [tf.Tensor4D, tf.Tensor4D];
        const [n, h, w, c] = sx.shape;
        const m = (h * w * c) / groups;
        const { xc: sxc, rstd: r } = groupStats(sx, groups, eps);
        const t1 = tf.sum(dy, [1, 2]); // [N, C]
        const t2 = tf.sum(tf.mul(dy, sxc), [1, 2]);
        const g2 = sg.reshape([sg.shape[0], c]);
        const mu1 = tf.div(groupSum(tf.mul(g2, t1), groups), m);
        const mu2 = tf.mul(r, tf.div(groupSum(tf.mul(g2, t2), groups), m));
        const dx = tf.add(tf.add(tf.mul(dy, tf.mul(r, sg)), tf.mul(sxc, tf.neg(tf.mul(tf.square(r), mu2)))), tf.neg(tf.mul(r, mu1)));
        const dg = tf.mul(r.reshape([n, c]), t2);
        // [N, C] → the input's own shape: kept per sample, or summed over the batch for a [1, 1, 1, C] input
        const reduce = (t: tf.Tensor, batch: number) => (batch === n ? t.reshape([n, 1, 1, c]) : tf.sum(t, 0).reshape([1, 1, 1, c]));
        return [dx, reduce(dg, sg.shape[0]), reduce(t1, betaBatch)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor4D, g: tf.Tensor4D, b: tf.Tensor4D) => tf.Tensor4D;
  return f(x, gamma, beta);
}

const softmaxWithGrad = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  return {
    value: tf.softmax(x),
    // ∂x = s ⊙ (dy − Σ dy ⊙ s), with s recomputed from the saved input (see `silu`)
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const s = tf.softmax(saved[0]!);
      return [tf.mul(s, tf.sub(dy, tf.sum(tf.mul(dy, s), -1, true)))];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * Softmax over the last axis. tf.softmax's gradient reuses its saved output, which makes its
 * second-order gradients silently wrong in tfjs 4.22; this one recomputes it from the input.
 */
export function softmax<T extends tf.Tensor>(x: T): T {
  return softmaxWithGrad(x) as T;
}

type BatchMatMul = (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

const batchMatmulWithGrad = lazyCustomGrad<BatchMatMul>(([a, b], save) => {
  save([a!, b!]);
  return {
    value: tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D),
    // dA = dy·Bᵀ, dB = Aᵀ·dy per batch entry, with explicit transposes
    grads: (dy, saved) => {
      const [sa, sb] = saved as [tf.Tensor3D, tf.Tensor3D];
      const d = dy as tf.Tensor3D;
      return [() => batchMatmul(d, tf.transpose(sb, [0, 2, 1])), () => batchMatmul(tf.transpose(sa, [0, 2, 1]), d)];
    },
  };
});

/**
 * Batched A·B for [B, n, k]·[B, k, m] (transposeB: B given as [B, m, k]). Its gradient uses the
 * transpose flags where the native kernels serve matMul, and explicit transposes otherwise.
 * Batched matmul is slow on plain wasm: use it for attention at low resolution only (≤ 8×8).
 */
export function batchMatmul(a: tf.Tensor3D, b: tf.Tensor3D, transposeB = false): tf.Tensor3D {
  const kb = transposeB ? b.shape[2] : b.shape[1];
  if (a.rank !== 3 || b.rank !== 3 || a.shape[0] !== b.shape[0] || a.shape[2] !== kb) {
    throw new Error(`batchMatmul: expected [B, n, k]·[B, k, m]${transposeB ? 'ᵀ' : ''}, got [${a.shape}]·[${b.shape}]`);
  }
  if (fastTransposeFlags()) return matmulFlags(false, transposeB)(a, b) as tf.Tensor3D;
  return batchMatmulWithGrad(a, transposeB ? tf.transpose(b, [0, 2, 1]) : b);
}

/** A kernel of `@diff-instruct/native` (its DROPOUT_MASK_KERNEL); used when the backend has it. */
export const DROPOUT_MASK_KERNEL = 'DiDropoutMask';

/**
 * A dropout mask of this shape, each unit kept (as 1/keep) with probability `keep`, drawn from
 * `rng` exactly as `rng.dropoutMask` draws it: in native code where the backend has
 * `@diff-instruct/native`'s kernel (the same mask and the same state after, several times faster,
 * and written straight into the backend's memory), else in JavaScript.
 */
export function dropoutMaskTensor(rng: Rng, shape: number[], keep: number): tf.Tensor {
  if (!(keep > 0 && keep <= 1)) throw new Error(`dropoutMaskTensor: keep must be in (0, 1], got ${keep}`);
  if (hasKernel(DROPOUT_MASK_KERNEL)) {
    const [mask, after] = tf.engine().runKernel(DROPOUT_MASK_KERNEL, {}, { shape, keep, state: rng.state() } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    const w = after!.dataSync();
    after!.dispose();
    rng.setState([w[0]! >>> 0, w[1]! >>> 0, w[2]! >>> 0, w[3]! >>> 0]);
    return mask!;
  }
  return tf.tensor(rng.dropoutMask(shape.reduce((a, b) => a * b, 1), keep), shape, 'float32');
}
