/**
 * The Sample tab: a grid from the one-step generator (1 NFE), from its teacher with EDM's Heun
 * sampler at a chosen NFE, and from the generator's ONNX export on onnxruntime-web, each with its
 * time per image. The three draw their noise from the same seed, so a seed gives the same grids
 * every time, and the tfjs and ONNX generator grids are the same images.
 */
import * as tf from '@tensorflow/tfjs';
import { loadDenoiser, loadGenerator, sampleShape, type DenoiserModel, type GeneratorModel } from '@diff-instruct/models';
import { Rng, sampleTeacher } from '@diff-instruct/sde';

import { fetchBytes, parseBytes } from './fetch.js';
import { drawGrid } from './grid.js';

export interface SampleOptions {
  generatorUrl: string;
  teacherUrl: string;
  onnxUrl: string;
  /** The tfjs backend in use, for the timings' labels. */
  backend: string;
  /** Shows an error on the page (the banner). */
  report: (error: unknown) => void;
}

/** The teacher's Heun sampler takes n steps for 2n − 1 NFE: the NFEs on offer, 1 … 35. */
const TEACHER_NFES = Array.from({ length: 18 }, (_, i) => 2 * i + 1);
const DEFAULT_NFE = 9;
const GRIDS = [4, 6, 8] as const;
const DEFAULT_GRID = 8;
/** Teacher images per sampler call: small enough that the page can repaint between calls. */
const TEACHER_CHUNK = 8;

type State = 'loading' | 'ready' | 'running' | 'done' | 'error';

