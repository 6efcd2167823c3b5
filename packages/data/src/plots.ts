import { Canvas, TEXT_HEIGHT, textWidth, type Rgb } from './canvas.js';

/** Matplotlib's "tab10" colours: the default colour of series i is PALETTE[i % 10]. */
export const PALETTE: readonly Rgb[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

const INK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const FRAME: Rgb = [90, 90, 90];

export interface ScatterSeries {
  /** Row-major [n, dim]. Non-finite points are skipped. */
  points: Float32Array;
  dim: number;
  label: string;
  color?: Rgb;
}

export interface ScatterPlotOptions {
  /** One panel per series, side by side, on the same axes (e.g. target | teacher | generator). */
  series: ScatterSeries[];
  title?: string;
  /** Side of each square panel in pixels. Default 512. */
  size?: number;
  /**
   * [xmin, xmax, ymin, ymax]. Default: the 0.5–99.5 % quantile box of the first series (the
   * reference), grown to take in the other series' boxes but to at most twice the reference's
   * span (so a diverging sample cannot squash the picture), padded by 10 % and made square.
   * Points outside are counted in the panel's label.
   */
  range?: [number, number, number, number];
  /** Which two coordinates to plot. Default [0, 1]. */
  dims?: [number, number];
}

/** Scatter plots of point sets as one PNG, one panel per series. */
export function scatterPlot(opts: ScatterPlotOptions): Uint8Array {
  const { series } = opts;
  if (series.length === 0) throw new Error('scatterPlot: give at least one series');
  const size = Math.round(opts.size ?? 512);
  if (!(size >= 64)) throw new Error(`scatterPlot: size must be at least 64 px, got ${opts.size}`);
  const [dx, dy] = opts.dims ?? [0, 1];
  for (const s of series) {
    if (!Number.isInteger(s.dim) || s.dim < 1 || s.points.length % s.dim !== 0) {
      throw new Error(`scatterPlot: series "${s.label}" has ${s.points.length} values, not a multiple of dim ${s.dim}`);
    }
    const maxDim = Math.max(dx, dy);
    if (!(Number.isInteger(dx) && Number.isInteger(dy) && dx >= 0 && dy >= 0 && maxDim < s.dim)) {
      throw new Error(`scatterPlot: dims [${dx}, ${dy}] are out of range for series "${s.label}" of dimension ${s.dim}`);
    }
  }
  const [x0, x1, y0, y1] = opts.range ?? defaultRange(series, dx, dy);
  if (!(x1 > x0 && y1 > y0)) throw new Error(`scatterPlot: empty range [${x0}, ${x1}, ${y0}, ${y1}]`);

  const ts = size >= 384 ? 2 : 1; // title text scale
  const titleH = opts.title ? TEXT_HEIGHT * ts + 10 : 0;
  const canvas = new Canvas(size * series.length, titleH + size);
  if (opts.title) canvas.text((canvas.width - textWidth(opts.title, ts)) / 2, 6, opts.title, INK, ts);

  const xt = niceTicks(x0, x1, 5);
  const yt = niceTicks(y0, y1, 5);
  const labelH = TEXT_HEIGHT * ts + 10;
  const ml = Math.max(...yt.map((t) => textWidth(formatTick(t, yt)))) + 10;
  const mb = TEXT_HEIGHT + 10;
  const side = Math.max(16, Math.min(size - ml - 10, size - labelH - mb));

  series.forEach((s, k) => {
    const left = k * size + ml + Math.floor((size - ml - 10 - side) / 2);
    const top = titleH + labelH;
    const px = (x: number) => left + ((x - x0) / (x1 - x0)) * (side - 1);
    const py = (y: number) => top + side - 1 - ((y - y0) / (y1 - y0)) * (side - 1);
    for (const t of xt) {
      canvas.line(px(t), top, px(t), top + side - 1, GRID);
      canvas.line(px(t), top + side, px(t), top + side + 3, FRAME);
      const label = formatTick(t, xt);
      canvas.text(px(t) - textWidth(label) / 2, top + side + 5, label, INK);
    }
    for (const t of yt) {
      canvas.line(left, py(t), left + side - 1, py(t), GRID);
      canvas.line(left - 4, py(t), left - 1, py(t), FRAME);
      const label = formatTick(t, yt);
      canvas.text(left - 6 - textWidth(label), py(t) - 3, label, INK);
    }

    const color = s.color ?? PALETTE[k % PALETTE.length]!;
    const n = s.points.length / s.dim;
    const alpha = n <= 1000 ? 0.7 : n <= 10_000 ? 0.4 : 0.2;
    const dot = side >= 300 ? 2 : 1;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const x = s.points[i * s.dim + dx]!;
      const y = s.points[i * s.dim + dy]!;
      if (!(x >= x0 && x <= x1 && y >= y0 && y <= y1)) {
        outside++; // also counts NaN
        continue;
      }
      canvas.fillRect(Math.round(px(x)) - (dot >> 1), Math.round(py(y)) - (dot >> 1), dot, dot, color, alpha);
    }
    canvas.strokeRect(left, top, side - 1, side - 1, FRAME);
    const label = `${s.label} (n=${n}${outside ? `, ${outside} outside` : ''})`;
    canvas.text(left + (side - textWidth(label, ts)) / 2, titleH + 4, label, color, ts);
  });
  return canvas.toPng();
}

