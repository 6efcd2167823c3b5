import * as tf from '@tensorflow/tfjs';

/**
 * The wasm heap stops at about 3.8 GiB, and allocations beyond it corrupt memory silently
 * (docs/design.md). A run whose step would need more is refused before it starts.
 */
export const WASM_HEAP_CEILING_BYTES = 3.8 * 2 ** 30;

/** The tensor memory one training step needs at a batch size, as a line in the batch size. */
export interface StepMemoryEstimate {
  batchSize: number;
  /** Peak bytes held by tensors during one step at `batchSize` (weights and optimiser state included). */
  bytes: number;
  /** The part that does not grow with the batch: weights, optimiser state, EMA, gradients. */
  fixedBytes: number;
  /** What each sample of the batch adds: activations kept for the backward pass, and so on. */
  perSampleBytes: number;
}

/** Peak bytes held by tensors while `fn` runs (absolute: what was alive before counts too). */
async function peakBytes(fn: () => void): Promise<number> {
  const before = tf.memory().numBytes;
  const info = await tf.profile(() => {
    tf.tidy(fn);
  });
  return Math.max(before, ...info.kernels.map((k) => k.totalBytesSnapshot));
}

/**
 * Estimates the peak tensor memory of one step at `batchSize` from two small probes: `probe(b)`
 * must compute what one step computes at batch b (forward and backward passes) without changing
 * any state. Peak memory is affine in the batch size, so the probes at 1 and 4 samples give its
 * fixed part and its slope; a batch of at most 4 is measured directly.
 */
export async function estimateStepBytes(probe: (batchSize: number) => void, batchSize: number): Promise<StepMemoryEstimate> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`estimateStepBytes: batch size must be a positive integer, got ${batchSize}`);
  const hi = Math.min(batchSize, 4);
  const peakHi = await peakBytes(() => probe(hi));
  const peak1 = hi === 1 ? peakHi : await peakBytes(() => probe(1));
  const perSampleBytes = hi === 1 ? 0 : Math.max(0, (peakHi - peak1) / (hi - 1));
  const fixedBytes = peak1 - perSampleBytes;
  return { batchSize, bytes: fixedBytes + perSampleBytes * batchSize, fixedBytes, perSampleBytes };
}

/** Bytes in GiB from 1 GiB up, else in MiB (else in KiB), with two decimals. */
export function formatBytes(b: number): string {
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(2)} GiB`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(2)} MiB`;
  return `${(b / 2 ** 10).toFixed(2)} KiB`;
}

/**
 * Why a run cannot start on the wasm backend, or null when its estimated step fits under the
 * heap ceiling. The message names the need, its parts, the largest batch that fits and the fix.
 * `fixedSize`: the step's size is not a batch size of the run's (a renderer's views), so the
 * message names the need and the fix without one.
 */
export function heapCeilingProblem(phase: string, e: StepMemoryEstimate, ceilingBytes = WASM_HEAP_CEILING_BYTES, fixedSize = false): string | null {
  if (e.bytes <= ceilingBytes) return null;
  if (fixedSize) {
    return (
      `${phase}: one step needs an estimated ${formatBytes(e.bytes)} of tensor memory (weights, optimiser state, gradients and the step's activations), ` +
      `over the ${formatBytes(ceilingBytes)} ceiling of the wasm heap, beyond which allocations corrupt memory silently. ` +
      'Nothing was trained. To fix it, make each step smaller (fewer views or samples per step) or the model smaller, ' +
      'or install @tensorflow/tfjs-node, whose backend has no such ceiling'
    );
  }
  const fits = e.perSampleBytes > 0 ? Math.floor((ceilingBytes - e.fixedBytes) / e.perSampleBytes) : 0;
  const fix =
    fits >= 1
      ? `use a batch size of ${fits} or less`
      : 'the weights and optimiser state alone do not fit: use a smaller model';
  return (
    `${phase}: one step at batch ${e.batchSize} needs an estimated ${formatBytes(e.bytes)} of tensor memory ` +
    `(${formatBytes(e.fixedBytes)} of weights, optimiser state and gradients + ${formatBytes(e.perSampleBytes)} per sample), ` +
    `over the ${formatBytes(ceilingBytes)} ceiling of the wasm heap, beyond which allocations corrupt memory silently. ` +
    `Nothing was trained. To fix it, ${fix}, or install @tensorflow/tfjs-node, whose backend has no such ceiling`
  );
}
