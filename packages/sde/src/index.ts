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
