// Image evaluation on the project's LeNet (Node only): FID (LeNet features) reference statistics,
// image metrics, samples of a one-step generator and of a teacher (with their cache), per-checkpoint
// snapshots of a run, and the repository's committed checkpoints. `distill images`, `gan-refine`,
// scripts/ and bench/ measure with these; so can a training script of your own.
export { classify, imageMetrics, referenceStats, type ImageMetrics } from './metrics.js';
export { clipImages, generate, teacherSamples } from './samples.js';
export { checkpointSnapshots, type SnapshotOptions } from './snapshots.js';
export { committed } from './checkpoints.js';
