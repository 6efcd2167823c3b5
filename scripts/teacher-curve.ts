// The FID curve of a teacher training run: FID (LeNet features) of every snapshot
// `teacher-<step>.safetensors` in a folder, drawn exactly as `teacher-fid` draws one (EDM Heun, the
// same latents for every snapshot, clipped to [-1, 1]). Results go to <dir>/fid.jsonl (a snapshot
// already there is not measured again) and the curve to <dir>/fid.png.
// pnpm -s teacher-curve <dir> [heun steps = 18 (35 NFE)] [samples = 2000] [seed = 0]
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { linePlot } from '@diff-instruct/data';
import { imageMetrics, teacherSamples } from '@diff-instruct/image-eval';
import { loadDenoiser, writeFileAtomic } from '@diff-instruct/models/node';

import { mnistReference } from './mnist-reference.js';

const [dir, steps = 18, n = 2000, seed = 0] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a))) as [string, number?, number?, number?];
const usage = 'usage: pnpm -s teacher-curve <folder of teacher-<step>.safetensors> [heun steps ≥ 1] [samples ≥ 1] [seed ≥ 0]';
if (!dir || !existsSync(dir)) throw new Error(`teacher-curve: no folder ${dir ?? ''}; ${usage}`);
if (!(Number.isInteger(steps) && steps >= 1 && Number.isInteger(n) && n >= 1 && Number.isInteger(seed) && seed >= 0)) {
  throw new Error(`teacher-curve: got heun steps ${steps}, samples ${n}, seed ${seed}; ${usage}`);
}
const snapshots = readdirSync(dir)
  .map((f) => /^teacher-(\d+)\.safetensors$/.exec(f))
  .filter((m): m is RegExpExecArray => m !== null)
  .map((m) => ({ step: Number(m[1]), path: join(dir, m[0]) }))
  .sort((a, b) => a.step - b.step);
if (snapshots.length === 0) throw new Error(`teacher-curve: ${dir} holds no teacher-<step>.safetensors; ${usage}`);
const nfe = 2 * steps - 1;
type Point = { step: number; nfe: number; samples: number; seed: number; fid: number; is: number };
const logPath = join(dir, 'fid.jsonl');
const read = (): Point[] => (existsSync(logPath) ? readFileSync(logPath, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Point) : []);
const same = (p: Point) => p.nfe === nfe && p.samples === n && p.seed === seed;

const { cls, shape, refStats, io } = await mnistReference();
for (const s of snapshots) {
  if (read().some((p) => same(p) && p.step === s.step)) continue;
  const t0 = performance.now();
  const { images } = teacherSamples(loadDenoiser(s.path), s.path, steps, n, seed, undefined, io);
  const m = imageMetrics(cls, refStats, images, n, shape);
  const point: Point = { step: s.step, nfe, samples: n, seed, fid: m.fid, is: m.is };
  writeFileAtomic(logPath, `${[...read(), point].map((p) => JSON.stringify(p)).join('\n')}\n`);
  process.stderr.write(`step ${s.step}: FID ${m.fid.toFixed(2)} at ${nfe} NFE (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
}
const points = read().filter(same).sort((a, b) => a.step - b.step);
writeFileAtomic(
  join(dir, 'fid.png'),
  linePlot({ title: `teacher FID (LeNet features), ${n} samples, ${nfe} NFE`, xLabel: 'training step', series: [{ label: 'EMA teacher', x: points.map((p) => p.step), y: points.map((p) => p.fid) }] }),
);
console.log(JSON.stringify(points));
