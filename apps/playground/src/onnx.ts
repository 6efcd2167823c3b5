/**
 * The generator's ONNX export (`model.onnx`, written by `pnpm playground:build` with `exportOnnx` of
 * @diff-instruct/models) on onnxruntime-web's wasm execution provider. Its graph takes `z`
 * [N, ...latentShape] (NHWC for images, standard normal) and, for a conditional generator, `label`
 * [N, numClasses] one-hot, and gives `sample` [N, ...outputShape], not clipped.
 *
 * One thread: threads need SharedArrayBuffer, so a cross-origin isolated page, and this one is
 * served by plain static hosts. The runtime's wasm is served next to the page (ort/).
 */
import * as ort from 'onnxruntime-web/wasm';

import { fetchBytes, parseBytes } from './fetch.js';

export interface OnnxGenerator {
  /** Samples (NHWC images in [-1, 1], not clipped) for latents `z` of shape `shape` ([N, ...latentShape]). */
  generate(z: Float32Array, shape: number[]): Promise<Float32Array>;
}

export async function loadOnnxGenerator(url: string, numClasses: number): Promise<OnnxGenerator> {
  ort.env.wasm.wasmPaths = new URL('ort/', document.baseURI).href;
  ort.env.wasm.numThreads = 1;
  const what = 'the ONNX generator';
  const bytes = await fetchBytes(url, what, 'onnx');
  // InferenceSession.create is async, so its errors are caught here and named as parseBytes names them.
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  } catch (e) {
    return parseBytes(bytes, url, what, 'onnx', () => {
      throw e;
    });
  }
  const expected = numClasses > 0 ? ['z', 'label'] : ['z'];
  if (session.inputNames.join() !== expected.join() || !session.outputNames.includes('sample')) {
    const found = `inputs ${session.inputNames.join(', ')}; outputs ${session.outputNames.join(', ')}`;
    await session.release();
    return parseBytes(bytes, url, what, 'onnx', () => {
      throw new Error(`it is not a generator exported by exportOnnx (${found}; expected inputs ${expected.join(', ')} and output sample)`);
    });
  }
  return {
    async generate(z, shape) {
      const n = shape[0]!;
      const feeds: Record<string, ort.Tensor> = { z: new ort.Tensor('float32', z, shape) };
      if (numClasses > 0) {
        // Classes 0, 1, …, K−1 in turn, as the tfjs generator of the page.
        const label = new Float32Array(n * numClasses);
        for (let i = 0; i < n; i++) label[i * numClasses + (i % numClasses)] = 1;
        feeds.label = new ort.Tensor('float32', label, [n, numClasses]);
      }
      const result = await session.run(feeds);
      const y = result.sample!;
      try {
        return (await y.getData()) as Float32Array;
      } finally {
        y.dispose();
      }
    },
  };
}
