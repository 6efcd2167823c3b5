import { singleCommandMain } from '@diff-instruct/cli';

import { REFINE_HELP, runRefine } from './refine.js';

export const VERSION = '0.1.0';

/** The CLI as a function: returns the exit code; never calls process.exit. */
export const main = singleCommandMain('gan-refine', VERSION, REFINE_HELP, runRefine);
