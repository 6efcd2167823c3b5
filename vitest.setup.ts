/**
 * Every test file runs on one tfjs backend, chosen by DI_TEST_BACKEND (default `wasm`, the
 * default backend of the apps; `cpu` also works). Tolerances in tests come from `tol()` in
 * `@diff-instruct/sde/testing`, which depends on the backend.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

const backend = process.env.DI_TEST_BACKEND ?? 'wasm';
if (!(await tf.setBackend(backend))) throw new Error(`test backend "${backend}" failed to initialise`);
await tf.ready();
