// The spread of an images table: FID (LeNet features) of a one-step generator and of its teacher at
// 9 NFE (EDM Heun) on fresh sample sets, one per seed. Prints one JSON line per seed.
//   node --conditions=@diff-instruct/source --import tsx bench/fid-spread.ts GENERATOR TEACHER [N] [SEEDS]
// e.g. bench/fid-spread.ts runs/images-mnist/generator.safetensors \
//        checkpoints/mnist/teacher-uncond/teacher.safetensors 2000 101,102
import { selectBackend } from '@diff-instruct/cli';
import { loadImageDataset } from '@diff-instruct/data/node';
import { classify, clipImages, generate, imageMetrics } from '@diff-instruct/image-eval';
import { gaussianStats } from '@diff-instruct/metrics';
import { sampleShape } from '@diff-instruct/models';
import { loadClassifier, loadDenoiser, loadGenerator } from '@diff-instruct/models/node';
import { Rng, sampleTeacher } from '@diff-instruct/sde';

const [genPath, teacherPath, nArg, seedsArg] = process.argv.slice(2);
if (!genPath || !teacherPath) {
  console.error('usage: bench/fid-spread.ts GENERATOR TEACHER [N=2000] [SEEDS=101,102] (MNIST; the committed classifier)');
  process.exit(2);
}
await selectBackend(undefined);
const n = Number(nArg ?? 2000);
const seeds = (seedsArg ?? '101,102').split(',').map(Number);
const cls = loadClassifier('checkpoints/mnist/classifier/classifier.safetensors');
const test = loadImageDataset('mnist', { split: 'test' });
const shape = [test.height, test.width, test.channels];
const ref = classify(cls, test.images, test.n, shape);
const refStats = gaussianStats(ref.features, test.n, ref.d);
const g = loadGenerator(genPath);
const t = loadDenoiser(teacherPath);
if (sampleShape(t.config).join() !== shape.join()) throw new Error(`${teacherPath} is not an MNIST teacher`);
const per = shape.reduce((a, b) => a * b, 1);
for (const seed of seeds) {
  const gm = imageMetrics(cls, refStats, generate(g, n, new Rng(seed)), n, shape);
  const images = new Float32Array(n * per);
  const rng = new Rng(seed + 1000);
  for (let i = 0; i < n; i += 100) {
    const m = Math.min(100, n - i);
    const { x } = sampleTeacher(t.denoise, { shape: [m, ...shape], steps: 5, rng }); // 5 Heun steps = 9 NFE
    images.set(x.dataSync(), i * per);
    x.dispose();
  }
  const tm = imageMetrics(cls, refStats, clipImages(images), n, shape);
  console.log(JSON.stringify({ seed, n, generatorFid: gm.fid, teacherNfe9Fid: tm.fid, generatorIs: gm.is, teacherNfe9Is: tm.is }));
}
