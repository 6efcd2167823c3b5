import { createRequire } from 'node:module';

import * as tf from '@tensorflow/tfjs';
import { describeNative, enableNativeKernels } from '@diff-instruct/native';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/**
 * Picks the tfjs backend, in the order of docs/design.md: `--backend` or DI_BACKEND, then
 * `tensorflow` (tfjs-node-gpu or tfjs-node, when installed), then `wasm` (the default here), then
 * `cpu`.
 * On wasm and cpu, matMul and convolution then run on the native kernels of
 * `@diff-instruct/native` when its addon is built (DI_NATIVE=0 turns them off; DI_NATIVE_THREADS
 * sets their threads). Returns a description of the backend in use; the caller prints it.
 */
export async function selectBackend(requested?: string): Promise<string> {
  const want = requested ?? process.env.DI_BACKEND;
  if (want !== undefined && !BACKENDS.includes(want as BackendName)) {
    throw new Error(`unknown backend "${want}"; choose one of: ${BACKENDS.join(', ')}`);
  }
  const order: BackendName[] = want ? [want as BackendName] : [...BACKENDS];
  const failures: string[] = [];
  for (const name of order) {
    try {
      if (await tryBackend(name)) return withNative(tf.getBackend());
      failures.push(`${name}: not available`);
    } catch (e) {
      failures.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`no tfjs backend could start (${failures.join('; ')})`);
}

/** "wasm + native kernels (OpenBLAS SGEMM, 2 threads)", or the backend alone and why not. */
function withNative(backend: string): string {
  if (backend !== 'wasm' && backend !== 'cpu') return backend;
  const r = enableNativeKernels({ backend });
  return r.enabled ? `${backend} + ${describeNative(r)}` : `${backend} (${describeNative(r)})`;
}

async function tryBackend(name: BackendName): Promise<boolean> {
  if (name === 'tensorflow') {
    const require = createRequire(import.meta.url);
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      let resolved = false;
      try {
        require.resolve(pkg);
        resolved = true;
      } catch {
        // not installed
      }
      if (!resolved) continue;
      await import(pkg);
      assertOneTfjsCore();
      return tf.setBackend('tensorflow');
    }
    return false;
  }
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  const ok = await tf.setBackend(name);
  if (ok) await tf.ready();
  return ok;
}

/** tfjs-node brings its own tfjs-core; two copies would each hold half of the registered kernels. */
function assertOneTfjsCore(): void {
  const engines = (globalThis as { _tfengine?: unknown })._tfengine;
  if (engines === undefined) return;
  if (!tf.findBackend('tensorflow')) {
    throw new Error('tfjs-node loaded a second copy of @tensorflow/tfjs-core; install the same tfjs version (4.22.0)');
  }
}
