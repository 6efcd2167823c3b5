/**
 * Sharded safetensors checkpoints, as PyTorch / Hugging Face write large models: an index
 * `model.safetensors.index.json` = `{ "metadata": { ... }, "weight_map": { tensorName: shardFileName } }`
 * next to the shard files. Bytes in, tensors out: the caller reads the files (`fs`, `fetch`, a Map).
 */

import { SafetensorsFormatError, type SafetensorsTensor, decodeSafetensors } from './safetensors.js';

/** What a shard reader may return: the bytes, or undefined/null when the file does not exist. */
export type ShardBytes = Uint8Array | undefined | null;

export interface ShardedSafetensors {
  /** Every tensor of the index, in the order of its weight_map. */
  tensors: Record<string, SafetensorsTensor>;
  /** The index's `metadata` (e.g. `{ total_size: 1234 }`; values need not be strings), `{}` if absent. */
  metadata: Record<string, unknown>;
  /** Each shard's own `__metadata__`, by file name, in the order the shards were read. */
  shardMetadata: Record<string, Record<string, string>>;
}

interface ParsedIndex {
  weightMap: Map<string, string>;
  metadata: Record<string, unknown>;
  shards: string[];
}

function malformed(msg: string): never {
  throw new SafetensorsFormatError(`malformed safetensors index: ${msg}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseIndex(index: string | Uint8Array | object): ParsedIndex {
  let parsed: unknown = index;
  if (typeof index === 'string' || index instanceof Uint8Array) {
    try {
      parsed = JSON.parse(typeof index === 'string' ? index : new TextDecoder('utf-8', { fatal: true }).decode(index));
    } catch (e) {
      malformed(`not valid JSON (${(e as Error).message})`);
    }
  }
  if (!isObject(parsed)) malformed('not a JSON object');
  const { metadata = {}, weight_map: wm } = parsed;
  if (!isObject(metadata)) malformed("'metadata' is not an object");
  if (!isObject(wm)) malformed(wm === undefined ? "no 'weight_map'" : "'weight_map' is not an object");
  const weightMap = new Map<string, string>();
  const shards: string[] = [];
  for (const [name, file] of Object.entries(wm)) {
    if (typeof file !== 'string' || file === '') malformed(`weight_map['${name}'] is not a file name`);
    // shards sit next to the index: a path would let an index reach outside its folder
    if (/[/\\]/.test(file) || file === '.' || file === '..') malformed(`weight_map['${name}'] = '${file}' is a path, expected a file name next to the index`);
    if (name === '__metadata__') malformed("'__metadata__' is not a valid tensor name");
    weightMap.set(name, file);
    if (!shards.includes(file)) shards.push(file);
  }
  if (weightMap.size === 0) malformed("'weight_map' is empty");
  return { weightMap, metadata, shards };
}

/** Collects the shards' tensors, checking them against the index as they arrive. */
class Merger {
  private readonly found = new Map<string, SafetensorsTensor>();
  private readonly shardMetadata: Record<string, Record<string, string>> = {};
  private readonly index: ParsedIndex;

  constructor(index: ParsedIndex) {
    this.index = index;
  }

  add(file: string, bytes: unknown): void {
    if (bytes === undefined || bytes === null) throw new Error(`missing shard file '${file}' (listed in the index)`);
    if (!(bytes instanceof Uint8Array)) throw new Error(`shard '${file}': the reader returned ${typeof bytes}, expected a Uint8Array`);
    let decoded: ReturnType<typeof decodeSafetensors>;
    try {
      decoded = decodeSafetensors(bytes);
    } catch (e) {
      const msg = `shard '${file}': ${(e as Error).message}`;
      throw e instanceof SafetensorsFormatError ? new SafetensorsFormatError(msg) : new Error(msg, { cause: e });
    }
    for (const [name, t] of Object.entries(decoded.tensors)) {
      const listed = this.index.weightMap.get(name);
      if (listed === undefined) throw new SafetensorsFormatError(`shard '${file}' holds tensor '${name}', which the index does not list`);
      if (listed !== file) {
        throw new SafetensorsFormatError(`tensor '${name}' is in shard '${file}' and in '${listed}', where the index puts it (the same tensor in two shards)`);
      }
      this.found.set(name, t);
    }
    this.shardMetadata[file] = decoded.metadata;
  }

  finish(): ShardedSafetensors {
    const tensors: Record<string, SafetensorsTensor> = {};
    for (const [name, file] of this.index.weightMap) {
      const t = this.found.get(name);
      if (t === undefined) throw new SafetensorsFormatError(`tensor '${name}' is missing from shard '${file}', where the index puts it`);
      tensors[name] = t;
    }
    return { tensors, metadata: this.index.metadata, shardMetadata: this.shardMetadata };
  }
}

async function readOne<T>(file: string, read: () => T): Promise<Awaited<T>> {
  try {
    return await read();
  } catch (e) {
    throw new Error(`could not read shard file '${file}': ${(e as Error).message}`, { cause: e });
  }
}

function readOneSync<T>(file: string, read: () => T): T {
  try {
    return read();
  } catch (e) {
    throw new Error(`could not read shard file '${file}': ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Decodes a sharded safetensors checkpoint: `index` is the index file (its text, bytes or parsed
 * JSON), `readShard(fileName)` returns a shard's bytes (or undefined/null, or throws, if it does
 * not exist). Each shard is read once, in the order the index first names it, and checked: every
 * tensor of weight_map must be in its shard, and a shard may hold no tensor the index does not put
 * there (an extra or stale tensor is an error, not silently dropped). F16 and BF16 tensors come
 * back as float32, as from {@link decodeSafetensors}. Errors are one line and name the file and tensor.
 *
 * ```ts
 * const dir = 'edm/unet';
 * const ckpt = decodeShardedSafetensors(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'), (f) => readFileSync(join(dir, f)));
 * ```
 */
export function decodeShardedSafetensors(index: string | Uint8Array | object, readShard: (fileName: string) => ShardBytes): ShardedSafetensors {
  const parsed = parseIndex(index);
  const merger = new Merger(parsed);
  for (const file of parsed.shards) merger.add(file, readOneSync(file, () => readShard(file)));
  return merger.finish();
}

/**
 * {@link decodeShardedSafetensors} with a reader that may return a promise, e.g. `fetch` in a
 * browser: `await decodeShardedSafetensorsAsync(indexText, async (f) => new Uint8Array(await (await fetch(base + f)).arrayBuffer()))`.
 * Shards are read one at a time, so only one shard's bytes are held at once.
 */
export async function decodeShardedSafetensorsAsync(
  index: string | Uint8Array | object,
  readShard: (fileName: string) => ShardBytes | Promise<ShardBytes>,
): Promise<ShardedSafetensors> {
  const parsed = parseIndex(index);
  const merger = new Merger(parsed);
  for (const file of parsed.shards) merger.add(file, await readOne(file, () => readShard(file)));
  return merger.finish();
}
