import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { TrainingError, runLoop } from './loop.js';
import { JsonlLog } from './node.js';

describe('runLoop', () => {
  it('reports progress with rate and ETA, logs JSONL and checkpoints on schedule', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loop-'));
    const log = new JsonlLog(join(dir, 'log.jsonl'));
    const events: number[] = [];
    const ckpts: number[] = [];
    await runLoop({
      phase: 'p',
      totalSteps: 25,
      startStep: 0,
      step: (i) => ({ loss: 1 / i }),
      onProgress: (e) => {
        expect(e.itPerSec).toBeGreaterThan(0);
        expect(e.etaSec).toBeGreaterThanOrEqual(0);
        events.push(e.step);
      },
      progressEvery: 10,
      log,
      logEvery: 5,
      checkpoint: (s) => ckpts.push(s),
      checkpointEvery: 10,
    });
    expect(events).toEqual([10, 20, 25]);
    expect(ckpts).toEqual([10, 20, 25]);
    const lines = readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).step)).toEqual([5, 10, 15, 20, 25]);
    log.truncateAfter('p', 10);
    expect(JsonlLog.read(log.path).map((r) => r.step)).toEqual([5, 10]);
  });

  it('stops with a clear error when a loss becomes NaN, naming the intact checkpoint', async () => {
    await expect(
      runLoop({
        phase: 'teacher',
        totalSteps: 10,
        startStep: 0,
        step: (i) => ({ loss: i === 4 ? Number.NaN : 1 }),
        checkpointHint: 'run/teacher-state.safetensors',
      }),
    ).rejects.toThrow(/loss 'loss' became NaN at step 4; the last checkpoint \(run\/teacher-state.safetensors\) is intact/);
    await expect(runLoop({ phase: 'x', totalSteps: 3, startStep: 0, step: () => ({ l: Infinity }) })).rejects.toThrow(TrainingError);
  });

  it('stops before the wasm heap limit', async () => {
    const keep = tf.zeros([1024, 256]);
    await expect(
      runLoop({ phase: 'x', totalSteps: 2, startStep: 0, step: () => ({ l: 1 }), memoryLimitBytes: 1024 }),
    ).rejects.toThrow(/over the .* GiB limit of the wasm heap; use a smaller batch/);
    keep.dispose();
  });

  it('keeps the tensor count flat: each step runs in a tidy scope', async () => {
    const before = tf.memory().numTensors;
    await runLoop({
      phase: 'x',
      totalSteps: 50,
      startStep: 0,
      step: () => ({ l: tf.sum(tf.square(tf.randomNormal([64, 8]))).dataSync()[0]! }),
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
