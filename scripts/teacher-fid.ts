// FID (LeNet features) of an MNIST teacher's own samples, drawn exactly as `distill images` draws its
// teacher rows (teacherSamples: EDM Heun, the same latents, clipped to [-1, 1], cached beside the teacher).
// pnpm -s teacher-fid <teacher.safetensors> [heun steps = 5 (9 NFE)] [samples = 2000] [seed = 0]
import { imageMetrics, teacherSamples } from '@diff-instruct/image-eval';
import { loadDenoiser } from '@diff-instruct/models/node';

import { mnistReference } from './mnist-reference.js';

const [path, steps = 5, n = 2000, seed = 0] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a))) as [string, number?, number?, number?];
const usage = 'usage: pnpm -s teacher-fid <teacher.safetensors> [heun steps ≥ 1] [samples ≥ 1] [seed ≥ 0]';
if (!path) throw new Error(usage);
if (!(Number.isInteger(steps) && steps >= 1 && Number.isInteger(n) && n >= 1 && Number.isInteger(seed) && seed >= 0)) {
  throw new Error(`teacher-fid: got heun steps ${steps}, samples ${n}, seed ${seed}; ${usage}`);
}
const { cls, shape, refStats, io } = await mnistReference();
const { images, nfe } = teacherSamples(loadDenoiser(path), path, steps, n, seed, undefined, io);
const m = imageMetrics(cls, refStats, images, n, shape);
console.log(JSON.stringify({ teacher: path, nfe, samples: n, seed, fid: m.fid, is: m.is, classFractions: m.classFractions }));
