import { baseName, extName } from './host.js';

/** N points of dimension D, row-major: point i is `data[i*dim .. i*dim+dim)`. */
export interface Points {
  data: Float32Array;
  n: number;
  dim: number;
}

export interface ValidateOptions {
  /** Fewer rows than this is an error (e.g. a held-out reference set needs enough points). */
  minRows?: number;
  /** Who expects `expectedDim`, for the message. Default "the teacher". */
  expectedBy?: string;
}

/**
 * Checks that `p` is a non-empty, finite N×D point set (of dimension `expectedDim` when given).
 * Throws a one-line error naming `source`, the problem and the fix.
 */
export function validatePoints(p: Points, source: string, expectedDim?: number, opts: ValidateOptions = {}): void {
  if (!Number.isInteger(p.dim) || p.dim < 1) throw new Error(`${source}: invalid dimension ${p.dim}`);
  if (p.data.length !== p.n * p.dim) {
    throw new Error(`${source}: ${p.data.length} values do not make ${p.n} rows of dimension ${p.dim}`);
  }
  if (p.n === 0) throw new Error(`${source}: the file has no data rows; give one point per row`);
  if (expectedDim !== undefined && p.dim !== expectedDim) {
    throw new Error(
      `${source}: the data has dimension ${p.dim} but ${opts.expectedBy ?? 'the teacher'} expects ${expectedDim}; ` +
        `give ${expectedDim} columns per row`,
    );
  }
  if (opts.minRows !== undefined && p.n < opts.minRows) {
    throw new Error(`${source}: ${p.n} rows, but at least ${opts.minRows} are needed; give more points`);
  }
  for (let i = 0; i < p.data.length; i++) {
    if (!Number.isFinite(p.data[i]!)) {
      throw new Error(
        `${source}: NaN or Inf at row ${Math.floor(i / p.dim) + 1}, column ${(i % p.dim) + 1}; remove or fix that row`,
      );
    }
  }
}

/**
 * The point-file format of `name` (a path, a URL or a file name) by its extension: '.csv', '.tsv'
 * or '.txt' are text, '.npy' is NumPy; anything else is a one-line error naming `name`.
 */
export function pointFileType(name: string): 'text' | 'npy' {
  const ext = extName(name).toLowerCase();
  if (!['.csv', '.tsv', '.txt', '.npy'].includes(ext)) {
    throw new Error(`${name}: unsupported file type "${ext || '(none)'}"; give a .csv, .tsv, .txt or .npy file`);
  }
  return ext === '.npy' ? 'npy' : 'text';
}

/**
 * Parses the bytes of an N×D point file named `name`: `.csv`, `.tsv` or `.txt` (see
 * {@link parseCsvPoints}) or `.npy` (see {@link parseNpy}), e.g. the body of a `fetch`. The
 * result is validated (non-empty, finite); check the dimension with {@link validatePoints}.
 * `readPoints(path)` in `@diff-instruct/data/node` reads the file first.
 */
export function parsePoints(bytes: Uint8Array, name: string): Points {
  return pointFileType(name) === 'npy' ? parseNpy(bytes, name) : parseCsvPoints(new TextDecoder().decode(bytes), name);
}

// ---------------------------------------------------------------------------------------------
// CSV / whitespace-separated text

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const NON_FINITE = /^[+-]?(?:nan|inf|infinity)$/i;

function parseField(s: string): number | undefined {
  if (NUMBER.test(s)) return Number(s);
  if (NON_FINITE.test(s)) return s.toLowerCase().includes('nan') ? NaN : s.startsWith('-') ? -Infinity : Infinity;
  return undefined;
}

/**
 * Parses point text: one point per line, values separated by commas and/or whitespace (tabs,
 * spaces). A first row that is not all numbers is a header and is skipped. Blank lines and lines
 * starting with `#` are ignored. One column gives dimension 1. Rows are numbered from 1, not
 * counting the header; messages also give the line number when it differs.
 */
export function parseCsvPoints(text: string, source: string): Points {
  const lines = text.split(/\r\n|\n|\r/);
  const values: number[] = [];
  let dim = -1;
  let row = 0;
  let headerSeen = false;
  for (let li = 0; li < lines.length; li++) {
    const line = lines[li]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s*,\s*|\s+/);
    const where = () => (li + 1 === row ? `row ${row}` : `row ${row} (line ${li + 1})`);
    const nums = fields.map(parseField);
    if (row === 0 && !headerSeen && nums.some((v, j) => v === undefined && fields[j] !== '')) {
      headerSeen = true; // first row with a non-numeric field: a header
      continue;
    }
    row++;
    if (dim < 0) dim = fields.length;
    if (fields.length !== dim) throw new Error(`${source}: ${where()} has ${fields.length} columns, expected ${dim}`);
    for (let j = 0; j < dim; j++) {
      const v = nums[j];
      if (v === undefined) {
        const f = fields[j]!;
        throw new Error(
          `${source}: ${where()}, column ${j + 1}: ${f === '' ? 'empty value' : `"${f}" is not a number`}; fix that row`,
        );
      }
      if (!Number.isFinite(v)) throw new Error(`${source}: NaN or Inf at ${where()}, column ${j + 1}; remove or fix that row`);
      values.push(v);
    }
  }
  if (row === 0) {
    throw new Error(`${source}: ${headerSeen ? 'only a header row, no data' : 'the file is empty'}; give one point per row`);
  }
  const p = { data: Float32Array.from(values), n: row, dim };
  validatePoints(p, source);
  return p;
}

