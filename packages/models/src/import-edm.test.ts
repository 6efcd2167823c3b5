import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';

import { errorMessageOf, relativeMaxDiff } from '@diff-instruct/sde/testing';

import { validateDenoiserConfig } from './config.js';
import { edmDenoiserConfig, importEdm } from './import-edm.js';
import { encodeModel, loadDenoiser } from './io.js';
import { tweedieGenerator } from './model.js';
import { exportOnnx } from './onnx.js';
import { disposeModel } from './params.js';
import { type SafetensorsInputTensor, decodeSafetensors, encodeSafetensors } from './safetensors.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/import/edm-ddpmpp');
const read = (f: string) => new Uint8Array(readFileSync(join(DIR, f)));

const relDiff = relativeMaxDiff;

/** D(x; σ, label) of an imported network on an io file's inputs, NCHW in and out. */
function runOn(imported: ReturnType<typeof importEdm>, io: string, withLabels = true): { got: Float32Array; want: Float32Array } {
  const { tensors } = decodeSafetensors(read(io));
  const [x, sigma, labels, out] = [tensors.x!, tensors.sigma!, tensors.class_labels!, tensors.out!];
  const got = tf.tidy(() => {
    const xs = tf.tensor(x.data, x.shape, 'float32').transpose([0, 2, 3, 1]);
    const s = tf.tensor1d(sigma.data as Float32Array);
    const l = withLabels ? tf.tensor2d(labels.data as Float32Array, [labels.shape[0]!, labels.shape[1]!]) : undefined;
    return imported.model.denoise(xs, s, l).transpose([0, 3, 1, 2]);
  });
  const data = got.dataSync() as Float32Array;
  got.dispose();
  expect(got.shape).toEqual(out.shape);
  return { got: data, want: out.data as Float32Array };
}

/** The f32 weights file, with `edit` applied to its tensors (and metadata). */
function edited(edit: (t: Record<string, SafetensorsInputTensor>, meta: Record<string, string>) => void): Uint8Array {
  const { tensors, metadata } = decodeSafetensors(read('weights.f32.safetensors'));
  const t: Record<string, SafetensorsInputTensor> = {};
  for (const [k, v] of Object.entries(tensors)) t[k] = { dtype: 'F32', shape: v.shape, data: v.data };
  const meta = { ...metadata };
  edit(t, meta);
  return encodeSafetensors(t, meta);
}

const errorOf = errorMessageOf;

const kwargsOf = () => JSON.parse(decodeSafetensors(read('weights.f32.safetensors')).metadata.edm_kwargs!);

describe('importEdm: EDM DDPM++ parity with the PyTorch reference', () => {
  const variants: [string, () => ReturnType<typeof importEdm>, string][] = [
    ['f32', () => importEdm({ bytes: read('weights.f32.safetensors') }), 'io.f32.safetensors'],
    ['f16', () => importEdm({ bytes: read('weights.f16.safetensors') }), 'io.f16.safetensors'],
    ['bf16', () => importEdm({ bytes: read('weights.bf16.safetensors') }), 'io.bf16.safetensors'],
    [
      'sharded (f16)',
      () => importEdm({ index: readFileSync(join(DIR, 'sharded/model.safetensors.index.json'), 'utf8'), readShard: (f) => read(`sharded/${f}`) }),
      'io.f16.safetensors',
    ],
  ];
  for (const [name, load, io] of variants) {
    it(`${name}: D(x; σ, label) within 1e-4 (relative) of ${io}`, () => {
      const imported = load();
      try {
        const { got, want } = runOn(imported, io);
        const rel = relDiff(got, want);
        console.log(`importEdm parity ${name}: max |Δ| / max |out| = ${rel.toExponential(2)}`);
        expect(rel).toBeLessThanOrEqual(1e-4);
      } finally {
        disposeModel(imported.model);
      }
    });
  }

  it('builds the flagged UnetConfig from the kwargs, and it validates', () => {
    const imported = importEdm({ bytes: read('weights.f32.safetensors') });
    try {
      const { config } = imported;
      validateDenoiserConfig(config);
      expect(config).toEqual({
        kind: 'edm',
        sigmaData: 0.5,
        net: {
          kind: 'unet',
          resolution: 32,
          channels: 1,
          modelChannels: 4,
          channelMult: [2, 2],
          numBlocks: 1,
          attnResolutions: [16],
          dropout: 0.13,
          embedDim: 16,
          numClasses: 10,
          blockModulation: 'add',
          resampleSkipConv: true,
          decoderAttn: 'last',
          noiseEmbedding: 'positional',
          noiseDim: 4,
          groupNormEps: 1e-6,
          labelBias: true,
          labelScale: 'sqrt',
        },
      });
      expect(imported.sigmaMax).toBe(Infinity);
      // no label = EDMPrecond's zero label: the map_label bias alone
      const a = tf.tidy(() => imported.model.denoise(tf.ones([1, 32, 32, 1]), tf.tensor1d([1]), undefined).dataSync());
      const b = tf.tidy(() => imported.model.denoise(tf.ones([1, 32, 32, 1]), tf.tensor1d([1]), tf.zeros([1, 10]) as tf.Tensor2D).dataSync());
      expect(Array.from(a)).toEqual(Array.from(b));
      // saved in our format, it loads back as the same network
      const again = loadDenoiser(encodeModel(imported.model));
      try {
        expect(again.config).toEqual(config);
        const c = tf.tidy(() => again.denoise(tf.ones([1, 32, 32, 1]), tf.tensor1d([1]), undefined).dataSync());
        expect(Array.from(c)).toEqual(Array.from(a));
      } finally {
        disposeModel(again);
      }
    } finally {
      disposeModel(imported.model);
    }
  });
});

