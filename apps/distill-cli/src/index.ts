export { main, HELP, VERSION } from './main.js';
export { runToy, resolveToyConfig, reportMarkdown, TOY_FLAGS, type ToyReport, type Io } from './toy.js';
export { runSample } from './sample.js';
export { BEFORE_OBJECTIVES, TOY_DEFAULTS, type ToyConfig, mergeConfig, prepareOut, readConfigFile, resumeConfig } from './config.js';
export { selectBackend } from './backend.js';
// The pieces of a run command, shared with apps/gan-refine so that neither copies the other.
export { OBJECTIVE_FLAGS, RUN_FLAGS, UsageError, applyObjectiveFlags, describeObjective, flagHelp, parseArgs, requirePositive, startCommand, type FlagSpec, type Parsed } from './args.js';
export { progressBar } from './progress.js';
export { seedFor } from './seeds.js';
export { checkpointSnapshots, classify, clipImages, committed, generate, imageMetrics, referenceStats, teacherSamples, type ImageMetrics, type SnapshotOptions } from './images.js';
export { singleCommandMain } from './program.js';
