export { Adam, type AdamOptions } from './adam.js';
export { Ema } from './ema.js';
export { type Dataset, datasetSize, drawBatch, oneHot, randomLabels } from './batch.js';
export {
  type StateStore,
  memoryStateStore,
  stateStoreOf,
  encodeTrainState,
  decodeTrainState,
  writeTrainState,
  restoreGroup,
  checkResumeConfig,
  resumeTraining,
  type Resumed,
  type TrainStateInfo,
  type LoadedTrainState,
} from './checkpoint.js';
export {
  runLoop,
  type TrainLog,
  MemoryLog,
  TrainingError,
  TrainingStopped,
  HeapCeilingError,
  DEFAULT_MEMORY_LIMIT_BYTES,
  type LoopOptions,
  type ProgressEvent,
  type ProgressCallback,
} from './loop.js';
export { WASM_HEAP_CEILING_BYTES, estimateStepBytes, heapCeilingProblem, type StepMemoryEstimate } from './memory.js';
export { trainTeacher, TEACHER_DEFAULTS, type TeacherConfig, type TrainTeacherOptions, type TrainTeacherResult } from './teacher.js';
export {
  diffInstruct,
  lrScale,
  DIFF_INSTRUCT_DEFAULTS,
  GENERATOR_OBJECTIVES,
  type GeneratorObjective,
  type DiffInstructConfig,
  type DiffInstructOptions,
  type DiffInstructResult,
} from './diffInstruct.js';
export { trainClassifier, CLASSIFIER_DEFAULTS, type ClassifierTrainConfig, type TrainClassifierOptions } from './classifier.js';
export { trainGan, GAN_DEFAULTS, type GanConfig, type TrainGanOptions, type TrainGanResult, type DiscriminatorModel } from './gan.js';
export {
  scoreDistill,
  SCORE_DISTILL_DEFAULTS,
  type ScoreDistillConfig,
  type ScoreDistillOptions,
  type ScoreDistillResult,
  type Rendered,
} from './scoreDistill.js';
// File I/O (saveTrainState, loadTrainState, fileStateStore, JsonlLog, and the loops with
// `statePath` in a file) is in './node.ts', the `@diff-instruct/trainer/node` entry, so that this
// one runs in a browser.
