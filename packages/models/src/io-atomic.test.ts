import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it, vi } from 'vitest';

// Simulates a disk that fills up after the temporary file was written: fsync fails with ENOSPC.
const failure = vi.hoisted(() => ({ on: false }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return {
    ...fs,
    fsyncSync: (fd: number) => {
      if (failure.on) throw Object.assign(new Error('ENOSPC: no space left on device, fsync'), { code: 'ENOSPC' });
      return fs.fsyncSync(fd);
    },
  };
});

const { writeFileAtomic } = await import('./node.js');

const dir = mkdtempSync(join(tmpdir(), 'di-models-atomic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic on a full disk', () => {
  it('keeps the previous file intact, removes the temporary file, and says the disk is full', () => {
    const p = join(dir, 'model.safetensors');
    writeFileSync(p, 'previous complete checkpoint');
    failure.on = true;
    try {
      expect(() => writeFileAtomic(p, new Uint8Array(1000).fill(7))).toThrow(`disk full while writing ${p}`);
    } finally {
      failure.on = false;
    }
    expect(readFileSync(p, 'utf8')).toBe('previous complete checkpoint');
    expect(readdirSync(dir)).toEqual(['model.safetensors']);
  });
});
