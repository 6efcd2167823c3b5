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
      if (!['--help', '-h', '--dry-run'].some((f) => args.includes(f))) io.backend = await selectBackend(backendFlag(args));
      return await run(args, io);
    } catch (e) {
      return reportError(program, e, io);
    }
  };
}

/** The value of `--backend NAME` or `--backend=NAME` in a command line, if it has one. */
export function backendFlag(args: readonly string[]): string | undefined {
  const i = args.findIndex((a) => a === '--backend' || a.startsWith('--backend='));
  return i < 0 ? undefined : args[i]!.includes('=') ? args[i]!.split('=')[1] : args[i + 1];
}

/**
 * An error as a program reports it: one line `<program>: message` on stderr (the stack too when
 * DI_DEBUG is set), and the exit code, 2 for a usage error and 1 otherwise.
 */
export function reportError(program: string, e: unknown, io: Io): number {
  const err = e as Error;
  io.stderr(`${program}: ${err.message}\n`);
  if (process.env.DI_DEBUG) io.stderr(`${err.stack}\n`);
  return err instanceof UsageError ? 2 : 1;
}
