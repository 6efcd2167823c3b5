/**
 * The safetensors format (https://huggingface.co/docs/safetensors), for weights that Python can
 * read: an 8-byte little-endian header length N, N bytes of JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { string: string } }`
 * (padded with spaces so the data starts 8-byte aligned), then the raw little-endian data.
 * Offsets are relative to the start of the data. No file system here: bytes in, bytes out.
 */

export type SafetensorsDtype = 'F32' | 'I32';

export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

const ITEM_SIZE: Record<SafetensorsDtype, number> = { F32: 4, I32: 4 };
/** Header size limit of the reference implementation (100 MB). */
const MAX_HEADER = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error('safetensors: big-endian hosts are not supported');
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Serialises tensors (in insertion order) and string metadata into safetensors bytes. */
export function encodeSafetensors(
  tensors: Record<string, { dtype: SafetensorsDtype; shape: number[]; data: Float32Array | Int32Array }>,
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
    if (!(t.dtype in ITEM_SIZE)) throw new Error(`encodeSafetensors: tensor '${name}' has unsupported dtype ${t.dtype}`);
    const expectedArray = t.dtype === 'F32' ? Float32Array : Int32Array;
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
    const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
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
 * F32 and I32 tensors are supported. The returned arrays are copies, so they are aligned.
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
    if (!(dtype in ITEM_SIZE)) {
      throw new Error(`tensor '${name}' has dtype ${dtype}, which this reader does not support (F32, I32)`);
    }
    const dt = dtype as SafetensorsDtype;
    if (end < begin || end > dataLen) bad(`tensor '${name}' has data_offsets [${begin}, ${end}] outside the ${dataLen} data bytes (truncated?)`);
    if (end - begin !== numel(shape as number[]) * ITEM_SIZE[dt]) {
      bad(`tensor '${name}' has shape [${shape}] but ${end - begin} bytes`);
    }
    // a fresh, aligned copy (Buffer#slice would return a view into a shared pool)
    const raw = new Uint8Array(end - begin);
    raw.set(bytes.subarray(dataStart + begin, dataStart + end));
    const data = dt === 'F32' ? new Float32Array(raw.buffer) : new Int32Array(raw.buffer);
    tensors[name] = { dtype: dt, shape: shape as number[], data };
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
