import { UsageError } from './args.js';
import { selectBackend } from './backend.js';

/** Where a command writes: its output (stdout) and its progress and errors (stderr). */
export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** The tfjs backend in use, set by `main`. */
  backend?: string;
}

/**
 * The `main` of a one-command program such as `gan-refine` or `sds-nerf`: `help` / `--version`,
 * the tfjs backend (not for --help or --dry-run), then `run`; an error becomes one line
 * `<program>: message` on stderr and exit code 2 (usage) or 1. Never calls process.exit.
 */
export function singleCommandMain(
  program: string,
  version: string,
  help: string,
  run: (argv: readonly string[], io: Io) => Promise<number>,
): (argv: readonly string[], io: Io) => Promise<number> {
  return async (argv, io) => {
    const args = argv[0] === '--' ? argv.slice(1) : argv.slice();
    try {
      if (args[0] === 'help') {
        io.stdout(help);
        return 0;
      }
      if (args[0] === '--version') {
        io.stdout(`${version}\n`);
        return 0;
      }
      if (!['--help', '-h', '--dry-run'].some((f) => args.includes(f))) {
        const bi = args.findIndex((a) => a === '--backend' || a.startsWith('--backend='));
        const requested = bi < 0 ? undefined : args[bi]!.includes('=') ? args[bi]!.split('=')[1] : args[bi + 1];
        io.backend = await selectBackend(requested);
      }
      return await run(args, io);
    } catch (e) {
      const err = e as Error;
      io.stderr(`${program}: ${err.message}\n`);
      if (process.env.DI_DEBUG) io.stderr(`${err.stack}\n`);
      return err instanceof UsageError ? 2 : 1;
    }
  };
}
