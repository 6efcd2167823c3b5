import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { seedFor, type Io } from '@diff-instruct/cli';
import { encodeNpy, parseNpyArray } from '@diff-instruct/data';
import { type DenoiserModel, type GeneratorModel, type UnetConfig } from '@diff-instruct/models';
import { writeFileAtomic } from '@diff-instruct/models/node';
import { Rng, sampleTeacher } from '@diff-instruct/sde';
import { oneHot } from '@diff-instruct/trainer';

/**
 * Images are clipped to [-1, 1] before they are written or measured, as EDM's generate.py clips
 * before quantising: a sampler can leave pixels outside (the committed MNIST teacher at 9 NFE: from
 * −3.3 to 5.7), and the .npy files promise [-1, 1]. In place; returns its argument.
 */
export function clipImages(images: Float32Array): Float32Array {
  for (let i = 0; i < images.length; i++) images[i] = Math.min(1, Math.max(-1, images[i]!));
  return images;
}

/** Draws N samples from the generator with fixed latents (and labels 0..K−1 in turn when conditional), clipped to [-1, 1]. */
export function generate(gen: GeneratorModel, n: number, rng: Rng, labels?: Int32Array): Float32Array {
  const per = gen.outputShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n * per);
  for (let i = 0; i < n; i += 100) {
    const m = Math.min(100, n - i);
    tf.tidy(() => {
      const z = rng.normalTensor([m, ...gen.latentShape]);
      const label = labels ? oneHot(labels.subarray(i, i + m), gen.numClasses) : undefined;
      out.set(gen.generate(z, label).dataSync(), i * per);
    });
  }
  return clipImages(out);
}

/**
 * Teacher samples at `steps` Heun steps, clipped to [-1, 1], cached (as the sampler made them) next
 * to the teacher, keyed by the teacher's bytes, the NFE, the seed, N and the labels. A hit is said
 * in the log, and its time per sample is measured again on 20 samples.
 */
export function teacherSamples(
  teacher: DenoiserModel,
  teacherPath: string,
  steps: number,
  n: number,
  seed: number,
  labels: Int32Array | undefined,
  io: Io,
): { images: Float32Array; nfe: number; msPerSample: number } {
  const net = teacher.config.net as UnetConfig;
  const hash = createHash('sha256').update(readFileSync(teacherPath)).digest('hex').slice(0, 12);
  const nfe = 2 * steps - 1;
  const cacheDir = join(dirname(resolve(teacherPath)), '.sample-cache');
  const key = `${basename(teacherPath, '.safetensors')}-${hash}-nfe${nfe}-seed${seed}-n${n}${labels ? '-cond' : ''}`;
  const cachePath = join(cacheDir, `${key}.npy`);
  const metaPath = join(cacheDir, `${key}.json`);
  const shape = [net.resolution, net.resolution, net.channels];
  if (existsSync(cachePath) && existsSync(metaPath)) {
    const p = parseNpyArray(new Uint8Array(readFileSync(cachePath)), cachePath);
    // the time per sample is measured now, on a few samples: the cached run may have been slower code
    const m = Math.min(n, 20);
    const t0 = performance.now();
    const label = labels ? oneHot(labels.subarray(0, m), net.numClasses) : undefined;
    const { x } = sampleTeacher(teacher.denoise, { shape: [m, ...shape], steps, rng: new Rng(seedFor(seed, 'teacher-timing')), label });
    x.dataSync();
    x.dispose();
    label?.dispose();
    const msPerSample = (performance.now() - t0) / m;
    io.stderr(`teacher ${nfe} NFE: cache hit (${cachePath}); ${msPerSample.toFixed(1)} ms per sample measured on ${m}\n`);
    return { images: clipImages(p.data), nfe, msPerSample };
  }
  const per = shape.reduce((a, b) => a * b, 1);
  const images = new Float32Array(n * per);
  const rng = new Rng(seedFor(seed, `teacher-sample-${steps}`));
  io.stderr(`teacher ${nfe} NFE: sampling ${n} images…\n`);
  const t0 = performance.now();
  for (let i = 0; i < n; i += 100) {
    const m = Math.min(100, n - i);
    const label = labels ? oneHot(labels.subarray(i, i + m), net.numClasses) : undefined;
    const { x } = sampleTeacher(teacher.denoise, { shape: [m, ...shape], steps, rng, label });
    images.set(x.dataSync(), i * per);
    x.dispose();
    label?.dispose();
    if (i === 0 && n > m) {
      const eta = ((performance.now() - t0) / m) * (n - m);
      io.stderr(`teacher ${nfe} NFE: ${(m / ((performance.now() - t0) / 1000)).toFixed(1)} images/s, ETA ${(eta / 1000).toFixed(0)} s\n`);
    }
  }
  const msPerSample = (performance.now() - t0) / n;
  mkdirSync(cacheDir, { recursive: true });
  writeFileAtomic(cachePath, encodeNpy(images, [n, ...shape]));
  writeFileAtomic(metaPath, JSON.stringify({ msPerSample, teacher: teacherPath, nfe, seed, n }));
  io.stderr(`teacher ${nfe} NFE: sampled ${n} in ${((msPerSample * n) / 1000).toFixed(1)} s, cached as ${cachePath}\n`);
  return { images: clipImages(images), nfe, msPerSample };
}
