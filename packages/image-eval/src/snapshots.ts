import { join } from 'node:path';

import { seedFor } from '@diff-instruct/cli';
import { imageGrid } from '@diff-instruct/data';
import type { GaussianStats } from '@diff-instruct/metrics';
import { type ClassifierModel, type GeneratorModel } from '@diff-instruct/models';
import { writeFileAtomic } from '@diff-instruct/models/node';
import { Rng } from '@diff-instruct/sde';
import type { JsonlLog } from '@diff-instruct/trainer/node';

import { imageMetrics } from './metrics.js';
import { generate } from './samples.js';

/** What a checkpoint of an image run draws and measures; see {@link checkpointSnapshots}. */
export interface SnapshotOptions {
  cls: ClassifierModel;
  refStats: GaussianStats;
  shape: number[];
  labelsFor: (n: number) => Int32Array | undefined;
  curveSamples: number;
  seed: number;
  out: string;
  log: JsonlLog;
  /** Grid rows (checkpoints) kept, the latest ones. */
  maxRows: number;
  title: string;
}

/**
 * The per-checkpoint snapshot of an image run: a grid row of 10 samples from the same latents at
 * every checkpoint (grid.png) and a point of the FID (LeNet features) curve, logged as 'fid-curve'.
 */
export function checkpointSnapshots(o: SnapshotOptions): (step: number, g: GeneratorModel) => void {
  const cols = 10;
  const gridSeed = seedFor(o.seed, 'grid-latents');
  const curveSeed = seedFor(o.seed, 'curve');
  const rows: { step: number; images: Float32Array }[] = [];
  return (step, g) => {
    rows.push({ step, images: generate(g, cols, new Rng(gridSeed), o.labelsFor(cols)) });
    if (rows.length > o.maxRows) rows.splice(0, rows.length - o.maxRows);
    const m = imageMetrics(o.cls, o.refStats, generate(g, o.curveSamples, new Rng(curveSeed), o.labelsFor(o.curveSamples)), o.curveSamples, o.shape);
    o.log.write({ phase: 'fid-curve', step, fid: m.fid, is: m.is });
    const all = new Float32Array(rows.length * cols * o.shape.reduce((a, b) => a * b, 1));
    rows.forEach((r, i) => all.set(r.images, i * r.images.length));
    writeFileAtomic(
      join(o.out, 'grid.png'),
      imageGrid({ images: all, n: rows.length * cols, height: o.shape[0]!, width: o.shape[1]!, channels: o.shape[2]!, cols, rowLabels: rows.map((r) => `step ${r.step}`), title: o.title }),
    );
  };
}
