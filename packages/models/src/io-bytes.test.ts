import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';

import { Rng } from '@diff-instruct/sde';

// The main entry, as a web page imports it: bytes in, models out, no file system.
import { type MlpGeneratorConfig, createGenerator, decodeSafetensors, encodeModel, encodeSafetensors, loadClassifier, loadDenoiser, loadGenerator } from './index.js';
import { loadGenerator as loadGeneratorFile } from './node.js';

const dir = mkdtempSync(join(tmpdir(), 'di-models-bytes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const gconfig: MlpGeneratorConfig = { kind: 'mlp-generator', latentDim: 3, outDim: 2, hidden: [8], numClasses: 0 };
const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('loading from bytes (main entry)', () => {
  it('samples a generator decoded from the bytes a fetch would return', () => {
    const g = createGenerator(gconfig, new Rng(7));
    // What `await (await fetch('generator.safetensors')).arrayBuffer()` gives: a fresh ArrayBuffer.
    const fetched = new Uint8Array(encodeModel(g, { step: '3' }).slice().buffer);
    const back = loadGenerator(fetched, 'generator.safetensors');
    expect(back.config).toEqual(gconfig);
    const z = new Rng(8).normalTensor([5, 3]);
    const x = back.generate(z);
    expect(x.shape).toEqual([5, 2]);
    expect(values(x)).toEqual(values(g.generate(z)));
    expect(values(x).every(Number.isFinite)).toBe(true);
  });

  it('names the source in errors, and checks the role', () => {
    const bytes = encodeModel(createGenerator(gconfig, new Rng(1)));
    expect(() => loadDenoiser(bytes, 'https://example.org/g.safetensors')).toThrow('https://example.org/g.safetensors holds a generator, expected a denoiser');
    expect(() => loadClassifier(bytes)).toThrow('weight bytes holds a generator, expected a classifier');
    expect(() => loadGenerator(new Uint8Array([1, 2, 3]), 'g.bin')).toThrow(/^g.bin is not a valid safetensors file \(/);
  });

  it('refuses non-finite weights with one line naming the file and tensor, from bytes and from a path', () => {
    const g = createGenerator(gconfig, new Rng(2));
    const { tensors, metadata } = decodeSafetensors(encodeModel(g));
    const bad = tensors['gen.out.weight']!.data as Float32Array;
    bad[4] = Number.NaN;
    bad[9] = Number.POSITIVE_INFINITY;
    const bytes = encodeSafetensors(tensors as never, metadata);
    const n0 = tf.memory().numTensors;
    let message = '';
    try {
      loadGenerator(bytes, 'nan.safetensors');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe("nan.safetensors: tensor 'gen.out.weight' holds 2 non-finite values (first: NaN at index 4); refusing to load a diverged checkpoint");
    expect(message).not.toContain('\n');
    expect(tf.memory().numTensors).toBe(n0); // nothing was built
    const path = join(dir, 'nan.safetensors');
    writeFileSync(path, bytes);
    expect(() => loadGeneratorFile(path)).toThrow(`${path}: tensor 'gen.out.weight' holds 2 non-finite values`);
  });
});
