import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';

import { Rng } from '@diff-instruct/sde';
import { afterAll, describe, expect, it } from 'vitest';

import { Canvas } from './canvas.js';
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyphPixel } from './font.js';
import { PALETTE, formatTick, linePlot, niceTicks, scatterPlot } from './plots.js';
import { PNG_SIGNATURE, crc32, encodePng } from './png.js';
import { getTarget } from './targets.js';

const dir = mkdtempSync(join(tmpdir(), 'di-png-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Decoded {
  width: number;
  height: number;
  chunks: string[];
  pixel(x: number, y: number): number[];
}

/** A minimal PNG reader for what encodePng writes: checks the signature, every CRC and IHDR. */
function decodePng(bytes: Uint8Array): Decoded {
  expect(Array.from(bytes.subarray(0, 8))).toEqual(Array.from(PNG_SIGNATURE));
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: string[] = [];
  const idat: Uint8Array[] = [];
  let width = 0;
  let height = 0;
  for (let o = 8; o < bytes.length; ) {
    const len = v.getUint32(o);
    const type = new TextDecoder().decode(bytes.subarray(o + 4, o + 8));
    const body = bytes.subarray(o + 8, o + 8 + len);
    const crc = v.getUint32(o + 8 + len);
    expect(crc).toBe(zlib.crc32(bytes.subarray(o + 4, o + 8 + len))); // node's own CRC-32
    chunks.push(type);
    if (type === 'IHDR') {
      width = v.getUint32(o + 8);
      height = v.getUint32(o + 12);
      expect(Array.from(body.subarray(8))).toEqual([8, 6, 0, 0, 0]);
    }
    if (type === 'IDAT') idat.push(body);
    o += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) expect(raw[y * (width * 4 + 1)]).toBe(0);
  return {
    width,
    height,
    chunks,
    pixel: (x, y) => Array.from(raw.subarray(y * (width * 4 + 1) + 1 + 4 * x, y * (width * 4 + 1) + 5 + 4 * x)),
  };
}

function countNonWhite(png: Decoded, x0 = 0, y0 = 0, x1 = png.width, y1 = png.height): number {
  let n = 0;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) if (png.pixel(x, y).slice(0, 3).some((c) => c !== 255)) n++;
  return n;
}