function defaultRange(series: ScatterSeries[], dx: number, dy: number): [number, number, number, number] {
  // Robust [lo, hi] of one coordinate: the 0.5 % and 99.5 % quantiles of the finite values.
  const robust = (s: ScatterSeries, d: number): [number, number] | undefined => {
    const v: number[] = [];
    for (let i = d; i < s.points.length; i += s.dim) if (Number.isFinite(s.points[i]!)) v.push(s.points[i]!);
    if (v.length === 0) return undefined;
    v.sort((a, b) => a - b);
    return [v[Math.floor(0.005 * (v.length - 1))]!, v[Math.ceil(0.995 * (v.length - 1))]!];
  };
  const box = (s: ScatterSeries) => {
    const x = robust(s, dx);
    const y = robust(s, dy);
    return x && y ? { cx: (x[0] + x[1]) / 2, cy: (y[0] + y[1]) / 2, half: Math.max(x[1] - x[0], y[1] - y[0]) / 2 } : undefined;
  };
  const ref = box(series[0]!) ?? series.map(box).find((b) => b) ?? { cx: 0, cy: 0, half: 1 };
  let [x0, x1, y0, y1] = [ref.cx - ref.half, ref.cx + ref.half, ref.cy - ref.half, ref.cy + ref.half];
  // Grow to take in the other series, but at most to twice the reference's span.
  const cap = 2 * Math.max(ref.half, 1e-6);
  for (const b of series.slice(1).map(box)) {
    if (!b) continue;
    x0 = Math.max(Math.min(x0, b.cx - b.half), ref.cx - cap);
    x1 = Math.min(Math.max(x1, b.cx + b.half), ref.cx + cap);
    y0 = Math.max(Math.min(y0, b.cy - b.half), ref.cy - cap);
    y1 = Math.min(Math.max(y1, b.cy + b.half), ref.cy + cap);
  }
  const half = Math.max(x1 - x0, y1 - y0, 1e-6) * 0.55; // 10 % padding, same span on both axes
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  return [cx - half, cx + half, cy - half, cy + half];
}

export interface LineSeries {
  x: number[];
  y: number[];
  label: string;
  color?: Rgb;
}

export interface LinePlotOptions {
  series: LineSeries[];
  title?: string;
  /** Logarithmic y axis (decades); non-positive values are skipped. */
  logY?: boolean;
  /** Pixels. Default 640×400. */
  width?: number;
  height?: number;
  xLabel?: string;
  yLabel?: string;
}

