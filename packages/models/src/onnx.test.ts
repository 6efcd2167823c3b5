/**
 * The ONNX export against TensorFlow.js: each generator runs in onnxruntime-node (a dev dependency
 * of the repository, used by this test only) on the same latents as `generate`, and the largest
 * absolute difference must be ≤ 1e-4. A perturbed weight must break that, so the check can fail.
 */
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';

import { Rng } from '@diff-instruct/sde';

import type { UnetConfig } from './config.js';
import { type GeneratorModel, createDenoiser, createGenerator, initGenerator, tweedieGenerator } from './model.js';
import { loadDenoiser, loadGenerator } from './node.js';
import { ONNX_IR_VERSION, ONNX_OPSET, exportOnnx } from './onnx.js';
import { disposeModel } from './params.js';
import { stylegan2Preset, unetPreset } from './presets.js';

const TOLERANCE = 1e-4;
const committed = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));

/** Random latents [n, ...latentShape] and, for a conditional generator, one-hot labels cycling through the classes. */
function inputs(g: GeneratorModel, n: number, seed: number): { z: Float32Array; label: Float32Array | null } {
  const z = new Rng(seed).normal(n * g.latentShape.reduce((a, b) => a * b, 1));
  if (g.numClasses === 0) return { z, label: null };
  const label = new Float32Array(n * g.numClasses);
  for (let i = 0; i < n; i++) label[i * g.numClasses + ((i * 3) % g.numClasses)] = 1;
  return { z, label };
}

function tfjsSample(g: GeneratorModel, n: number, z: Float32Array, label: Float32Array | null): Float32Array {
  return tf.tidy(() => {
    const x = g.generate(tf.tensor(z, [n, ...g.latentShape]), label === null ? undefined : tf.tensor2d(label, [n, g.numClasses]));
    return x.dataSync() as Float32Array;
  });
}

async function onnxSample(bytes: Uint8Array, g: GeneratorModel, n: number, z: Float32Array, label: Float32Array | null): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const feeds: Record<string, ort.Tensor> = { z: new ort.Tensor('float32', z, [n, ...g.latentShape]) };
    if (label !== null) feeds.label = new ort.Tensor('float32', label, [n, g.numClasses]);
    const out = (await session.run(feeds)).sample!;
    expect(out.dims).toEqual([n, ...g.outputShape]);
    return out.data as Float32Array;
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The top-level fields of a ModelProto that the tests read: ir_version, opset versions and metadata_props. */
function readModelProto(bytes: Uint8Array): { irVersion: number; opsets: number[]; metadata: Record<string, string> } {
  const fields = (buf: Uint8Array) => {
    const out: { field: number; value: number | Uint8Array }[] = [];
    let i = 0;
    const varint = () => {
      let v = 0;
      for (let shift = 1; ; shift *= 128) {
        const b = buf[i++]!;
        v += (b & 0x7f) * shift;
        if (b < 0x80) return v;
      }
    };
    while (i < buf.length) {
      const tag = varint();
      const wire = tag & 7;
      if (wire === 0) out.push({ field: tag >>> 3, value: varint() });
      else if (wire === 2) {
        const len = varint();
        out.push({ field: tag >>> 3, value: buf.subarray(i, i + len) });
        i += len;
      } else if (wire === 5) i += 4;
      else throw new Error(`unexpected wire type ${wire}`);
    }
    return out;
  };
  const text = (v: number | Uint8Array) => new TextDecoder().decode(v as Uint8Array);
  const top = fields(bytes);
  const metadata: Record<string, string> = {};
  for (const f of top.filter((f) => f.field === 14)) {
    const kv = fields(f.value as Uint8Array);
    metadata[text(kv.find((x) => x.field === 1)!.value)] = text(kv.find((x) => x.field === 2)!.value);
  }
  return {
    irVersion: top.find((f) => f.field === 1)!.value as number,
    opsets: top.filter((f) => f.field === 8).map((f) => fields(f.value as Uint8Array).find((x) => x.field === 2)!.value as number),
    metadata,
  };
}

