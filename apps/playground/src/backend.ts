/**
 * The tfjs backend of the page: WebGL, then wasm, then cpu, the first that starts; `?backend=NAME`
 * tries NAME first. The wasm binaries are served next to the page (tfjs-wasm/), never from a CDN.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export const BACKENDS = ['webgl', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** A backend that was tried and did not start, and why. */
export interface BackendFailure {
  name: string;
  reason: string;
}

export interface BackendChoice {
  /** The backend in use. */
  name: BackendName;
  /** What `?backend=` asked for, if anything. */
  requested: string | null;
  /** The backends tried before `name`, in order. */
  failed: BackendFailure[];
}

export const isBackend = (name: string): name is BackendName => (BACKENDS as readonly string[]).includes(name);

/** Why `name` cannot start in this browser, found before tfjs tries it, or null. */
function precheck(name: BackendName): string | null {
  if (name === 'webgl') {
    const canvas = document.createElement('canvas');
    const gl = canvas.getContext('webgl2') ?? canvas.getContext('webgl');
    if (gl === null) return 'this browser has no WebGL (no GPU, or it is turned off)';
    gl.getExtension('WEBGL_lose_context')?.loseContext();
  }
  if (name === 'wasm' && typeof WebAssembly !== 'object') return 'this browser has no WebAssembly';
  return null;
}

/**
 * Starts the first backend of the order (the requested one first) that initialises. `cpu` always
 * does, so this returns; each backend that did not start is listed in `failed`.
 */
export async function startBackend(requested: string | null, wasmDir: string): Promise<BackendChoice> {
  setWasmPaths(wasmDir);
  const order: string[] = requested === null ? [...BACKENDS] : [requested, ...BACKENDS.filter((b) => b !== requested)];
  const failed: BackendFailure[] = [];
  for (const name of order) {
    if (!isBackend(name)) {
      failed.push({ name, reason: `there is no such backend (there are ${BACKENDS.join(', ')})` });
      continue;
    }
    const why = precheck(name);
    if (why !== null) {
      failed.push({ name, reason: why });
      continue;
    }
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return { name, requested, failed };
      }
      failed.push({ name, reason: 'it did not initialise (the browser console says why)' });
    } catch (e) {
      failed.push({ name, reason: (e as Error).message });
    }
  }
  throw new Error(`no tfjs backend started: ${failed.map((f) => `${f.name}: ${f.reason}`).join('; ')}`);
}
