/**
 * The "Distil live" tab: Diff-Instruct runs in the page on a 2-D target (ring8) from the committed
 * toy teacher. The generator's samples are drawn beside the target every 10 steps, with a progress
 * bar, the energy distance above the floor and the fake score's loss. Start, Stop (at the next
 * step), Continue (exactly from there) and Restart (from the Tweedie initialisation).
 *
 * Its state is published on `window.__distil` for the browser test (scripts/browser-test.ts).
 */
import { loadDenoiser, type DenoiserModel } from '@diff-instruct/models';

import { LiveDistillation, LIVE_CONFIG, INIT_SIGMA, type LiveUpdate } from './distil-run.js';
import { PageError, fetchBytes, parseBytes } from './fetch.js';

/** What the tab publishes on `window.__distil`. */
export interface DistilStatus {
  step: number;
  total: number;
  state: 'loading' | 'idle' | 'running' | 'stopped' | 'done' | 'error';
  running: boolean;
  /** Every measurement of the run: the energy distance to the target minus the floor. */
  energyAboveFloor: Array<{ step: number; value: number }>;
  /** Seconds spent running (stops excluded), and when the energy distance first fell below 0.05. */
  elapsedSec: number;
  below005: { step: number; sec: number } | null;
  backend: string;
  error: string | null;
}

declare global {
  interface Window {
    __distil?: DistilStatus;
  }
}

/** Every built-in 2-D target lies within [-4, 4]² (see @diff-instruct/data). */
const VIEW = 5;
const SIZE = 360;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

function canvas(id: string): HTMLCanvasElement {
  const c = el('canvas', { id, width: SIZE, height: SIZE });
  c.style.background = '#fff';
  c.style.border = '1px solid #d5dae0';
  c.style.imageRendering = 'auto';
  return c;
}

function figure(c: HTMLCanvasElement, caption: HTMLElement): HTMLElement {
  const f = el('figure', {}, c, caption);
  f.style.margin = '0';
  caption.style.fontSize = '0.85rem';
  caption.style.color = '#5b6470';
  return f;
}

/** A scatter plot of [n, 2] points on the fixed view. */
function scatter(c: HTMLCanvasElement, points: Float32Array, color: string): void {
  const g = c.getContext('2d')!;
  g.clearRect(0, 0, c.width, c.height);
  g.strokeStyle = '#eef0f3';
  g.beginPath();
  g.moveTo(c.width / 2, 0);
  g.lineTo(c.width / 2, c.height);
  g.moveTo(0, c.height / 2);
  g.lineTo(c.width, c.height / 2);
  g.stroke();
  g.fillStyle = color;
  const s = c.width / (2 * VIEW);
  for (let i = 0; i + 1 < points.length; i += 2) {
    const x = (points[i]! + VIEW) * s;
    const y = (VIEW - points[i + 1]!) * s;
    g.fillRect(x - 1.25, y - 1.25, 2.5, 2.5);
  }
}

/**
 * Two panels over the steps: the energy distance above the floor (log scale, with the 0.05 line)
 * and the fake score's DSM loss.
 */
function curves(c: HTMLCanvasElement, total: number, energy: Array<{ step: number; value: number }>, loss: Array<{ step: number; value: number }>): void {
  const g = c.getContext('2d')!;
  g.clearRect(0, 0, c.width, c.height);
  const pad = { l: 44, r: 8, t: 18, b: 22 };
  const h = (c.height - pad.t - pad.b - 24) / 2;
  const w = c.width - pad.l - pad.r;
  const xOf = (step: number) => pad.l + (w * step) / total;
  g.font = '11px system-ui, sans-serif';
  const panel = (top: number, title: string, series: Array<{ step: number; value: number }>, color: string, yOf: (v: number) => number, ticks: Array<[number, string]>) => {
    g.fillStyle = '#1b1f24';
    g.fillText(title, pad.l, top - 5);
    g.strokeStyle = '#d5dae0';
    g.strokeRect(pad.l, top, w, h);
    g.fillStyle = '#5b6470';
    for (const [v, label] of ticks) {
      const y = top + yOf(v) * h;
      g.fillText(label, 2, y + 4);
      g.beginPath();
      g.moveTo(pad.l, y);
      g.lineTo(pad.l + w, y);
      g.strokeStyle = '#eef0f3';
      g.stroke();
    }
    g.strokeStyle = color;
    g.lineWidth = 1.5;
    g.beginPath();
    series.forEach((p, i) => {
      const x = xOf(p.step);
      const y = top + Math.min(1, Math.max(0, yOf(p.value))) * h;
      if (i === 0) g.moveTo(x, y);
      else g.lineTo(x, y);
    });
    g.stroke();
    g.lineWidth = 1;
  };
  // Energy above the floor, log10 from 1e-3 (bottom) to 1 (top); below 1e-3 is noise (the floor's spread).
  const lo = -3;
  const logY = (v: number) => 1 - (Math.log10(Math.max(v, 1e-3)) - lo) / -lo;
  panel(pad.t, 'energy distance above the floor (log)', energy, '#2456c9', logY, [
    [1, '1'],
    [0.1, '0.1'],
    [0.05, '0.05'],
    [0.01, '0.01'],
    [0.001, '0.001'],
  ]);
  const maxLoss = Math.max(1e-6, ...loss.map((p) => p.value));
  const linY = (v: number) => 1 - v / (1.1 * maxLoss);
  panel(pad.t + h + 24 + pad.t / 2, "fake score's DSM loss", loss, '#c2410c', linY, [
    [0, '0'],
    [maxLoss, maxLoss.toPrecision(2)],
  ]);
  g.fillStyle = '#5b6470';
  g.fillText(`step 0 … ${total}`, pad.l, c.height - 4);
}

