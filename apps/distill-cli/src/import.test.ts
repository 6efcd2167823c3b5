import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { relativeMaxDiff } from '@diff-instruct/sde/testing';

import { type SafetensorsInputTensor, decodeSafetensors, disposeModel, encodeSafetensors } from '@diff-instruct/models';
import { loadDenoiser } from '@diff-instruct/models/node';

import { main } from './main.js';

const FIXTURES = fileURLToPath(new URL('../../../packages/models/fixtures/import/edm-ddpmpp', import.meta.url));
const fixture = (f: string) => join(FIXTURES, f);
const read = (f: string) => new Uint8Array(readFileSync(fixture(f)));

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'distill-import-'));

/** D(x; σ, label) of a saved teacher on an io file's inputs vs its `out`: ‖Δ‖_∞ / ‖out‖_∞ (NCHW ↔ NHWC). */
function parity(teacher: string, io: string): number {
  const { tensors } = decodeSafetensors(read(io));
  const [x, sigma, labels, out] = [tensors.x!, tensors.sigma!, tensors.class_labels!, tensors.out!];
  const model = loadDenoiser(teacher);
  try {
    const got = tf.tidy(() => {
      const xs = tf.tensor(x.data, x.shape, 'float32').transpose([0, 2, 3, 1]);
      const l = tf.tensor2d(labels.data as Float32Array, [labels.shape[0]!, labels.shape[1]!]);
      return model.denoise(xs, tf.tensor1d(sigma.data as Float32Array), l).transpose([0, 3, 1, 2]);
    });
    expect(got.shape).toEqual(out.shape);
    const a = got.dataSync();
    got.dispose();
    return relativeMaxDiff(a, out.data as Float32Array);
  } finally {
    disposeModel(model);
  }
}

/** One line on stderr, `distill: …`, the exit code (2: usage, 1: bad file), and nothing written. */
async function expectRefusal(code: 1 | 2, dir: string, out: string, argv: string[], pattern: RegExp): Promise<void> {
  const before = readdirSync(dir).sort();
  const r = await cli('import', ...argv);
  expect(r.stderr).toMatch(pattern);
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr.startsWith('distill: ')).toBe(true);
  if (!before.includes(out.slice(dir.length + 1))) expect(existsSync(out)).toBe(false);
  expect(readdirSync(dir).sort()).toEqual(before);
}

/** The f32 weights with `edit` applied to its tensors and metadata, written to `path`. */
function writeEdited(path: string, edit: (t: Record<string, SafetensorsInputTensor>, meta: Record<string, string>) => void): string {
  const { tensors, metadata } = decodeSafetensors(read('weights.f32.safetensors'));
  const t: Record<string, SafetensorsInputTensor> = {};
  for (const [k, v] of Object.entries(tensors)) t[k] = { dtype: 'F32', shape: v.shape, data: v.data };
  const meta = { ...metadata };
  edit(t, meta);
  writeFileSync(path, encodeSafetensors(t, meta));
  return path;
}

