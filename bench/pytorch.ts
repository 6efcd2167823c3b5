/**
 * The PyTorch reference of `pnpm bench` (bench/reference/di_bench.py): the same models and the same
 * Diff-Instruct iteration, timed by Debian's PyTorch in the same run, in turn with ours.
 *
 * PyTorch comes from Debian's `python3-torch`; only `/usr/bin/python3` imports it. When it is
 * missing, the bench installs it with apt-get (as root or through `sudo -n`) and says so; when that
 * is impossible, the rows carry `pytorch: null` and the reason. BENCH_PYTORCH=0 skips it.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'reference', 'di_bench.py');

export interface PytorchTiming {
  msPerDiIteration: number;
  msPerTeacherStep: number;
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

/** Times the reference; null (and the reason on stderr) when PyTorch is unavailable or fails. */
export function pytorchTiming(model: 'toy' | 'unet', batch: number, threads: number, steps: number): PytorchTiming | null {
  const ok = ensureTorch();
  if (ok !== true) {
    process.stderr.write(`bench: no PyTorch reference: ${ok}\n`);
    return null;
  }
  const r = spawnSync(PYTHON, [SCRIPT, '--model', model, '--batch', String(batch), '--threads', String(threads), '--steps', String(steps), '--warmup', '3'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    process.stderr.write(`bench: the PyTorch reference failed: ${(r.stderr ?? '').trim().split('\n').at(-1)}\n`);
    return null;
  }
  const j = JSON.parse(r.stdout) as { msPerDiIteration: number; msPerTeacherStep: number; torch: string };
  process.stderr.write(`PyTorch ${model}, ${threads} thread(s): DI iteration ${j.msPerDiIteration.toFixed(1)} ms, teacher step ${j.msPerTeacherStep.toFixed(1)} ms\n`);
  return { msPerDiIteration: j.msPerDiIteration, msPerTeacherStep: j.msPerTeacherStep, threads, torch: j.torch };
}

/** PyTorch on every core (as a user would run it) and on one thread (for information). */
export function pytorchBoth(model: 'toy' | 'unet', batch: number, steps: number): { all: PytorchTiming | null; one: PytorchTiming | null } {
  const all = pytorchTiming(model, batch, cpus().length, steps);
  const one = all === null ? null : pytorchTiming(model, batch, 1, steps);
  return { all, one };
}

/** Peak resident memory of this process so far, in MiB. */
export function peakRssMiB(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}
