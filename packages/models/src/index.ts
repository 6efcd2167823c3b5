export { matmul, dense, silu, oneHotEmbed } from './ops.js';
export { edmPrecond, type RawNet } from './precond.js';
export {
  type MlpScoreConfig,
  type EdmDenoiserConfig,
  type MlpGeneratorConfig,
  type TweedieGeneratorConfig,
  type DenoiserConfig,
  type GeneratorConfig,
  type ModelConfig,
  roleOf,
  validateDenoiserConfig,
  validateGeneratorConfig,
} from './config.js';
export { type Params, type Init, cloneParams, copyParams, countParams, disposeModel } from './params.js';
export { noiseFeatures, initMlpScore, mlpScore, initMlpGenerator, mlpGenerator } from './mlp.js';
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
  SafetensorsFormatError,
  encodeSafetensors,
  decodeSafetensors,
} from './safetensors.js';
export {
  FORMAT,
  writeFileAtomic,
  saveModel,
  readSafetensorsFile,
  loadDenoiser,
  loadGenerator,
  loadParamsInto,
} from './io.js';
