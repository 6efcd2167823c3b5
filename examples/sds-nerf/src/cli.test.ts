import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { main } from './main.js';

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

/** Settings small enough that a whole run (teacher included) takes a few seconds. */
function tinyConfig(dir: string): string {
  const path = join(dir, 'tiny.json');
  writeFileSync(
    path,
    JSON.stringify({
      grid: 8,
      render: { size: 8, samples: 8 },
      teacherViews: 16,
      teacherNet: { resolution: 8, modelChannels: 8, embedDim: 16 },
      teacherTrain: { steps: 3, batchSize: 4 },
      viewsPerStep: 1,
      distill: { checkpointEvery: 2 },
      evalViews: 2,
      turntableViews: 3,
    }),
  );
  return path;
}

/** Each bad input: one clear line on stderr, exit code 2, and no output folder. */
async function expectUsageError(out: string, argv: string[], pattern: RegExp): Promise<void> {
  const r = await cli(...argv, '--out', out);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr.startsWith('sds-nerf: ')).toBe(true);
  expect(existsSync(out)).toBe(false);
}

describe('sds-nerf', () => {
  it('answers --help and --dry-run', async () => {
    const h = await cli('--help');
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/Usage: sds-nerf --out DIR \[--mode sds\|vsd\]/);
    const d = JSON.parse((await cli('--dry-run', '--mode', 'vsd', '--steps', '7', '--seed', '3')).stdout);
    expect(d.distill).toMatchObject({ mode: 'vsd', steps: 7 });
    expect(d.seed).toBe(3);
    expect(d.teacherNet.numClasses).toBe(d.views.bins);
  });

  it('runs SDS end to end with --json, then VSD with the cached teacher', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sds-nerf-'));
    const cfg = tinyConfig(dir);
    const out = join(dir, 'sds');
    const r = await cli('--config', cfg, '--out', out, '--steps', '4', '--json', '--quiet');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const rep = JSON.parse(r.stdout);
    expect(Object.keys(rep)).toEqual(['psnrInitial', 'psnrFinal', 'curve']);
    expect(rep.curve.map((p: { step: number }) => p.step)).toEqual([0, 2, 4]);
    for (const p of rep.curve) expect(Number.isFinite(p.psnr)).toBe(true);
    for (const f of ['config.json', 'log.jsonl', 'teacher.safetensors', 'field.safetensors', 'turntable.png', 'psnr.png', 'report.json', 'state.safetensors']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }

    const vsd = join(dir, 'vsd');
    const v = await cli('--config', cfg, '--out', vsd, '--steps', '2', '--mode', 'vsd', '--teacher', join(out, 'teacher.safetensors'), '--json', '--quiet');
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout).curve).toHaveLength(2);
    expect(existsSync(join(vsd, 'teacher.safetensors'))).toBe(false); // loaded, not retrained
    // A teacher of other views is refused, with the reason.
    await expectUsageError(join(dir, 'bad-teacher'), ['--teacher', join(out, 'teacher.safetensors')], /needs a UNet on 16×16×3 with 8 classes/);
  });

  it('refuses bad flags clearly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sds-nerf-'));
    const out = join(dir, 'never');
    await expectUsageError(out, ['--mode', 'dds'], /--mode must be sds or vsd, got "dds"/);
    await expectUsageError(out, ['--steps', '0'], /--steps must be > 0/);
    await expectUsageError(out, ['--steps', 'many'], /--steps must be a number/);
    await expectUsageError(out, ['--stpes', '3'], /unknown flag --stpes for 'sds-nerf'/);
    await expectUsageError(out, ['--teacher', join(dir, 'missing.safetensors')], /no such file/);
    await expectUsageError(out, ['--guidance', '-1'], /--guidance must be >= 0/);
  });
});
