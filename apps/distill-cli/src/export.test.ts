import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';

import { createGenerator, disposeModel } from '@diff-instruct/models';
import { loadGenerator, saveModel } from '@diff-instruct/models/node';
import { Rng } from '@diff-instruct/sde';

import { main } from './main.js';

const committed = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

/** One line on stderr, `distill: …`, the exit code (2: usage, 1: bad file), and nothing written. */
async function expectRefusal(code: 1 | 2, dir: string, out: string, argv: string[], pattern: RegExp): Promise<void> {
  const r = await cli('export', ...argv);
  expect(r.code).toBe(code);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr.startsWith('distill: ')).toBe(true);
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
}

describe('distill export', () => {
  it('is listed in the help, and has its own', async () => {
    expect((await cli('--help')).stdout).toMatch(/^ {2}export {6}write a saved generator as an ONNX model/m);
    const h = await cli('export', '--help');
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/Usage: distill export --generator FILE \[--format onnx\] --out model.onnx/);
    expect(h.stdout).toMatch(/Examples:/);
  });

  it('writes the committed MNIST generator as ONNX, which onnxruntime runs to the tfjs sample', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-export-'));
    const out = join(dir, 'mnist.onnx');
    const generator = committed('checkpoints/mnist/generator/generator.safetensors');
    const r = await cli('export', '--generator', generator, '--format', 'onnx', '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^wrote ${out} \\(1\\.\\d\\d MB, ONNX opset 17, IR 8\\): inputs z \\[N, 32, 32, 1\\], float32; output sample \\[N, 32, 32, 1\\] \\(NHWC`));
    expect(readdirSync(dir)).toEqual(['mnist.onnx']);

    const g = loadGenerator(generator);
    const z = new Rng(0).normal(2 * 32 * 32);
    const expected = tf.tidy(() => g.generate(tf.tensor(z, [2, 32, 32, 1])).dataSync());
    disposeModel(g);
    const session = await ort.InferenceSession.create(readFileSync(out));
    const y = (await session.run({ z: new ort.Tensor('float32', z, [2, 32, 32, 1]) })).sample!;
    await session.release();
    let d = 0;
    for (let i = 0; i < expected.length; i++) d = Math.max(d, Math.abs((y.data as Float32Array)[i]! - expected[i]!));
    expect(d).toBeLessThanOrEqual(1e-4);
  });

  it('names the label input of a conditional generator', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-export-'));
    const file = join(dir, 'g.safetensors');
    const g = createGenerator({ kind: 'mlp-generator', latentDim: 3, outDim: 2, hidden: [8], numClasses: 5 }, new Rng(1));
    saveModel(file, g);
    disposeModel(g);
    const r = await cli('export', '--generator', file, '--out', join(dir, 'g.onnx'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/inputs z \[N, 3\], label \[N, 5\] \(one-hot\), float32; output sample \[N, 2\] \(points\)/);
  });

  it('refuses bad input with one line: exit code 2 for bad flags, 1 for bad files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-export-'));
    const out = join(dir, 'model.onnx');
    const generator = committed('checkpoints/mnist/generator/generator.safetensors');
    await expectRefusal(2, dir, out, ['--out', out], /distill export needs --generator FILE/);
    await expectRefusal(2, dir, out, ['--generator', generator], /distill export needs --out FILE/);
    await expectRefusal(2, dir, out, ['--generator', generator, '--format', 'tflite', '--out', out], /unknown --format "tflite"; formats: onnx/);
    await expectRefusal(2, dir, join(dir, 'model.bin'), ['--generator', generator, '--out', join(dir, 'model.bin')], /--out must end in \.onnx/);
    await expectRefusal(2, dir, out, ['--generator', generator, '--out', join(dir, 'no', 'model.onnx')], /directory .* does not exist/);
    await expectRefusal(1, dir, out, ['--generator', join(dir, 'missing.safetensors'), '--out', out], /checkpoint not found: .*missing\.safetensors/);
    const corrupt = join(dir, 'corrupt.safetensors');
    writeFileSync(corrupt, new Uint8Array(64).fill(7));
    await expectRefusal(1, dir, out, ['--generator', corrupt, '--out', out], /corrupt\.safetensors is not a valid safetensors file/);
    await expectRefusal(
      1,
      dir,
      out,
      ['--generator', committed('checkpoints/toy/ring8/teacher.safetensors'), '--out', out],
      /holds a denoiser, expected a generator; distill export takes a one-step generator/,
    );
    await expectRefusal(
      1,
      dir,
      out,
      ['--generator', committed('checkpoints/mnist/gan/generator.safetensors'), '--out', out],
      /cannot export a 'stylegan2' generator to ONNX; supported: 'mlp-generator', and 'tweedie'/,
    );
  });
});
