/**
 * The safetensors format (https://huggingface.co/docs/safetensors), for weights that Python can
 * read: an 8-byte little-endian header length N, N bytes of JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { string: string } }`
 * (padded with spaces so the data starts 8-byte aligned), then the raw little-endian data.
 * Offsets are relative to the start of the data. No file system here: bytes in, bytes out.
 *
 * Files may hold F32, I32, F16 and BF16 tensors. F16 and BF16 (what PyTorch checkpoints often ship)
 * are widened to float32 exactly when read, and rounded to nearest even when written from float32.
 */

/** The dtype of a tensor's data in memory: F32 (a Float32Array) or I32 (an Int32Array). */
export type SafetensorsDtype = 'F32' | 'I32';

/** The dtypes a safetensors file may hold for this module: F16 and BF16 are float32 in memory. */
export type SafetensorsFileDtype = SafetensorsDtype | 'F16' | 'BF16';

export interface SafetensorsTensor {
  /** The dtype of `data`: 'F32' for F32, F16 and BF16 tensors in the file, 'I32' for I32. */
  dtype: SafetensorsDtype;
  /** The tensor's dtype in the file (always set by `decodeSafetensors`): 'F16' for a half tensor read as float32. */
  sourceDtype?: SafetensorsFileDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** A tensor to write: F32, F16 and BF16 take a Float32Array (F16/BF16 rounded to nearest even), I32 an Int32Array. */
export interface SafetensorsInputTensor {
  dtype: SafetensorsFileDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

const ITEM_SIZE: Record<SafetensorsFileDtype, number> = { F32: 4, I32: 4, F16: 2, BF16: 2 };
const SUPPORTED = Object.keys(ITEM_SIZE).join(', ');
/** Header size limit of the reference implementation (100 MB). */
const MAX_HEADER = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error('safetensors: big-endian hosts are not supported');
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** float32 bits -> IEEE half bits, rounded to nearest even; overflow gives ±Inf, NaN stays NaN (quiet). */
function float32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // a half subnormal (or zero): value = m * 2^-24 with m = 1.mant * 2^(e + 9) = (2^23 + mant) >> (14 - e)
    if (e < -10) return sign; // below 2^-25: rounds to ±0
    const full = mant | 0x800000;
    const shift = 14 - e;
    const m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (rem > half || (rem === half && (m & 1) === 1) ? m + 1 : m);
  }
  const h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // a carry out of the mantissa bumps the exponent, up to 0x7c00 = Inf, as it should
  return sign | (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1) ? h + 1 : h);
}

/** IEEE half bits -> float32 bits, exactly (subnormals, ±0, ±Inf, NaN payloads included). */
function f16ToFloat32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  let e = 113; // subnormal: normalise
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

/** float32 bits -> bfloat16 bits (the top 16), rounded to nearest even; NaN stays NaN (quiet). */
function float32BitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return ((bits >>> 0) + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

let f16Table: Uint32Array | undefined;
function f16TableOnce(): Uint32Array {
  if (f16Table === undefined) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToFloat32Bits(h);
  }
  return f16Table;
}

