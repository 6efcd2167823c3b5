/**
 * Writes the ONNX export of the page's generator (checkpoints/mnist/generator) to .generated/model.onnx,
 * which `vite` serves and `vite build` copies into dist/. Run by the package's `build` and `dev`
 * scripts through tsx, from the libraries' source:
 * `node --conditions=@diff-instruct/source --import tsx scripts/export-onnx.ts`.
 * Skips the export when the file is newer than the weights and the exporter.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { exportOnnx } from '@diff-instruct/models';
import { loadGenerator } from '@diff-instruct/models/node';

import { ONNX_OUT, STATIC_FILES } from './static-files.js';

const weights = STATIC_FILES['weights/mnist/generator.safetensors']!;
const exporter = fileURLToPath(new URL('../../../packages/models/src/onnx.ts', import.meta.url));
const mtime = (path: string) => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
};

if (mtime(ONNX_OUT) > Math.max(mtime(weights), mtime(exporter), mtime(fileURLToPath(import.meta.url)))) {
  console.log(`export-onnx: ${ONNX_OUT} is up to date`);
} else {
  // wasm, as the apps: the cpu backend in Node prints an advertisement for tfjs-node.
  await tf.setBackend('wasm');
  const t0 = performance.now();
  const bytes = exportOnnx(loadGenerator(weights), { metadata: { source: 'checkpoints/mnist/generator/generator.safetensors' } });
  mkdirSync(dirname(ONNX_OUT), { recursive: true });
  writeFileSync(ONNX_OUT, bytes);
  console.log(`export-onnx: wrote ${ONNX_OUT} (${(bytes.length / 1e6).toFixed(2)} MB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