describe('PNG', () => {
  it('computes the standard CRC-32', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('writes a file that inflates back to the pixels, with valid chunks', () => {
    const w = 7;
    const h = 3;
    const rgba = new Uint8Array(w * h * 4).fill(255);
    rgba.set([10, 20, 30, 40], 4 * (2 * w + 5)); // pixel (5, 2)
    const path = join(dir, 'tiny.png');
    writeFileSync(path, encodePng(w, h, rgba));
    const png = decodePng(new Uint8Array(readFileSync(path)));
    expect([png.width, png.height]).toEqual([7, 3]);
    expect(png.chunks).toEqual(['IHDR', 'IDAT', 'IEND']);
    expect(png.pixel(5, 2)).toEqual([10, 20, 30, 40]);
    expect(png.pixel(0, 0)).toEqual([255, 255, 255, 255]);
    expect(() => encodePng(2, 2, new Uint8Array(15))).toThrow(/expected 16 RGBA bytes/);
    expect(() => encodePng(0, 2, new Uint8Array(0))).toThrow(/positive integers/);
  });
});

describe('font', () => {
  it('has a glyph for every printable ASCII character, and blank space', () => {
    const ink = (ch: string) => {
      let n = 0;
      for (let c = 0; c < GLYPH_WIDTH; c++) for (let r = 0; r < GLYPH_HEIGHT; r++) if (glyphPixel(ch, c, r)) n++;
      return n;
    };
    expect(ink(' ')).toBe(0);
    for (let code = 33; code <= 126; code++) expect(ink(String.fromCharCode(code))).toBeGreaterThan(0);
    // '1' has a full-height stem in its middle column; '-' is one row in the middle.
    for (let r = 0; r < 7; r++) expect(glyphPixel('1', 2, r)).toBe(true);
    expect([0, 1, 2, 3, 4, 5, 6].map((r) => glyphPixel('-', 2, r))).toEqual([false, false, false, true, false, false, false]);
    expect(ink('\u00e9')).toBe(ink('?'));
  });

  it('draws text onto a canvas', () => {
    const c = new Canvas(20, 10);
    c.text(1, 1, 'I', [0, 0, 0]);
    const png = decodePng(c.toPng());
    expect(png.pixel(3, 1).slice(0, 3)).toEqual([0, 0, 0]); // top bar of the I
    expect(png.pixel(0, 0).slice(0, 3)).toEqual([255, 255, 255]);
  });
});

describe('plots', () => {
  it('niceTicks and formatTick give round values', () => {
    expect(niceTicks(-2.2, 2.2, 5)).toEqual([-2, -1, 0, 1, 2]);
    expect(niceTicks(0, 1990, 7)).toEqual([0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800]);
    const t = niceTicks(0, 1, 5);
    expect(t.map((v) => formatTick(v, t))).toEqual(['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']);
    expect(formatTick(1e-4, [], true)).toBe('1e-4');
    expect(formatTick(0.01, [], true)).toBe('0.01');
  });

  it('scatterPlot: one panel per series, ink where the points are and not elsewhere', () => {
    // One point at (0.7, 1.3) in panel 0 (off the grid lines), a cluster at (-1, -1) in panel 1, on a fixed range.
    const a = Float32Array.of(0.7, 1.3);
    const b = Float32Array.from({ length: 200 }, (_, i) => -1 + (i % 2) * 0.001);
    const size = 200;
    const png = decodePng(
      scatterPlot({
        series: [
          { points: a, dim: 2, label: 'target' },
          { points: b, dim: 2, label: 'generator', color: [255, 0, 0] },
        ],
        title: 'test',
        size,
        range: [-2, 2, -2, 2],
      }),
    );
    expect(png.width).toBe(2 * size);
    expect(png.height).toBeGreaterThan(size);
    // Find the dark blue dot of series 0: it must be in the upper right quarter of panel 0.
    const blue = PALETTE[0]!;
    const near = (p: number[], c: number[]) => p.slice(0, 3).every((v, i) => Math.abs(v - (255 * 0.3 + c[i]! * 0.7)) <= 2);
    const found: [number, number][] = [];
    const red: [number, number][] = [];
    for (let y = 0; y < png.height; y++) {
      for (let x = 0; x < png.width; x++) {
        const p = png.pixel(x, y);
        if (near(p, blue)) found.push([x, y]);
        const q = p.slice(0, 3);
        if (q[0]! > 200 && q[1]! < 60 && q[2]! < 60) red.push([x, y]);
      }
    }
    expect(found.length).toBeGreaterThan(0);
    for (const [x] of found) expect(x).toBeGreaterThan(size / 2);
    for (const [x, y] of found) expect(x < size && y < png.height - size / 2).toBe(true);
    expect(red.length).toBeGreaterThan(0);
    for (const [x, y] of red.filter(([, y]) => y > 40)) {
      expect(x).toBeGreaterThan(size); // panel 1
      expect(x).toBeLessThan(size + size / 2 + 20); // left half: x = -1
      expect(y).toBeGreaterThan(png.height / 2);
    }
  });

  it('scatterPlot: default range, other dims, 10 000 points of a target, and bad input', () => {
    const x = getTarget('ring8').sample(new Rng(0), 10_000);
    const png = decodePng(scatterPlot({ series: [{ points: x, dim: 2, label: 'ring8' }] }));
    expect([png.width, png.height]).toEqual([512, 512]);
    // The centre of the ring is empty; somewhere at radius 2 there is ink.
    expect(countNonWhite(png, 250, 250, 262, 262)).toBeLessThan(40); // only grid lines
    expect(countNonWhite(png)).toBeGreaterThan(3000);
    const three = new Float32Array(30).fill(0.5);
    expect(() => scatterPlot({ series: [{ points: three, dim: 3, label: 'a' }], dims: [0, 3] })).toThrow(/dims \[0, 3\] are out of range/);
    expect(() => scatterPlot({ series: [{ points: three, dim: 3, label: 'a' }], dims: [2, 1] })).not.toThrow();
    expect(() => scatterPlot({ series: [] })).toThrow(/at least one series/);
    expect(() => scatterPlot({ series: [{ points: three, dim: 4, label: 'a' }] })).toThrow(/not a multiple of dim 4/);
  });

  it('linePlot: a valid PNG with the curve drawn, log axes and breaks at NaN', () => {
    const x = Array.from({ length: 100 }, (_, i) => i);
    const png = decodePng(
      linePlot({
        series: [
          { x, y: x.map((i) => Math.exp(-i / 20)), label: 'loss' },
          { x, y: x.map((i) => (i === 50 ? NaN : 0.05)), label: 'flat', color: [255, 0, 0] },
        ],
        title: 'Loss',
        logY: true,
        xLabel: 'step',
        yLabel: 'loss',
      }),
    );
    expect([png.width, png.height]).toEqual([640, 400]);
    const redRows = new Map<number, number[]>();
    for (let y = 0; y < png.height; y++) {
      for (let x = 0; x < png.width; x++) {
        const [r, g, b] = png.pixel(x, y);
        if (r === 255 && g === 0 && b === 0) redRows.set(y, [...(redRows.get(y) ?? []), x]);
      }
    }
    // A horizontal line, the legend swatch (3 rows) and the dot that restarts the line after NaN.
    expect(redRows.size).toBeGreaterThan(0);
    expect(redRows.size).toBeLessThanOrEqual(6);
    const line = [...redRows.values()].sort((p, q) => q.length - p.length)[0]!;
    expect(line.length).toBeGreaterThan(400);
    // Broken at the NaN, half-way along (x = 50 of 0..99).
    const gaps = line.filter((x, i) => i > 0 && x - line[i - 1]! > 1);
    expect(gaps.some((x) => x > 0.45 * png.width && x < 0.6 * png.width)).toBe(true);
    expect(countNonWhite(png)).toBeGreaterThan(2000);
    expect(() => linePlot({ series: [{ x: [1, 2], y: [1], label: 'a' }] })).toThrow(/2 x values but 1 y values/);
    expect(() => decodePng(linePlot({ series: [{ x: [], y: [], label: 'empty' }] }))).not.toThrow();
  });
});
