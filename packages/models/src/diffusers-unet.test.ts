import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { errorMessageOf, relativeMaxDiff } from '@diff-instruct/sde/testing';

import {
  type DiffusersUnetImport,
  ddpmSchedule,
  ddpmTimestepOfSigma,
  diffusersDownsampleConv,
  diffusersTimestepEmbedding,
  diffusersUnet,
  diffusersUnetParamSpecs,
  importDiffusersUnet2d,
  resolveDiffusersUnetConfig,
} from './diffusers-unet.js';
import { disposeModel } from './params.js';
import { type SafetensorsTensor, decodeSafetensors, encodeSafetensors } from './safetensors.js';

const dir = (f: string) => fileURLToPath(new URL(`../fixtures/import/diffusers-unet2d/${f}`, import.meta.url));
const read = (f: string) => new Uint8Array(readFileSync(dir(f)));
const text = (f: string) => readFileSync(dir(f), 'utf8');
const CONFIG = text('config.json');
const SCHEDULER = text('scheduler_config.json');

function io(kind: 'f32' | 'f16' | 'bf16') {
  const t = decodeSafetensors(read(`io.${kind}.safetensors`)).tensors;
  const nhwc = (s: SafetensorsTensor) => tf.tidy(() => tf.transpose(tf.tensor4d(s.data as Float32Array, s.shape as [number, number, number, number]), [0, 2, 3, 1]));
  return {
    x: nhwc(t.x!),
    timestep: Array.from(t.timestep!.data),
    eps: nhwc(t.eps!),
    tEmb: t.t_emb === undefined ? null : tf.tensor(t.t_emb.data as Float32Array, t.t_emb.shape),
  };
}

/** max |a − b| / max |b|. */
const relDiff = (a: tf.Tensor, b: tf.Tensor) => relativeMaxDiff(a.dataSync(), b.dataSync());
const errorOf = errorMessageOf;

const shardReader = (name: string) => {
  try {
    return read(`sharded/${name}`);
  } catch {
    return undefined;
  }
};

const variants: { name: string; io: 'f32' | 'f16' | 'bf16'; load: () => DiffusersUnetImport }[] = [
  { name: 'F32', io: 'f32', load: () => importDiffusersUnet2d({ config: CONFIG, scheduler: SCHEDULER, bytes: read('diffusion_pytorch_model.safetensors') }) },
  { name: 'F16', io: 'f16', load: () => importDiffusersUnet2d({ config: CONFIG, scheduler: SCHEDULER, bytes: read('diffusion_pytorch_model.f16.safetensors') }) },
  { name: 'BF16', io: 'bf16', load: () => importDiffusersUnet2d({ config: CONFIG, scheduler: SCHEDULER, bytes: read('diffusion_pytorch_model.bf16.safetensors') }) },
  {
    name: 'sharded F16',
    io: 'f16',
    load: () =>
      importDiffusersUnet2d({ config: JSON.parse(CONFIG), scheduler: JSON.parse(SCHEDULER), index: text('sharded/diffusion_pytorch_model.safetensors.index.json'), readShard: shardReader }),
  },
  { name: 'legacy keys F32', io: 'f32', load: () => importDiffusersUnet2d({ config: CONFIG, scheduler: SCHEDULER, bytes: read('legacy/diffusion_pytorch_model.safetensors') }) },
];

