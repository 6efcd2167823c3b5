/**
 * The PyTorch reference of `pnpm bench` (bench/reference/di_bench.py): the same models and the same
 * Diff-Instruct iteration, timed by Debian's PyTorch in the same run, in turn with ours.
 *
 * PyTorch comes from Debian's `python3-torch`; only `/usr/bin/python3` imports it. When it is
 * missing, the bench installs it with apt-get (as root or through `sudo -n`) and says so; when that
 * is impossible, the rows carry `pytorchMs: null` and the reason is on stderr. BENCH_PYTORCH=0 skips it.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'reference', 'di_bench.py');

/** One run of the reference: which model and step kinds, at which batch, threads and length. */
export interface PytorchRun {
  model: 'toy' | 'unet';
  /** The UNet of `model: 'unet'` (default mnist-tiny). */
  preset?: 'mnist-tiny' | 'mnist-small';
  /** Which step kinds to time (default both). */
  what?: 'both' | 'teacher' | 'di';
  /** The Diff-Instruct generator step's loss (default 'ikl'). */
  objective?: 'ikl' | 'sid';
  batch: number;
  threads: number;
  /** A fixed number of timed steps… */
  steps?: number;
  /** …or as many as fill about this many seconds at the warm-up's pace (at least `minSteps`). */
  seconds?: number;
  minSteps?: number;
  /** Untimed steps first (default 3). */
  warmup?: number;
}

/** What di_bench.py prints; the ms of a step kind it did not time are null. */
export interface PytorchTiming {
  msPerDiIteration: number | null;
  msPerTeacherStep: number | null;
  teacherSteps: number | null;
  diSteps: number | null;
  objective: 'ikl' | 'sid';
  params: number;
  /** The reference process's own peak RSS. */
  peakRssMiB: number;
  threads: number;
  torch: string;
}

let ready: string | true | undefined;

/** true when PyTorch imports; otherwise why not (after one install attempt). */
function ensureTorch(): string | true {
  if (ready !== undefined) return ready;
  if (process.env.BENCH_PYTORCH === '0') return (ready = 'BENCH_PYTORCH=0');
  const imports = () => spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  if (imports()) return (ready = true);
  process.stderr.write("bench: PyTorch is missing; installing Debian's python3-torch for the reference (apt-get install python3-torch)…\n");
  const root = process.getuid?.() === 0;
  const r = spawnSync(root ? 'apt-get' : 'sudo', root ? ['install', '-y', '-qq', 'python3-torch'] : ['-n', 'apt-get', 'install', '-y', '-qq', 'python3-torch'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status === 0 && imports()) return (ready = true);
  return (ready = `PyTorch is not installed and apt-get could not install python3-torch (${(r.stderr ?? String(r.error)).trim().split('\n').at(-1)})`);
}

/** Runs the reference; null (and the reason on stderr, and in `why`) when PyTorch is unavailable or fails. */
export function runPytorch(run: PytorchRun, why?: { reason?: string }): PytorchTiming | null {
  const ok = ensureTorch();
  if (ok !== true) {
    process.stderr.write(`bench: no PyTorch reference: ${ok}\n`);
    if (why) why.reason = ok;
    return null;
  }
  const args = ['--model', run.model, '--batch', String(run.batch), '--threads', String(run.threads), '--warmup', String(run.warmup ?? 3)];
  if (run.preset !== undefined) args.push('--preset', run.preset);
  if (run.what !== undefined) args.push('--what', run.what);
  if (run.objective !== undefined) args.push('--objective', run.objective);
  if (run.steps !== undefined) args.push('--steps', String(run.steps));
  if (run.seconds !== undefined) args.push('--seconds', String(run.seconds));
  if (run.minSteps !== undefined) args.push('--min-steps', String(run.minSteps));
  const r = spawnSync(PYTHON, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) {
    const reason = `the PyTorch reference failed: ${(r.stderr ?? String(r.error)).trim().split('\n').at(-1)}`;
    process.stderr.write(`bench: ${reason}\n`);
    if (why) why.reason = reason;
    return null;
  }
  const j = JSON.parse(r.stdout) as Omit<PytorchTiming, 'threads'>;
  const ms = (v: number | null) => (v === null ? '–' : `${v.toFixed(1)} ms`);
  const name = run.model === 'unet' ? (run.preset ?? 'mnist-tiny') : run.model;
  process.stderr.write(
    `PyTorch ${name}, batch ${run.batch}, ${run.threads} thread(s): DI iteration (${j.objective}) ${ms(j.msPerDiIteration)}, teacher step ${ms(j.msPerTeacherStep)}, peak RSS ${j.peakRssMiB} MiB\n`,
  );
  return { ...j, threads: run.threads };
}

/** Times the reference with a fixed number of steps (3 warm-up steps first). */
export function pytorchTiming(model: 'toy' | 'unet', batch: number, threads: number, steps: number, opts: Pick<PytorchRun, 'what' | 'objective'> = {}): PytorchTiming | null {
  return runPytorch({ model, batch, threads, steps, warmup: 3, ...opts });
}

/** PyTorch on every core (as a user would run it) and on one thread (for information). */
export function pytorchBoth(model: 'toy' | 'unet', batch: number, steps: number, opts: Pick<PytorchRun, 'what' | 'objective'> = {}): { all: PytorchTiming | null; one: PytorchTiming | null } {
  const all = pytorchTiming(model, batch, cpus().length, steps, opts);
  const one = all === null ? null : pytorchTiming(model, batch, 1, steps, opts);
  return { all, one };
}

/** Peak resident memory of this process so far, in MiB. */
export function peakRssMiB(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}
