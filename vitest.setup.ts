/**
 * Every test file runs on one tfjs backend, chosen by DI_TEST_BACKEND (default `wasm`, the
 * default backend of the apps; `cpu` also works). Tolerances in tests come from `tol()` in
 * `@diff-instruct/sde/testing`, which depends on the backend.
 *
 * The native kernels (`@diff-instruct/native`) serve matMul and convolution when the addon is
 * built, as in the apps; DI_TEST_NATIVE=0 runs the tests on the backend's own kernels instead.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { enableNativeKernels } from '@diff-instruct/native';

const backend = process.env.DI_TEST_BACKEND ?? 'wasm';
if (!(await tf.setBackend(backend))) throw new Error(`test backend "${backend}" failed to initialise`);
await tf.ready();
// one thread: vitest runs two test files at once on two cores
if (process.env.DI_TEST_NATIVE !== '0') enableNativeKernels({ threads: 1 });
