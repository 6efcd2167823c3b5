import { GENERATOR_OBJECTIVES, type DiffInstructConfig } from '@diff-instruct/trainer';

/** A flag's type: what its value parses as. */
export type FlagType = 'string' | 'int' | 'number' | 'boolean';

export interface FlagSpec {
  type: FlagType;
  help: string;
  /** Config key the flag sets (default: the flag name in camelCase). */
  key?: string;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface Parsed {
  positionals: string[];
  flags: Record<string, string | number | boolean>;
}

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Strict flag parsing: `--name value`, `--name=value`, `--flag` for booleans. An unknown flag or a
 * malformed value is a UsageError that names it. A leading `--` (which pnpm passes through) is
 * ignored. `command` is what the user typed to get here, e.g. `distill images` or `gan-refine`.
 */
export function parseArgs(argv: readonly string[], spec: Record<string, FlagSpec>, command: string): Parsed {
  const args = argv[0] === '--' ? argv.slice(1) : argv.slice();
  const positionals: string[] = [];
  const flags: Record<string, string | number | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') continue;
    if (!a.startsWith('--')) {
      if (a.startsWith('-') && a.length > 1 && a !== '-h') {
        throw new UsageError(`unknown flag ${a}; flags are spelled --name (see ${command} --help)`);
      }
      positionals.push(a === '-h' ? '--help' : a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    const s = spec[name];
    if (!s) {
      const near = Object.keys(spec).find((k) => k.startsWith(name.slice(0, 3)));
      throw new UsageError(
        `unknown flag --${name} for '${command}'${near ? ` (did you mean --${near}?)` : ''}; see ${command} --help`,
      );
    }
    const key = s.key ?? camel(name);
    if (s.type === 'boolean') {
      if (eq >= 0) {
        const v = a.slice(eq + 1);
        if (v !== 'true' && v !== 'false') throw new UsageError(`--${name} takes no value, or =true / =false`);
        flags[key] = v === 'true';
      } else flags[key] = true;
      continue;
    }
    let raw: string | undefined;
    if (eq >= 0) raw = a.slice(eq + 1);
    else {
      raw = args[i + 1];
      i += 1;
    }
    if (raw === undefined || (raw.startsWith('--') && eq < 0)) throw new UsageError(`--${name} needs a value (${s.help})`);
    if (s.type === 'string') flags[key] = raw;
    else {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${name} must be a number, got "${raw}"`);
      if (s.type === 'int' && !Number.isInteger(v)) throw new UsageError(`--${name} must be an integer, got "${raw}"`);
      flags[key] = v;
    }
  }
  return { positionals, flags };
}

/** The help text of a command's flags, aligned. */
export function flagHelp(spec: Record<string, FlagSpec>): string {
  const rows = Object.entries(spec).map(([name, s]) => [`--${name}${s.type === 'boolean' ? '' : ` <${s.type}>`}`, s.help]);
  const w = Math.max(...rows.map((r) => r[0]!.length));
  return rows.map(([a, b]) => `  ${a!.padEnd(w)}  ${b}`).join('\n');
}

/** The flags of every training command: seeding, settings files, resume, and output control. */
export const RUN_FLAGS: Record<string, FlagSpec> = {
  seed: { type: 'int', help: 'seed of every random draw (default 0)' },
  config: { type: 'string', help: 'JSON file of settings; flags override it' },
  resume: { type: 'string', help: 'continue the run whose --out was DIR, exactly where it stopped' },
  'dry-run': { type: 'boolean', help: 'print the resolved config and exit' },
  backend: { type: 'string', help: 'tfjs backend: tensorflow, wasm or cpu (default: best available)' },
  quiet: { type: 'boolean', help: 'no progress bar' },
  help: { type: 'boolean', help: 'show this help' },
};

/**
 * The common start of a run command: parse the flags, answer --help, refuse positionals, resolve
 * the config, answer --dry-run (the resolved config as JSON). Null when the command is already done.
 * `name` is the command as typed, e.g. `distill images` or `gan-refine`.
 */
export function startCommand<C>(
  argv: readonly string[],
  spec: Record<string, FlagSpec>,
  name: string,
  help: string,
  resolve: (flags: Parsed['flags']) => C,
  stdout: (s: string) => void,
): { c: C; flags: Parsed['flags']; resuming: boolean } | null {
  const { positionals, flags } = parseArgs(argv, spec, name);
  if (flags.help || positionals.includes('--help')) {
    stdout(help);
    return null;
  }
  if (positionals.length > 0) throw new UsageError(`${name} takes no arguments, got "${positionals[0]}"`);
  const c = resolve(flags);
  if (flags.dryRun) {
    stdout(`${JSON.stringify(c, null, 2)}\n`);
    return null;
  }
  return { c, flags, resuming: flags.resume !== undefined };
}

/** Refuses a setting that must be positive, naming its flag: `requirePositive([['--steps', c.steps]])`. */
export function requirePositive(settings: readonly (readonly [flag: string, value: number])[]): void {
  for (const [flag, v] of settings) if (!(v > 0)) throw new UsageError(`${flag} must be > 0, got ${v}`);
}

const WEIGHTINGS = ['sigma2', 'dmd', 'uniform', 'edm'] as const;

/** The generator objective of Algorithm 1 and its schedule: the same flags on every distillation command. */
export const OBJECTIVE_FLAGS: Record<string, FlagSpec> = {
  objective: { type: 'string', help: "generator objective: 'ikl' (Diff-Instruct's IKL) or 'sid' (Score identity Distillation)" },
  'sid-alpha': { type: 'number', help: "SiD's α, with --objective sid (default 1.2)" },
  weighting: { type: 'string', help: "weighting: 'sigma2' (official), 'dmd' (SiD's own), 'uniform', 'edm'" },
  'lr-schedule': { type: 'string', help: 'constant, or cosine (both rates decay to 0 over the run)' },
  'real-data-weight': { type: 'number', help: "weight of DMD2's real-data term (a GAN head on the fake score); 0 = data-free (default)" },
};

/** Applies `OBJECTIVE_FLAGS` to a Diff-Instruct config and checks the result, naming the flag at fault. */
export function applyObjectiveFlags(flags: Parsed['flags'], d: DiffInstructConfig): void {
  if (flags.objective !== undefined) d.objective = String(flags.objective) as DiffInstructConfig['objective'];
  if (flags.sidAlpha !== undefined) d.sidAlpha = Number(flags.sidAlpha);
  if (flags.weighting !== undefined) d.weighting = String(flags.weighting) as DiffInstructConfig['weighting'];
  if (flags.lrSchedule !== undefined) d.lrSchedule = String(flags.lrSchedule) as DiffInstructConfig['lrSchedule'];
  if (flags.realDataWeight !== undefined) d.realDataWeight = Number(flags.realDataWeight);
  if (!(Number.isFinite(d.realDataWeight) && d.realDataWeight >= 0)) {
    throw new UsageError(`--real-data-weight must be a number ≥ 0 (0 keeps the method data-free), got ${d.realDataWeight}`);
  }
  if (!['constant', 'cosine'].includes(d.lrSchedule)) throw new UsageError(`--lr-schedule must be constant or cosine, got "${d.lrSchedule}"`);
  if (!GENERATOR_OBJECTIVES.includes(d.objective)) {
    throw new UsageError(`--objective must be one of ${GENERATOR_OBJECTIVES.join(', ')}; got "${d.objective}"`);
  }
  if (!Number.isFinite(d.sidAlpha)) throw new UsageError(`--sid-alpha must be a finite number, got ${d.sidAlpha}`);
  if (!(WEIGHTINGS as readonly string[]).includes(d.weighting)) {
    throw new UsageError(`--weighting must be one of ${WEIGHTINGS.join(', ')}; got "${d.weighting}"`);
  }
}

/** The generator's name in a report: "SiD generator" or "Diff-Instruct generator". */
export function generatorName(d: DiffInstructConfig): string {
  return `${d.objective === 'sid' ? 'SiD' : 'Diff-Instruct'} generator`;
}

/** How a report names the objective of a run: "Diff-Instruct (IKL)" or "SiD (α = 1.2)", with its weighting. */
export function describeObjective(d: DiffInstructConfig): string {
  const real = d.realDataWeight > 0 ? `, with the real-data term (weight ${d.realDataWeight})` : '';
  return `${d.objective === 'sid' ? `SiD (α = ${d.sidAlpha})` : 'Diff-Instruct (IKL)'}, weighting ${d.weighting}${real}`;
}