describe('diffusers UNet2DModel import: parity with the PyTorch reference', () => {
  for (const v of variants) {
    it(`${v.name}: ε̂ at io.${v.io}'s x and timestep matches eps (≤ 1e-4 relative)`, () => {
      const m = v.load();
      const d = io(v.io);
      expect(Object.keys(m.params)).toHaveLength(144);
      const eps = m.net(d.x, tf.tensor1d(d.timestep, 'float32'));
      expect(eps.shape).toEqual([6, 32, 32, 1]);
      const r = relDiff(eps, d.eps);
      console.log(`diffusers UNet2DModel ${v.name}: max |ε̂ − eps| / max |eps| = ${r.toExponential(2)}`);
      expect(r).toBeLessThanOrEqual(1e-4);
      // per timestep too (each of 0, 1, 10, 250, 500, 999)
      for (let i = 0; i < 6; i++) {
        expect(relDiff(tf.slice(eps, [i, 0, 0, 0], [1, 32, 32, 1]), tf.slice(d.eps, [i, 0, 0, 0], [1, 32, 32, 1]))).toBeLessThanOrEqual(1e-4);
      }
      disposeModel(m);
    });
  }

  it('a perturbed weight breaks parity (the check can fail)', () => {
    const m = variants[0]!.load();
    const d = io('f32');
    const w = m.params['mid_block.attentions.0.to_q.weight']!;
    w.assign(tf.add(w, 0.05));
    expect(relDiff(m.net(d.x, tf.tensor1d(d.timestep, 'float32')), d.eps)).toBeGreaterThan(1e-3);
    disposeModel(m);
  });

  it('the F16 weights do not pass the F32 check, nor vice versa (the io files differ)', () => {
    const m = variants[1]!.load();
    expect(relDiff(m.net(io('f32').x, tf.tensor1d(io('f32').timestep, 'float32')), io('f32').eps)).toBeGreaterThan(1e-4);
    disposeModel(m);
  });

  it('the time embedding matches t_emb', () => {
    const d = io('f32');
    const cfg = resolveDiffusersUnetConfig(CONFIG);
    const emb = diffusersTimestepEmbedding(tf.tensor1d(d.timestep, 'float32'), cfg.blockOutChannels[0]!, cfg.flipSinToCos, cfg.freqShift);
    expect(emb.shape).toEqual([6, 4]);
    const diff = tf.max(tf.abs(tf.sub(emb, d.tEmb!))).dataSync()[0]!;
    expect(diff).toBeLessThanOrEqual(1e-6);
    // flip_sin_to_cos swaps the halves: a wrong convention is caught
    const flipped = diffusersTimestepEmbedding(tf.tensor1d(d.timestep, 'float32'), 4, true, 1);
    expect(tf.max(tf.abs(tf.sub(flipped, d.tEmb!))).dataSync()[0]!).toBeGreaterThan(0.1);
  });

  it('names parameters by diffusers keys, Linear [in, out] and Conv2d [kh, kw, in, out]', () => {
    const m = variants[0]!.load();
    expect(m.params['conv_in.weight']!.shape).toEqual([3, 3, 1, 4]);
    expect(m.params['time_embedding.linear_1.weight']!.shape).toEqual([4, 16]);
    expect(m.params['up_blocks.0.resnets.0.conv1.weight']!.shape).toEqual([3, 3, 16, 8]);
    expect(m.params['up_blocks.1.resnets.1.conv_shortcut.weight']!.shape).toEqual([1, 1, 8, 4]);
    expect(m.params['down_blocks.1.attentions.0.to_out.0.weight']!.shape).toEqual([8, 8]);
    // the legacy file gives the same parameters under the new names
    const legacy = variants[4]!.load();
    expect(Object.keys(legacy.params).sort()).toEqual(Object.keys(m.params).sort());
    const raw = decodeSafetensors(read('diffusion_pytorch_model.safetensors')).tensors['time_embedding.linear_1.weight']!;
    const want = tf.transpose(tf.tensor(raw.data as Float32Array, raw.shape));
    expect(tf.max(tf.abs(tf.sub(m.params['time_embedding.linear_1.weight']!, want))).dataSync()[0]).toBe(0);
    disposeModel(m);
    disposeModel(legacy);
  });
});

