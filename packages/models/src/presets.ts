import { type ModelConfig, type UnetConfig, validateClassifierConfig, validateDenoiserConfig, validateGeneratorConfig } from './config.js';
import { initClassifier } from './lenet.js';
import { initDenoiser, initGenerator } from './model.js';
import { countParams, disposeModel } from './params.js';
import type { StyleGan2DiscriminatorConfig, StyleGan2GeneratorConfig } from './stylegan2.js';

/**
 * UNets for 32×32 MNIST (images padded from 28×28, in [-1, 1]), sized for wasm on two cores,
 * where a 3×3 conv runs at about 10–20 GFLOP/s. Both are class-conditional (10 classes); an
 * all-zero label is the unconditional model. Dropout 0.1 as EDM uses for small datasets
 * (CIFAR-10: 0.13); it is active only through `withDropout(rng)`.
 */
export const UNET_PRESETS = {
  /**
   * 348,721 parameters with the class embedding (348,081 with `numClasses: 0`): 16 channels at
   * 32×32, 32 at 16×16 and 8×8, attention at 8×8.
   */
  'mnist-tiny': {
    kind: 'unet',
    resolution: 32,
    channels: 1,
    modelChannels: 16,
    channelMult: [1, 2, 2],
    numBlocks: 1,
    attnResolutions: [8],
    dropout: 0.1,
    embedDim: 64,
    numClasses: 10,
  },
  /**
   * 1,383,521 parameters with the class embedding (1,382,241 with `numClasses: 0`): 32 channels
   * at 32×32, 64 at 16×16 and 8×8, attention at 8×8.
   */
  'mnist-small': {
    kind: 'unet',
    resolution: 32,
    channels: 1,
    modelChannels: 32,
    channelMult: [1, 2, 2],
    numBlocks: 1,
    attnResolutions: [8],
    dropout: 0.1,
    embedDim: 128,
    numClasses: 10,
  },
} as const satisfies Record<string, UnetConfig>;

export type UnetPreset = keyof typeof UNET_PRESETS;

/**
 * A StyleGAN2 pair for 32×32 MNIST (padded), sized for two cores: a generator of 773,547
 * parameters (StyleGAN2's mapping network halved in depth; channels 128 at 4×4 and 8×8, 64 at
 * 16×16, 32 at 32×32) and a residual discriminator of 871,521 with the mirrored channels.
 * Set `numClasses` (and the generator's) for a conditional pair; 0 here: unconditional.
 */
export const STYLEGAN2_PRESETS = {
  'mnist-stylegan2': {
    generator: {
      kind: 'stylegan2',
      resolution: 32,
      channels: 1,
      latentDim: 64,
      wDim: 128,
      mappingLayers: 4,
      mappingLrMultiplier: 0.01,
      channelsAt: [128, 128, 64, 32],
      numClasses: 0,
      output: 'tanh',
    },
    discriminator: {
      kind: 'stylegan2-discriminator',
      resolution: 32,
      channels: 1,
      channelsAt: [32, 64, 128, 128],
      mbstdGroup: 4,
      numClasses: 0,
      cmapDim: 128,
    },
  },
} as const satisfies Record<string, { generator: StyleGan2GeneratorConfig; discriminator: StyleGan2DiscriminatorConfig }>;

export type StyleGan2Preset = keyof typeof STYLEGAN2_PRESETS;

/** Mutable copies of a StyleGAN2 preset's generator and discriminator configs. */
export function stylegan2Preset(name: StyleGan2Preset): { generator: StyleGan2GeneratorConfig; discriminator: StyleGan2DiscriminatorConfig } {
  return structuredClone(STYLEGAN2_PRESETS[name]) as unknown as { generator: StyleGan2GeneratorConfig; discriminator: StyleGan2DiscriminatorConfig };
}

/** A copy of a preset, as a mutable {@link UnetConfig} (e.g. to change `channels` or `numClasses`). */
export function unetPreset(name: UnetPreset): UnetConfig {
  return structuredClone(UNET_PRESETS[name]) as unknown as UnetConfig;
}

/** The number of scalar parameters a model of this config has (builds it with zeros, counts, frees it). */
export function paramCountOf(config: ModelConfig): number {
  const m =
    config.kind === 'edm' ? initDenoiser(config, null) : config.kind === 'lenet' ? initClassifier(config, null) : initGenerator(config, null);
  const n = countParams(m.params);
  disposeModel(m);
  return n;
}

function describeNet(net: ModelConfig): string {
  switch (net.kind) {
    case 'edm': {
      const n = net.net;
      const cls = n.numClasses > 0 ? `, ${n.numClasses} classes` : '';
      if (n.kind === 'mlp') return `EDM denoiser, MLP ${n.dim} → [${n.hidden.join(', ')}] → ${n.dim}${cls}`;
      const attn = n.attnResolutions.length > 0 ? `, attention at ${n.attnResolutions.map((r) => `${r}×${r}`).join(', ')}` : '';
      const drop = n.dropout > 0 ? `, dropout ${n.dropout}` : '';
      return (
        `EDM denoiser, UNet ${n.resolution}×${n.resolution}×${n.channels}, channels ${n.modelChannels}×[${n.channelMult.join(', ')}], ` +
        `${n.numBlocks} block${n.numBlocks === 1 ? '' : 's'} per level${attn}${drop}${cls}`
      );
    }
    case 'tweedie':
      return `Tweedie generator at σ* = ${net.sigmaStar} around an ${describeNet(net.denoiser)}`;
    case 'mlp-generator':
      return `MLP generator ${net.latentDim} → [${net.hidden.join(', ')}] → ${net.outDim}${net.numClasses > 0 ? `, ${net.numClasses} classes` : ''}`;
    case 'stylegan2':
      return (
        `StyleGAN2 generator ${net.resolution}×${net.resolution}×${net.channels}, z ${net.latentDim} → w ${net.wDim} (${net.mappingLayers} mapping layers), ` +
        `channels [${net.channelsAt.join(', ')}] at 4…${net.resolution}${net.numClasses > 0 ? `, ${net.numClasses} classes` : ''}`
      );
    case 'lenet':
      return `LeNet classifier ${net.resolution}×${net.resolution}×${net.channels}, ${net.featureDim} features, ${net.numClasses} classes`;
  }
}

/**
 * One line that describes a model config and its size, for logs:
 * `EDM denoiser, UNet 32×32×1, channels 16×[1, 2, 2], 1 block per level, …: 348,721 parameters`.
 */
export function describeModel(config: ModelConfig): string {
  if (config.kind === 'edm') validateDenoiserConfig(config);
  else if (config.kind === 'lenet') validateClassifierConfig(config);
  else validateGeneratorConfig(config);
  return `${describeNet(config)}: ${paramCountOf(config).toLocaleString('en-US')} parameters`;
}
