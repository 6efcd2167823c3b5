import { describe, expect, it } from 'vitest';

import { SafetensorsFormatError, decodeSafetensors, encodeSafetensors } from './safetensors.js';

const sample = () => ({
  'net.a.weight': { dtype: 'F32' as const, shape: [2, 3], data: new Float32Array([1, -2.5, 3e-8, 4, Math.PI, -0]) },
  step: { dtype: 'I32' as const, shape: [], data: new Int32Array([-7]) },
  'net.b.bias': { dtype: 'F32' as const, shape: [5], data: new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5]) },
  empty: { dtype: 'F32' as const, shape: [0, 3], data: new Float32Array(0) },
});
const metadata = { format: 'diff-instruct', config: JSON.stringify({ kind: 'edm', note: 'ünïcode ✓' }) };

/** Builds a file by hand from a header object, as another writer might. */
function handMade(header: unknown, data: Uint8Array, pad = 0): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('encodeSafetensors / decodeSafetensors', () => {
  it('round-trips tensors and metadata, byte-exactly', () => {
    const bytes = encodeSafetensors(sample(), metadata);
    const back = decodeSafetensors(bytes);
    expect(back.metadata).toEqual(metadata);
    expect(Object.keys(back.tensors)).toEqual(Object.keys(sample()));
    for (const [name, t] of Object.entries(sample())) {
      const b = back.tensors[name]!;
      expect(b.dtype).toBe(t.dtype);
      expect(b.sourceDtype).toBe(t.dtype);
      expect(b.shape).toEqual(t.shape);
      expect(b.data.constructor).toBe(t.data.constructor);
      expect(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength)).toEqual(
        new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      );
    }
    expect(encodeSafetensors(back.tensors, back.metadata)).toEqual(bytes);
    // a Node Buffer (small ones are views into a shared pool) decodes the same
    expect(decodeSafetensors(Buffer.from(bytes)).tensors).toEqual(back.tensors);
  });

  it('writes the layout of the spec: u64 LE header length, JSON header, 8-byte aligned little-endian data', () => {
    const bytes = encodeSafetensors(sample(), metadata);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const n = Number(view.getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.startsWith('{')).toBe(true);
    const unpadded = text.replace(/ +$/, ''); // only trailing spaces pad the header
    expect(unpadded.endsWith('}')).toBe(true);
    expect(text.length - unpadded.length).toBeLessThan(8);
    const header = JSON.parse(text) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    expect(header.__metadata__).toEqual(metadata);
    const t = header['net.a.weight']!;
    expect(t.dtype).toBe('F32');
    expect(t.shape).toEqual([2, 3]);
    expect(t.data_offsets[1] - t.data_offsets[0]).toBe(24);
    const start = 8 + n + t.data_offsets[0];
    const firstRow = [0, 1, 2].map((i) => view.getFloat32(start + 4 * i, true));
    expect(firstRow).toEqual([1, -2.5, Math.fround(3e-8)]);
    const step = header.step!;
    expect(step.shape).toEqual([]);
    expect(view.getInt32(8 + n + step.data_offsets[0], true)).toBe(-7);
    const ends = Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => v.data_offsets[1]);
    expect(8 + n + Math.max(...ends)).toBe(bytes.length);
  });

  it('reads files written by other writers (any order, unpadded header, unaligned buffer)', () => {
    const data = new Uint8Array(12);
    new DataView(data.buffer).setFloat32(0, 1.5, true);
    new DataView(data.buffer).setInt32(4, 42, true);
    new DataView(data.buffer).setFloat32(8, -3, true);
    const file = handMade(
      { b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] }, a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, i: { dtype: 'I32', shape: [1, 1], data_offsets: [4, 8] } },
      data,
    );
    const shifted = new Uint8Array(file.length + 1);
    shifted.set(file, 1);
    const { tensors, metadata: md } = decodeSafetensors(shifted.subarray(1));
    expect(md).toEqual({});
    expect(Array.from(tensors.a!.data)).toEqual([1.5]);
    expect(Array.from(tensors.b!.data)).toEqual([-3]);
    expect(Array.from(tensors.i!.data)).toEqual([42]);
  });

  it('rejects malformed files with a reason', () => {
    const good = encodeSafetensors(sample(), metadata);
    const f32 = (offs: [number, number], shape = [1]) => ({ dtype: 'F32', shape, data_offsets: offs });
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(5), /too short/],
      [good.subarray(0, 20), /header length \d+ exceeds/],
      [good.subarray(0, good.length - 4), /outside the \d+ data bytes|after the last tensor|truncated/],
      [handMade({}, new Uint8Array(0)).map((b, i) => (i === 8 ? 0x5b : b)), /not a JSON object|not valid JSON/],
      [(() => { const b = handMade({ a: f32([0, 4]) }, new Uint8Array(4)); b[9] = 0x7b; return b; })(), /not valid JSON/],
      [handMade([1, 2], new Uint8Array(0)), /not a JSON object/],
      [handMade({ a: f32([0, 8]) }, new Uint8Array(8)), /shape \[1\] but 8 bytes/],
      [handMade({ a: f32([4, 8]) }, new Uint8Array(8)), /hole in the data/],
      [handMade({ a: f32([0, 4]), b: f32([0, 4]) }, new Uint8Array(4)), /overlaps/],
      [handMade({ a: f32([0, 4]) }, new Uint8Array(8)), /4 bytes of data after the last tensor/],
      [handMade({ a: { dtype: 'F32', shape: [1] } }, new Uint8Array(4)), /invalid data_offsets/],
      [handMade({ __metadata__: { k: 1 } }, new Uint8Array(0)), /metadata 'k' is not a string/],
    ];
    for (const [bytes, reason] of cases) {
      let err: unknown;
      try {
        decodeSafetensors(bytes);
      } catch (e) {
        err = e;
      }
      expect(err, `expected ${reason}`).toBeInstanceOf(SafetensorsFormatError);
      expect((err as Error).message).toMatch(reason);
    }
    for (const [dtype, size] of [['F64', 8], ['I64', 8], ['U8', 1], ['BOOL', 1], ['F8_E4M3', 1], ['constructor', 4]] as const) {
      expect(() => decodeSafetensors(handMade({ 'net.w': { dtype, shape: [2], data_offsets: [0, 2 * size] } }, new Uint8Array(2 * size)))).toThrow(
        `tensor 'net.w' has dtype ${dtype}, which this reader does not support (F32, I32, F16, BF16)`,
      );
    }
  });

  it('rejects inconsistent input when encoding', () => {
    expect(() => encodeSafetensors({ a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(/shape \[3\] but 2 values/);
    expect(() => encodeSafetensors({ a: { dtype: 'I32', shape: [2], data: new Float32Array(2) } })).toThrow(/is I32 but its data is a Float32Array/);
    expect(() => encodeSafetensors({}, { k: 3 as unknown as string })).toThrow(/metadata 'k' must be a string/);
    expect(() => encodeSafetensors({ a: { dtype: 'F16', shape: [2], data: new Int32Array(2) } })).toThrow(/is F16 but its data is a Int32Array/);
    expect(() => encodeSafetensors({ a: { dtype: 'BF16', shape: [3], data: new Float32Array(2) } })).toThrow(/shape \[3\] but 2 values/);
    expect(() => encodeSafetensors({ a: { dtype: 'F64' as 'F32', shape: [1], data: new Float32Array(1) } })).toThrow(
      "encodeSafetensors: tensor 'a' has unsupported dtype F64 (supported: F32, I32, F16, BF16)",
    );
  });
});

/** A file with one 16-bit tensor holding the given bit patterns, written by hand. */
function halfFile(dtype: 'F16' | 'BF16', bits: number[]): Uint8Array {
  const data = new Uint8Array(2 * bits.length);
  bits.forEach((b, i) => new DataView(data.buffer).setUint16(2 * i, b, true));
  return handMade({ w: { dtype, shape: [bits.length], data_offsets: [0, data.length] } }, data);
}

/** The 16-bit patterns that encodeSafetensors writes for `values`, read back from the bytes. */
function encodedBits(dtype: 'F16' | 'BF16', values: number[]): number[] {
  const bytes = encodeSafetensors({ w: { dtype, shape: [values.length], data: new Float32Array(values) } });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  expect(header.w).toEqual({ dtype, shape: [values.length], data_offsets: [0, 2 * values.length] });
  expect(bytes.length).toBe(8 + n + 2 * values.length);
  return values.map((_, i) => view.getUint16(8 + n + 2 * i, true));
}

const hex = (xs: number[]) => xs.map((x) => `0x${x.toString(16).padStart(4, '0')}`);
const f32 = (x: number) => Math.fround(x);

// bit pattern -> value, computed by hand (2 ** k is exact in doubles)
const F16_CASES: [number, number][] = [
  [0x3c00, 1],
  [0xc000, -2],
  [0x3800, 0.5],
  [0x3555, 0.333251953125],
  [0x7bff, 65504], // largest half
  [0x0400, 2 ** -14], // smallest normal
  [0x03ff, 1023 * 2 ** -24], // largest subnormal
  [0x0001, 2 ** -24], // smallest subnormal
  [0x8001, -(2 ** -24)],
  [0x0000, 0],
  [0x8000, -0],
  [0x7c00, Infinity],
  [0xfc00, -Infinity],
];
const BF16_CASES: [number, number][] = [
  [0x3f80, 1],
  [0xc000, -2],
  [0x3eab, 0.333984375],
  [0x7f7f, (2 - 2 ** -7) * 2 ** 127], // largest bfloat16
  [0x0080, 2 ** -126], // smallest normal
  [0x0001, 2 ** -133], // smallest subnormal
  [0x0000, 0],
  [0x8000, -0],
  [0x7f80, Infinity],
  [0xff80, -Infinity],
];

describe('F16 and BF16', () => {
  it('reads F16 exactly as float32: normals, subnormals, ±0, ±Inf, NaN', () => {
    const { tensors } = decodeSafetensors(halfFile('F16', [...F16_CASES.map(([b]) => b), 0x7e00, 0x7c01, 0xfe00]));
    const t = tensors.w!;
    expect(t.dtype).toBe('F32');
    expect(t.sourceDtype).toBe('F16');
    expect(t.shape).toEqual([F16_CASES.length + 3]);
    expect(t.data).toBeInstanceOf(Float32Array);
    const got = Array.from(t.data);
    F16_CASES.forEach(([b, v], i) => expect(Object.is(got[i], v), `${hex([b])} -> ${got[i]}, expected ${v}`).toBe(true));
    expect(got.slice(F16_CASES.length).every(Number.isNaN)).toBe(true);
  });

  it('reads every one of the 65536 half patterns as the value the IEEE formula gives', () => {
    const all = Array.from({ length: 65536 }, (_, i) => i);
    const got = decodeSafetensors(halfFile('F16', all)).tensors.w!.data;
    for (const h of all) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const want = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m === 0 ? s * Infinity : NaN) : s * (1 + m / 1024) * 2 ** (e - 15);
      if (!Object.is(got[h], want)) expect.fail(`${hex([h])} read as ${got[h]}, expected ${want}`);
    }
  });

  it('reads BF16 as the top 16 bits of a float32', () => {
    const { tensors } = decodeSafetensors(halfFile('BF16', [...BF16_CASES.map(([b]) => b), 0x7fc0, 0xffc1]));
    const t = tensors.w!;
    expect(t.dtype).toBe('F32');
    expect(t.sourceDtype).toBe('BF16');
    const got = Array.from(t.data);
    BF16_CASES.forEach(([b, v], i) => expect(Object.is(got[i], v), `${hex([b])} -> ${got[i]}, expected ${v}`).toBe(true));
    expect(Number.isNaN(got[BF16_CASES.length]) && Number.isNaN(got[BF16_CASES.length + 1])).toBe(true);
    const bits = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
    expect(bits[BF16_CASES.length + 1]).toBe(0xffc10000); // the NaN's sign and payload survive
  });

  it('writes F16 and BF16 bit patterns exactly', () => {
    expect(hex(encodedBits('F16', F16_CASES.map(([, v]) => v)))).toEqual(hex(F16_CASES.map(([b]) => b)));
    expect(hex(encodedBits('BF16', BF16_CASES.map(([, v]) => v)))).toEqual(hex(BF16_CASES.map(([b]) => b)));
    expect(hex(encodedBits('F16', [NaN, -NaN]))).toEqual(['0x7e00', '0x7e00']); // Float32Array stores one quiet NaN
    expect(hex(encodedBits('BF16', [NaN]))).toEqual(['0x7fc0']);
  });

  it('rounds to nearest, ties to even, when writing F16 (truncation would fail)', () => {
    const cases: [number, number][] = [
      [1 + 2 ** -11, 0x3c00], // tie between 0x3c00 and 0x3c01: to even
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02: to even (truncation: 0x3c01)
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie (truncation: 0x3c00)
      [f32(1 / 3), 0x3555],
      [0.1, 0x2e66], // 0.1 = 0x3dcccccd in float32: 0x2e66 + 0.4 ulp
      [-0.3, 0xb4cd], // 0x3e99999a: 0x34cc + 0.8 ulp, rounds up (truncation: 0xb4cc)
      [2047, 0x67ff],
      [4095, 0x6c00], // 4095 is halfway between 4094 and 4096: to even (truncation: 0x6bff)
      [65519, 0x7bff], // below the halfway point 65520
      [65520, 0x7c00], // halfway to 65536: rounds up to even, which is Inf
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: to even
      [2 ** -25 + 2 ** -35, 0x0001],
      [1.5 * 2 ** -24, 0x0002], // tie between subnormals 1 and 2: to even (truncation: 0x0001)
      [2.5 * 2 ** -24, 0x0002], // tie between 2 and 3: to even
      [1023.5 * 2 ** -24, 0x0400], // largest subnormal + half an ulp: up into the smallest normal
      [-(2 ** -26), 0x8000], // underflows to -0
      [1e-10, 0x0000],
    ];
    expect(hex(encodedBits('F16', cases.map(([v]) => v)))).toEqual(hex(cases.map(([, b]) => b)));
  });

  it('rounds to nearest, ties to even, when writing BF16 (truncation would fail)', () => {
    const cases: [number, number][] = [
      [1 + 2 ** -8, 0x3f80], // tie: to even
      [1 + 3 * 2 ** -8, 0x3f82], // tie: to even (truncation: 0x3f81)
      [1 + 2 ** -8 + 2 ** -20, 0x3f81], // above the tie (truncation: 0x3f80)
      [f32(1 / 3), 0x3eab], // 0x3eaaaaab (truncation: 0x3eaa)
      [-f32(1 / 3), 0xbeab],
      [f32(3.4028234663852886e38), 0x7f80], // float32 max 0x7f7fffff rounds up to Inf
      [(2 - 2 ** -7) * 2 ** 127, 0x7f7f],
      [2 ** -133 * 1.5, 0x0002], // subnormal tie: to even
    ];
    expect(hex(encodedBits('BF16', cases.map(([v]) => v)))).toEqual(hex(cases.map(([, b]) => b)));
  });

  it('round-trips every finite F16 and BF16 value through float32', () => {
    const values = F16_CASES.map(([, v]) => v);
    const back = decodeSafetensors(encodeSafetensors({ w: { dtype: 'F16', shape: [values.length], data: new Float32Array(values) } })).tensors.w!;
    expect(Array.from(back.data)).toEqual(values);
    // a decoded tensor rewritten as its sourceDtype gives back the same bytes
    const file = halfFile('F16', F16_CASES.map(([b]) => b));
    const t = decodeSafetensors(file).tensors.w!;
    const again = encodeSafetensors({ w: { ...t, dtype: t.sourceDtype! } });
    expect(encodedBitsOf(again)).toEqual(encodedBitsOf(file));
  });

  it('mixes dtypes in one file, with a subarray as data', () => {
    const base = new Float32Array([9, 1, 2, 3]);
    const bytes = encodeSafetensors({
      h: { dtype: 'F16', shape: [3], data: base.subarray(1) },
      b: { dtype: 'BF16', shape: [1, 1], data: new Float32Array([-2]) },
      f: { dtype: 'F32', shape: [1], data: new Float32Array([0.1]) },
      i: { dtype: 'I32', shape: [], data: new Int32Array([5]) },
    });
    expect((8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 8).toBe(0);
    const { tensors } = decodeSafetensors(bytes);
    expect(Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, [t.dtype, t.sourceDtype, t.shape, Array.from(t.data)]]))).toEqual({
      h: ['F32', 'F16', [3], [1, 2, 3]],
      b: ['F32', 'BF16', [1, 1], [-2]],
      f: ['F32', 'F32', [1], [f32(0.1)]],
      i: ['I32', 'I32', [], [5]],
    });
  });

  it('checks the byte count of a 16-bit tensor against its shape', () => {
    const file = handMade({ w: { dtype: 'F16', shape: [3], data_offsets: [0, 4] } }, new Uint8Array(4));
    expect(() => decodeSafetensors(file)).toThrow(/tensor 'w' has shape \[3\] but 4 bytes/);
  });
});

/** The data section of a file, as bytes. */
function encodedBitsOf(file: Uint8Array): number[] {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return Array.from(file.subarray(8 + n));
}
