export { main, HELP, VERSION } from './main.js';
export { runToy, resolveToyConfig, reportMarkdown, TOY_FLAGS, type ToyReport } from './toy.js';
export { runSample } from './sample.js';
export { TOY_DEFAULTS, type ToyConfig } from './config.js';
export { selectBackend } from './backend.js';