describe('DDPM schedule and the ε → D denoiser', () => {
  const schedule = ddpmSchedule(SCHEDULER);
  const ref = decodeSafetensors(read('schedule.safetensors')).tensors;

  it('betas and alphas_cumprod match schedule.safetensors (≤ 1e-6 relative)', () => {
    const ac = ref.alphas_cumprod!.data;
    const betas = ref.betas!.data;
    expect(schedule.alphasCumprod.length).toBe(1000);
    let worst = 0;
    for (let i = 0; i < 1000; i++) {
      worst = Math.max(worst, Math.abs(schedule.alphasCumprod[i]! - ac[i]!) / ac[i]!);
      expect(Math.abs(schedule.betas[i]! - betas[i]!)).toBeLessThanOrEqual(1e-6 * betas[i]!);
    }
    console.log(`DDPM schedule: max relative difference of alphas_cumprod = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-6);
    // a different schedule does not pass
    const scaled = ddpmSchedule({ ...JSON.parse(SCHEDULER), beta_schedule: 'scaled_linear' });
    expect(Math.abs(scaled.alphasCumprod[500]! - ac[500]!) / ac[500]!).toBeGreaterThan(1e-3);
  });

  it('the other beta schedules follow diffusers', () => {
    const sl = ddpmSchedule({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000 });
    expect(sl.betas[0]).toBeCloseTo(0.00085, 9);
    expect(sl.betas[999]).toBeCloseTo(0.012, 8);
    expect(sl.betas[500]).toBeCloseTo((Math.sqrt(0.00085) + (500 / 999) * (Math.sqrt(0.012) - Math.sqrt(0.00085))) ** 2, 8);
    const cos = ddpmSchedule({ beta_schedule: 'squaredcos_cap_v2', num_train_timesteps: 1000 });
    const abar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    expect(cos.betas[0]).toBeCloseTo(1 - abar(0.001) / abar(0), 9);
    expect(cos.betas[999]).toBeCloseTo(0.999, 6); // capped
    const tb = ddpmSchedule({ trained_betas: [0.1, 0.2, 0.3] , num_train_timesteps: 3 });
    expect(tb.alphasCumprod[2]).toBeCloseTo(0.9 * 0.8 * 0.7, 6);
  });

  it('t(σ_t) = t exactly at every integer step, increasing in between, clamped outside', () => {
    const s = schedule.sigmas;
    for (let t = 0; t < 1000; t++) {
      expect(ddpmTimestepOfSigma(schedule, s[t]!)).toBe(t);
      const exact = Math.sqrt((1 - schedule.alphasCumprod[t]!) / schedule.alphasCumprod[t]!);
      expect(Math.abs(s[t]! - exact)).toBeLessThanOrEqual(1e-7 * exact); // the float32 rounding of σ_t
    }
    let prev = -1;
    for (let i = 0; i <= 20000; i++) {
      const sigma = Math.exp(Math.log(s[0]! * 0.5) + (i / 20000) * (Math.log(s[999]! * 2) - Math.log(s[0]! * 0.5)));
      const t = ddpmTimestepOfSigma(schedule, sigma);
      expect(t).toBeGreaterThanOrEqual(prev);
      if (sigma > s[0]! && sigma < s[999]!) expect(t).toBeGreaterThan(prev);
      prev = t;
    }
    expect(ddpmTimestepOfSigma(schedule, 1e-6)).toBe(0);
    expect(ddpmTimestepOfSigma(schedule, 1e6)).toBe(999);
    // linear in ln σ between steps: the geometric mean of σ_10 and σ_11 is t = 10.5
    expect(ddpmTimestepOfSigma(schedule, Math.sqrt(s[10]! * s[11]!))).toBeCloseTo(10.5, 12);
  });

  it('D(x_σ; σ_t) = x_σ − σ_t·eps at the io timesteps (closed form)', () => {
    const m = variants[0]!.load();
    const d = io('f32');
    const sig = d.timestep.map((t) => schedule.sigmas[t]!);
    // x_t = x_σ/√(1 + σ²): the io x is x_t, so x_σ = x_t·√(1 + σ²)
    const s4 = tf.tensor1d(sig).reshape([6, 1, 1, 1]);
    const xs = tf.mul(d.x, tf.sqrt(tf.add(tf.square(s4), 1))) as tf.Tensor4D;
    const D = m.denoiser(xs, tf.tensor1d(sig));
    const want = tf.sub(xs, tf.mul(s4, d.eps));
    // the residual is σ·(ε̂ − eps), with |ε̂ − eps| ≤ 1e-4·max|eps| and a tiny xIn round-off
    const err = tf.tidy(() => tf.abs(tf.sub(D, want)));
    for (let i = 0; i < 6; i++) {
      const e = tf.max(tf.slice(err, [i, 0, 0, 0], [1, 32, 32, 1])).dataSync()[0]!;
      expect(e).toBeLessThanOrEqual(2e-4 * Math.max(1, sig[i]!) * tf.max(tf.abs(d.eps)).dataSync()[0]!);
    }
    // a mismatched timestep (σ of t + 1 while feeding x_t) is far off at small t
    const off = m.denoiser(xs, tf.tensor1d(d.timestep.map((t) => schedule.sigmas[Math.min(t + 50, 999)]!)));
    expect(relDiff(off, want)).toBeGreaterThan(1e-3);
    expect(() => m.denoiser(xs, tf.tensor1d(sig), tf.zeros([6, 2]) as tf.Tensor2D)).toThrow(/unconditional/);
    disposeModel(m);
  });

  it('the denoiser differentiates in x', () => {
    const m = variants[0]!.load();
    const x = tf.randomNormal([2, 32, 32, 1], 0, 1, 'float32', 3) as tf.Tensor4D;
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.square(m.denoiser(xx, tf.tensor1d([0.5, 3])))))(x);
    expect(g.shape).toEqual([2, 32, 32, 1]);
    expect(Array.from(g.dataSync()).every(Number.isFinite)).toBe(true);
    disposeModel(m);
  });
});

describe('diffusers UNet2DModel import: errors', () => {
  const f32 = decodeSafetensors(read('diffusion_pytorch_model.safetensors')).tensors;
  const encode = (ts: Record<string, SafetensorsTensor>) =>
    encodeSafetensors(Object.fromEntries(Object.entries(ts).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape, data: t.data }])), { format: 'pt' });
  const without = (key: string) => Object.fromEntries(Object.entries(f32).filter(([k]) => k !== key));
  const imp = (over: Partial<Parameters<typeof importDiffusersUnet2d>[0]>) => errorOf(() => importDiffusersUnet2d({ config: CONFIG, scheduler: SCHEDULER, bytes: read('diffusion_pytorch_model.safetensors'), ...over }));
  const oneLine = (msg: string) => {
    expect(msg).not.toContain('\n');
    return msg;
  };
  const cfg = (over: object) => JSON.stringify({ ...JSON.parse(CONFIG), ...over });

  it('unknown, missing and mis-shaped weights are named', () => {
    expect(oneLine(imp({ bytes: encode({ ...f32, 'extra.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) } }) }))).toBe(
      "diffusers UNet2DModel: unknown weight 'extra.weight' (not part of the network config.json describes)",
    );
    expect(oneLine(imp({ bytes: encode(without('mid_block.attentions.0.to_k.bias')) }))).toBe("diffusers UNet2DModel: missing weight 'mid_block.attentions.0.to_k.bias'");
    const w = f32['conv_out.weight']!;
    expect(oneLine(imp({ bytes: encode({ ...f32, 'conv_out.weight': { ...w, shape: [1, 4, 9, 1] } }) }))).toBe(
      "diffusers UNet2DModel: weight 'conv_out.weight' has shape [1, 4, 9, 1], expected [1, 4, 3, 3]",
    );
    // a config that does not describe the weights: the first unknown keys are named
    expect(oneLine(imp({ config: cfg({ layers_per_block: 2 }) }))).toMatch(/^diffusers UNet2DModel: missing weights 'down_blocks\.0\.resnets\.1\.norm1\.weight'/);
  });

  it('an unsupported dtype is refused by the decoder', () => {
    const bytes = encodeSafetensors({ a: { dtype: 'F32', shape: [1], data: new Float32Array(1) } });
    // rewrite the header's dtype to F64 (same length as "F32")
    const s = new TextDecoder().decode(bytes);
    const patched = new TextEncoder().encode(s.replace('"F32"', '"F64"'));
    expect(oneLine(imp({ bytes: patched }))).toMatch(/F64/);
    const asI32 = { ...f32, 'conv_in.bias': { dtype: 'I32' as const, shape: [4], data: new Int32Array(4) } };
    expect(oneLine(imp({ bytes: encode(asI32) }))).toBe("diffusers UNet2DModel: weight 'conv_in.bias' has dtype I32, expected a float tensor (F32, F16, BF16)");
  });

  it('prediction types other than epsilon are refused', () => {
    expect(oneLine(imp({ scheduler: { ...JSON.parse(SCHEDULER), prediction_type: 'v_prediction' } }))).toBe(
      "diffusers UNet2DModel: unsupported scheduler prediction_type \"v_prediction\" (supported: 'epsilon')",
    );
    expect(imp({ scheduler: { beta_schedule: 'sigmoid' } })).toMatch(/unsupported scheduler beta_schedule "sigmoid" \(supported: 'linear', 'scaled_linear', 'squaredcos_cap_v2', or trained_betas\)/);
  });

  it('unsupported config options name the field and what is supported', () => {
    const e = (over: object) => oneLine(errorOf(() => resolveDiffusersUnetConfig(cfg(over))));
    expect(e({ down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D'] })).toBe(
      'diffusers UNet2DModel: unsupported down_block_types[1] "CrossAttnDownBlock2D" (supported: \'DownBlock2D\', \'AttnDownBlock2D\')',
    );
    expect(e({ up_block_types: ['AttnUpBlock2D', 'SkipUpBlock2D'] })).toBe(
      'diffusers UNet2DModel: unsupported up_block_types[1] "SkipUpBlock2D" (supported: \'UpBlock2D\', \'AttnUpBlock2D\')',
    );
    expect(e({ resnet_time_scale_shift: 'scale_shift' })).toBe("diffusers UNet2DModel: unsupported resnet_time_scale_shift \"scale_shift\" (supported: 'default')");
    expect(e({ time_embedding_type: 'fourier' })).toBe("diffusers UNet2DModel: unsupported time_embedding_type \"fourier\" (supported: 'positional')");
    expect(e({ class_embed_type: 'timestep' })).toMatch(/unsupported class_embed_type "timestep" \(supported: null/);
    expect(e({ num_class_embeds: 10 })).toMatch(/unsupported num_class_embeds 10 \(supported: null/);
    expect(e({ downsample_type: 'resnet' })).toBe("diffusers UNet2DModel: unsupported downsample_type \"resnet\" (supported: 'conv')");
    expect(e({ mid_block_type: 'UNetMidBlock2DCrossAttn' })).toMatch(/unsupported mid_block_type "UNetMidBlock2DCrossAttn"/);
    expect(e({ act_fn: 'gelu' })).toMatch(/unsupported act_fn "gelu" \(supported: 'silu', 'swish'\)/);
    expect(e({ cross_attention_dim: 768 })).toMatch(/^diffusers UNet2DModel: unsupported config field 'cross_attention_dim' \(supported: /);
    expect(e({ block_out_channels: [4, 8, 16] })).toMatch(/unsupported down_block_types \[.*\] \(supported: a list of 3 block types/);
    expect(e({ attention_head_dim: 3 })).toMatch(/attention_head_dim 3 does not divide the 8 channels/);
    expect(errorOf(() => resolveDiffusersUnetConfig('{'))).toMatch(/^diffusers UNet2DModel: config is not valid JSON/);
  });

  it('defaults: missing fields take diffusers __init__ defaults', () => {
    const c = resolveDiffusersUnetConfig({ block_out_channels: [32, 64], down_block_types: ['DownBlock2D', 'AttnDownBlock2D'], up_block_types: ['AttnUpBlock2D', 'UpBlock2D'] });
    expect(c).toMatchObject({ flipSinToCos: true, freqShift: 0, normEps: 1e-5, downsamplePadding: 1, attentionHeadDim: 8, normNumGroups: 32, midBlockScaleFactor: 1, layersPerBlock: 2, inChannels: 3, timeEmbedDim: 128 });
    const one = resolveDiffusersUnetConfig(cfg({ attention_head_dim: null }));
    expect(one.attentionHeadDim).toBeNull();
    expect(diffusersUnetParamSpecs(one)).toHaveLength(144);
  });
});

describe('diffusers UNet2DModel: variants of the network', () => {
  let m: DiffusersUnetImport;
  let d: ReturnType<typeof io>;
  beforeAll(() => {
    m = variants[0]!.load();
    d = io('f32');
  });
  afterAll(() => disposeModel(m));

  it('downsample_padding 1 is PyTorch padding 1 (symmetric), unlike 0 (right/bottom)', () => {
    // same weights, other config: the output changes, and a direct tf conv with explicit pads agrees with ours
    const net1 = diffusersUnet(cfg1(), m.params);
    const t = tf.tensor1d(d.timestep, 'float32');
    expect(relDiff(net1(d.x, t), d.eps)).toBeGreaterThan(1e-3);
    // odd sizes (not used by the UNet, which wants multiples of 2^(levels−1)) are refused
    expect(() => net1(tf.zeros([1, 31, 32, 1]) as tf.Tensor4D, tf.tensor1d([0]))).toThrow(/multiples of 2/);
  });

  it('the stride-2 conv equals a PyTorch Conv2d with padding p (explicit tf pads), p = 0, 1, 2, even and odd sizes', () => {
    const w = tf.randomNormal([3, 3, 2, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const b = tf.randomNormal([3], 0, 1, 'float32', 6) as tf.Tensor1D;
    for (const [h, wd] of [
      [8, 8],
      [7, 6],
      [5, 9],
    ] as const) {
      const x = tf.randomNormal([2, h, wd, 2], 0, 1, 'float32', 7) as tf.Tensor4D;
      for (const p of [0, 1, 2]) {
        const [pb, pr] = p === 0 ? [1, 1] : [p, p]; // diffusers pads (0, 1, 0, 1) when p = 0
        const want = tf.add(tf.conv2d(x, w, 2, [[0, 0], [p, pb], [p, pr], [0, 0]]), b);
        const got = diffusersDownsampleConv(x, w, b, p);
        expect(got.shape).toEqual(want.shape);
        expect(tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]!).toBeLessThanOrEqual(1e-5);
      }
    }
  });

  const cfg1 = () => ({ ...JSON.parse(CONFIG), downsample_padding: 1 });

  it('center_input_sample maps x to 2x − 1 and fractional timesteps are accepted', () => {
    const netC = diffusersUnet({ ...JSON.parse(CONFIG), center_input_sample: true }, m.params);
    const t = tf.tensor1d(d.timestep, 'float32');
    const xh = tf.div(tf.add(d.x, 1), 2) as tf.Tensor4D;
    expect(relDiff(netC(xh, t), d.eps)).toBeLessThanOrEqual(1e-4);
    const half = m.net(d.x, tf.tensor1d(d.timestep.map((v) => v + 0.5), 'float32'));
    expect(Array.from(half.dataSync()).every(Number.isFinite)).toBe(true);
    expect(relDiff(half, d.eps)).toBeGreaterThan(1e-6);
  });
});
