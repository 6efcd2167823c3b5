import { describe, expect, it } from 'vitest';

import { SafetensorsFormatError, decodeShardedSafetensors, decodeShardedSafetensorsAsync, encodeSafetensors } from './index.js';

const S1 = 'model-00001-of-00002.safetensors';
const S2 = 'model-00002-of-00002.safetensors';

/** Two shards and their index, as transformers/diffusers write them (F16 weights, one F32 buffer). */
function checkpoint() {
  const files = new Map<string, Uint8Array>([
    [
      S1,
      encodeSafetensors(
        {
          'enc.weight': { dtype: 'F16', shape: [2, 2], data: new Float32Array([1, -2, 0.5, 65504]) },
          'enc.bias': { dtype: 'F32', shape: [2], data: new Float32Array([0.25, -0.125]) },
        },
        { format: 'pt' },
      ),
    ],
    [S2, encodeSafetensors({ 'dec.weight': { dtype: 'BF16', shape: [3], data: new Float32Array([1, 3, -0.5]) } }, { format: 'pt' })],
  ]);
  const index = {
    metadata: { total_size: 8 + 8 + 6 },
    weight_map: { 'dec.weight': S2, 'enc.bias': S1, 'enc.weight': S1 },
  };
  return { files, index };
}

/** A reader over `files` that counts how often each is read. */
function reader(files: Map<string, Uint8Array>) {
  const reads: string[] = [];
  return { reads, read: (f: string) => (reads.push(f), files.get(f)) };
}

function errorOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('decodeShardedSafetensors', () => {
  it('merges the shards of an index, reading each once', () => {
    const { files, index } = checkpoint();
    const { reads, read } = reader(files);
    const out = decodeShardedSafetensors(JSON.stringify(index), read);
    expect(reads).toEqual([S2, S1]); // in the order the index first names them, once each
    expect(Object.keys(out.tensors)).toEqual(['dec.weight', 'enc.bias', 'enc.weight']);
    const t = out.tensors;
    expect([t['enc.weight']!.dtype, t['enc.weight']!.sourceDtype, t['enc.weight']!.shape]).toEqual(['F32', 'F16', [2, 2]]);
    expect(Array.from(t['enc.weight']!.data)).toEqual([1, -2, 0.5, 65504]);
    expect([t['enc.bias']!.sourceDtype, Array.from(t['enc.bias']!.data)]).toEqual(['F32', [0.25, -0.125]]);
    expect([t['dec.weight']!.sourceDtype, Array.from(t['dec.weight']!.data)]).toEqual(['BF16', [1, 3, -0.5]]);
    expect(out.metadata).toEqual({ total_size: 22 });
    expect(out.shardMetadata).toEqual({ [S2]: { format: 'pt' }, [S1]: { format: 'pt' } });
  });

  it('takes the index as text, bytes or a parsed object; no metadata is fine', () => {
    const { files, index } = checkpoint();
    const want = decodeShardedSafetensors(index, (f) => files.get(f)).tensors;
    expect(decodeShardedSafetensors(new TextEncoder().encode(JSON.stringify(index)), (f) => files.get(f)).tensors).toEqual(want);
    const bare = decodeShardedSafetensors({ weight_map: index.weight_map }, (f) => files.get(f));
    expect(bare.tensors).toEqual(want);
    expect(bare.metadata).toEqual({});
  });

  it('has an async variant for fetch-style readers', async () => {
    const { files, index } = checkpoint();
    const reads: string[] = [];
    const out = await decodeShardedSafetensorsAsync(JSON.stringify(index), async (f) => {
      reads.push(f);
      await new Promise((r) => setTimeout(r, 1));
      return files.get(f);
    });
    expect(reads).toEqual([S2, S1]);
    expect(Array.from(out.tensors['dec.weight']!.data)).toEqual([1, 3, -0.5]);
    await expect(decodeShardedSafetensorsAsync(index, async () => undefined)).rejects.toThrow(`missing shard file '${S2}' (listed in the index)`);
    await expect(decodeShardedSafetensorsAsync(index, () => Promise.reject(new Error('404 Not Found')))).rejects.toThrow(
      `could not read shard file '${S2}': 404 Not Found`,
    );
    await expect(decodeShardedSafetensorsAsync('{', () => undefined)).rejects.toThrow(/^malformed safetensors index: not valid JSON/);
  });

  it('names a missing or unreadable shard file', () => {
    const { files, index } = checkpoint();
    files.delete(S1);
    expect(errorOf(() => decodeShardedSafetensors(index, (f) => files.get(f))).message).toBe(`missing shard file '${S1}' (listed in the index)`);
    const e = errorOf(() =>
      decodeShardedSafetensors(index, () => {
        throw new Error('ENOENT: no such file or directory');
      }),
    );
    expect(e.message).toBe(`could not read shard file '${S2}': ENOENT: no such file or directory`);
    expect(errorOf(() => decodeShardedSafetensors(index, () => 'text' as never)).message).toBe(`shard '${S2}': the reader returned string, expected a Uint8Array`);
  });

  it('names a tensor missing from its shard', () => {
    const { files, index } = checkpoint();
    const e = errorOf(() => decodeShardedSafetensors({ ...index, weight_map: { ...index.weight_map, 'enc.extra': S1 } }, (f) => files.get(f)));
    expect(e).toBeInstanceOf(SafetensorsFormatError);
    expect(e.message).toBe(`tensor 'enc.extra' is missing from shard '${S1}', where the index puts it`);
  });

  it('names a tensor found in two shards, and one the index does not list', () => {
    const { files, index } = checkpoint();
    files.set(S1, encodeSafetensors({ ...(['enc.weight', 'enc.bias', 'dec.weight'] as const).reduce((o, k) => ({ ...o, [k]: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }), {}) }));
    const two = errorOf(() => decodeShardedSafetensors(index, (f) => files.get(f)));
    expect(two).toBeInstanceOf(SafetensorsFormatError);
    expect(two.message).toBe(`tensor 'dec.weight' is in shard '${S1}' and in '${S2}', where the index puts it (the same tensor in two shards)`);

    const extra = checkpoint();
    extra.files.set(S2, encodeSafetensors({ 'dec.weight': { dtype: 'F32', shape: [3], data: new Float32Array(3) }, stale: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }));
    expect(errorOf(() => decodeShardedSafetensors(extra.index, (f) => extra.files.get(f))).message).toBe(
      `shard '${S2}' holds tensor 'stale', which the index does not list`,
    );
  });

  it('names a corrupt shard and what is wrong with it', () => {
    const { files, index } = checkpoint();
    files.set(S1, files.get(S1)!.subarray(0, 40));
    const e = errorOf(() => decodeShardedSafetensors(index, (f) => files.get(f)));
    expect(e).toBeInstanceOf(SafetensorsFormatError);
    expect(e.message).toMatch(new RegExp(`^shard '${S1}': header length \\d+ exceeds`));
    files.set(S1, encodeSafetensors({}));
    const f64 = new Uint8Array(files.get(S2)!);
    const text = new TextDecoder().decode(f64).replace('"BF16"', '"F64" ');
    files.set(S2, new TextEncoder().encode(text));
    expect(errorOf(() => decodeShardedSafetensors(index, (f) => files.get(f))).message).toBe(
      `shard '${S2}': tensor 'dec.weight' has dtype F64, which this reader does not support (F32, I32, F16, BF16)`,
    );
  });

  it('refuses a malformed index with a one-line reason', () => {
    const never = () => {
      throw new Error('no shard should be read');
    };
    const cases: [unknown, string][] = [
      ['{"weight_map": {', 'not valid JSON'],
      ['[1, 2]', 'not a JSON object'],
      [null, 'not a JSON object'],
      [{ metadata: {} }, "no 'weight_map'"],
      [{ weight_map: ['a'] }, "'weight_map' is not an object"],
      [{ weight_map: {} }, "'weight_map' is empty"],
      [{ metadata: 'x', weight_map: { a: S1 } }, "'metadata' is not an object"],
      [{ weight_map: { a: 3 } }, "weight_map['a'] is not a file name"],
      [{ weight_map: { a: '' } }, "weight_map['a'] is not a file name"],
      [{ weight_map: { a: '../secret.safetensors' } }, "weight_map['a'] = '../secret.safetensors' is a path, expected a file name next to the index"],
      [{ weight_map: { __metadata__: S1 } }, "'__metadata__' is not a valid tensor name"],
    ];
    for (const [index, reason] of cases) {
      const e = errorOf(() => decodeShardedSafetensors(index as object, never));
      expect(e, reason).toBeInstanceOf(SafetensorsFormatError);
      expect(e.message.startsWith(`malformed safetensors index: ${reason}`), e.message).toBe(true);
      expect(e.message).not.toContain('\n');
    }
  });
});
