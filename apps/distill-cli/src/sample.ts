import { extname } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import { UsageError, flagHelp, parseArgs, type FlagSpec, type Io } from '@diff-instruct/cli';
import { encodeNpy, formatCsvPoints, imageGrid } from '@diff-instruct/data';
import { clipImages } from '@diff-instruct/image-eval';
import { loadGenerator, writeFileAtomic } from '@diff-instruct/models/node';
import { Rng } from '@diff-instruct/sde';
import { oneHot } from '@diff-instruct/trainer';

export const SAMPLE_FLAGS: Record<string, FlagSpec> = {
  generator: { type: 'string', help: 'the generator to sample (.safetensors, e.g. runs/toy/generator.safetensors)' },
  'num-samples': { type: 'int', help: 'how many samples (default 2000)' },
  out: { type: 'string', help: 'output file: .csv (points, no header), .npy (float32, N×...) or .png (image grid)' },
  seed: { type: 'int', help: 'seed of the latents (default 0)' },
  label: { type: 'int', help: 'class label, for a conditional generator' },
  backend: { type: 'string', help: 'tfjs backend: tensorflow, wasm or cpu' },
  help: { type: 'boolean', help: 'show this help' },
};

export const SAMPLE_HELP = `distill sample — draw from a saved one-step generator

Usage: distill sample --generator FILE [--label K] --num-samples N --out samples.csv|samples.npy|grid.png

${flagHelp(SAMPLE_FLAGS)}

Examples:
  distill sample --generator runs/toy/generator.safetensors --num-samples 10000 --out ring.csv
  distill sample --generator runs/toy/generator.safetensors --out ring.npy --seed 3
  distill sample --generator runs/images-mnist/generator.safetensors --label 7 --num-samples 64 --out sevens.png

From code, the same in one line: loadGenerator(path) from @diff-instruct/models/node.
`;

export async function runSample(argv: readonly string[], io: Io): Promise<number> {
  const { positionals, flags } = parseArgs(argv, SAMPLE_FLAGS, 'distill sample');
  if (flags.help || positionals.includes('--help')) {
    io.stdout(SAMPLE_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`distill sample takes no arguments, got "${positionals[0]}"`);
  if (flags.generator === undefined) throw new UsageError('distill sample needs --generator FILE; see distill sample --help');
  if (flags.out === undefined) throw new UsageError('distill sample needs --out FILE (.csv or .npy)');
  const out = String(flags.out);
  const ext = extname(out).toLowerCase();
  if (ext !== '.csv' && ext !== '.npy' && ext !== '.png') throw new UsageError(`--out must end in .csv, .npy or .png, got "${out}"`);
  const n = Number(flags.numSamples ?? 2000);
  if (!(n > 0)) throw new UsageError(`--num-samples must be > 0, got ${n}`);
  const gen = loadGenerator(String(flags.generator));
  let label: tf.Tensor2D | undefined;
  if (flags.label !== undefined) {
    const k = Number(flags.label);
    if (gen.numClasses === 0) throw new UsageError('--label given, but this generator is unconditional');
    if (k < 0 || k >= gen.numClasses) throw new UsageError(`--label must be in 0..${gen.numClasses - 1}, got ${k}`);
    label = oneHot(new Int32Array(n).fill(k), gen.numClasses);
  } else if (gen.numClasses > 0) {
    throw new UsageError(`this generator is conditional on ${gen.numClasses} classes; pass --label K`);
  }
  const x = tf.tidy(() => gen.generate(new Rng(Number(flags.seed ?? 0)).normalTensor([n, ...gen.latentShape]), label));
  const data = x.dataSync() as Float32Array;
  if (gen.outputShape.length === 3) clipImages(data); // images in [-1, 1], as distill images writes them
  const dim = data.length / n;
  const [h, w, ch] = gen.outputShape;
  if (ext === '.png' && (w === undefined || ch === undefined)) throw new UsageError('--out .png needs an image generator; write .csv or .npy');
  if (ext === '.csv' && gen.outputShape.length !== 1) throw new UsageError('--out .csv is for point generators; write .npy or .png');
  writeFileAtomic(
    out,
    ext === '.csv'
      ? formatCsvPoints({ data, n, dim })
      : ext === '.npy'
        ? encodeNpy(data, [n, ...gen.outputShape])
        : imageGrid({ images: data, n, height: h!, width: w!, channels: ch!, cols: Math.min(n, 10) }),
  );
  io.stderr(`wrote ${n} samples of shape [${gen.outputShape.join(', ')}] to ${out}\n`);
  return 0;
}