/** The f32 weights written by hand with tensor `key` as F64 (which encodeSafetensors does not write). */
function f64File(path: string, key: string): string {
  const { tensors, metadata } = decodeSafetensors(read('weights.f32.safetensors'));
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [k, v] of Object.entries(tensors)) {
    const data = k === key ? new Float64Array(v.data as Float32Array) : (v.data as Float32Array);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    header[k] = { dtype: k === key ? 'F64' : 'F32', shape: v.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const json = Buffer.concat([raw, Buffer.from(' '.repeat((8 - (raw.length % 8)) % 8))]);
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  writeFileSync(path, Buffer.concat([head, json, ...chunks]));
  return path;
}

describe('distill import --from edm', () => {
  it('is listed in the help, and has its own', async () => {
    expect((await cli('--help')).stdout).toMatch(/^ {2}import {6}write a pretrained network \(NVlabs\/edm DDPM\+\+\) as a teacher file/m);
    const h = await cli('import', '--help');
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/Usage: distill import --from edm PATH --out teacher\.safetensors \[--force\]/);
    expect(h.stdout).toMatch(/safetensors\.index\.json/);
    expect(h.stdout).toMatch(/--from diffusers is not available yet/);
  });

  const variants: [string, (dir: string) => string, string, string][] = [
    ['f32 file', () => fixture('weights.f32.safetensors'), 'io.f32.safetensors', 'F32'],
    ['bf16 file', () => fixture('weights.bf16.safetensors'), 'io.bf16.safetensors', 'BF16'],
    ['sharded index (f16)', () => fixture('sharded/model.safetensors.index.json'), 'io.f16.safetensors', 'F16'],
    ['sharded folder (f16)', () => fixture('sharded'), 'io.f16.safetensors', 'F16'],
    [
      'folder with one file (f32)',
      (dir) => {
        const src = join(dir, 'src');
        mkdirSync(src);
        copyFileSync(fixture('weights.f32.safetensors'), join(src, 'edm.safetensors'));
        return src;
      },
      'io.f32.safetensors',
      'F32',
    ],
  ];
  for (const [name, path, io, dtype] of variants) {
    it(`${name}: writes a teacher whose D(x; σ, label) is within 1e-4 (relative) of ${io}`, async () => {
      const dir = tmp();
      const out = join(dir, 'teacher.safetensors');
      const r = await cli('import', '--from', 'edm', path(dir), '--out', out);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(
        new RegExp(`^imported EDM DDPM\\+\\+ \\(EDMPrecond\\(SongUNet\\)\\) 32×32×1, 10 classes, [\\d,]+ parameters, σ_data 0\\.5, σ 0–∞, from .* \\(${dtype}\\); wrote ${out} \\(0\\.\\d\\d MB\\)\\n$`),
      );
      expect(r.stdout.split('\n')).toHaveLength(2);
      expect(readdirSync(dir).filter((f) => f !== 'src')).toEqual(['teacher.safetensors']);
      const rel = parity(out, io);
      expect(rel).toBeLessThanOrEqual(1e-4);
    });
  }

  it('refuses to overwrite --out unless --force', async () => {
    const dir = tmp();
    const out = join(dir, 'teacher.safetensors');
    writeFileSync(out, 'keep me');
    await expectRefusal(2, dir, out, ['--from', 'edm', fixture('weights.f32.safetensors'), '--out', out], /teacher\.safetensors exists; pass --force to overwrite it/);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    const r = await cli('import', '--from', 'edm', fixture('weights.f32.safetensors'), '--out', out, '--force');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(statSync(out).size).toBeGreaterThan(1000);
    expect(parity(out, 'io.f32.safetensors')).toBeLessThanOrEqual(1e-4);
  });

  it('--from diffusers: says it is not available yet, and why', async () => {
    const dir = tmp();
    const out = join(dir, 'teacher.safetensors');
    await expectRefusal(
      2,
      dir,
      out,
      ['--from', 'diffusers', fixture('weights.f32.safetensors'), '--out', out],
      /^distill: importing a diffusers UNet2DModel as a teacher file is not available yet: the network itself is in @diff-instruct\/models as importDiffusersUnet2d, but our teacher file format cannot store it yet/,
    );
  });

  it('refuses bad flags and paths with one line, exit code 2, nothing written', async () => {
    const dir = tmp();
    const out = join(dir, 'teacher.safetensors');
    const f32 = fixture('weights.f32.safetensors');
    await expectRefusal(2, dir, out, [f32, '--out', out], /distill import needs --from SOURCE \(edm or diffusers\)/);
    await expectRefusal(2, dir, out, ['--from', 'pickle', f32, '--out', out], /unknown --from "pickle"; sources: edm, diffusers/);
    await expectRefusal(2, dir, out, ['--from', 'edm', '--out', out], /distill import needs PATH/);
    await expectRefusal(2, dir, out, ['--from', 'edm', f32], /distill import needs --out FILE/);
    await expectRefusal(2, dir, out, ['--from', 'edm', f32, f32, '--out', out], /distill import takes one PATH, got 2/);
    await expectRefusal(2, dir, join(dir, 't.pt'), ['--from', 'edm', f32, '--out', join(dir, 't.pt')], /--out must end in \.safetensors/);
    await expectRefusal(2, dir, out, ['--from', 'edm', f32, '--out', join(dir, 'no', 't.safetensors')], /directory .* does not exist/);
    await expectRefusal(2, dir, out, ['--from', 'edm', join(dir, 'missing.safetensors'), '--out', out], /missing\.safetensors not found; PATH is an export_edm\.py \.safetensors file/);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'notes.txt'), 'x');
    await expectRefusal(2, dir, out, ['--from', 'edm', empty, '--out', out], /empty holds no \.safetensors file or \*\.safetensors\.index\.json; pass the file/);
    const several = join(dir, 'several');
    mkdirSync(several);
    copyFileSync(f32, join(several, 'a.safetensors'));
    copyFileSync(f32, join(several, 'b.safetensors'));
    await expectRefusal(2, dir, out, ['--from', 'edm', several, '--out', out], /several holds several candidate files \(a\.safetensors, b\.safetensors\); pass the one to import as PATH/);
  });

  it("passes importEdm's errors through as one line, exit code 1, nothing written", async () => {
    const dir = tmp();
    const out = join(dir, 'teacher.safetensors');
    const bad = (name: string, edit: Parameters<typeof writeEdited>[1]) => writeEdited(join(dir, name), edit);
    const kwargs = JSON.parse(decodeSafetensors(read('weights.f32.safetensors')).metadata.edm_kwargs!);
    const cases: [string, RegExp][] = [
      [bad('missing.safetensors', (t) => delete t['model.enc.16x16_block0.qkv.weight']), /importEdm: the file does not match the network of its edm_kwargs: missing keys: 'model\.enc\.16x16_block0\.qkv\.weight' \(re-export/],
      [
        bad('unknown.safetensors', (t) => (t['model.enc.32x32_block0.extra.weight'] = { dtype: 'F32', shape: [2], data: new Float32Array(2) })),
        /unknown keys \(not in this DDPM\+\+ network\): 'model\.enc\.32x32_block0\.extra\.weight'/,
      ],
      [
        bad('shape.safetensors', (t) => (t['model.map_layer0.weight'] = { dtype: 'F32', shape: [16, 5], data: new Float32Array(80) })),
        /shape of 'model\.map_layer0\.weight' is \[16, 5\], expected \[16, 4\]/,
      ],
      [
        bad('kwargs.safetensors', (_, m) => (m.edm_kwargs = JSON.stringify({ ...kwargs, model_kwargs: { ...kwargs.model_kwargs, embedding_type: 'fourier' } }))),
        /model_kwargs\.embedding_type = "fourier" is not supported/,
      ],
      [bad('format.safetensors', (_, m) => (m.format = 'pt')), /__metadata__\.format is "pt", expected "edm": export .*export_edm\.py/],
      [f64File(join(dir, 'f64.safetensors'), 'model.map_layer0.weight'), /'model\.map_layer0\.weight' has dtype F64.*; re-export it as F32, F16 or BF16/],
    ];
    for (const [path, re] of cases) {
      await expectRefusal(1, dir, out, ['--from', 'edm', path, '--out', out], re);
      const r = await cli('import', '--from', 'edm', path, '--out', out);
      expect(r.stderr).toContain(path);
    }
    const corrupt = join(dir, 'corrupt.safetensors');
    writeFileSync(corrupt, new Uint8Array(64).fill(7));
    await expectRefusal(1, dir, out, ['--from', 'edm', corrupt, '--out', out], /corrupt\.safetensors/);
  });
});
