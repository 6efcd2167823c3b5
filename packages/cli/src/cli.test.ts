import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { DIFF_INSTRUCT_DEFAULTS } from '@diff-instruct/trainer';

import {
  BEFORE_OBJECTIVES,
  OBJECTIVE_FLAGS,
  RUN_FLAGS,
  UsageError,
  applyObjectiveFlags,
  describeObjective,
  flagHelp,
  generatorName,
  mergeConfig,
  parseArgs,
  prepareOut,
  progressBar,
  requirePositive,
  resumeConfig,
  seedFor,
  singleCommandMain,
  startCommand,
  type FlagSpec,
  type Io,
} from './index.js';

const SPEC: Record<string, FlagSpec> = {
  steps: { type: 'int', help: 'steps' },
  lr: { type: 'number', help: 'learning rate' },
  name: { type: 'string', help: 'a name' },
  'dry-run': { type: 'boolean', help: 'print the config' },
  help: { type: 'boolean', help: 'show this help' },
};

const tmp = () => mkdtempSync(join(tmpdir(), 'di-cli-'));
const usage = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a UsageError');
};

describe('parseArgs', () => {
  it('reads --name value, --name=value and booleans into camelCase keys; a leading -- is dropped', () => {
    const { positionals, flags } = parseArgs(['--', '--steps', '3', '--lr=1e-3', '--name', 'x', '--dry-run', 'pos', '-h'], SPEC, 'prog');
    expect(flags).toEqual({ steps: 3, lr: 1e-3, name: 'x', dryRun: true });
    expect(positionals).toEqual(['pos', '--help']);
    expect(parseArgs(['--dry-run=false'], SPEC, 'prog').flags).toEqual({ dryRun: false });
  });

  it('names the flag at fault, and the command as typed', () => {
    expect(usage(() => parseArgs(['--stesp', '3'], SPEC, 'prog sub'))).toBe("unknown flag --stesp for 'prog sub' (did you mean --steps?); see prog sub --help");
    expect(usage(() => parseArgs(['-x'], SPEC, 'prog'))).toMatch(/unknown flag -x; flags are spelled --name \(see prog --help\)/);
    expect(usage(() => parseArgs(['--steps', '1.5'], SPEC, 'prog'))).toBe('--steps must be an integer, got "1.5"');
    expect(usage(() => parseArgs(['--lr', 'abc'], SPEC, 'prog'))).toBe('--lr must be a number, got "abc"');
    expect(usage(() => parseArgs(['--name'], SPEC, 'prog'))).toBe('--name needs a value (a name)');
    expect(usage(() => parseArgs(['--dry-run=yes'], SPEC, 'prog'))).toMatch(/--dry-run takes no value/);
  });

  it('flagHelp aligns the flags and their help', () => {
    const lines = flagHelp({ a: { type: 'int', help: 'A' }, 'long-flag': { type: 'boolean', help: 'B' } }).split('\n');
    expect(lines).toEqual(['  --a <int>    A', '  --long-flag  B']);
  });
});

describe('startCommand', () => {
  const resolve = (flags: Record<string, string | number | boolean>) => ({ steps: Number(flags.steps ?? 10) });

  it('answers --help and --dry-run, refuses positionals, else returns the resolved config', () => {
    let out = '';
    const stdout = (s: string) => (out += s);
    expect(startCommand(['--help'], SPEC, 'prog', 'HELP\n', resolve, stdout)).toBeNull();
    expect(out).toBe('HELP\n');
    out = '';
    expect(startCommand(['--steps', '4', '--dry-run'], SPEC, 'prog', 'HELP\n', resolve, stdout)).toBeNull();
    expect(JSON.parse(out)).toEqual({ steps: 4 });
    expect(usage(() => startCommand(['extra'], SPEC, 'prog', '', resolve, stdout))).toBe('prog takes no arguments, got "extra"');
    expect(startCommand(['--steps', '2'], SPEC, 'prog', '', resolve, stdout)).toEqual({ c: { steps: 2 }, flags: { steps: 2 }, resuming: false });
  });

  it('requirePositive names the flag', () => {
    expect(() => requirePositive([['--steps', 1]])).not.toThrow();
    expect(usage(() => requirePositive([['--steps', 1], ['--lr', 0]]))).toBe('--lr must be > 0, got 0');
  });

  it('RUN_FLAGS carry the flags of every training command', () => {
    expect(Object.keys(RUN_FLAGS)).toEqual(['seed', 'config', 'resume', 'dry-run', 'backend', 'quiet', 'help']);
  });
});

describe('the objective flags', () => {
  it('set and check the objective of a Diff-Instruct config, and name it', () => {
    const d = structuredClone(DIFF_INSTRUCT_DEFAULTS);
    const { flags } = parseArgs(['--objective', 'sid', '--sid-alpha', '1.1', '--weighting', 'dmd', '--lr-schedule', 'cosine'], OBJECTIVE_FLAGS, 'prog');
    applyObjectiveFlags(flags, d);
    expect(d).toMatchObject({ objective: 'sid', sidAlpha: 1.1, weighting: 'dmd', lrSchedule: 'cosine' });
    expect(generatorName(d)).toBe('SiD generator');
    expect(describeObjective(d)).toBe('SiD (α = 1.1), weighting dmd');
    expect(describeObjective({ ...d, objective: 'ikl', realDataWeight: 0.5 })).toBe('Diff-Instruct (IKL), weighting dmd, with the real-data term (weight 0.5)');
    expect(usage(() => applyObjectiveFlags({ objective: 'dmd' }, structuredClone(DIFF_INSTRUCT_DEFAULTS)))).toMatch(/--objective must be one of ikl, sid; got "dmd"/);
    expect(usage(() => applyObjectiveFlags({ realDataWeight: -1 }, structuredClone(DIFF_INSTRUCT_DEFAULTS)))).toMatch(/--real-data-weight must be a number ≥ 0/);
  });
});