/** Points as CSV text: one row per point, no header, shortest round-trip float32 formatting. */
export function formatCsvPoints(p: Points): string {
  const rows: string[] = [];
  for (let i = 0; i < p.n; i++) {
    const r: string[] = [];
    for (let j = 0; j < p.dim; j++) r.push(formatFloat32(p.data[i * p.dim + j]!));
    rows.push(r.join(','));
  }
  return rows.length ? rows.join('\n') + '\n' : '';
}

/** The shortest decimal that reads back as the same float32. */
function formatFloat32(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Object.is(v, -0)) return '-0';
  for (let p = 1; p <= 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return String(s);
  }
  return String(v);
}

// ---------------------------------------------------------------------------------------------
// NPY (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html)

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** An n-dimensional array read from a `.npy` file, as float32 in C order. */
export interface NpyArray {
  data: Float32Array;
  shape: number[];
}

/**
 * Parses a NumPy `.npy` file of any rank: format version 1, 2 or 3; dtype `<f4`, `<f8`, `<i4` or
 * `<i8` (little-endian); C order, or Fortran order for 1-D and 2-D arrays (transposed on read).
 */
export function parseNpyArray(bytes: Uint8Array, source: string): NpyArray {
  const name = baseName(source);
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error(`${source}: not a NumPy .npy file (bad magic); save it with numpy.save`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new Error(`${source}: unsupported .npy format version ${major}; save with numpy >= 1.0`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (bytes.length < start + headerLen) throw new Error(`${source}: truncated .npy header`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new Error(`${source}: malformed .npy header ${JSON.stringify(header.trim())}`);
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`${source}: bad shape (${shapeText}) in .npy header`);
  if (fortran === 'True' && shape.length > 2) {
    throw new Error(`${source}: Fortran-order arrays of ${shape.length} dimensions are not supported; save with np.ascontiguousarray`);
  }
  const reader = NPY_READERS[descr];
  if (!reader) {
    const hint = descr.startsWith('>') ? 'it is big-endian' : `dtype "${descr}" is not supported`;
    throw new Error(`${source}: ${hint}; save as little-endian float32, e.g. np.save("${name}", x.astype("<f4"))`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (bytes.length - offset < count * reader.size) {
    throw new Error(
      `${source}: truncated .npy data: shape (${shapeText}) needs ${count * reader.size} bytes, found ${bytes.length - offset}`,
    );
  }
  const n = shape[0] ?? 1;
  const dim = shape.length === 2 ? shape[1]! : 1;
  const data = new Float32Array(count);
  for (let k = 0; k < count; k++) {
    // In Fortran order the k-th stored value is element (k mod n, k div n).
    const dst = fortran === 'True' ? (k % n) * dim + Math.floor(k / n) : k;
    data[dst] = reader.read(view, offset + k * reader.size);
  }
  return { data, shape };
}

/** Parses a `.npy` file of points: 1-D (dimension 1) or 2-D (N×D), checked by {@link validatePoints}. */
export function parseNpy(bytes: Uint8Array, source: string): Points {
  const { data, shape } = parseNpyArray(bytes, source);
  if (shape.length < 1 || shape.length > 2) {
    throw new Error(`${source}: the array has ${shape.length} dimensions (shape (${shape.join(', ')})); give an N×D (2-D) or N (1-D) array`);
  }
  const p = { data, n: shape[0]!, dim: shape.length === 2 ? shape[1]! : 1 };
  validatePoints(p, source);
  return p;
}

const NPY_READERS: Record<string, { size: number; read: (v: DataView, o: number) => number }> = {
  '<f4': { size: 4, read: (v, o) => v.getFloat32(o, true) },
  '<f8': { size: 8, read: (v, o) => v.getFloat64(o, true) },
  '<i4': { size: 4, read: (v, o) => v.getInt32(o, true) },
  '<i8': { size: 8, read: (v, o) => Number(v.getBigInt64(o, true)) },
};

/** A float32 (`<f4`), C-order, version-1 `.npy` file of the given shape. */
export function encodeNpy(data: Float32Array, shape: number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (shape.some((d) => !Number.isInteger(d) || d < 0) || count !== data.length) {
    throw new Error(`encodeNpy: shape [${shape.join(', ')}] does not hold ${data.length} values`);
  }
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad with spaces and end with \n so that the data starts at a multiple of 64 bytes.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + data.length * 4);
  out.set(NPY_MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  const view = new DataView(out.buffer);
  view.setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  for (let i = 0; i < data.length; i++) view.setFloat32(total + 4 * i, data[i]!, true);
  return out;
}
