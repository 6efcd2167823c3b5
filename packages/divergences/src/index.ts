export { dsmLoss, type DsmLossArgs } from './dsm.js';
export { iklSurrogate, iklValue, type IklWeighting, type IklSurrogateArgs, type IklValueArgs } from './ikl.js';
export { sidLoss, type SidLossArgs } from './sid.js';
export {
  realDataDiscriminatorLoss,
  realDataGeneratorLoss,
  type NoisyDiscriminator,
  type NoisedBatch,
  type RealDataDiscriminatorArgs,
  type RealDataGeneratorArgs,
} from './realData.js';
export { sdsSurrogate, diracDenoiser, type SdsSurrogateArgs } from './sds.js';
export { iklDisjointSupport, disjointSupportLogDensity } from './analytic.js';
export { simpson } from './quadrature.js';
export {
  sdsLoss,
  vsdLoss,
  annealRange,
  type SdsLossArgs,
  type VsdLossArgs,
  type SdsLossResult,
  type SdsWeighting,
  type SdsClip,
  type ScoreModel,
  type EpsilonNet,
  type AnnealRangeOptions,
} from './sdsLoss.js';
