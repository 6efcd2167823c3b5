/**
 * The live distillation behind the "Distil live" tab, without the page: Diff-Instruct's Algorithm 1
 * (with SiD's generator loss, the toy command's default) from a teacher's Tweedie initialisation on
 * a 2-D target, measured every few steps by the energy distance to the target above its floor.
 * Start, stop (at the next step, state kept), continue (exactly, from the kept state) and restart.
 * It runs wherever tfjs runs; the tab draws what it reports, and a Node test runs it as it is.
 */
import * as tf from '@tensorflow/tfjs';
import { getTarget, type PointTarget } from '@diff-instruct/data';
import { energyDistance } from '@diff-instruct/metrics';
import { disposeModel, tweedieGenerator, type DenoiserModel, type GeneratorModel } from '@diff-instruct/models';
import { Rng } from '@diff-instruct/sde';
import {
  DIFF_INSTRUCT_DEFAULTS,
  TrainingStopped,
  diffInstruct,
  memoryStateStore,
  type DiffInstructConfig,
  type ProgressEvent,
  type StateStore,
} from '@diff-instruct/trainer';

/**
 * The recipe of `distill toy` (SiD, σ² weighting, lr 1e-3 with cosine decay, batch 512), over
 * 500 steps: in Node it reaches an energy distance of 5.1e-3 above the floor on ring8.
 */
export const LIVE_CONFIG: DiffInstructConfig = {
  ...DIFF_INSTRUCT_DEFAULTS,
  objective: 'sid',
  weighting: 'sigma2',
  steps: 500,
  batchSize: 512,
  lrGenerator: 1e-3,
  lrFake: 1e-3,
  lrSchedule: 'cosine',
  // The state is kept in memory, written when the run is stopped and after its last step only.
  checkpointEvery: 1_000_000,
};

/** σ* of the Tweedie initialisation x = z·σ* + σ*²·s(z·σ*, σ*), as in `distill toy`. */
export const INIT_SIGMA = 2.5;

export interface LiveOptions {
  teacher: DenoiserModel;
  /** The target the teacher was trained on (default ring8). */
  target?: PointTarget;
  config?: DiffInstructConfig;
  seed?: number;
  /** Points drawn for the plot and the energy distance (default 1,000). */
  points?: number;
  /** Called every 10 steps (the loop's progress interval) and once before the first step. */
  onUpdate?: (u: LiveUpdate) => void;
}

export interface LiveUpdate {
  step: number;
  total: number;
  itPerSec: number;
  etaSec: number;
  losses: Record<string, number>;
  /** The generator's samples on fixed latents, [points, 2]. */
  samples: Float32Array;
  /** Energy distance to the target sample minus the floor (that of two target samples). */
  energyAboveFloor: number;
}

export type LiveState = 'idle' | 'running' | 'stopped' | 'done' | 'error';

/** One live run. Not re-entrant: `start`, `resume` and `restart` wait for a running call to end. */
export class LiveDistillation {
  readonly target: PointTarget;
  readonly config: DiffInstructConfig;
  /** The target's points, drawn once: the reference of the energy distance and of the plot. */
  readonly targetPoints: Float32Array;
  /** The energy distance between two independent target samples of the same size. */
  readonly floor: number;
  state: LiveState = 'idle';
  step = 0;
  private readonly teacher: DenoiserModel;
  private readonly seed: number;
  private readonly onUpdate?: (u: LiveUpdate) => void;
  private readonly latents: tf.Tensor;
  private generator: GeneratorModel | null = null;
  private ema: GeneratorModel | null = null;
  private store: StateStore = memoryStateStore('the page');
  private controller: AbortController | null = null;
  private running: Promise<void> | null = null;

