import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';

import { Rng } from '@diff-instruct/sde';

import type { EdmDenoiserConfig, LenetConfig, UnetConfig } from './config.js';
import { loadClassifier, loadDenoiser, loadGenerator, saveModel } from './node.js';
import { createClassifier } from './lenet.js';
import { createDenoiser, tweedieGenerator } from './model.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';

const dir = mkdtempSync(join(tmpdir(), 'di-models-io-image-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const net: UnetConfig = {
  kind: 'unet',
  resolution: 8,
  channels: 2,
  modelChannels: 8,
  channelMult: [1, 2],
  numBlocks: 1,
  attnResolutions: [4],
  dropout: 0.1,
  embedDim: 8,
  numClasses: 2,
};
const dconfig: EdmDenoiserConfig = { kind: 'edm', sigmaData: 0.5, net };
const cconfig: LenetConfig = { kind: 'lenet', resolution: 32, channels: 1, numClasses: 4, featureDim: 8 };
const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('saving and loading UNets and classifiers', () => {
  it('round-trips a UNet denoiser', () => {
    const m = createDenoiser(dconfig, new Rng(1));
    const path = join(dir, 'unet.safetensors');
    saveModel(path, m);
    const back = loadDenoiser(path);
    expect(back.config).toEqual(dconfig);
    expect(Object.keys(back.params)).toEqual(Object.keys(m.params));
    const x = new Rng(2).normalTensor([2, 8, 8, 2]);
    const s = tf.tensor1d([0.3, 4]);
    const y = tf.tensor2d([[1, 0], [0, 0]]);
    expect(values(back.denoise(x, s, y))).toEqual(values(m.denoise(x, s, y)));
  });

  it('round-trips a Tweedie generator around a UNet', () => {
    const g = tweedieGenerator(createDenoiser(dconfig, new Rng(3)), 2.5);
    const path = join(dir, 'tweedie-unet.safetensors');
    saveModel(path, g);
    const back = loadGenerator(path);
    expect(back.config).toEqual(g.config);
    expect(back.latentShape).toEqual([8, 8, 2]);
    const z = new Rng(4).normalTensor([2, 8, 8, 2]);
    expect(values(back.generate(z))).toEqual(values(g.generate(z)));
  });

  it("round-trips a classifier, stored with role 'classifier'", () => {
    const c = createClassifier(cconfig, new Rng(5));
    const path = join(dir, 'lenet.safetensors');
    saveModel(path, c, { accuracy: '0.99' });
    expect(decodeSafetensors(readFileSync(path)).metadata).toEqual({
      accuracy: '0.99',
      format: 'diff-instruct',
      role: 'classifier',
      config: JSON.stringify(cconfig),
    });
    const back = loadClassifier(path);
    expect(back.config).toEqual(cconfig);
    const x = new Rng(6).normalTensor([3, 32, 32, 1]);
    expect(values(back.logits(x))).toEqual(values(c.logits(x)));
    expect(values(back.features(x))).toEqual(values(c.features(x)));
    expect(() => loadDenoiser(path)).toThrow(`${path} holds a classifier, expected a denoiser`);
    expect(() => loadClassifier(join(dir, 'unet.safetensors'))).toThrow(/holds a denoiser, expected a classifier/);
  });

  it('refuses UNet weights that do not match the config, naming the differences, and frees the half-built model', () => {
    const { tensors, metadata } = decodeSafetensors(readFileSync(join(dir, 'unet.safetensors')));
    const other: EdmDenoiserConfig = { ...dconfig, net: { ...net, modelChannels: 4, attnResolutions: [] } };
    const path = join(dir, 'unet-mismatch.safetensors');
    writeFileSync(path, encodeSafetensors(tensors as never, { ...metadata, config: JSON.stringify(other) }));
    const n0 = tf.memory().numTensors;
    expect(() => loadDenoiser(path)).toThrow(
      new RegExp(`${path}: weights do not match config: .*unexpected 'net.enc.4x4_block0.qkv.weight'.*shape of 'net.enc.8x8_conv.weight' is \\[3,3,2,8\\], expected \\[3,3,2,4\\]`),
    );
    expect(tf.memory().numTensors).toBe(n0);
    const invalid = join(dir, 'unet-invalid.safetensors');
    writeFileSync(invalid, encodeSafetensors({}, { ...metadata, config: JSON.stringify({ ...dconfig, net: { ...net, attnResolutions: [32] } }) }));
    expect(() => loadDenoiser(invalid)).toThrow(/invalid config in .*unet-invalid.safetensors: net.attnResolutions must be a list of level resolutions \(8, 4\)/);
  });
});
