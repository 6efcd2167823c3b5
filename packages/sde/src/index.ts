export { Rng, type RngState } from './rng.js';
export type { Denoiser } from './types.js';
export {
  type ForwardProcess,
  veProcess,
  vpProcess,
  brownianProcess,
  perSample,
  perturb,
  conditionalScore,
  tweedie,
  denoiserFromScore,
  denoiserFromEpsilon,
} from './process.js';
export { GaussianMixture, type MixtureComponent } from './mixture.js';
export { type SigmaDistribution, logNormalSigma, logUniformSigma, uniformTime, karrasSigmas } from './noise.js';
export { type Weighting, edmWeight, uniformWeight, sigma2Weight, a1Weight } from './weighting.js';
export {
  type SamplerOptions,
  type SamplerResult,
  type SamplerName,
  heunSampler,
  eulerSampler,
  eulerMaruyamaSampler,
  sampleTeacher,
} from './samplers.js';
