import { singleCommandMain } from '@diff-instruct/cli';

import { NERF_HELP, runNerf } from './run.js';

export const VERSION = '0.1.0';

/** The CLI as a function: returns the exit code; never calls process.exit. */
export const main = singleCommandMain('sds-nerf', VERSION, NERF_HELP, runNerf);
