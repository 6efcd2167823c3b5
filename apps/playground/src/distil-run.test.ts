import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import { loadDenoiser } from '@diff-instruct/models';
import { describe, expect, it } from 'vitest';

import { LIVE_CONFIG, LiveDistillation, type LiveUpdate } from './distil-run.js';

const teacherBytes = readFileSync(fileURLToPath(new URL('../../../checkpoints/toy/ring8/teacher.safetensors', import.meta.url)));

/** A shorter, smaller run of the page's recipe (the page runs 500 steps at batch 512). */
const SHORT = { ...LIVE_CONFIG, steps: 30, batchSize: 64 };

describe('the live distillation of the Distil tab', () => {
  it('lowers the energy distance to ring8 over its first steps, from the committed toy teacher', async () => {
    const teacher = loadDenoiser(teacherBytes);
    const updates: LiveUpdate[] = [];
    // The page's own settings, stopped after 50 of its 500 steps.
    const live: LiveDistillation = new LiveDistillation({
      teacher,
      points: 500,
      onUpdate: (u) => {
        updates.push(u);
        if (u.step === 50) void live.stop();
      },
    });
    await live.start();
    expect(live.state).toBe('stopped');
    expect(updates.map((u) => u.step)).toEqual([0, 10, 20, 30, 40, 50]);
    const first = updates[0]!.energyAboveFloor;
    const last = updates.at(-1)!.energyAboveFloor;
    // The Tweedie initialisation is far from the ring (≈ 0.5 above the floor); 50 steps close most
    // of the gap (0.026 in Node on seed 0; the issue asks for < 0.05 within 500 steps).
    expect(first).toBeGreaterThan(0.2);
    expect(last).toBeLessThan(0.2 * first);
    live.dispose();
    tf.dispose(Object.values(teacher.params));
  });

  it('stops at the next step, continues exactly where it stopped, and frees its tensors', async () => {
    const teacher = loadDenoiser(teacherBytes);
    const cfg = SHORT;
    const straight = new LiveDistillation({ teacher, config: cfg, points: 200 });
    await straight.start();
    const expected = straight.samples();
    straight.dispose();

    const before = tf.memory().numTensors;
    let stopAt = 10;
    const live: LiveDistillation = new LiveDistillation({
      teacher,
      config: cfg,
      points: 200,
      onUpdate: (u) => {
        if (u.step === stopAt) void live.stop();
      },
    });
    await live.start();
    expect(live.state).toBe('stopped');
    expect(live.step).toBe(10);
    stopAt = -1;
    await live.resume();
    expect(live.state).toBe('done');
    expect(Array.from(live.samples())).toEqual(Array.from(expected));

    // Restart begins again from the Tweedie initialisation and ends where a first run ends.
    await live.start();
    expect(Array.from(live.samples())).toEqual(Array.from(expected));
    live.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(Object.values(teacher.params));
  });
});
