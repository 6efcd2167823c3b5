// The pieces of a command-line app on Diff-Instruct (Node only): strict flags, settings files and
// --resume, the progress bar, the tfjs backend, the one-command main and per-phase seeds. The apps
// `distill`, `gan-refine` and `sds-nerf` are built from them.
export {
  OBJECTIVE_FLAGS,
  RUN_FLAGS,
  UsageError,
  applyObjectiveFlags,
  describeObjective,
  flagHelp,
  generatorName,
  parseArgs,
  requirePositive,
  startCommand,
  type FlagSpec,
  type FlagType,
  type Parsed,
} from './args.js';
export { BEFORE_OBJECTIVES, mergeConfig, prepareOut, readConfigFile, resumeConfig } from './config.js';
export { progressBar } from './progress.js';
export { selectBackend, type BackendName } from './backend.js';
export { backendFlag, reportError, singleCommandMain, type Io } from './program.js';
export { seedFor } from './seeds.js';
