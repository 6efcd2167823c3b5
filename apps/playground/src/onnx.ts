/**
 * The generator's ONNX export (`model.onnx`, written by `pnpm playground:build`) on onnxruntime-web's
 * wasm execution provider. One thread: threads need SharedArrayBuffer, so a cross-origin isolated
 * page, and this one is served by plain static hosts. The runtime's wasm is served next to the page.
 */
import * as ort from 'onnxruntime-web/wasm';

import { fetchBytes, parseBytes } from './fetch.js';

export interface OnnxGenerator {
  /** Images (NHWC, in [-1, 1]) for latents `z` of shape `shape` ([N, ...latentShape]). */
  generate(z: Float32Array, shape: number[]): Promise<Float32Array>;
}

export async function loadOnnxGenerator(url: string): Promise<OnnxGenerator> {
  ort.env.wasm.wasmPaths = new URL('ort/', document.baseURI).href;
  ort.env.wasm.numThreads = 1;
  const bytes = await fetchBytes(url, 'the ONNX generator', 'onnx');
  // InferenceSession.create is async, so its parse errors are caught here and named like the others.
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  } catch (e) {
    return parseBytes(bytes, url, 'the ONNX generator', 'onnx', () => {
      throw e;
    });
  }
  const input = session.inputNames[0]!;
  const output = session.outputNames[0]!;
  return {
    async generate(z, shape) {
      const feeds = { [input]: new ort.Tensor('float32', z, shape) };
      const result = await session.run(feeds);
      const y = result[output]!;
      try {
        return (await y.getData()) as Float32Array;
      } finally {
        y.dispose();
      }
    },
  };
}
