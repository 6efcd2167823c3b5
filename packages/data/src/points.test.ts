import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { readPoints } from './node.js';
import { encodeNpy, formatCsvPoints, parseCsvPoints, parseNpy, validatePoints } from './points.js';

const dir = mkdtempSync(join(tmpdir(), 'di-points-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A .npy file built by hand per the format spec (v1 or v2 header), for dtypes we do not write. */
function npy(descr: string, shape: string, payload: Uint8Array, version = 1, fortran = false): Uint8Array {
  const pre = version === 1 ? 10 : 12;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;
  header = header.padEnd(Math.ceil((pre + header.length + 1) / 64) * 64 - pre - 1) + '\n';
  const out = new Uint8Array(pre + header.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const v = new DataView(out.buffer);
  if (version === 1) v.setUint16(8, header.length, true);
  else v.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[pre + i] = header.charCodeAt(i);
  out.set(payload, pre + header.length);
  return out;
}

function bytesOf(values: number[], kind: 'f8' | 'i8' | 'i4' | 'f4'): Uint8Array {
  const size = kind === 'f8' || kind === 'i8' ? 8 : 4;
  const out = new Uint8Array(values.length * size);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => {
    if (kind === 'f8') v.setFloat64(i * 8, x, true);
    else if (kind === 'i8') v.setBigInt64(i * 8, BigInt(x), true);
    else if (kind === 'i4') v.setInt32(i * 4, x, true);
    else v.setFloat32(i * 4, x, true);
  });
  return out;
}

describe('CSV points', () => {
  it('reads comma-separated rows without a header', () => {
    const p = parseCsvPoints('1,2\n3.5,-4e-1\n', 'a.csv');
    expect(p.n).toBe(2);
    expect(p.dim).toBe(2);
    expect(Array.from(p.data)).toEqual([1, 2, 3.5, Math.fround(-0.4)]);
  });

  it('detects and skips a header row', () => {
    const p = parseCsvPoints('x,y,z\n1,2,3\n4,5,6\n', 'a.csv');
    expect([p.n, p.dim]).toEqual([2, 3]);
    expect(Array.from(p.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads whitespace-separated text, CRLF, blank lines and # comments', () => {
    const p = parseCsvPoints('# two points\r\n  1\t 2 \r\n\r\n3    4\r\n', 'a.txt');
    expect(Array.from(p.data)).toEqual([1, 2, 3, 4]);
  });

  it('reads one column as dimension 1', () => {
    const p = parseCsvPoints('value\n1\n2\n3\n', 'a.csv');
    expect([p.n, p.dim]).toEqual([3, 1]);
  });

  it('round-trips through formatCsvPoints exactly', () => {
    const data = Float32Array.from([0.1, -2.5e-7, 3, 1 / 3, 12345.678, -0]);
    const text = formatCsvPoints({ data, n: 3, dim: 2 });
    expect(text.split('\n')[0]).toBe('0.1,-2.5e-7');
    const back = parseCsvPoints(text, 'b.csv');
    expect([back.n, back.dim]).toEqual([3, 2]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });

  it('names the file, the row and the problem', () => {
    const rows = Array.from({ length: 16 }, (_, i) => `${i},${i}`).join('\n');
    expect(() => parseCsvPoints(`${rows}\n1,2,3\n`, 'points.csv')).toThrow('points.csv: row 17 has 3 columns, expected 2');
    expect(() => parseCsvPoints('x,y\n1,2\n3\n', 'points.csv')).toThrow('points.csv: row 2 (line 3) has 1 columns, expected 2');
    expect(() => parseCsvPoints('1,2\n3,4\n5,6\n7,8\n9,NaN\n', 'points.csv')).toThrow(
      'points.csv: NaN or Inf at row 5, column 2; remove or fix that row',
    );
    expect(() => parseCsvPoints('1,inf\n', 'points.csv')).toThrow(/NaN or Inf at row 1, column 2/);
    expect(() => parseCsvPoints('1,2\n3,abc\n', 'p.csv')).toThrow('p.csv: row 2, column 2: "abc" is not a number; fix that row');
    expect(() => parseCsvPoints('1,2\n3,,4\n', 'p.csv')).toThrow(/row 2 has 3 columns/);
    expect(() => parseCsvPoints('1,,2\n', 'p.csv')).toThrow('p.csv: row 1, column 2: empty value; fix that row');
    expect(() => parseCsvPoints('', 'empty.csv')).toThrow('empty.csv: the file is empty; give one point per row');
    expect(() => parseCsvPoints('\n\n  \n', 'empty.csv')).toThrow(/the file is empty/);
    expect(() => parseCsvPoints('x,y\n', 'h.csv')).toThrow('h.csv: only a header row, no data; give one point per row');
  });
});

describe('validatePoints', () => {
  const p = { data: Float32Array.from([1, 2, 3, 4, 5, 6]), n: 2, dim: 3 };
  it('checks the dimension, the row count and finiteness', () => {
    expect(() => validatePoints(p, 'points.csv', 3)).not.toThrow();
    expect(() => validatePoints(p, 'points.csv', 2)).toThrow(
      'points.csv: the data has dimension 3 but the teacher expects 2; give 2 columns per row',
    );
    expect(() => validatePoints(p, 'ref.npy', 2, { expectedBy: 'the target' })).toThrow(/but the target expects 2/);
    expect(() => validatePoints(p, 'ref.npy', 3, { minRows: 100 })).toThrow(
      'ref.npy: 2 rows, but at least 100 are needed; give more points',
    );
    const bad = { data: Float32Array.from([1, 2, 3, 4, Infinity, 6]), n: 2, dim: 3 };
    expect(() => validatePoints(bad, 'x.npy')).toThrow('x.npy: NaN or Inf at row 2, column 2; remove or fix that row');
    expect(() => validatePoints({ data: new Float32Array(0), n: 0, dim: 2 }, 'e.npy')).toThrow(/no data rows/);
    expect(() => validatePoints({ data: new Float32Array(5), n: 2, dim: 3 }, 'e.npy')).toThrow(/5 values do not make 2 rows/);
  });
});

describe('NPY points', () => {
  it('round-trips float32 through encodeNpy / parseNpy, 2-D and 1-D', () => {
    const data = Float32Array.from({ length: 12 }, (_, i) => i * 0.37 - 2);
    const bytes = encodeNpy(data, [4, 3]);
    expect((bytes.length - 48) % 64).toBe(0); // 64-byte aligned header, then 48 bytes of data
    expect(new TextDecoder('latin1').decode(bytes.subarray(10, 70))).toContain("'shape': (4, 3)");
    const p = parseNpy(bytes, 'a.npy');
    expect([p.n, p.dim]).toEqual([4, 3]);
    expect(Array.from(p.data)).toEqual(Array.from(data));
    const q = parseNpy(encodeNpy(data, [12]), 'b.npy');
    expect([q.n, q.dim]).toEqual([12, 1]);
    expect(() => encodeNpy(data, [5, 3])).toThrow(/does not hold 12 values/);
  });

  it('parses hand-built <f8, <i8 and <i4 files, version 2 headers and Fortran order', () => {
    const f8 = parseNpy(npy('<f8', '(2, 2)', bytesOf([0.5, -1.25, 1e10, 3], 'f8')), 'f8.npy');
    expect(Array.from(f8.data)).toEqual([0.5, -1.25, Math.fround(1e10), 3]);
    const i8 = parseNpy(npy('<i8', '(3,)', bytesOf([-7, 0, 42], 'i8')), 'i8.npy');
    expect([i8.n, i8.dim, ...i8.data]).toEqual([3, 1, -7, 0, 42]);
    const i4 = parseNpy(npy('<i4', '(1, 3)', bytesOf([1, -2, 3], 'i4'), 2), 'i4.npy');
    expect([i4.n, i4.dim, ...i4.data]).toEqual([1, 3, 1, -2, 3]);
    // Fortran order stores columns: [[1, 2, 3], [4, 5, 6]] is stored 1 4 2 5 3 6.
    const fo = parseNpy(npy('<f4', '(2, 3)', bytesOf([1, 4, 2, 5, 3, 6], 'f4'), 1, true), 'fo.npy');
    expect(Array.from(fo.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('rejects what it cannot read, with the fix', () => {
    expect(() => parseNpy(new TextEncoder().encode('1,2\n3,4\n'), 'x.npy')).toThrow(
      'x.npy: not a NumPy .npy file (bad magic); save it with numpy.save',
    );
    expect(() => parseNpy(npy('>f4', '(1, 2)', new Uint8Array(8)), 'be.npy')).toThrow(
      'be.npy: it is big-endian; save as little-endian float32, e.g. np.save("be.npy", x.astype("<f4"))',
    );
    expect(() => parseNpy(npy('<c8', '(1, 2)', new Uint8Array(16)), 'c.npy')).toThrow(/dtype "<c8" is not supported/);
    expect(() => parseNpy(npy('<f4', '(2, 2, 2)', new Uint8Array(32)), 'img.npy')).toThrow(
      /the array has 3 dimensions \(shape \(2, 2, 2\)\); give an N×D/,
    );
    expect(() => parseNpy(npy('<f4', '(4, 2)', new Uint8Array(16)), 't.npy')).toThrow(/truncated .npy data: shape \(4, 2\) needs 32 bytes, found 16/);
    expect(() => parseNpy(npy('<f4', '(0, 2)', new Uint8Array(0)), 'e.npy')).toThrow(/no data rows/);
    expect(() => parseNpy(npy('<f8', '(1, 2)', bytesOf([1, NaN], 'f8')), 'n.npy')).toThrow(
      'n.npy: NaN or Inf at row 1, column 2; remove or fix that row',
    );
    expect(() => parseNpy(encodeNpy(new Float32Array(4), [2, 2]).subarray(0, 20), 'h.npy')).toThrow(/truncated .npy header/);
  });
});

describe('readPoints', () => {
  it('reads .csv, .txt and .npy files by extension', () => {
    writeFileSync(join(dir, 'a.csv'), 'x,y\n1,2\n3,4\n');
    writeFileSync(join(dir, 'a.txt'), '1 2\n3 4\n');
    writeFileSync(join(dir, 'a.npy'), encodeNpy(Float32Array.of(1, 2, 3, 4), [2, 2]));
    for (const f of ['a.csv', 'a.txt', 'a.npy']) {
      const p = readPoints(join(dir, f));
      expect([p.n, p.dim, ...p.data]).toEqual([2, 2, 1, 2, 3, 4]);
    }
  });

  it('names the file in every error', () => {
    const missing = join(dir, 'missing.csv');
    expect(() => readPoints(missing)).toThrow(`${missing}: no such file; check the path`);
    const json = join(dir, 'a.json');
    writeFileSync(json, '[]');
    expect(() => readPoints(json)).toThrow(`${json}: unsupported file type ".json"; give a .csv, .tsv, .txt or .npy file`);
    const empty = join(dir, 'empty.csv');
    writeFileSync(empty, '');
    expect(() => readPoints(empty)).toThrow(`${empty}: the file is empty`);
  });
});
