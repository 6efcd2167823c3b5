import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createDenoiser } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { trainTeacher } from './node.js';
import { TEACHER_DEFAULTS } from './teacher.js';
import { mixture, smallTeacher, toyImages, unet, values } from './trainer.fixtures.js';

describe('trainTeacher', () => {
  it('resumes exactly: 12 steps = 6 steps, stop, resume 6 steps (weights bit for bit)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'teacher-'));
    const data = { data: mixture(2).sample(new Rng(1), 512), sampleShape: [2] };
    const cfg = { ...TEACHER_DEFAULTS, steps: 12, batchSize: 32, checkpointEvery: 6 };

    const a = smallTeacher(2);
    const ra = await trainTeacher({ model: a, data, config: cfg, rng: new Rng(5) });

    const b = smallTeacher(2);
    const statePath = join(dir, 'state.safetensors');
    await trainTeacher({ model: b, data, config: { ...cfg, steps: 6 }, rng: new Rng(5), statePath });
    const c = smallTeacher(2, 99); // different init: everything must come from the checkpoint
    const rc = await trainTeacher({ model: c, data, config: cfg, rng: new Rng(12345), statePath, resume: true });

    expect(values(c)).toEqual(values(a));
    expect(values(rc.ema)).toEqual(values(ra.ema));
  });

  it('refuses to resume with different settings, and says which', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'teacher-'));
    const data = { data: mixture(2).sample(new Rng(1), 256), sampleShape: [2] };
    const statePath = join(dir, 'state.safetensors');
    await trainTeacher({ model: smallTeacher(2), data, config: { ...TEACHER_DEFAULTS, steps: 2, batchSize: 16 }, rng: new Rng(0), statePath });
    await expect(
      trainTeacher({
        model: smallTeacher(2),
        data,
        config: { ...TEACHER_DEFAULTS, steps: 4, batchSize: 16, lr: 0.5 },
        rng: new Rng(0),
        statePath,
        resume: true,
      }),
    ).rejects.toThrow(/config differs \(train\.lr: stored 0\.001, now 0\.5\)/);
  });

  it('says clearly when the training state is corrupt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'teacher-'));
    const statePath = join(dir, 'state.safetensors');
    writeFileSync(statePath, 'garbage that is not safetensors');
    const data = { data: mixture(2).sample(new Rng(1), 64), sampleShape: [2] };
    await expect(
      trainTeacher({ model: smallTeacher(2), data, config: { ...TEACHER_DEFAULTS, steps: 2, batchSize: 8 }, rng: new Rng(0), statePath, resume: true }),
    ).rejects.toThrow(/is not a valid training state/);
  });

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
});
