import { inflateSync } from 'node:zlib';

import { describe, expect, it } from 'vitest';

import { TEXT_HEIGHT, textWidth } from './canvas.js';
import { imageGrid } from './grid.js';
import { PNG_SIGNATURE } from './png.js';

/** Decodes what encodePng writes (RGBA, 8-bit, filter 0): IHDR size and an RGB pixel reader. */
function decode(png: Uint8Array): { width: number; height: number; rgb(x: number, y: number): number[] } {
  expect(Array.from(png.subarray(0, 8))).toEqual(Array.from(PNG_SIGNATURE));
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  expect(new TextDecoder().decode(png.subarray(12, 16))).toBe('IHDR');
  const width = v.getUint32(16);
  const height = v.getUint32(20);
  expect(Array.from(png.subarray(24, 29))).toEqual([8, 6, 0, 0, 0]); // 8-bit RGBA
  const idat: Uint8Array[] = [];
  for (let o = 8; o < png.length; o += 12 + v.getUint32(o)) {
    if (new TextDecoder().decode(png.subarray(o + 4, o + 8)) === 'IDAT') idat.push(png.subarray(o + 8, o + 8 + v.getUint32(o)));
  }
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe((4 * width + 1) * height);
  const rgb = (x: number, y: number) => Array.from(raw.subarray(y * (4 * width + 1) + 1 + 4 * x, y * (4 * width + 1) + 4 + 4 * x));
  return { width, height, rgb };
}

/** Pixels in the box [x0, x1) × [y0, y1) that are not white. */
function ink(img: ReturnType<typeof decode>, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (img.rgb(x, y).some((c) => c !== 255)) n++;
  return n;
}

describe('imageGrid', () => {
  it('lays out upscaled images with gaps, mapping [-1, 1] to 0..255', () => {
    // Six 4×4 grayscale images, all -1 except image 4 at (x 2, y 1) and a few special values in image 5.
    const images = new Float32Array(6 * 16).fill(-1);
    images[4 * 16 + 1 * 4 + 2] = 1;
    images[5 * 16 + 0] = 0;
    images[5 * 16 + 1] = 3; // clipped to white
    images[5 * 16 + 2] = -5; // clipped to black
    images[5 * 16 + 3] = NaN;
    const img = decode(imageGrid({ images, n: 6, height: 4, width: 4, channels: 1, cols: 3 }));
    // Default scale 2, pad 2: tiles 8×8 with 2-pixel gaps: 3·10 + 2 by 2·10 + 2.
    expect([img.width, img.height]).toEqual([32, 22]);
    expect(img.rgb(0, 0)).toEqual([255, 255, 255]); // gap
    expect(img.rgb(2, 2)).toEqual([0, 0, 0]); // image 0, pixel (0, 0)
    expect(img.rgb(9, 9)).toEqual([0, 0, 0]); // image 0, pixel (3, 3), lower-right copy
    expect(img.rgb(10, 2)).toEqual([255, 255, 255]); // gap between images 0 and 1
    // Image 4 sits at row 1, column 1: origin (12, 12); its pixel (2, 1) covers (16..17, 14..15).
    for (const [x, y] of [[16, 14], [17, 14], [16, 15], [17, 15]] as const) expect(img.rgb(x, y)).toEqual([255, 255, 255]);
    expect(img.rgb(15, 14)).toEqual([0, 0, 0]);
    expect(img.rgb(18, 15)).toEqual([0, 0, 0]);
    // Image 5 at (22, 12): 0 → 128, 3 → 255, -5 → 0, NaN → magenta.
    expect([img.rgb(22, 12), img.rgb(24, 12), img.rgb(26, 12), img.rgb(28, 13)]).toEqual([
      [128, 128, 128],
      [255, 255, 255],
      [0, 0, 0],
      [255, 0, 255],
    ]);
  });

  it('draws RGB images and honours scale and pad', () => {
    const images = Float32Array.of(1, -1, -1, -1, 1, -1); // two 1×1 images: red, green
    const img = decode(imageGrid({ images, n: 2, height: 1, width: 1, channels: 3, scale: 3, pad: 1 }));
    expect([img.width, img.height]).toEqual([2 * 4 + 1, 4 + 1]); // cols = ceil(√2) = 2
    expect(img.rgb(1, 1)).toEqual([255, 0, 0]);
    expect(img.rgb(3, 3)).toEqual([255, 0, 0]);
    expect(img.rgb(4, 2)).toEqual([255, 255, 255]);
    expect(img.rgb(5, 1)).toEqual([0, 255, 0]);
  });

  it('puts one label at the left of each row and a title on top', () => {
    const rowLabels = ['step 0', 'step 500', 'step 1000'];
    const n = 3 * 4; // the same 4 latents at 3 checkpoints
    const images = new Float32Array(n * 32 * 32).fill(-1);
    const plain = decode(imageGrid({ images, n, height: 32, width: 32, channels: 1, cols: 4 }));
    const png = imageGrid({ images, n, height: 32, width: 32, channels: 1, rowLabels, title: 'Figure 4' });
    const img = decode(png);
    // 64×64 tiles use text at scale 2 with 8-pixel margins.
    const labelW = textWidth('step 1000', 2) + 16;
    const titleH = TEXT_HEIGHT * 2 + 16;
    expect([img.width, img.height]).toEqual([plain.width + labelW, plain.height + titleH]);
    for (let r = 0; r < 3; r++) {
      const y0 = titleH + 2 + r * 66;
      expect(ink(img, 0, y0, labelW, y0 + 64), `label of row ${r}`).toBeGreaterThan(20);
      expect(img.rgb(labelW + 2, y0)).toEqual([0, 0, 0]); // first image of the row
    }
    expect(ink(img, 0, 0, img.width, titleH)).toBeGreaterThan(20);
    expect(ink(plain, 0, 0, 2, plain.height)).toBe(0);
    expect(ink(img, 0, 0, 8, img.height)).toBe(0); // margins stay white
  });

  it('rejects inconsistent options with a message naming the problem', () => {
    const images = new Float32Array(4 * 16);
    const base = { images, n: 4, height: 4, width: 4, channels: 1 };
    expect(() => imageGrid({ ...base, n: 5 })).toThrow(/expected 5×4×4×1 = 80 values, got 64/);
    expect(() => imageGrid({ ...base, channels: 2, n: 2 })).toThrow(/channels must be 1 \(grayscale\) or 3 \(RGB\), got 2/);
    expect(() => imageGrid({ ...base, rowLabels: ['a', 'b', 'c'] })).toThrow(/4 images do not split into 3 labelled rows/);
    expect(() => imageGrid({ ...base, cols: 1, rowLabels: ['a', 'b'] })).toThrow(/2 row labels for 4 rows of 1 images/);
    expect(() => imageGrid({ ...base, scale: 1.5 })).toThrow(/scale must be an integer/);
  });
});
