export { energyDistance, type EnergyDistanceOptions } from './energy.js';
export { mmdRbf, medianBandwidth, type MmdOptions } from './mmd.js';
export { slicedWasserstein, wasserstein1d, type SlicedWassersteinOptions } from './swd.js';
export { meanLogLik } from './loglik.js';
export { compareSamples, type SampleMetrics, type CompareOptions } from './compare.js';