describe('importEdm: errors, one line each', () => {
  it('names a missing key', () => {
    const msg = errorOf(() => importEdm({ bytes: edited((t) => delete t['model.enc.16x16_block0.qkv.weight']) }));
    expect(msg).toContain("missing keys: 'model.enc.16x16_block0.qkv.weight'");
    expect(msg.split('\n')).toHaveLength(2);
  });

  it('names an unknown key', () => {
    const msg = errorOf(() =>
      importEdm({ bytes: edited((t) => (t['model.enc.32x32_block0.extra.weight'] = { dtype: 'F32', shape: [2], data: new Float32Array(2) })) }),
    );
    expect(msg).toContain("unknown keys (not in this DDPM++ network): 'model.enc.32x32_block0.extra.weight'");
    expect(msg.split('\n')).toHaveLength(2);
  });

  it('names a shape mismatch with both shapes', () => {
    const msg = errorOf(() =>
      importEdm({ bytes: edited((t) => (t['model.map_layer0.weight'] = { dtype: 'F32', shape: [16, 5], data: new Float32Array(80) })) }),
    );
    expect(msg).toContain("shape of 'model.map_layer0.weight' is [16, 5], expected [16, 4]");
    expect(msg.split('\n')).toHaveLength(2);
  });

  it('checks the resample filters', () => {
    const key = 'model.enc.16x16_down.conv0.resample_filter';
    const msg = errorOf(() => importEdm({ bytes: edited((t) => (t[key] = { dtype: 'F32', shape: [1, 1, 2, 2], data: new Float32Array([0.1, 0.2, 0.3, 0.4]) })) }));
    expect(msg).toContain(`'${key}' is not the [1, 1] filter`);
  });

  it('refuses a file that is not an EDM export', () => {
    expect(errorOf(() => importEdm({ bytes: edited((_, m) => (m.format = 'pt')) }))).toMatch(/__metadata__\.format is "pt", expected "edm": export .*export_edm\.py/);
  });

  it('refuses unsupported networks, naming the field', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ model_kwargs: { embedding_type: 'fourier' } }, /model_kwargs\.embedding_type = "fourier" is not supported \('fourier' is NCSN\+\+\): only EDM's DDPM\+\+/],
      [{ model_kwargs: { encoder_type: 'residual' } }, /model_kwargs\.encoder_type = "residual" is not supported/],
      [{ model_kwargs: { decoder_type: 'skip' } }, /model_kwargs\.decoder_type = "skip" is not supported/],
      [{ model_kwargs: { resample_filter: [1, 3, 3, 1] } }, /model_kwargs\.resample_filter = \[1,3,3,1\] is not supported/],
      [{ model_type: 'DhariwalUNet' }, /model_type "DhariwalUNet" is not supported: .*DhariwalUNet, EDM's ADM, is not/],
      [{ class_name: 'VPPrecond' }, /class_name "VPPrecond" is not supported: only EDMPrecond/],
      [{ model_kwargs: { num_heads: 4 } }, /model_kwargs has keys SongUNet does not: "num_heads"/],
      [{ sigma_data: -1 }, /sigma_data must be a number > 0, got -1/],
    ];
    for (const [over, re] of cases) {
      const k = kwargsOf();
      const kw = { ...k, ...over, model_kwargs: { ...k.model_kwargs, ...((over.model_kwargs as object) ?? {}) } };
      const msg = errorOf(() => edmDenoiserConfig(kw));
      expect(msg).toMatch(re);
      expect(msg.startsWith('importEdm: ')).toBe(true);
      expect(msg).not.toContain('\n');
      // and through a file
      expect(errorOf(() => importEdm({ bytes: edited((_, m) => (m.edm_kwargs = JSON.stringify(kw))) }))).toMatch(re);
    }
  });

  it('the ONNX export refuses an imported network (its options are not written yet) instead of exporting another one', () => {
    const imported = importEdm({ bytes: read('weights.f32.safetensors') });
    const g = tweedieGenerator(imported.model, 2.5);
    expect(() => exportOnnx(g)).toThrow(/exportOnnx: this UNet sets blockModulation "add", .*which the ONNX export does not write yet/);
    disposeModel(g);
    disposeModel(imported.model);
  });

  it('validateDenoiserConfig rejects wrong flag values, naming the field', () => {
    const net = edmDenoiserConfig(kwargsOf()).net;
    const bad: [string, unknown, RegExp][] = [
      ['blockModulation', 'mul', /net\.blockModulation must be one of "scale-shift", "add" \(or absent\), got "mul"/],
      ['resampleSkipConv', 1, /net\.resampleSkipConv must be one of true, false/],
      ['decoderAttn', 'first', /net\.decoderAttn must be one of "all", "last"/],
      ['noiseEmbedding', 'sinusoid', /net\.noiseEmbedding must be one of "fourier", "positional"/],
      ['noiseDim', 3, /net\.noiseDim must be an even integer >= 4/],
      ['noiseDim', 2, /net\.noiseDim must be an even integer >= 4/],
      ['groupNormEps', 0, /net\.groupNormEps must be a finite number > 0/],
      ['labelBias', 'yes', /net\.labelBias must be one of true, false/],
      ['labelScale', 2, /net\.labelScale must be one of "none", "sqrt"/],
    ];
    for (const [field, value, re] of bad) {
      expect(errorOf(() => validateDenoiserConfig({ kind: 'edm', sigmaData: 0.5, net: { ...net, [field]: value } }))).toMatch(re);
    }
  });
});
