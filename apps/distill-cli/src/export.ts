import { existsSync, statSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';

import { UsageError, flagHelp, parseArgs, type FlagSpec, type Io } from '@diff-instruct/cli';
import { type GeneratorModel, ONNX_IR_VERSION, ONNX_OPSET, disposeModel, exportOnnx } from '@diff-instruct/models';
import { loadGenerator, writeFileAtomic } from '@diff-instruct/models/node';

export const EXPORT_FLAGS: Record<string, FlagSpec> = {
  generator: { type: 'string', help: 'the generator to export (.safetensors, e.g. runs/demo/generator.safetensors)' },
  format: { type: 'string', help: 'output format: onnx (default, the only one)' },
  out: { type: 'string', help: 'output file, e.g. model.onnx' },
  backend: { type: 'string', help: 'tfjs backend: tensorflow, wasm or cpu' },
  help: { type: 'boolean', help: 'show this help' },
};

export const EXPORT_HELP = `distill export — write a saved one-step generator as an ONNX model

Usage: distill export --generator FILE [--format onnx] --out model.onnx

${flagHelp(EXPORT_FLAGS)}

The model is ONNX opset ${ONNX_OPSET} (IR version ${ONNX_IR_VERSION}), standard operators only, for onnxruntime
(web, node, Python) or any ONNX runtime. Inputs: z [N, ...latent shape], standard normal, and for a
conditional generator label [N, classes], one-hot. Output: sample [N, ...sample shape]. Images are
NHWC in and out, as in TensorFlow.js, in [-1, 1] but not clipped. The generator's config, latent
shape, layout and value range are in the model's metadata. Supported: MLP generators and Tweedie
generators (distill toy, distill images); StyleGAN2 generators (distill gan) are not.

Examples:
  distill export --generator runs/demo/generator.safetensors --out mnist.onnx
  distill export --generator checkpoints/mnist/generator/generator.safetensors --format onnx --out model.onnx
  distill export --generator runs/ring8/generator.safetensors --out ring8.onnx

From code: exportOnnx(loadGenerator(path)) from @diff-instruct/models (loadGenerator from its ./node entry).
`;

const FORMATS = ['onnx'];

/** The dims of an input or output, as the model declares them: `[N, 32, 32, 1]`. */
const dims = (shape: readonly number[]) => `[N, ${shape.join(', ')}]`;

export async function runExport(argv: readonly string[], io: Io): Promise<number> {
  const { positionals, flags } = parseArgs(argv, EXPORT_FLAGS, 'distill export');
  if (flags.help || positionals.includes('--help')) {
    io.stdout(EXPORT_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`distill export takes no arguments, got "${positionals[0]}"`);
  if (flags.generator === undefined) throw new UsageError('distill export needs --generator FILE; see distill export --help');
  const format = String(flags.format ?? 'onnx');
  if (!FORMATS.includes(format)) throw new UsageError(`unknown --format "${format}"; formats: ${FORMATS.join(', ')}`);
  if (flags.out === undefined) throw new UsageError('distill export needs --out FILE (e.g. model.onnx)');
  const out = String(flags.out);
  if (extname(out).toLowerCase() !== '.onnx') throw new UsageError(`--out must end in .onnx, got "${out}"`);
  const dir = dirname(resolve(out));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`cannot write ${out}: directory ${dirname(out)} does not exist`);

  const path = String(flags.generator);
  let gen: GeneratorModel;
  try {
    gen = loadGenerator(path);
  } catch (e) {
    // A missing, corrupt or wrong file is a bad file, as in the other commands: one line, exit code 1.
    const msg = (e as Error).message;
    const hint = /holds a (denoiser|classifier), expected a generator/.test(msg)
      ? '; distill export takes a one-step generator (the generator.safetensors of distill toy or distill images), not a teacher'
      : '';
    throw new Error(`${msg}${hint}`, { cause: e });
  }
  let bytes: Uint8Array;
  try {
    bytes = exportOnnx(gen, { metadata: { source: path } });
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    disposeModel(gen);
  }
  writeFileAtomic(out, bytes);
  const inputs = [`z ${dims(gen.latentShape)}`, ...(gen.numClasses > 0 ? [`label [N, ${gen.numClasses}] (one-hot)`] : [])];
  const layout = gen.outputShape.length === 3 ? 'NHWC, in [-1, 1], not clipped' : 'points';
  io.stdout(
    `wrote ${out} (${(bytes.length / 1e6).toFixed(2)} MB, ONNX opset ${ONNX_OPSET}, IR ${ONNX_IR_VERSION}): ` +
      `inputs ${inputs.join(', ')}, float32; output sample ${dims(gen.outputShape)} (${layout})\n`,
  );
  return 0;
}
