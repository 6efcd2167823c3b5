export { matmul, dense, addBias, silu, oneHotEmbed, conv2d, conv2dBias, upsample2x, downsample2x, groupNorm, groupNormSilu, softmax, batchMatmul } from './ops.js';
export { edmPrecond, edmFeatures, type RawNet } from './precond.js';
export { initFeatureHead, featureHead } from './head.js';
export {
  type MlpScoreConfig,
  type UnetConfig,
  type EdmDenoiserConfig,
  type MlpGeneratorConfig,
  type TweedieGeneratorConfig,
  type DenoiserConfig,
  type GeneratorConfig,
  type LenetConfig,
  type ClassifierConfig,
  type ModelConfig,
  type ModelRole,
  roleOf,
  sampleShape,
  validateDenoiserConfig,
  validateGeneratorConfig,
  validateClassifierConfig,
} from './config.js';
export { type Params, type Init, cloneParams, copyParams, countParams, disposeModel } from './params.js';
export { noiseFeatures, initMlpScore, mlpScore, mlpFeatures, initMlpGenerator, mlpGenerator } from './mlp.js';
export { initUnet, unetScore, unetFeatures, groupsFor } from './unet.js';
export { type ClassifierModel, initLenet, lenet, createClassifier, initClassifier, classifierFromParams } from './lenet.js';
export { UNET_PRESETS, type UnetPreset, unetPreset, STYLEGAN2_PRESETS, type StyleGan2Preset, stylegan2Preset, paramCountOf, describeModel } from './presets.js';
export {
  type StyleGan2GeneratorConfig,
  type StyleGan2DiscriminatorConfig,
  initStyleGan2Generator,
  stylegan2Generator,
  stylegan2LatentSize,
  initStyleGan2Discriminator,
  stylegan2Discriminator,
  validateStyleGan2Generator,
  validateStyleGan2Discriminator,
  minibatchStd,
  modulatedConv,
  type StyleGan2Discriminator,
  createStyleGan2Discriminator,
  discriminatorFromParams,
} from './stylegan2.js';
export {
  type DenoiserModel,
  type GeneratorModel,
  createDenoiser,
  createGenerator,
  initDenoiser,
  initGenerator,
  denoiserFromParams,
  generatorFromParams,
  tweedieGenerator,
  cloneModel,
} from './model.js';
export {
  type SafetensorsDtype,
  type SafetensorsTensor,
  type SafetensorsFileDtype,
  type SafetensorsInputTensor,
  SafetensorsFormatError,
  encodeSafetensors,
  decodeSafetensors,
} from './safetensors.js';
export { type ShardBytes, type ShardedSafetensors, decodeShardedSafetensors, decodeShardedSafetensorsAsync } from './sharded.js';
export {
  FORMAT,
  encodeModel,
  decodeSafetensorsBytes,
  parseModelFile,
  loadDenoiser,
  loadGenerator,
  loadClassifier,
  loadParamsInto,
} from './io.js';
export { type EdmFiles, type EdmKwargs, type EdmImport, importEdm, edmDenoiserConfig } from './import-edm.js';
export { type UnetOptions, unetOptions, positionalNoiseFeatures } from './unet.js';
export { exportOnnx, type ExportOnnxOptions, ONNX_OPSET, ONNX_IR_VERSION } from './onnx.js';
// File I/O (saveModel, loadGenerator(path), readSafetensorsFile, writeFileAtomic) is in './node.ts',
// the `@diff-instruct/models/node` entry, so that this one runs in a browser.
export {
  type DdpmSchedule,
  type DiffusersLayout,
  type DiffusersUnetConfig,
  type DiffusersUnetFiles,
  type DiffusersUnetImport,
  type DiffusersUnetNet,
  type DiffusersUnetParamSpec,
  type ResolvedDiffusersUnetConfig,
  ddpmEpsDenoiser,
  ddpmSchedule,
  ddpmTimestepOfSigma,
  diffusersTimestepEmbedding,
  diffusersUnet,
  diffusersUnetParamSpecs,
  diffusersUnetParams,
  importDiffusersUnet2d,
  renameLegacyDiffusersKey,
  resolveDiffusersUnetConfig,
} from './diffusers-unet.js';
