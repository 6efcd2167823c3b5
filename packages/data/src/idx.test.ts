import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { parseIdx } from './idx.js';
import { readIdxFile } from './node.js';

const dir = mkdtempSync(join(tmpdir(), 'di-idx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An unsigned-byte IDX file of shape `dims` holding `data` (dtype and ndim overridable for error cases). */
function idx(dims: number[], data: ArrayLike<number>, dtype = 0x08): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  out[2] = dtype;
  out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

const images = idx([3, 2, 2], [0, 1, 2, 3, 10, 11, 12, 13, 250, 251, 252, 255]);

describe('parseIdx', () => {
  it('reads dims (big-endian) and data of a raw file', () => {
    const big = parseIdx(idx([1, 300], new Uint8Array(300).fill(7)), 'big');
    expect(big.dims).toEqual([1, 300]);
    const { dims, data } = parseIdx(images, 'images');
    expect(dims).toEqual([3, 2, 2]);
    expect(Array.from(data)).toEqual([0, 1, 2, 3, 10, 11, 12, 13, 250, 251, 252, 255]);
  });

  it('reads a gzipped file transparently', () => {
    const gz = new Uint8Array(gzipSync(images));
    expect([gz[0], gz[1]]).toEqual([0x1f, 0x8b]);
    expect(parseIdx(gz, 'images.gz')).toEqual(parseIdx(images, 'images'));
    const labels = parseIdx(new Uint8Array(gzipSync(idx([4], [9, 0, 3, 1]))), 'labels.gz');
    expect(labels.dims).toEqual([4]);
    expect(Array.from(labels.data)).toEqual([9, 0, 3, 1]);
  });

  it('rejects bad magic, other dtypes, zero dims and wrong sizes, naming the source', () => {
    const bad = images.slice();
    bad[0] = 0x50; // 'P', e.g. a PNG or text file
    expect(() => parseIdx(bad, 'x.idx')).toThrow(/^x\.idx: not an IDX file \(it starts with 50 00 08 03/);
    expect(() => parseIdx(idx([2], [0, 0, 0, 0, 0, 0, 0, 0], 0x0d), 'f.idx')).toThrow(/f\.idx: IDX data type 0x0d \(float\) is not supported/);
    expect(() => parseIdx(idx([], []), 'z.idx')).toThrow(/z\.idx: the IDX header declares 0 dimensions/);
    expect(() => parseIdx(new Uint8Array(2), 'tiny')).toThrow(/tiny: 2 bytes is too short/);
    expect(() => parseIdx(images.subarray(0, 10), 'h.idx')).toThrow(/h\.idx: truncated inside the IDX header/);
    expect(() => parseIdx(images.subarray(0, images.length - 1), 't.idx')).toThrow(
      /t\.idx: truncated: the header declares \[3, 2, 2\] \(12 bytes of data\) but only 11 follow/,
    );
    expect(() => parseIdx(Uint8Array.of(...images, 0, 0), 'e.idx')).toThrow(/e\.idx: 2 unexpected bytes after the \[3, 2, 2\] data/);
  });

  it('rejects corrupt or truncated gzip data, naming the source', () => {
    const gz = new Uint8Array(gzipSync(images));
    expect(() => parseIdx(gz.subarray(0, gz.length - 6), 'cut.gz')).toThrow(/^cut\.gz: the gzip data is corrupt or truncated/);
    const flipped = gz.slice();
    flipped[12] = flipped[12]! ^ 0xff;
    expect(() => parseIdx(flipped, 'bad.gz')).toThrow(/^bad\.gz: /);
  });
});

describe('readIdxFile', () => {
  it('reads the first items of raw and gzipped files, and the total', () => {
    writeFileSync(join(dir, 'a'), images);
    writeFileSync(join(dir, 'a.gz'), gzipSync(images));
    for (const f of ['a', 'a.gz']) {
      const two = readIdxFile(join(dir, f), 2);
      expect(two.dims).toEqual([2, 2, 2]);
      expect(two.total).toBe(3);
      expect(Array.from(two.data)).toEqual([0, 1, 2, 3, 10, 11, 12, 13]);
      expect(readIdxFile(join(dir, f), 99).dims).toEqual([3, 2, 2]);
      expect(readIdxFile(join(dir, f)).data.length).toBe(12);
    }
  });

  it('names the file when it is missing or truncated, even when only a prefix is read', () => {
    expect(() => readIdxFile(join(dir, 'nope'))).toThrow(/nope: no such file/);
    writeFileSync(join(dir, 'cut'), images.subarray(0, images.length - 3));
    expect(() => readIdxFile(join(dir, 'cut'), 1)).toThrow(new RegExp(`${join(dir, 'cut')}: truncated: .* but only 9 follow`));
    writeFileSync(join(dir, 'cut.gz'), gzipSync(images).subarray(0, 20));
    expect(() => readIdxFile(join(dir, 'cut.gz'), 1)).toThrow(/cut\.gz: the gzip data is corrupt or truncated/);
    expect(() => readIdxFile(join(dir, 'a'), -1)).toThrow(/limit must be a non-negative integer/);
  });
});
