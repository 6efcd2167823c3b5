import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

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
function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Reads and checks an IDX header (LeCun's MNIST format: two zero bytes, the dtype byte, the
 * number of dimensions, then each dimension as a big-endian uint32). Returns the dims and the
 * header length; throws a one-line error naming `source` otherwise.
 */
function parseIdxHeader(bytes: Uint8Array, source: string): { dims: number[]; headerBytes: number } {
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
function checkSize(dims: number[], available: number, source: string): number {
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

function gunzip(bytes: Uint8Array, source: string): Uint8Array {
  try {
    const out = gunzipSync(bytes);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    throw new Error(`${source}: the gzip data is corrupt or truncated (${(e as Error).message}); fetch or reinstall the file`);
  }
}

/**
 * Parses an unsigned-byte IDX array (the MNIST file format), gzipped (magic 1f 8b) or not.
 * Validates the magic number, the data type (0x08 only) and that the data is exactly as long as
 * the header says; errors name `source` (usually the file's path).
 */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  if (isGzip(bytes)) bytes = gunzip(bytes, source);
  const { dims, headerBytes } = parseIdxHeader(bytes, source);
  checkSize(dims, bytes.length - headerBytes, source);
  return { dims, data: bytes.subarray(headerBytes) };
}

/**
 * Reads the IDX file at `path`, keeping only its first `limit` items (along the first dimension)
 * when given. An uncompressed file is checked for its full size but only the items kept are read;
 * a gzipped one is decompressed whole. The returned `dims[0]` is the number of items kept, and
 * `total` the number in the file.
 */
export function readIdxFile(path: string, limit?: number): IdxArray & { total: number } {
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw new Error(`readIdxFile: limit must be a non-negative integer, got ${limit}`);
  }
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${path}: no such file`);
    throw new Error(`${path}: cannot be read (${(e as Error).message})`);
  }
  try {
    const size = fstatSync(fd).size;
    const head = new Uint8Array(Math.min(size, 4 + 4 * 255));
    readSync(fd, head, 0, head.length, 0);
    const keep = (dims: number[]) => (limit === undefined ? dims[0]! : Math.min(limit, dims[0]!));
    if (isGzip(head)) {
      const { dims, data } = parseIdx(new Uint8Array(readFileSync(path)), path);
      const n = keep(dims);
      const itemBytes = dims.slice(1).reduce((a, d) => a * d, 1);
      return { dims: [n, ...dims.slice(1)], data: data.subarray(0, n * itemBytes), total: dims[0]! };
    }
    const { dims, headerBytes } = parseIdxHeader(head, path);
    checkSize(dims, size - headerBytes, path);
    const n = keep(dims);
    const data = new Uint8Array(n * dims.slice(1).reduce((a, d) => a * d, 1));
    let got = 0;
    while (got < data.length) {
      const r = readSync(fd, data, got, data.length - got, headerBytes + got);
      if (r === 0) throw new Error(`${path}: truncated while reading (the file changed size?)`);
      got += r;
    }
    return { dims: [n, ...dims.slice(1)], data, total: dims[0]! };
  } finally {
    closeSync(fd);
  }
}
