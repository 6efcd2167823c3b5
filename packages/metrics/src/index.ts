export { energyDistance, type EnergyDistanceOptions } from './energy.js';
export { mmdRbf, medianBandwidth, type MmdOptions } from './mmd.js';
export { slicedWasserstein, wasserstein1d, type SlicedWassersteinOptions } from './swd.js';
export { meanLogLik } from './loglik.js';
export { compareSamples, type SampleMetrics, type CompareOptions } from './compare.js';
/**
 * "FID (LeNet features)": FID on the penultimate features of the small classifier this project
 * trains for each dataset. NOT comparable with Inception FID; see ./fid.ts.
 */
export { gaussianStats, frechetDistance, fidFromFeatures, type GaussianStats } from './fid.js';
export { symmetricEigen, sqrtmPsd } from './linalg.js';
/** Inception Score analogue on the same classifier (not comparable with Inception-v3 IS), coverage, accuracy. */
export {
  inceptionScore,
  classCoverage,
  classFractions,
  classAccuracy,
  argmaxRows,
  softmaxRows,
  type InceptionScoreOptions,
  type ClassCoverageOptions,
} from './classes.js';