const measured: Record<string, number> = {};
afterAll(() => {
  // the measured differences, for the record (docs, reports)
  console.log(`onnx parity, max |onnx − tfjs|: ${Object.entries(measured).map(([k, v]) => `${k} ${v.toExponential(2)}`).join('; ')}`);
});

/** Exports `g`, runs both on `n` latents, and returns the largest absolute difference. */
async function parity(label: string, g: GeneratorModel, n: number, seed: number): Promise<number> {
  const bytes = exportOnnx(g);
  const { z, label: y } = inputs(g, n, seed);
  const d = maxAbsDiff(await onnxSample(bytes, g, n, z, y), tfjsSample(g, n, z, y));
  measured[label] = d;
  return d;
}

describe('exportOnnx', () => {
  it('the committed MNIST one-step generator (Tweedie UNet, mnist-tiny): NHWC in and out, metadata, parity', async () => {
    const g = loadGenerator(committed('checkpoints/mnist/generator/generator.safetensors'));
    const bytes = exportOnnx(g);
    const session = await ort.InferenceSession.create(bytes);
    expect(session.inputNames).toEqual(['z']);
    expect(session.outputNames).toEqual(['sample']);
    const shape = (m: ort.InferenceSession.ValueMetadata) => (m.isTensor ? m.shape : null);
    expect(shape(session.inputMetadata[0]!)).toEqual(['N', 32, 32, 1]);
    expect(shape(session.outputMetadata[0]!)).toEqual(['N', 32, 32, 1]);
    await session.release();

    const proto = readModelProto(bytes);
    expect(proto.irVersion).toBe(ONNX_IR_VERSION);
    expect(proto.opsets).toEqual([ONNX_OPSET]);
    expect(proto.metadata).toMatchObject({ layout: 'NHWC', latent_shape: '[32,32,1]', output_shape: '[32,32,1]', num_classes: '0', sigma_star: '2.5' });
    expect(proto.metadata.value_range).toMatch(/^\[-1, 1\]/);
    expect(JSON.parse(proto.metadata.config!)).toEqual(g.config);
    // deterministic: the same generator gives the same bytes
    expect(Buffer.from(exportOnnx(g)).equals(Buffer.from(bytes))).toBe(true);

    const n = 4;
    const { z } = inputs(g, n, 1);
    const reference = tfjsSample(g, n, z, null);
    const d = maxAbsDiff(await onnxSample(bytes, g, n, z, null), reference);
    measured['mnist generator (Tweedie UNet)'] = d;
    expect(d).toBeLessThanOrEqual(TOLERANCE);
    // the network matters: the sample is far from its skip part c_skip·σ*·z alone
    const sd = 0.5;
    const skip = z.map((v) => ((sd * sd) / (2.5 * 2.5 + sd * sd)) * 2.5 * v);
    expect(maxAbsDiff(reference, skip)).toBeGreaterThan(0.5);

    // a perturbed attention weight deep in the network breaks parity
    const qkv = g.params['denoiser.net.dec.8x8_in0.qkv.weight']!;
    qkv.assign(tf.tidy(() => tf.add(qkv, new Rng(2).normalTensor(qkv.shape).mul(0.05))));
    const broken = maxAbsDiff(await onnxSample(exportOnnx(g), g, n, z, null), reference);
    expect(broken).toBeGreaterThan(100 * TOLERANCE);
    disposeModel(g);
  });

  it('the Tweedie MLP generator of the committed toy teacher (ring8), and a perturbed weight breaks parity', async () => {
    const teacher = loadDenoiser(committed('checkpoints/toy/ring8/teacher.safetensors'));
    const g = tweedieGenerator(teacher, 2.5);
    expect(await parity('toy ring8 (Tweedie MLP)', g, 8, 3)).toBeLessThanOrEqual(TOLERANCE);
    const { z } = inputs(g, 8, 3);
    const reference = tfjsSample(g, 8, z, null);
    const bias = g.params['denoiser.net.out.bias']!;
    bias.assign(tf.tidy(() => tf.add(bias, tf.tensor1d([1e-3, 0]))));
    expect(maxAbsDiff(await onnxSample(exportOnnx(g), g, 8, z, null), reference)).toBeGreaterThan(5 * TOLERANCE);
    disposeModel(teacher);
    disposeModel(g);
  });

  it.each([0, 3])('a plain MLP generator, %i classes', async (numClasses) => {
    const g = createGenerator({ kind: 'mlp-generator', latentDim: 5, outDim: 3, hidden: [32, 16], numClasses }, new Rng(4));
    expect(await parity(`mlp generator, ${numClasses} classes`, g, 6, 5)).toBeLessThanOrEqual(TOLERANCE);
    disposeModel(g);
  });

  it('a small conditional Tweedie UNet (random weights): the label input, up/down-sampling, attention', async () => {
    const net: UnetConfig = { ...unetPreset('mnist-tiny'), resolution: 16, channels: 2, modelChannels: 8, channelMult: [1, 2, 2], attnResolutions: [8, 4], numClasses: 4 };
    const g = tweedieGenerator(createDenoiser({ kind: 'edm', sigmaData: 0.5, net }, new Rng(6)), 1.7);
    // larger weights than the initialisation, so that every layer moves the output
    for (const v of Object.values(g.params)) v.assign(tf.tidy(() => tf.add(tf.mul(v, 3), new Rng(v.size).normalTensor(v.shape).mul(0.05))));
    const n = 4;
    const bytes = exportOnnx(g);
    const session = await ort.InferenceSession.create(bytes);
    expect(session.inputNames).toEqual(['z', 'label']);
    await session.release();
    expect(await parity('conditional UNet (random)', g, n, 7)).toBeLessThanOrEqual(TOLERANCE);
    // the label changes the sample, the same way on both
    const { z, label } = inputs(g, n, 7);
    const other = label!.map((_, i) => (i % 4 === 1 ? 1 : 0));
    const a = await onnxSample(bytes, g, n, z, label);
    const b = await onnxSample(bytes, g, n, z, other);
    expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-2);
    expect(maxAbsDiff(b, tfjsSample(g, n, z, other))).toBeLessThanOrEqual(TOLERANCE);
    disposeModel(g);
  });

  it('a fixed batch size, extra metadata, no leaked tensors, and its refusals', async () => {
    const g = createGenerator({ kind: 'mlp-generator', latentDim: 2, outDim: 2, hidden: [8], numClasses: 0 }, new Rng(8));
    const before = tf.memory().numTensors;
    const bytes = exportOnnx(g, { batch: 3, metadata: { source: 'test' } });
    expect(tf.memory().numTensors).toBe(before); // no tensor left behind
    const session = await ort.InferenceSession.create(bytes);
    const m = session.inputMetadata[0]!;
    expect(m.isTensor ? m.shape : null).toEqual([3, 2]);
    await session.release();
    expect(readModelProto(bytes).metadata).toMatchObject({ source: 'test', layout: 'ND', num_classes: '0' });
    expect(() => exportOnnx(g, { metadata: { layout: 'NCHW' } })).toThrow(/metadata key 'layout' is reserved/);
    expect(() => exportOnnx(g, { batch: 0 })).toThrow(/batch must be a positive integer or a symbolic name/);
    disposeModel(g);

    const gan = initGenerator(stylegan2Preset('mnist-stylegan2').generator, null);
    expect(() => exportOnnx(gan)).toThrow(/cannot export a 'stylegan2' generator to ONNX; supported: 'mlp-generator', and 'tweedie'/);
    disposeModel(gan);
  });
});
