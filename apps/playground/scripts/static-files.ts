/**
 * The files the page fetches that are not part of its bundle: the committed weights, the tfjs wasm
 * binaries and onnxruntime-web's wasm runtime. `vite.config.ts` serves them in `pnpm playground` and
 * copies them into dist/ in `pnpm playground:build`, at the paths below (relative to the page), so
 * that the page never loads anything from another host.
 */
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const app = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repo = resolve(app, '../..');
const require = createRequire(join(app, 'package.json'));
const tfjsWasmDist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
const ortDist = dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));

/** Where the build writes the ONNX export of the generator before Vite copies it (`scripts/export-onnx.ts`). */
export const ONNX_OUT = join(app, '.generated', 'model.onnx');

/** Page path → file on disk. */
export const STATIC_FILES: Record<string, string> = {
  'weights/mnist/generator.safetensors': join(repo, 'checkpoints/mnist/generator/generator.safetensors'),
  'weights/mnist/teacher.safetensors': join(repo, 'checkpoints/mnist/teacher-uncond-long/teacher.safetensors'),
  'weights/toy/ring8-teacher.safetensors': join(repo, 'checkpoints/toy/ring8/teacher.safetensors'),
  'model.onnx': ONNX_OUT,
  // tfjs picks one of the three by what the browser supports (SIMD; threads need cross-origin isolation).
  ...Object.fromEntries(
    ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'].map((f) => [`tfjs-wasm/${f}`, join(tfjsWasmDist, 'dist', f)]),
  ),
  // onnxruntime-web's wasm execution provider: its Emscripten glue and binary (one thread, no JSEP).
  ...Object.fromEntries(['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'].map((f) => [`ort/${f}`, join(ortDist, f)])),
};

/** MIME types of what the page fetches (wasm must be application/wasm for streaming compilation). */
export const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
  '.onnx': 'application/octet-stream',
};
