import { UsageError, selectBackend, type Io } from '@diff-instruct/distill-cli';

import { REFINE_HELP, runRefine } from './refine.js';

export const VERSION = '0.1.0';

/** The CLI as a function: returns the exit code; never calls process.exit. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const args = argv[0] === '--' ? argv.slice(1) : argv.slice();
  try {
    if (args[0] === 'help') {
      io.stdout(REFINE_HELP);
      return 0;
    }
    if (args[0] === '--version') {
      io.stdout(`${VERSION}\n`);
      return 0;
    }
    if (!['--help', '-h', '--dry-run'].some((f) => args.includes(f))) {
      const bi = args.findIndex((a) => a === '--backend' || a.startsWith('--backend='));
      const requested = bi < 0 ? undefined : args[bi]!.includes('=') ? args[bi]!.split('=')[1] : args[bi + 1];
      io.backend = await selectBackend(requested);
    }
    return await runRefine(args, io);
  } catch (e) {
    const err = e as Error;
    io.stderr(`gan-refine: ${err.message}\n`);
    if (process.env.DI_DEBUG) io.stderr(`${err.stack}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}
