import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { createClassifier, createDenoiser, tweedieGenerator, type UnetConfig } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { CLASSIFIER_DEFAULTS, trainClassifier } from './classifier.js';
import { DIFF_INSTRUCT_DEFAULTS, diffInstruct } from './diffInstruct.js';
import { TEACHER_DEFAULTS, trainTeacher } from './teacher.js';

const values = (m: { params: Record<string, tf.Variable> }) => Object.values(m.params).map((v) => Array.from(v.dataSync()));

/** The smallest UNet: 8×8 images, 4 channels, one level of downsampling, dropout on. */
const unet: UnetConfig = {
  kind: 'unet',
  resolution: 8,
  channels: 1,
  modelChannels: 4,
  channelMult: [1, 2],
  numBlocks: 1,
  attnResolutions: [4],
  dropout: 0.2,
  embedDim: 8,
  numClasses: 3,
};

/** Three classes of 8×8 images: a bright row, a bright column, a bright diagonal, plus noise. */
function toyImages(n: number, rng: Rng): { data: Float32Array; labels: Int32Array } {
  const data = new Float32Array(n * 64).fill(-1);
  const labels = new Int32Array(n);
  const noise = rng.normal(n * 64);
  for (let i = 0; i < n; i++) {
    const k = rng.int(3);
    labels[i] = k;
    for (let j = 0; j < 8; j++) {
      const p = k === 0 ? 3 * 8 + j : k === 1 ? j * 8 + 3 : j * 8 + j;
      data[i * 64 + p] = 1;
    }
    for (let p = 0; p < 64; p++) data[i * 64 + p]! += 0.1 * noise[i * 64 + p]!;
  }
  return { data, labels };
}

describe('image training', () => {
  it('trains a conditional UNet teacher with dropout and label dropout, and resumes it exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'unet-'));
    const { data, labels } = toyImages(64, new Rng(1));
    const ds = { data, labels, numClasses: 3, sampleShape: [8, 8, 1] };
    const cfg = { ...TEACHER_DEFAULTS, steps: 4, batchSize: 8, checkpointEvery: 2 };
    const a = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: unet }, new Rng(0));
    await trainTeacher({ model: a, data: ds, config: cfg, rng: new Rng(2) });
    const b = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: unet }, new Rng(0));
    const statePath = join(dir, 'state.safetensors');
    await trainTeacher({ model: b, data: ds, config: { ...cfg, steps: 2 }, rng: new Rng(2), statePath });
    const c = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: unet }, new Rng(7));
    await trainTeacher({ model: c, data: ds, config: cfg, rng: new Rng(99), statePath, resume: true });
    expect(values(c)).toEqual(values(a));
    await expect(
      trainTeacher({ model: c, data: { ...ds, sampleShape: [64] }, config: cfg, rng: new Rng(0) }),
    ).rejects.toThrow(/samples of shape \[64\] but the model expects \[8, 8, 1\]/);
  });

  it('runs Diff-Instruct on a conditional UNet generator (Tweedie init) without leaking tensors', async () => {
    const teacher = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: unet }, new Rng(0));
    const g = tweedieGenerator(teacher, 2.5);
    expect(g.outputShape).toEqual([8, 8, 1]);
    const counts: number[] = [];
    await diffInstruct({
      teacher,
      generator: g,
      config: { ...DIFF_INSTRUCT_DEFAULTS, steps: 30, batchSize: 4 },
      rng: new Rng(3),
      onProgress: () => counts.push(tf.memory().numTensors),
    });
    expect(counts).toHaveLength(3);
    expect(new Set(counts).size).toBe(1);
  });

  it('trains the metric classifier: cross-entropy falls and accuracy rises', async () => {
    const { data, labels } = toyImages(256, new Rng(4));
    const model = createClassifier({ kind: 'lenet', resolution: 8, channels: 1, numClasses: 3, featureDim: 8 }, new Rng(5));
    const losses: number[] = [];
    const acc: number[] = [];
    await trainClassifier({
      model,
      data: { data, labels, numClasses: 3, sampleShape: [8, 8, 1] },
      config: { ...CLASSIFIER_DEFAULTS, steps: 60, batchSize: 32, lr: 3e-3 },
      rng: new Rng(6),
      onProgress: (e) => {
        losses.push(e.losses.loss!);
        acc.push(e.losses.accuracy!);
      },
    });
    expect(losses.at(-1)!).toBeLessThan(0.5 * losses[0]!);
    expect(acc.at(-1)!).toBeGreaterThan(0.9);
  });
});
