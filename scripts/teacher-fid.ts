// FID (LeNet features) of an MNIST teacher's own samples, clipped to [-1, 1] as in distill's tables: EDM Heun, 250 samples per batch.
// pnpm -s teacher-fid <teacher.safetensors> [heun steps = 5 (9 NFE)] [samples = 2000] [seed = 0]
import { loadImageDataset } from '@diff-instruct/data';
import { classify, clipImages, imageMetrics, selectBackend } from '@diff-instruct/distill-cli';
import { gaussianStats } from '@diff-instruct/metrics';
import { loadClassifier, loadDenoiser } from '@diff-instruct/models';
import { Rng, sampleTeacher } from '@diff-instruct/sde';

const [path, steps = 5, n = 2000, seed = 0] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a))) as [string, number?, number?, number?];
const usage = 'usage: pnpm -s teacher-fid <teacher.safetensors> [heun steps ≥ 1] [samples ≥ 1] [seed ≥ 0]';
if (!path) throw new Error(usage);
if (!(Number.isInteger(steps) && steps >= 1 && Number.isInteger(n) && n >= 1 && Number.isInteger(seed) && seed >= 0)) {
  throw new Error(`teacher-fid: got heun steps ${steps}, samples ${n}, seed ${seed}; ${usage}`);
}
await selectBackend(undefined);
const shape = [32, 32, 1];
const cls = loadClassifier('checkpoints/mnist/classifier/classifier.safetensors');
const test = loadImageDataset('mnist', { split: 'test' });
const ref = classify(cls, test.images, test.n, shape);
const refStats = gaussianStats(ref.features, test.n, ref.d);
const teacher = loadDenoiser(path);
const images = new Float32Array(n * 32 * 32);
for (let i = 0; i < n; i += 250) {
  const { x } = sampleTeacher(teacher.denoise, { shape: [Math.min(250, n - i), ...shape], steps, rng: new Rng(seed * 1000 + i) });
  images.set(x.dataSync() as Float32Array, i * 32 * 32);
  x.dispose();
}
const m = imageMetrics(cls, refStats, clipImages(images), n, shape);
console.log(JSON.stringify({ teacher: path, nfe: 2 * steps - 1, samples: n, seed, fid: m.fid, is: m.is, classFractions: m.classFractions }));
