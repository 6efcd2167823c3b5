import { basename, extname } from 'node:path';
import * as zlib from 'node:zlib';

import { describe, expect, it } from 'vitest';

import { baseName, extName } from './host.js';
// The main entry, as a web page imports it.
import { PNG_SIGNATURE, encodeNpy, encodePng, parseIdx, parsePoints, storedDeflate } from './index.js';

describe('bytes in, no file system (main entry)', () => {
  it('storedDeflate writes a zlib stream that inflates back, across several 64 KiB blocks', () => {
    for (const n of [0, 1, 1000, 65535, 65536, 200_001]) {
      const raw = Uint8Array.from({ length: n }, (_, i) => (i * 31 + (i >> 7)) & 0xff);
      expect(Uint8Array.from(zlib.inflateSync(storedDeflate(raw)))).toEqual(raw);
    }
  });

  it('encodePng uses Node zlib by default on Node (the same bytes as before) and takes any deflate', () => {
    const rgba = Uint8Array.from({ length: 3 * 2 * 4 }, (_, i) => (i * 37) & 0xff);
    const png = encodePng(3, 2, rgba);
    const stored = encodePng(3, 2, rgba, storedDeflate);
    expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(stored.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(encodePng(3, 2, rgba, (raw) => zlib.deflateSync(raw))).toEqual(png);
    // Both IDAT payloads inflate to the same scanlines.
    const idat = (bytes: Uint8Array) => {
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const ihdrLen = v.getUint32(8);
      const at = 8 + 12 + ihdrLen;
      return bytes.subarray(at + 8, at + 8 + v.getUint32(at));
    };
    expect(zlib.inflateSync(idat(stored))).toEqual(zlib.inflateSync(idat(png)));
  });

  it('parsePoints takes the bytes and name of a CSV or NPY file', () => {
    const csv = new TextEncoder().encode('1,2\n3,4\n');
    expect(parsePoints(csv, 'https://example.org/p.csv')).toEqual({ data: Float32Array.of(1, 2, 3, 4), n: 2, dim: 2 });
    const npy = encodeNpy(Float32Array.of(1, 2, 3), [3, 1]);
    expect(parsePoints(npy, 'p.npy')).toEqual({ data: Float32Array.of(1, 2, 3), n: 3, dim: 1 });
    expect(() => parsePoints(csv, 'p.json')).toThrow('p.json: unsupported file type ".json"; give a .csv, .tsv, .txt or .npy file');
  });

  it('parseIdx takes a gunzip function', () => {
    const idx = Uint8Array.of(0, 0, 8, 1, 0, 0, 0, 2, 7, 9);
    const gz = zlib.gzipSync(idx);
    let called = 0;
    const out = parseIdx(gz, 'x.gz', (b) => (called++, zlib.gunzipSync(b)));
    expect(called).toBe(1);
    expect(out.dims).toEqual([2]);
    expect(Array.from(out.data)).toEqual([7, 9]);
  });

  it('baseName and extName agree with node:path on POSIX paths', () => {
    for (const p of ['a/b/c.csv', 'c.NPY', '/x/y/', '/', '', '.npy', 'a/.hidden', 'a.b.c', 'dir.d/file', 'a.', '..', 'https://h/p.tsv']) {
      expect([p, baseName(p)]).toEqual([p, basename(p)]);
      expect([p, extName(p)]).toEqual([p, extname(p)]);
    }
  });
});
