import { UsageError, backendFlag, reportError, selectBackend, type Io } from '@diff-instruct/cli';

import { runExport } from './export.js';
import { runGanCommand } from './gan.js';
import { runImages } from './images.js';
import { runImport } from './import.js';
import { runSample } from './sample.js';
import { runClassifierCommand, runTeacherCommand } from './teacher.js';
import { runToy } from './toy.js';

export const VERSION = '0.1.0';

export const HELP = `distill — data-free distillation of diffusion models (Diff-Instruct, Luo et al. 2023)

Usage: distill <command> [flags]

Commands:
  toy         distil a teacher of 2-D (or any-D) points into a one-step generator, with a report
  sample      draw from a saved generator
  export      write a saved generator as an ONNX model (opset 17, for onnxruntime)
  import      write a pretrained network (NVlabs/edm DDPM++) as a teacher file
  teacher     train an image teacher (UNet, EDM loss) on MNIST or Fashion-MNIST
  classifier  train the LeNet behind "FID (LeNet features)"
  images      distil an image teacher into a one-step generator, with FID/IS against the teacher
  gan         train a StyleGAN2 on MNIST or Fashion-MNIST (the GAN that gan-refine improves)

With no command, runs the quick demo (about 9 minutes on 2 cores): the committed MNIST teacher
distilled into a one-step generator, with a sample grid and the FID table against the teacher:
distill images --dataset mnist --quick --out runs/demo.

Flags common to every command: --help, --version, --backend tensorflow|wasm|cpu.
Examples:
  distill                           # quick demo (MNIST)
  distill toy --target ring8 --out runs/ring8   # 2-D toy, about 4 minutes
  distill images --dataset mnist    # the full MNIST run: 1,000 steps, 2,000 samples per row
  distill sample --generator runs/demo/generator.safetensors --num-samples 64 --out grid.png
  distill export --generator runs/demo/generator.safetensors --out mnist.onnx
  distill import --from edm edm-cifar10.safetensors --out teacher.safetensors
  distill toy --help
`;

/** The CLI as a function: returns the exit code; never calls process.exit. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  let args = argv[0] === '--' ? argv.slice(1) : argv.slice();
  try {
    if (args[0] === '--help' || args[0] === '-h' || args[0] === 'help') {
      io.stdout(HELP);
      return 0;
    }
    if (args[0] === '--version') {
      io.stdout(`${VERSION}\n`);
      return 0;
    }
    if (args.length === 0 || args[0]!.startsWith('--')) {
      // The quick demo: a short MNIST distillation from the committed teacher (any flags pass through).
      const hasOut = args.some((a) => a === '--out' || a.startsWith('--out=') || a.startsWith('--resume'));
      args = ['images', ...(args.some((a) => a.startsWith('--resume')) ? [] : ['--dataset', 'mnist', '--quick']), ...(hasOut ? [] : ['--out', 'runs/demo']), ...args];
    }
    const [command, ...rest] = args;
    const wantsHelp = rest.includes('--help') || rest.includes('-h');
    const commands: Record<string, (argv: readonly string[], io: Io) => Promise<number>> = {
      toy: runToy,
      sample: runSample,
      export: runExport,
      import: runImport,
      teacher: runTeacherCommand,
      classifier: runClassifierCommand,
      images: runImages,
      gan: runGanCommand,
    };
    const run = command === undefined ? undefined : commands[command];
    if (!run) throw new UsageError(`unknown command "${command}"; commands: ${Object.keys(commands).join(', ')} (see distill --help)`);
    // Printed by the command once its input is validated, so a bad input gets one line only.
    if (!wantsHelp && !rest.includes('--dry-run')) io.backend = await selectBackend(backendFlag(rest));
    return await run(rest, io);
  } catch (e) {
    return reportError('distill', e, io);
  }
}