/** Line plot (e.g. loss curves) with axes, ticks, grid and a legend, as a PNG. Non-finite points break a line. */
export function linePlot(opts: LinePlotOptions): Uint8Array {
  const width = Math.round(opts.width ?? 640);
  const height = Math.round(opts.height ?? 400);
  if (!(width >= 120 && height >= 100)) throw new Error(`linePlot: size must be at least 120×100, got ${width}×${height}`);
  if (opts.series.length === 0) throw new Error('linePlot: give at least one series');
  const logY = opts.logY ?? false;
  const ok = (x: number, y: number) => Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0);
  let xmin = Infinity;
  let xmax = -Infinity;
  let ymin = Infinity;
  let ymax = -Infinity;
  for (const s of opts.series) {
    if (s.x.length !== s.y.length) {
      throw new Error(`linePlot: series "${s.label}" has ${s.x.length} x values but ${s.y.length} y values`);
    }
    s.x.forEach((x, i) => {
      const y = s.y[i]!;
      if (!ok(x, y)) return;
      xmin = Math.min(xmin, x);
      xmax = Math.max(xmax, x);
      ymin = Math.min(ymin, y);
      ymax = Math.max(ymax, y);
    });
  }
  if (!(xmin <= xmax)) [xmin, xmax, ymin, ymax] = [0, 1, logY ? 1 : 0, logY ? 10 : 1];
  if (xmax === xmin) [xmin, xmax] = [xmin - 1, xmax + 1];
  let yt: number[];
  const ty = logY ? Math.log10 : (v: number) => v;
  if (logY) {
    let lo = Math.floor(Math.log10(ymin));
    let hi = Math.ceil(Math.log10(ymax));
    if (hi === lo) hi++;
    const every = Math.ceil((hi - lo) / 8);
    lo = Math.floor(lo / every) * every;
    hi = Math.ceil(hi / every) * every;
    yt = [];
    for (let e = lo; e <= hi; e += every) yt.push(10 ** e);
    [ymin, ymax] = [10 ** lo, 10 ** hi];
  } else {
    if (ymax === ymin) [ymin, ymax] = [ymin - 1, ymax + 1];
    const pad = 0.05 * (ymax - ymin);
    [ymin, ymax] = [ymin - pad, ymax + pad];
    yt = niceTicks(ymin, ymax, 6);
  }
  const xt = niceTicks(xmin, xmax, 7);

  const canvas = new Canvas(width, height);
  let top = 6;
  if (opts.title) {
    canvas.text((width - textWidth(opts.title, 2)) / 2, top, opts.title, INK, 2);
    top += TEXT_HEIGHT * 2 + 8;
  }
  const ml = Math.max(...yt.map((t) => textWidth(formatTick(t, yt, logY)))) + 10;
  if (opts.yLabel) {
    canvas.text(Math.max(2, ml - 10), top, opts.yLabel, INK);
    top += TEXT_HEIGHT + 6;
  }
  top += 4;
  const mb = TEXT_HEIGHT + 10 + (opts.xLabel ? TEXT_HEIGHT + 6 : 0);
  const left = ml;
  const w = width - ml - 14;
  const h = height - top - mb;
  if (w < 20 || h < 20) throw new Error(`linePlot: ${width}×${height} is too small for the labels`);
  const px = (x: number) => left + ((x - xmin) / (xmax - xmin)) * (w - 1);
  const py = (y: number) => top + h - 1 - ((ty(y) - ty(ymin)) / (ty(ymax) - ty(ymin))) * (h - 1);

  for (const t of xt) {
    canvas.line(px(t), top, px(t), top + h - 1, GRID);
    canvas.line(px(t), top + h, px(t), top + h + 3, FRAME);
    const label = formatTick(t, xt);
    canvas.text(Math.min(width - textWidth(label) - 1, px(t) - textWidth(label) / 2), top + h + 5, label, INK);
  }
  for (const t of yt) {
    canvas.line(left, py(t), left + w - 1, py(t), GRID);
    canvas.line(left - 4, py(t), left - 1, py(t), FRAME);
    const label = formatTick(t, yt, logY);
    canvas.text(left - 6 - textWidth(label), py(t) - 3, label, INK);
  }
  if (opts.xLabel) canvas.text(left + (w - textWidth(opts.xLabel)) / 2, height - TEXT_HEIGHT - 3, opts.xLabel, INK);

  opts.series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length]!;
    let prev: [number, number] | undefined;
    s.x.forEach((x, i) => {
      const y = s.y[i]!;
      if (!ok(x, y)) {
        prev = undefined;
        return;
      }
      const p: [number, number] = [px(x), py(y)];
      if (prev) canvas.line(prev[0], prev[1], p[0], p[1], color);
      else canvas.fillRect(p[0] - 1, p[1] - 1, 2, 2, color);
      prev = p;
    });
  });
  canvas.strokeRect(left, top, w - 1, h - 1, FRAME);

  // Legend, top right inside the plot.
  const lw = Math.max(...opts.series.map((s) => textWidth(s.label))) + 26;
  const lh = opts.series.length * 12 + 6;
  const lx = left + w - lw - 6;
  const ly = top + 6;
  canvas.fillRect(lx, ly, lw, lh, [255, 255, 255], 0.85);
  canvas.strokeRect(lx, ly, lw, lh, GRID);
  opts.series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length]!;
    const y = ly + 5 + k * 12;
    canvas.fillRect(lx + 5, y + 2, 12, 3, color);
    canvas.text(lx + 21, y, s.label, INK);
  });
  return canvas.toPng();
}

/** About `target` round-valued ticks (1, 2 or 5 × 10^k apart) within [lo, hi]. */
export function niceTicks(lo: number, hi: number, target: number): number[] {
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) {
    out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return out;
}

/** A tick label with just enough decimals for the tick spacing; powers of ten as 1e-3 on log axes. */
export function formatTick(v: number, ticks: number[], log = false): string {
  if (log) {
    const e = Math.round(Math.log10(v));
    return e >= -2 && e <= 3 ? String(10 ** e >= 1 ? 10 ** e : Number((10 ** e).toFixed(-e))) : `1e${e}`;
  }
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : Math.abs(v) || 1;
  const big = Math.max(...ticks.map(Math.abs));
  if (big >= 1e5 || (big < 1e-3 && big > 0)) return v === 0 ? '0' : v.toExponential(Math.max(0, Math.round(Math.log10(big / step))));
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(decimals);
}
