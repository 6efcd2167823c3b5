/**
 * Draws the scaling rows of `BENCH_ONLY=scaling pnpm -s bench` (bench/run.ts) and prints their table:
 *
 *     node --conditions=@diff-instruct/source --import tsx bench/scaling-plot.ts <rows.json> [out.png]
 *
 * - out.png (default docs/bench-scaling.png): images/s against the batch size (log2 axis, log y),
 *   one line per preset, step kind and implementation (ours / PyTorch); rows the memory guard
 *   refused and failed rows are left out of the plot;
 * - stdout: a markdown table of every row (ms per step, images/s, peak RSS, ours against PyTorch),
 *   then, per line, how much each doubling of the batch gains in images/s, for the write-up.
 *
 * The JSON may carry other groups' rows too (only those with `group: 'scaling'` are read) and a line
 * of pnpm's banner before it.
 */
import { readFileSync, writeFileSync } from 'node:fs';

import { linePlot, type Rgb } from '@diff-instruct/data';

interface Row {
  group?: string;
  impl: 'ours' | 'pytorch';
  preset: string;
  what: string;
  batch: number | null;
  batchKind: string;
  maxBatch?: number | null;
  ms?: number | null;
  imagesPerS?: number | null;
  peakRssMiB?: number;
  refused?: string;
  error?: string;
}

const [input, out = 'docs/bench-scaling.png'] = process.argv.slice(2);
if (!input) throw new Error('usage: bench/scaling-plot.ts <rows.json from BENCH_ONLY=scaling pnpm -s bench> [out.png]');
const text = readFileSync(input, 'utf8');
const rows = (JSON.parse(text.slice(text.indexOf('['))) as Row[]).filter((r) => r.group === 'scaling');
if (rows.length === 0) throw new Error(`${input} holds no scaling rows (group: 'scaling'); make it with BENCH_ONLY=scaling pnpm -s bench`);

const PRESETS = ['mnist-tiny', 'mnist-small'];
const WHATS = ['teacher-step', 'di-iteration'];
const WHAT_NAME: Record<string, string> = { 'teacher-step': 'teacher step', 'di-iteration': 'DI iteration' };
const IMPL_NAME = { ours: 'ours', pytorch: 'PyTorch' };
// One hue per preset and step kind; PyTorch in a lighter shade of it.
const HUES: Record<string, Rgb> = {
  'mnist-tiny teacher-step': [31, 119, 180],
  'mnist-tiny di-iteration': [214, 39, 40],
  'mnist-small teacher-step': [44, 160, 44],
  'mnist-small di-iteration': [148, 103, 189],
};
const lighter = (c: Rgb): Rgb => c.map((v) => Math.round(v + (255 - v) * 0.45)) as Rgb;
const timed = (r: Row) => typeof r.ms === 'number' && typeof r.imagesPerS === 'number' && r.batch !== null && r.refused === undefined;

const series = [];
const lines: Array<{ label: string; points: Row[] }> = [];
for (const preset of PRESETS) {
  for (const what of WHATS) {
    for (const impl of ['ours', 'pytorch'] as const) {
      const points = rows.filter((r) => r.preset === preset && r.what === what && r.impl === impl && timed(r)).sort((a, b) => a.batch! - b.batch!);
      if (points.length === 0) continue;
      const label = `${preset} ${WHAT_NAME[what]}, ${IMPL_NAME[impl]}`;
      const hue = HUES[`${preset} ${what}`]!;
      series.push({ label, x: points.map((r) => Math.log2(r.batch!)), y: points.map((r) => r.imagesPerS!), color: impl === 'ours' ? hue : lighter(hue) });
      lines.push({ label, points });
    }
  }
}
writeFileSync(
  out,
  linePlot({
    series,
    title: 'MNIST UNets: images/s against batch size',
    logY: true,
    width: 900,
    height: 560,
    xLabel: 'log2 of the batch size (4 = 16, 5 = 32, 6 = 64, 7 = 128, 8 = 256); the last point of each line: the largest batch the memory guard accepts',
    yLabel: 'images per second (log scale)',
  }),
);
process.stderr.write(`scaling-plot: ${out}: ${series.length} lines from ${rows.length} rows\n`);

// The table: one line per preset, step kind and batch, ours and PyTorch side by side.
const fmt = (v: number | null | undefined, d = 1) => (typeof v === 'number' ? v.toFixed(d) : '–');
const guardNeed = (msg: string) => /needs an estimated ([\d.]+ [KMG]iB)/.exec(msg)?.[1];
const cell = (r: Row | undefined): [string, string, string] => {
  if (!r) return ['–', '–', '–'];
  if (r.refused !== undefined) {
    const need = guardNeed(r.refused);
    return [`refused by the memory guard${need ? ` (needs ${need})` : ''}`, '–', r.peakRssMiB !== undefined ? `${r.peakRssMiB} MiB` : '–'];
  }
  if (r.error !== undefined) return [`failed: ${r.error}`, '–', '–'];
  return [fmt(r.ms), fmt(r.imagesPerS), r.peakRssMiB !== undefined ? `${r.peakRssMiB} MiB` : '–'];
};
const table = [
  '| preset | step | batch | ours (ms) | ours (images/s) | ours peak RSS | PyTorch (ms) | PyTorch (images/s) | PyTorch peak RSS | ratio |',
  '|---|---|---|---|---|---|---|---|---|---|',
];
for (const preset of PRESETS) {
  for (const what of WHATS) {
    const mine = rows.filter((r) => r.preset === preset && r.what === what);
    const batches = [...new Set(mine.map((r) => r.batch).filter((b): b is number => b !== null))].sort((a, b) => a - b);
    for (const b of batches) {
      const o = mine.find((r) => r.impl === 'ours' && r.batch === b);
      const p = mine.find((r) => r.impl === 'pytorch' && r.batch === b);
      const kind = (o ?? p)!.batchKind;
      const batch = kind === 'max' ? `${b} (largest the guard accepts)` : kind === 'over-max' ? `${b} (over it)` : String(b);
      const ratio = o && p && timed(o) && timed(p) ? fmt(o.ms! / p.ms!, 2) : '–';
      table.push(`| ${preset} | ${WHAT_NAME[what]} | ${batch} | ${cell(o).join(' | ')} | ${cell(p).join(' | ')} | ${ratio} |`);
    }
  }
}
console.log(table.join('\n'));
console.log('\nimages/s gained per doubling of the batch (from one point to the next, scaled to a doubling):');
for (const { label, points } of lines) {
  const steps = points.slice(1).map((r, i) => {
    const prev = points[i]!;
    const gain = (r.imagesPerS! / prev.imagesPerS!) ** (1 / Math.log2(r.batch! / prev.batch!)) - 1;
    return `${prev.batch}→${r.batch}: ${gain >= 0 ? '+' : ''}${(100 * gain).toFixed(0)} %`;
  });
  console.log(`- ${label}: ${steps.join(', ')}`);
}