export function mountDistil(root: HTMLElement, opts: { teacherUrl: string; backend: string }): void {
  const cfg = LIVE_CONFIG;
  const status: DistilStatus = {
    step: 0,
    total: cfg.steps,
    state: 'loading',
    running: false,
    energyAboveFloor: [],
    elapsedSec: 0,
    below005: null,
    backend: opts.backend,
    error: null,
  };
  window.__distil = status;

  const button = (id: string, text: string) => el('button', { type: 'button', id, textContent: text, disabled: true });
  const start = button('distil-start', 'Start');
  const stop = button('distil-stop', 'Stop');
  const cont = button('distil-continue', 'Continue');
  const restart = button('distil-restart', 'Restart');
  for (const [b, id] of [[start, 'distil-start'], [stop, 'distil-stop'], [cont, 'distil-continue'], [restart, 'distil-restart']] as const) b.dataset.testid = id;
  const progress = el('progress', { id: 'distil-progress', max: cfg.steps, value: 0 });
  progress.style.width = '240px';
  const line = el('span', { id: 'distil-status', className: 'timing', textContent: 'loading the toy teacher…' });
  const error = el('p', { id: 'distil-error', className: 'error', hidden: true });
  error.style.background = '#fdecea';
  error.style.color = '#8a1c12';
  error.style.padding = '10px 12px';
  error.style.borderRadius = '6px';
  const targetCanvas = canvas('distil-target');
  const generatorCanvas = canvas('distil-generator');
  const curveCanvas = canvas('distil-curve');
  const generatorCaption = el('figcaption', { textContent: 'one-step generator' });
  const plots = el(
    'div',
    {},
    figure(targetCanvas, el('figcaption', { textContent: 'target: ring8, 1,000 points' })),
    figure(generatorCanvas, generatorCaption),
    figure(curveCanvas, el('figcaption', { textContent: 'measured every 10 steps on 1,000 samples' })),
  );
  plots.style.display = 'grid';
  plots.style.gridTemplateColumns = 'repeat(auto-fit, minmax(260px, 1fr))';
  plots.style.gap = '16px';
  const row = el('div', { className: 'row' }, start, stop, cont, restart, progress, line);
  row.style.flexWrap = 'wrap';
  root.append(
    el(
      'p',
      { className: 'sub' },
      `Diff-Instruct (Algorithm 1, SiD's generator loss) in this page on the ${opts.backend} backend: a one-step generator, ` +
        `initialised from the committed toy teacher through Tweedie at σ* = ${INIT_SIGMA}, learns a ring of 8 Gaussians ` +
        `from the teacher alone, with no data. ${cfg.steps} steps at batch ${cfg.batchSize}, lr ${cfg.lrGenerator} with cosine decay.`,
    ),
    row,
    error,
    plots,
  );

  const fail = (e: unknown) => {
    const message = e instanceof PageError ? `${e.message} ${e.hint}` : `The live distillation failed: ${e instanceof Error ? e.message : String(e)}`;
    status.error = message;
    status.state = 'error';
    status.running = false;
    error.textContent = message;
    error.hidden = false;
    for (const b of [start, stop, cont, restart]) b.disabled = true;
    line.textContent = 'stopped by an error';
  };

  let live: LiveDistillation | null = null;
  let losses: Array<{ step: number; value: number }> = [];
  let runStart = 0;
  let elapsedBefore = 0;

  const setButtons = () => {
    const s = live?.state ?? 'idle';
    start.disabled = s !== 'idle';
    stop.disabled = s !== 'running';
    cont.disabled = s !== 'stopped';
    restart.disabled = s === 'running' || s === 'idle';
    status.state = s;
    status.running = s === 'running';
  };

  const onUpdate = (u: LiveUpdate) => {
    // The run sets its state once it is under way (start and resume first wait for the last call).
    if (status.state !== live?.state) setButtons();
    status.step = u.step;
    status.elapsedSec = elapsedBefore + (performance.now() - runStart) / 1000;
    const last = status.energyAboveFloor.at(-1);
    if (last?.step !== u.step) status.energyAboveFloor.push({ step: u.step, value: u.energyAboveFloor });
    if (status.below005 === null && u.energyAboveFloor < 0.05) status.below005 = { step: u.step, sec: status.elapsedSec };
    if (u.losses.fakeLoss !== undefined) losses.push({ step: u.step, value: u.losses.fakeLoss });
    progress.value = u.step;
    const rate = u.itPerSec > 0 ? ` · ${u.itPerSec.toFixed(1)} steps/s · ETA ${Math.round(u.etaSec)} s` : '';
    const fake = u.losses.fakeLoss !== undefined ? ` · fake loss ${u.losses.fakeLoss.toFixed(3)}` : '';
    line.textContent = `step ${u.step}/${u.total}${rate} · energy above floor ${u.energyAboveFloor.toFixed(4)}${fake}`;
    scatter(generatorCanvas, u.samples, '#2456c9');
    generatorCaption.textContent = `one-step generator, step ${u.step}${live?.state === 'done' ? ' (EMA)' : ''}`;
    curves(curveCanvas, u.total, status.energyAboveFloor, losses);
  };

  /** Runs `what` (start, continue), then shows how it ended; an error is shown, never thrown. */
  const drive = async (what: () => Promise<void>) => {
    runStart = performance.now();
    const running = what();
    setButtons();
    try {
      await running;
    } catch (e) {
      fail(e);
      return;
    }
    elapsedBefore += (performance.now() - runStart) / 1000;
    status.elapsedSec = elapsedBefore;
    setButtons();
    if (live?.state === 'stopped') line.textContent = `stopped after step ${live.step}/${cfg.steps} · Continue picks up exactly there`;
    if (live?.state === 'done') line.textContent = `done: ${cfg.steps} steps in ${elapsedBefore.toFixed(1)} s · ${line.textContent?.split(' · ').slice(1).join(' · ')}`;
  };

  const begin = () => {
    status.energyAboveFloor = [];
    status.below005 = null;
    status.step = 0;
    losses = [];
    elapsedBefore = 0;
    void drive(() => live!.start());
  };
  start.addEventListener('click', begin);
  restart.addEventListener('click', begin);
  cont.addEventListener('click', () => void drive(() => live!.resume()));
  stop.addEventListener('click', () => {
    stop.disabled = true;
    live?.stop().catch(fail);
  });

  void (async () => {
    let teacher: DenoiserModel;
    try {
      const bytes = await fetchBytes(opts.teacherUrl, 'the toy teacher', 'toy-teacher');
      teacher = parseBytes(bytes, opts.teacherUrl, 'the toy teacher', 'toy-teacher', (b) => loadDenoiser(b, opts.teacherUrl));
      if (teacher.config.net.kind !== 'mlp' || teacher.config.net.dim !== 2) {
        throw new PageError(
          `The toy teacher at ${opts.teacherUrl} is not a 2-D point teacher (its network is ${teacher.config.net.kind}).`,
          'Point ?toy-teacher= at checkpoints/toy/ring8/teacher.safetensors, or rebuild with `pnpm playground:build`.',
        );
      }
      live = new LiveDistillation({ teacher, config: cfg, onUpdate });
    } catch (e) {
      fail(e);
      return;
    }
    scatter(targetCanvas, live.targetPoints, '#5b6470');
    scatter(generatorCanvas, live.samples(), '#2456c9');
    curves(curveCanvas, cfg.steps, [], []);
    line.textContent = `ready: press Start (the floor, two samples of the target: ${live.floor.toFixed(4)})`;
    setButtons();
  })();
}
