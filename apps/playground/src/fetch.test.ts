import { readFileSync } from 'node:fs';

import { disposeModel, loadGenerator } from '@diff-instruct/models';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { fetchBytes, PageError, parseBytes } from './fetch.js';

const generatorFile = new URL('../../../checkpoints/mnist/generator/generator.safetensors', import.meta.url);
const what = "the generator's weights";

afterEach(() => vi.unstubAllGlobals());

describe('the messages of a file that does not load', () => {
  it('404: names the file and the status, and says what to do', async () => {
    vi.stubGlobal('fetch', async () => new Response('no', { status: 404, statusText: 'Not Found' }));
    const e = await fetchBytes('missing.safetensors', what, 'generator').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PageError);
    expect((e as PageError).message).toBe("Could not load the generator's weights from missing.safetensors: the server answered 404 Not Found.");
    expect((e as PageError).hint).toContain('pnpm playground:build');
    expect((e as PageError).hint).toContain('?generator=');
  });

  it('no network: the same, with the browser\'s reason', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch');
    });
    await expect(fetchBytes('w.safetensors', what, 'generator')).rejects.toThrow("Could not load the generator's weights from w.safetensors: Failed to fetch.");
  });

  it('truncated bytes: names the file and its size; whole bytes load', () => {
    const bytes = new Uint8Array(readFileSync(generatorFile));
    const cut = bytes.subarray(0, 1000);
    const e = (() => {
      try {
        parseBytes(cut, 'g.safetensors', what, 'generator', (b) => loadGenerator(b, 'g.safetensors'));
      } catch (x) {
        return x as PageError;
      }
    })();
    expect(e).toBeInstanceOf(PageError);
    expect(e!.message).toMatch(/^The generator's weights at g\.safetensors could not be read \(1000 bytes\): g\.safetensors is not a valid safetensors file .*\.$/);
    expect(e!.message).not.toMatch(/\.\.$/);
    const g = parseBytes(bytes, 'g.safetensors', what, 'generator', (b) => loadGenerator(b, 'g.safetensors'));
    expect(g.latentShape).toEqual([32, 32, 1]);
    disposeModel(g);
  });
});
