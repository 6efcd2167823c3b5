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
    expect(() => decodeSafetensors(handMade({ a: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)))).toThrow(
      /dtype F16, which this reader does not support/,
    );
  });

  it('rejects inconsistent input when encoding', () => {
    expect(() => encodeSafetensors({ a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(/shape \[3\] but 2 values/);
    expect(() => encodeSafetensors({ a: { dtype: 'I32', shape: [2], data: new Float32Array(2) } })).toThrow(/is I32 but its data is a Float32Array/);
    expect(() => encodeSafetensors({}, { k: 3 as unknown as string })).toThrow(/metadata 'k' must be a string/);
  });
});