  constructor(o: LiveOptions) {
    this.teacher = o.teacher;
    this.target = o.target ?? getTarget('ring8');
    this.config = o.config ?? LIVE_CONFIG;
    this.seed = o.seed ?? 0;
    this.onUpdate = o.onUpdate;
    const n = o.points ?? 1000;
    this.targetPoints = this.target.sample(new Rng(1_000 + this.seed), n);
    this.floor = energyDistance(this.targetPoints, this.target.sample(new Rng(2_000 + this.seed), n), this.target.dim, { maxPoints: n });
    this.latents = new Rng(3_000 + this.seed).normalTensor([n, this.target.dim]);
  }

  /** Samples of the current generator (the raw one while training, its EMA when done). */
  samples(): Float32Array {
    const g = this.state === 'done' && this.ema ? this.ema : this.generator;
    if (!g) return new Float32Array(0);
    return tf.tidy(() => g.generate(this.latents).dataSync() as Float32Array);
  }

  energyAboveFloor(samples: Float32Array): number {
    const n = samples.length / this.target.dim;
    return energyDistance(samples, this.targetPoints, this.target.dim, { maxPoints: n }) - this.floor;
  }

  /** From the Tweedie initialisation; resolves when the run ends, is stopped or fails (then it throws). */
  async start(): Promise<void> {
    await this.settle();
    this.reset();
    this.generator = tweedieGenerator(this.teacher, INIT_SIGMA);
    this.step = 0;
    this.report({ phase: 'diff-instruct', step: 0, total: this.config.steps, itPerSec: 0, etaSec: NaN, elapsedSec: 0, losses: {} });
    await this.run(false);
  }

  /** After a stop: exactly where it stopped (the state kept in memory). */
  async resume(): Promise<void> {
    await this.settle();
    if (this.state !== 'stopped' || !this.generator) throw new Error('LiveDistillation.resume: nothing to continue; start first');
    await this.run(true);
  }

  /** Stops at the next step; the state at that step is kept for `resume`. */
  async stop(): Promise<void> {
    this.controller?.abort();
    await this.settle();
  }

  /** Frees every tensor the run holds (the teacher is the caller's). */
  dispose(): void {
    this.controller?.abort();
    this.reset();
    this.latents.dispose();
  }

  private async settle(): Promise<void> {
    if (this.running) await this.running.catch(() => undefined);
  }

  private reset(): void {
    if (this.generator) disposeModel(this.generator);
    if (this.ema) disposeModel(this.ema);
    this.generator = null;
    this.ema = null;
    this.store = memoryStateStore('the page');
    this.state = 'idle';
  }

  private async run(resume: boolean): Promise<void> {
    this.controller = new AbortController();
    this.state = 'running';
    const run = diffInstruct({
      teacher: this.teacher,
      generator: this.generator!,
      config: this.config,
      rng: new Rng(this.seed),
      stateStore: this.store,
      resume,
      signal: this.controller.signal,
      onProgress: (e) => this.report(e),
    }).then(
      (r) => {
        disposeModel(r.fake);
        // r.generator is this.generator, trained in place; the EMA is the model to ship.
        this.ema = r.ema;
        this.state = 'done';
        this.report({ phase: 'diff-instruct', step: this.config.steps, total: this.config.steps, itPerSec: 0, etaSec: 0, elapsedSec: 0, losses: {} });
      },
      (e: unknown) => {
        if (e instanceof TrainingStopped) {
          this.state = 'stopped';
          this.step = e.step;
          return;
        }
        this.state = 'error';
        throw e;
      },
    );
    this.running = run;
    try {
      await run;
    } finally {
      this.running = null;
      this.controller = null;
    }
  }

  private report(e: ProgressEvent): void {
    this.step = e.step;
    if (!this.onUpdate) return;
    const samples = this.samples();
    this.onUpdate({
      step: e.step,
      total: e.total,
      itPerSec: e.itPerSec,
      etaSec: e.etaSec,
      losses: e.losses,
      samples,
      energyAboveFloor: this.energyAboveFloor(samples),
    });
  }
}
