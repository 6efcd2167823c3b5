export { main, VERSION } from './main.js';
export { REFINE_DEFAULTS, REFINE_FLAGS, REFINE_HELP, resolveRefineConfig, runRefine, type RefineConfig, type RefineReport } from './refine.js';
