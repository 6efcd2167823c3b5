/**
 * Where the time of an iteration goes: tf.profile's per-kernel times, summed by kernel name, and
 * for the dense kernels (convolutions, matMul) the GFLOP/s they reach against the machine's
 * measured matMul peak.
 */
import * as tf from '@tensorflow/tfjs';

/** Multiply-adds × 2 of one call of a dense kernel, from its shapes; null for other kernels. */
export function kernelFlops(name: string, inputShapes: number[][], outputShapes: number[][], attrs: Record<string, unknown> = {}): number | null {
  const prod = (s: number[] | undefined) => (s ?? []).reduce((a, b) => a * b, 1);
  switch (name) {
    case 'Conv2D':
    case 'FusedConv2D': {
      const [kh, kw, cin] = inputShapes[1]!;
      return 2 * prod(outputShapes[0]) * kh! * kw! * cin!;
    }
    case 'DiConv2DFilterGrad': {
      // inputs x and dy, output the filter
      const [kh, kw, cin] = outputShapes[0]!;
      return 2 * prod(inputShapes[1]) * kh! * kw! * cin!;
    }
    case 'Conv2DBackpropInput': {
      // inputs dy and the filter
      const [kh, kw, cin] = inputShapes[1]!;
      return 2 * prod(inputShapes[0]) * kh! * kw! * cin!;
    }
    case 'BatchMatMul': {
      const a = inputShapes[0]!;
      return 2 * prod(outputShapes[0]) * a[a.length - (attrs.transposeA === true ? 2 : 1)]!;
    }
    default:
      return null;
  }
}

/** GFLOP/s of tf.matMul on n×n matrices on the current backend (best of `reps` after a warm-up). */
export function matMulPeakGflops(n = 1024, reps = 5): number {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  tf.tidy(() => {
    tf.matMul(a, b).dataSync();
  });
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    tf.tidy(() => {
      tf.matMul(a, b).dataSync();
    });
    best = Math.min(best, performance.now() - t0);
  }
  a.dispose();
  b.dispose();
  return (2 * n ** 3) / (best / 1000) / 1e9;
}

export interface KernelProfileRow {
  kernel: string;
  msPerIteration: number;
  /** Of the summed kernel time of an iteration. */
  share: number;
  callsPerIteration: number;
  gflops?: number;
  /** gflops / the matMul peak. */
  ofPeak?: number;
}

type KernelFn = (args: { inputs: Record<string, tf.TensorInfo | undefined>; attrs?: Record<string, unknown>; backend: unknown }) => tf.TensorInfo | tf.TensorInfo[];

/**
 * Profiles `run`, which performs `iterations` iterations (after the caller's warm-up), and returns
 * one row per kernel name, the slowest first, with its share of the summed kernel time; and the
 * wall time per iteration, whose remainder over the kernels is the tfjs engine's and the
 * JavaScript's own time (tapes, tensor bookkeeping, the code between kernels).
 *
 * Every kernel of the backend is wrapped for the run with a timer around its call. On `wasm` and
 * `cpu` (with or without the native kernels) kernels run synchronously, so this is each kernel's
 * whole time. (tf.profile's kernelTimeMs is not: on wasm it missed most of the native kernels' time.)
 */
export async function profileKernels(run: () => Promise<void>, iterations: number, peakGflops: number): Promise<{ rows: KernelProfileRow[]; kernelMsPerIteration: number; wallMsPerIteration: number }> {
  const backendName = tf.getBackend();
  const agg = new Map<string, { ms: number; calls: number; flops: number; denseMs: number }>();
  const configs = tf.getKernelsForBackend(backendName);
  const wrap = (k: tf.KernelConfig) => {
    const f = k.kernelFunc as unknown as KernelFn;
    const kernelFunc: KernelFn = (args) => {
      const t0 = performance.now();
      const out = f(args);
      const ms = performance.now() - t0;
      const a = agg.get(k.kernelName) ?? { ms: 0, calls: 0, flops: 0, denseMs: 0 };
      a.ms += ms;
      a.calls += 1;
      const outs = Array.isArray(out) ? out : [out];
      const flops = kernelFlops(k.kernelName, Object.values(args.inputs).filter((t) => t !== undefined).map((t) => t.shape), outs.map((t) => t.shape), args.attrs ?? {});
      if (flops !== null) {
        a.flops += flops;
        a.denseMs += ms;
      }
      agg.set(k.kernelName, a);
      return out;
    };
    return kernelFunc;
  };
  const swap = (to: (k: tf.KernelConfig) => tf.KernelConfig) => {
    for (const k of configs) {
      tf.unregisterKernel(k.kernelName, backendName);
      tf.registerKernel(to(k));
    }
  };
  swap((k) => ({ ...k, kernelFunc: wrap(k) as unknown as tf.KernelFunc }));
  const t0 = performance.now();
  try {
    await run();
  } finally {
    swap((k) => k); // the original configs
  }
  const wall = (performance.now() - t0) / iterations;
  const total = [...agg.values()].reduce((s, a) => s + a.ms, 0);
  const rows = [...agg.entries()]
    .sort((x, y) => y[1].ms - x[1].ms)
    .map(([kernel, a]): KernelProfileRow => {
      const row: KernelProfileRow = {
        kernel,
        msPerIteration: a.ms / iterations,
        share: a.ms / total,
        callsPerIteration: a.calls / iterations,
      };
      if (a.denseMs > 0) {
        row.gflops = a.flops / (a.denseMs / 1000) / 1e9;
        row.ofPeak = row.gflops / peakGflops;
      }
      return row;
    });
  return { rows, kernelMsPerIteration: total / iterations, wallMsPerIteration: wall };
}