/** One sampler's box: title, controls, button, canvas, timing line. */
interface Panel {
  root: HTMLElement;
  button: HTMLButtonElement;
  canvas: HTMLCanvasElement;
  timing: HTMLElement;
  setState(state: State, text?: string): void;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

function panel(id: string, title: string, subtitle: string, controls: Node[]): Panel {
  const button = el('button', { type: 'button', id: `${id}-sample`, textContent: 'Sample', disabled: true });
  const canvas = el('canvas', { id: `${id}-canvas`, width: 256, height: 256 });
  const timing = el('p', { className: 'timing', id: `${id}-timing`, textContent: 'loading…' });
  const root = el('section', { className: 'sampler', id }, el('h2', { textContent: title }), el('p', { className: 'sub', textContent: subtitle }), el('div', { className: 'row' }, ...controls, button), canvas, timing);
  return {
    root,
    button,
    canvas,
    timing,
    setState(state, text) {
      root.dataset.state = state;
      button.disabled = state === 'loading' || state === 'running' || state === 'error';
      if (text !== undefined) timing.textContent = text;
    },
  };
}

const formatMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

export function mountSample(root: HTMLElement, opts: SampleOptions): void {
  const seed = el('input', { type: 'number', id: 'seed', value: '0', min: '0', step: '1' });
  const grid = el('select', { id: 'grid' }, ...GRIDS.map((g) => el('option', { value: String(g), textContent: `${g}×${g}`, selected: g === DEFAULT_GRID })));
  const nfe = el('select', { id: 'teacher-nfe' }, ...TEACHER_NFES.map((k) => el('option', { value: String(k), textContent: `${k} NFE`, selected: k === DEFAULT_NFE })));
  const memory = el('span', { id: 'tensors' });

  const gen = panel('generator', 'One-step generator', `Diff-Instruct, 1 NFE, tfjs on ${opts.backend}`, []);
  const teacher = panel('teacher', 'Teacher', `EDM Heun sampler, tfjs on ${opts.backend}`, [el('label', {}, 'NFE ', nfe)]);
  const onnx = panel('onnx', 'One-step generator, ONNX', 'the same generator exported to ONNX, onnxruntime-web (wasm, 1 thread)', []);

  root.append(
    el(
      'div',
      { className: 'controls' },
      el('label', {}, 'seed ', seed),
      el('label', {}, 'grid ', grid),
      el('span', { className: 'note' }, 'The same seed gives the same latents to both generators.'),
      memory,
    ),
    el('div', { className: 'samplers' }, gen.root, teacher.root, onnx.root),
  );

  const settings = () => {
    const s = Number.parseInt(seed.value, 10);
    const g = Number(grid.value);
    return { seed: Number.isFinite(s) && s >= 0 ? s : 0, n: g * g };
  };
  const showMemory = () => {
    memory.textContent = `tfjs tensors alive: ${tf.memory().numTensors}`;
    memory.dataset.tensors = String(tf.memory().numTensors);
  };
  /** Runs one click's work with its panel busy; an error goes to the banner and the panel says so. */
  const run = (p: Panel, work: () => Promise<string>) => async () => {
    p.setState('running', 'sampling…');
    try {
      p.setState('done', await work());
    } catch (e) {
      p.setState('ready', 'failed: see the message above');
      opts.report(e);
    }
    showMemory();
  };
  showMemory();

  // The tfjs models load with the page; the ONNX runtime (15 MB of wasm) on its first click.
  let generator: GeneratorModel | null = null;
  let denoiser: DenoiserModel | null = null;
  const load = async <T>(p: Panel, url: string, what: string, param: string, parse: (b: Uint8Array, what: string) => T): Promise<T | null> => {
    try {
      const model = parseBytes(await fetchBytes(url, what, param), url, what, param, (b) => parse(b, url));
      p.setState('ready', 'ready');
      return model;
    } catch (e) {
      p.setState('error', 'not loaded: see the message above');
      opts.report(e);
      return null;
    }
  };
  const generatorLoaded = load(gen, opts.generatorUrl, "the generator's weights", 'generator', loadGenerator).then((g) => {
    generator = g;
    if (g !== null) onnx.setState('ready', 'ready (loads onnxruntime-web on the first click)');
    else onnx.setState('error', 'needs the generator (for its latent shape)');
    showMemory();
  });
  void load(teacher, opts.teacherUrl, "the teacher's weights", 'teacher', loadDenoiser).then((d) => {
    denoiser = d;
    showMemory();
  });

  /** The latents of a grid: N(0, I) from the seed, shared by the tfjs and ONNX generators. */
  const latents = (g: GeneratorModel, n: number, s: number) => new Rng(s).normal(n * g.latentShape.reduce((a, b) => a * b, 1));

  gen.button.addEventListener(
    'click',
    run(gen, async () => {
      const g = generator!;
      const { seed: s, n } = settings();
      const z = latents(g, n, s);
      const t0 = performance.now();
      const x = tf.tidy(() => g.generate(tf.tensor(z, [n, ...g.latentShape]), labels(g.numClasses, n)));
      const images = (await x.data()) as Float32Array;
      x.dispose();
      const ms = (performance.now() - t0) / n;
      drawGrid(gen.canvas, images, n, g.outputShape);
      gen.root.dataset.ms = String(ms);
      return `${formatMs(ms)} ms per image (${n} images, 1 NFE, ${opts.backend})`;
    }),
  );

  teacher.button.addEventListener(
    'click',
    run(teacher, async () => {
      const d = denoiser!;
      const { seed: s, n } = settings();
      const k = Number(nfe.value);
      const steps = (k + 1) / 2;
      const shape = sampleShape(d.config);
      const per = shape.reduce((a, b) => a * b, 1);
      const numClasses = d.config.net.numClasses;
      const images = new Float32Array(n * per);
      const rng = new Rng(s);
      let busy = 0;
      for (let i = 0; i < n; i += TEACHER_CHUNK) {
        const m = Math.min(TEACHER_CHUNK, n - i);
        const t0 = performance.now();
        const label = labels(numClasses, m, i);
        const { x } = sampleTeacher(d.denoise, { shape: [m, ...shape], steps, rng, ...(label && { label }) });
        images.set((await x.data()) as Float32Array, i * per);
        x.dispose();
        label?.dispose();
        busy += performance.now() - t0;
        teacher.timing.textContent = `sampling… ${i + m}/${n}`;
        drawGrid(teacher.canvas, images, n, shape);
        await tf.nextFrame();
      }
      const ms = busy / n;
      teacher.root.dataset.ms = String(ms);
      return `${formatMs(ms)} ms per image (${n} images, ${k} NFE, ${opts.backend})`;
    }),
  );

  let session: Promise<import('./onnx.js').OnnxGenerator> | null = null;
  onnx.button.addEventListener(
    'click',
    run(onnx, async () => {
      await generatorLoaded;
      const g = generator!;
      session ??= import('./onnx.js').then((m) => m.loadOnnxGenerator(opts.onnxUrl, g.numClasses));
      let s: import('./onnx.js').OnnxGenerator;
      try {
        s = await session;
      } catch (e) {
        session = null;
        throw e;
      }
      const { seed: seedValue, n } = settings();
      const z = latents(g, n, seedValue);
      const t0 = performance.now();
      const images = await s.generate(z, [n, ...g.latentShape]);
      const ms = (performance.now() - t0) / n;
      drawGrid(onnx.canvas, images, n, g.outputShape);
      onnx.root.dataset.ms = String(ms);
      return `${formatMs(ms)} ms per image (${n} images, 1 NFE, onnxruntime-web wasm)`;
    }),
  );
}

/** Class labels 0, 1, …, K−1 in turn (one-hot), for a conditional model; undefined for K = 0. */
function labels(numClasses: number, n: number, offset = 0): tf.Tensor2D | undefined {
  if (numClasses === 0) return undefined;
  return tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from({ length: n }, (_, i) => (offset + i) % numClasses), 'int32'), numClasses) as tf.Tensor2D);
}

