import { hostZlib } from './host.js';

/** An unsigned-byte IDX array: `dims` (e.g. [n, 28, 28]) and the row-major values. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const IDX_UBYTE = 0x08;
const IDX_DTYPES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'short',
  0x0c: 'int',
  0x0d: 'float',
  0x0e: 'double',
};

/** Whether `bytes` start with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Reads and checks an IDX header (LeCun's MNIST format: two zero bytes, the dtype byte, the
 * number of dimensions, then each dimension as a big-endian uint32). Returns the dims and the
 * header length; throws a one-line error naming `source` otherwise.
 */
export function parseIdxHeader(bytes: Uint8Array, source: string): { dims: number[]; headerBytes: number } {
  if (bytes.length < 4) {
    throw new Error(`${source}: ${bytes.length} bytes is too short for an IDX file (the header alone is at least 8); the file is truncated`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const hex = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new Error(`${source}: not an IDX file (it starts with ${hex}, not 00 00); give an MNIST-style idx*-ubyte file`);
  }
  const dtype = bytes[2]!;
  if (dtype !== IDX_UBYTE) {
    const name = IDX_DTYPES[dtype] ?? 'unknown';
    throw new Error(`${source}: IDX data type 0x${dtype.toString(16).padStart(2, '0')} (${name}) is not supported; only unsigned byte (0x08) is`);
  }
  const ndim = bytes[3]!;
  if (ndim < 1) throw new Error(`${source}: the IDX header declares 0 dimensions`);
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) {
    throw new Error(`${source}: truncated inside the IDX header (${bytes.length} of ${headerBytes} bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i));
  return { dims, headerBytes };
}

/** Throws unless `available` data bytes are exactly what `dims` needs. */
export function checkSize(dims: number[], available: number, source: string): number {
  const expected = dims.reduce((a, d) => a * d, 1);
  if (available < expected) {
    throw new Error(
      `${source}: truncated: the header declares [${dims.join(', ')}] (${expected} bytes of data) but only ${available} follow; ` +
        'the file is incomplete or corrupt, so fetch or reinstall it',
    );
  }
  if (available > expected) {
    throw new Error(`${source}: ${available - expected} unexpected bytes after the [${dims.join(', ')}] data; the file is corrupt`);
  }
  return expected;
}

/** Decompresses a gzip stream (RFC 1952), e.g. Node's `zlib.gunzipSync` or pako's `ungzip`. */
export type Gunzip = (bytes: Uint8Array) => Uint8Array;

function gunzip(bytes: Uint8Array, source: string, unzip: Gunzip | undefined): Uint8Array {
  if (unzip === undefined) {
    const zlib = hostZlib();
    if (zlib === undefined) {
      throw new Error(`${source}: the IDX data is gzipped and this host has no zlib; decompress it first (e.g. with DecompressionStream('gzip')) or pass a gunzip function`);
    }
    unzip = (b) => zlib.gunzipSync(b);
  }
  try {
    const out = unzip(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    throw new Error(`${source}: the gzip data is corrupt or truncated (${(e as Error).message}); fetch or reinstall the file`);
  }
}

/**
 * Parses an unsigned-byte IDX array (the MNIST file format), gzipped (magic 1f 8b) or not.
 * Validates the magic number, the data type (0x08 only) and that the data is exactly as long as
 * the header says; errors name `source` (usually the file's path). Gzipped data is decompressed
 * with `unzip`, by default Node's zlib where the host has it. `readIdxFile(path)` is in
 * `@diff-instruct/data/node`.
 */
export function parseIdx(bytes: Uint8Array, source: string, unzip?: Gunzip): IdxArray {
  if (isGzip(bytes)) bytes = gunzip(bytes, source, unzip);
  const { dims, headerBytes } = parseIdxHeader(bytes, source);
  checkSize(dims, bytes.length - headerBytes, source);
  return { dims, data: bytes.subarray(headerBytes) };
}
