import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';

import { Rng } from '@diff-instruct/sde';

import type { EdmDenoiserConfig, MlpGeneratorConfig } from './config.js';
import { loadParamsInto } from './io.js';
import { loadDenoiser, loadGenerator, saveModel, writeFileAtomic } from './node.js';
import { createDenoiser, createGenerator, tweedieGenerator } from './model.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

const dir = mkdtempSync(join(tmpdir(), 'di-models-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dconfig: EdmDenoiserConfig = { kind: 'edm', sigmaData: 0.5, net: { kind: 'mlp', dim: 2, hidden: [8, 8], embedDim: 4, numClasses: 0 } };
const gconfig: MlpGeneratorConfig = { kind: 'mlp-generator', latentDim: 3, outDim: 2, hidden: [8], numClasses: 2 };
const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('saveModel / loadDenoiser / loadGenerator', () => {
  it('round-trips a denoiser with its config and metadata', () => {
    const m = createDenoiser(dconfig, new Rng(1));
    const path = join(dir, 'teacher.safetensors');
    saveModel(path, m, { step: '120' });
    const { tensors, metadata } = decodeSafetensors(readFileSync(path));
    expect(metadata).toEqual({ step: '120', format: 'diff-instruct', role: 'denoiser', config: JSON.stringify(dconfig) });
    expect(Object.keys(tensors)).toEqual(Object.keys(m.params));
    const back = loadDenoiser(path);
    expect(back.config).toEqual(dconfig);
    const x = new Rng(2).normalTensor([3, 2]);
    const s = tf.tensor1d([0.1, 1, 10]);
    expect(values(back.denoise(x, s))).toEqual(values(m.denoise(x, s)));
  });

  it('round-trips MLP and Tweedie generators', () => {
    const g = createGenerator(gconfig, new Rng(3));
    const t = tweedieGenerator(createDenoiser(dconfig, new Rng(4)), 2.5);
    for (const [name, model, z] of [
      ['mlp.safetensors', g, new Rng(5).normalTensor([4, 3])],
      ['tweedie.safetensors', t, new Rng(6).normalTensor([4, 2])],
    ] as const) {
      const path = join(dir, name);
      saveModel(path, model);
      const back = loadGenerator(path);
      expect(back.config).toEqual(model.config);
      expect(Object.keys(back.params)).toEqual(Object.keys(model.params));
      expect(values(back.generate(z))).toEqual(values(model.generate(z)));
    }
  });

  it('refuses reserved metadata keys', () => {
    expect(() => saveModel(join(dir, 'x.safetensors'), createGenerator(gconfig, new Rng(0)), { role: 'teacher' })).toThrow(/'role' is reserved/);
  });
});

describe('load errors', () => {
  const teacherPath = join(dir, 'errors-teacher.safetensors');
  const generatorPath = join(dir, 'errors-generator.safetensors');
  saveModel(teacherPath, createDenoiser(dconfig, new Rng(1)));
  saveModel(generatorPath, createGenerator(gconfig, new Rng(1)));
  const write = (name: string, bytes: Uint8Array | string) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };

  it('a missing file', () => {
    const p = join(dir, 'nope.safetensors');
    expect(() => loadDenoiser(p)).toThrow(`checkpoint not found: ${p}`);
  });

  it('a file that is not safetensors, truncated, or with a corrupt header', () => {
    const text = write('notes.txt', 'hello, this is not a weight file at all');
    expect(() => loadDenoiser(text)).toThrow(`${text} is not a valid safetensors file (`);
    const full = readFileSync(teacherPath);
    const truncated = write('truncated.safetensors', full.subarray(0, full.length - 10));
    expect(() => loadDenoiser(truncated)).toThrow(new RegExp(`${truncated} is not a valid safetensors file \\(.*truncated`));
    const corrupt = Uint8Array.from(full);
    corrupt[12] = 0x00;
    const corruptPath = write('corrupt.safetensors', corrupt);
    expect(() => loadDenoiser(corruptPath)).toThrow(/is not a valid safetensors file \(header is not valid JSON/);
  });

  it('a model of the other role', () => {
    expect(() => loadDenoiser(generatorPath)).toThrow(`${generatorPath} holds a generator, expected a denoiser`);
    expect(() => loadGenerator(teacherPath)).toThrow(`${teacherPath} holds a denoiser, expected a generator`);
  });

  it('a safetensors file from elsewhere, or with an invalid config', () => {
    const foreign = write('foreign.safetensors', encodeSafetensors({ w: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }));
    expect(() => loadDenoiser(foreign)).toThrow(/was not written by diff-instruct \(metadata.format is null/);
    const badConfig = write(
      'bad-config.safetensors',
      encodeSafetensors({}, { format: 'diff-instruct', role: 'denoiser', config: JSON.stringify({ ...dconfig, sigmaData: -1 }) }),
    );
    expect(() => loadDenoiser(badConfig)).toThrow(/invalid config in .*bad-config.safetensors: sigmaData must be > 0/);
    const notJson = write('not-json.safetensors', encodeSafetensors({}, { format: 'diff-instruct', role: 'generator', config: '{oops' }));
    expect(() => loadGenerator(notJson)).toThrow(/metadata.config is not valid JSON/);
  });

  it('weights that do not match the config, listing every difference', () => {
    const { tensors, metadata } = decodeSafetensors(readFileSync(teacherPath));
    const other = { ...dconfig, net: { ...dconfig.net, hidden: [8, 6] } };
    delete tensors['net.out.bias'];
    tensors['net.extra'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
    const p = write('mismatch.safetensors', encodeSafetensors(tensors as never, { ...metadata, config: JSON.stringify(other) }));
    const n0 = tf.memory().numTensors;
    expect(() => loadDenoiser(p)).toThrow(
      `${p}: weights do not match config: missing 'net.out.bias'; unexpected 'net.extra'; ` +
        "shape of 'net.layers.1.weight' is [8,8], expected [8,6]; shape of 'net.layers.1.bias' is [8], expected [6]; " +
        "shape of 'net.layers.1.emb.weight' is [4,8], expected [4,6]; shape of 'net.out.weight' is [8,2], expected [6,2]",
    );
    expect(tf.memory().numTensors).toBe(n0); // the half-built model is freed
  });

  it('loadParamsInto checks dtypes and assigns nothing on error', () => {
    const m = createGenerator(gconfig, new Rng(2));
    const before = values(m.params['gen.out.bias']!);
    const tensors: Record<string, { dtype: string; shape: number[]; data: Float32Array | Int32Array }> = {};
    for (const [n, v] of Object.entries(m.params)) tensors[n] = { dtype: 'F32', shape: v.shape, data: new Float32Array(v.size).fill(1) };
    tensors['gen.out.bias'] = { dtype: 'I32', shape: [2], data: new Int32Array(2) };
    expect(() => loadParamsInto(m.params, tensors, 'ckpt')).toThrow("ckpt: weights do not match config: dtype of 'gen.out.bias' is I32, expected F32");
    expect(values(m.params['gen.out.bias']!)).toEqual(before);
    expect(values(m.params['gen.out.weight']!)).not.toEqual(new Array(16).fill(1));
  });
});

describe('writeFileAtomic', () => {
  it('writes, replaces, and leaves no temporary file behind', () => {
    const sub = join(dir, 'atomic');
    mkdirSync(sub);
    const p = join(sub, 'w.bin');
    writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    writeFileAtomic(p, new Uint8Array([4, 5]));
    expect(Array.from(readFileSync(p))).toEqual([4, 5]);
    expect(readdirSync(sub)).toEqual(['w.bin']);
  });

  it('fails with a clear message, and leaves no temporary file, when the directory does not exist', () => {
    const p = join(dir, 'missing-dir', 'w.bin');
    expect(() => writeFileAtomic(p, new Uint8Array([1]))).toThrow(`cannot write ${p}: directory ${join(dir, 'missing-dir')} does not exist`);
    expect(existsSync(join(dir, 'missing-dir'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('writes text as UTF-8, and cleans up when the final rename fails', () => {
    const sub = join(dir, 'atomic-text');
    mkdirSync(sub);
    const p = join(sub, 'report.json');
    writeFileAtomic(p, '{"σ":1}');
    expect(readFileSync(p, 'utf8')).toBe('{"σ":1}');
    // Renaming a file over a non-empty folder fails after the temporary file was written.
    const folder = join(sub, 'a-folder');
    mkdirSync(folder);
    writeFileSync(join(folder, 'inside'), 'x');
    expect(() => writeFileAtomic(folder, 'data')).toThrow(/a-folder/);
    expect(readdirSync(sub).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