/** The little-endian bytes of a tensor in the file's dtype. */
function encodeData(dtype: SafetensorsFileDtype, data: Float32Array | Int32Array): Uint8Array {
  if (dtype === 'F32' || dtype === 'I32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  const convert = dtype === 'F16' ? float32BitsToF16 : float32BitsToBf16;
  for (let i = 0; i < bits.length; i++) out[i] = convert(bits[i]!);
  return new Uint8Array(out.buffer);
}

/** Float32 values from the (aligned, freshly copied) bytes of a F16 or BF16 tensor. */
function widen(dtype: 'F16' | 'BF16', raw: Uint8Array): Float32Array {
  const src = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  if (dtype === 'BF16') {
    for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  } else {
    const table = f16TableOnce();
    for (let i = 0; i < src.length; i++) bits[i] = table[src[i]!]!;
  }
  return out;
}

/**
 * Serialises tensors (in insertion order) and string metadata into safetensors bytes. A tensor's
 * `dtype` is its dtype in the file: F32, F16 and BF16 take Float32Array data (F16 and BF16 rounded
 * to nearest even, overflow to ±Inf), I32 an Int32Array. A decoded tensor is written as its `dtype`
 * (F32 for one read from F16); pass `{ ...t, dtype: t.sourceDtype }` to write it back as it was.
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsInputTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  assertLittleEndian();
  const header: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new Error(`encodeSafetensors: metadata '${k}' must be a string, got ${typeof v}`);
  }
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const entries = Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new Error("encodeSafetensors: '__metadata__' is not a valid tensor name");
    if (!Object.hasOwn(ITEM_SIZE, t.dtype)) throw new Error(`encodeSafetensors: tensor '${name}' has unsupported dtype ${t.dtype} (supported: ${SUPPORTED})`);
    const expectedArray = t.dtype === 'I32' ? Int32Array : Float32Array;
    if (!(t.data instanceof expectedArray)) throw new Error(`encodeSafetensors: tensor '${name}' is ${t.dtype} but its data is a ${t.data.constructor.name}`);
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`encodeSafetensors: tensor '${name}' has invalid shape [${t.shape}]`);
    if (numel(t.shape) !== t.data.length) {
      throw new Error(`encodeSafetensors: tensor '${name}' has shape [${t.shape}] but ${t.data.length} values`);
    }
    const bytes = t.data.length * ITEM_SIZE[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let headerBytes = enc.encode(json);
  const pad = (8 - (headerBytes.length % 8)) % 8;
  if (pad > 0) headerBytes = enc.encode((json += ' '.repeat(pad)));
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const [, t] of entries) {
    const raw = encodeData(t.dtype, t.data);
    out.set(raw, pos);
    pos += raw.length;
  }
  return out;
}

/** Thrown when bytes are not a well-formed safetensors file. */
export class SafetensorsFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsFormatError';
  }
}

function bad(msg: string): never {
  throw new SafetensorsFormatError(msg);
}

/**
 * Parses safetensors bytes, validating the header against the spec: the JSON, each entry's dtype,
 * shape and offsets, and that the tensors cover the data section exactly, without holes or overlap.
 * F32, I32, F16 and BF16 tensors are supported: F16 and BF16 are widened to float32 exactly, and
 * every tensor's `dtype` is the dtype of its `data` ('F32' or 'I32') while `sourceDtype` is the
 * file's. Any other dtype is refused with an error naming the tensor. The returned arrays are
 * copies, so they are aligned.
 */
export function decodeSafetensors(bytes: Uint8Array): {
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
} {
  assertLittleEndian();
  if (bytes.length < 8) bad(`${bytes.length} bytes, too short for the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) {
    bad(`header length ${n} exceeds the ${bytes.length - 8} bytes that follow (truncated, or not safetensors)`);
  }
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    bad(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: Record<string, SafetensorsTensor> = {};
  const spans: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) bad('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') bad(`metadata '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof entry !== 'object' || entry === null) bad(`entry '${name}' is not an object`);
    const { dtype, shape, data_offsets: offs } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string') bad(`tensor '${name}' has no dtype`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) bad(`tensor '${name}' has an invalid shape`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0)) {
      bad(`tensor '${name}' has invalid data_offsets`);
    }
    const [begin, end] = offs as [number, number];
    if (!Object.hasOwn(ITEM_SIZE, dtype)) {
      throw new Error(`tensor '${name}' has dtype ${dtype}, which this reader does not support (${SUPPORTED})`);
    }
    const dt = dtype as SafetensorsFileDtype;
    if (end < begin || end > dataLen) bad(`tensor '${name}' has data_offsets [${begin}, ${end}] outside the ${dataLen} data bytes (truncated?)`);
    if (end - begin !== numel(shape as number[]) * ITEM_SIZE[dt]) {
      bad(`tensor '${name}' has shape [${shape}] but ${end - begin} bytes`);
    }
    // a fresh, aligned copy (Buffer#slice would return a view into a shared pool)
    const raw = new Uint8Array(end - begin);
    raw.set(bytes.subarray(dataStart + begin, dataStart + end));
    const data = dt === 'F32' ? new Float32Array(raw.buffer) : dt === 'I32' ? new Int32Array(raw.buffer) : widen(dt, raw);
    tensors[name] = { dtype: dt === 'I32' ? 'I32' : 'F32', sourceDtype: dt, shape: shape as number[], data };
    spans.push([begin, end, name]);
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let covered = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== covered) bad(begin < covered ? `tensor '${name}' overlaps another tensor` : `hole in the data before tensor '${name}'`);
    covered = end;
  }
  if (covered !== dataLen) bad(`${dataLen - covered} bytes of data after the last tensor`);
  return { tensors, metadata };
}