describe('settings files and --resume', () => {
  const defaults = { out: 'runs/x', seed: 0, distill: { steps: 10, objective: 'sid', sidAlpha: 1.5 } };

  it('mergeConfig merges objects deeply and refuses unknown keys and wrong types', () => {
    expect(mergeConfig(defaults, { distill: { steps: 3 } }, 'f.json')).toEqual({ ...defaults, distill: { ...defaults.distill, steps: 3 } });
    expect(mergeConfig(defaults, undefined, 'f.json')).toBe(defaults);
    expect(usage(() => mergeConfig(defaults, { distill: { stpes: 3 } }, 'f.json'))).toMatch(/^f\.json\.distill: unknown key "stpes"; known keys: steps, objective, sidAlpha$/);
    expect(usage(() => mergeConfig(defaults, { seed: 'one' }, 'f.json'))).toBe('f.json.seed: expected a number, got "one"');
  });

  it('resumeConfig takes the stored settings, the values of settings added since, and only harmless flags', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ out: 'elsewhere', seed: 3, distill: { steps: 5 } }));
    const c = resumeConfig(defaults, dir, { resume: dir, quiet: true }, { distill: BEFORE_OBJECTIVES });
    expect(c).toEqual({ out: dir, seed: 3, distill: { steps: 5, objective: 'ikl', sidAlpha: 1.2 } });
    expect(usage(() => resumeConfig(defaults, dir, { resume: dir, lrSchedule: 'cosine' }))).toBe('--resume continues a run with its stored settings; drop --lr-schedule');
    expect(usage(() => resumeConfig(defaults, join(dir, 'none'), {}))).toMatch(/no run there \(config\.json is missing\)/);
  });

  it('prepareOut never writes into a folder that holds files, unless resuming', () => {
    const dir = tmp();
    const out = join(dir, 'run');
    expect(prepareOut(out, false)).toBe(out);
    expect(existsSync(out)).toBe(true);
    mkdirSync(join(out, 'x'));
    expect(usage(() => prepareOut(out, false))).toMatch(/already holds files; choose another --out, or continue that run with --resume/);
    expect(prepareOut(out, true)).toBe(out);
  });
});

describe('seeds, progress and the one-command main', () => {
  it('seedFor gives each named stream of a run its own fixed seed', () => {
    expect(seedFor(0, 'diff-instruct')).toBe(3453437979);
    expect(seedFor(7, 'teacher-sample-5')).toBe(191328419);
    expect(seedFor(0, 'a')).not.toBe(seedFor(1, 'a'));
  });

  it('progressBar prints a line every 10% off a terminal, and nothing when disabled', () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
    const bar = progressBar(stream);
    for (let step = 1; step <= 100; step++) bar({ phase: 'train', step, total: 100, itPerSec: 10, elapsedSec: step / 10, etaSec: 100 - step, losses: { loss: 0.5 } });
    expect(lines).toHaveLength(11);
    expect(lines.at(-1)).toMatch(/^\[train\] █{24} 100\/100 {2}10\.0 it\/s {2}ETA 0s {2}loss 0\.5000\n$/);
    const quiet: string[] = [];
    progressBar({ isTTY: false, write: (s: string) => quiet.push(s) } as unknown as NodeJS.WriteStream, false)({ phase: 'p', step: 1, total: 1, itPerSec: 1, elapsedSec: 1, etaSec: 0, losses: {} });
    expect(quiet).toEqual([]);
  });

  it('singleCommandMain: help, --version, and one line on stderr for an error (exit 2 for usage, 1 otherwise)', async () => {
    const main = singleCommandMain('prog', '1.2.3', 'HELP\n', async (argv) => {
      if (argv.includes('--usage')) throw new UsageError('bad flag');
      if (argv.includes('--fail')) throw new Error('broke');
      return 0;
    });
    const run = async (...argv: string[]) => {
      let out = '';
      let err = '';
      const io: Io = { stdout: (s) => (out += s), stderr: (s) => (err += s) };
      const code = await main(argv, io);
      return { code, out, err };
    };
    expect(await run('help')).toMatchObject({ code: 0, out: 'HELP\n' });
    expect(await run('--', '--version')).toMatchObject({ code: 0, out: '1.2.3\n' });
    // --dry-run: no backend is chosen, the command runs
    expect(await run('--dry-run')).toMatchObject({ code: 0, err: '' });
    expect(await run('--dry-run', '--usage')).toMatchObject({ code: 2, err: 'prog: bad flag\n' });
    expect(await run('--dry-run', '--fail')).toMatchObject({ code: 1, err: 'prog: broke\n' });
  });
});
