import * as tf from '@tensorflow/tfjs';
import { createClassifier, createDenoiser, tweedieGenerator } from '@diff-instruct/models';
import { GaussianMixture, Rng } from '@diff-instruct/sde';
import { describe, expect, it } from 'vitest';

import { decodeTrainState, memoryStateStore, type StateStore } from './checkpoint.js';
import { CLASSIFIER_DEFAULTS, trainClassifier } from './classifier.js';
import { DIFF_INSTRUCT_DEFAULTS, diffInstruct } from './diffInstruct.js';
import { GAN_DEFAULTS, trainGan } from './gan.js';
import { SCORE_DISTILL_DEFAULTS, scoreDistill } from './scoreDistill.js';
import { TrainingSession, trainingSession } from './session.js';
import { TEACHER_DEFAULTS, trainTeacher } from './teacher.js';
import { mixture, mlpDiscriminator, mlpGenerator, smallTeacher, toyImages } from './trainer.fixtures.js';

const points = { data: mixture(2).sample(new Rng(1), 256), sampleShape: [2] };
const images = (() => {
  const { data, labels } = toyImages(64, new Rng(4));
  return { data, labels, numClasses: 3, sampleShape: [8, 8, 1] };
})();
const lenet = (seed = 5) => createClassifier({ kind: 'lenet', resolution: 8, channels: 1, numClasses: 3, featureDim: 8 }, new Rng(seed));
/** A "Dirac image" x ∈ R³ rendered as 4 copies; the teacher an exact Gaussian-mixture denoiser. */
const dirac = () => {
  const x = tf.variable(tf.tensor2d([[0.4, 0.3, -0.2]]));
  return { params: { x }, render: () => ({ x0: tf.tile(x, [4, 1]) }) };
};
const exactTeacher = { denoiser: new GaussianMixture([{ mean: [1.5, 0, 0], std: 0.3, weight: 1 }]).denoiser };
const denoiser3 = (seed: number) => createDenoiser({ kind: 'edm', sigmaData: 1, net: { kind: 'mlp', dim: 3, hidden: [8], embedDim: 4, numClasses: 0 } }, new Rng(seed));

/** A callback that throws: as `onProgress`, at its first report (step 10 of 12); training fails mid-run. */
const failing = () => {
  throw new Error('stopped by the test');
};

/**
 * Each trainer, set up for a run of 12 steps that throws at step 10 (from `onProgress`; or at step 5
 * from `onCheckpoint`). `setup` makes the models the caller owns; anything the trainer makes itself
 * (optimiser state, the EMA and its snapshots, a cloned fake score, a discriminator head) must be
 * gone after the throw.
 */
type Setup = () => { owned: Array<Record<string, tf.Variable>>; train: () => Promise<unknown> };
const runs: Array<[string, Setup]> = [
  [
    'trainTeacher',
    () => {
      const model = smallTeacher(2);
      const config = { ...TEACHER_DEFAULTS, steps: 12, batchSize: 8 };
      return { owned: [model.params], train: () => trainTeacher({ model, data: points, config, rng: new Rng(1), onProgress: failing }) };
    },
  ],
  [
    'trainTeacher (onCheckpoint throws, holding the EMA snapshot)',
    () => {
      const model = smallTeacher(2);
      const config = { ...TEACHER_DEFAULTS, steps: 12, batchSize: 8, checkpointEvery: 5 };
      return { owned: [model.params], train: () => trainTeacher({ model, data: points, config, rng: new Rng(1), onCheckpoint: failing }) };
    },
  ],
  [
    'trainClassifier',
    () => {
      const model = lenet();
      const config = { ...CLASSIFIER_DEFAULTS, steps: 12, batchSize: 8 };
      return { owned: [model.params], train: () => trainClassifier({ model, data: images, config, rng: new Rng(1), onProgress: failing }) };
    },
  ],
  [
    'trainGan',
    () => {
      const [generator, discriminator] = [mlpGenerator(1), mlpDiscriminator(2)];
      const config = { ...GAN_DEFAULTS, steps: 12, batchSize: 8, r1Every: 4 };
      return { owned: [generator.params, discriminator.params], train: () => trainGan({ generator, discriminator, data: points, config, rng: new Rng(1), onProgress: failing }) };
    },
  ],
  [
    'diffInstruct (the fake score a clone of the teacher)',
    () => {
      const teacher = smallTeacher(2, 3);
      const generator = tweedieGenerator(teacher, 2.5);
      const config = { ...DIFF_INSTRUCT_DEFAULTS, steps: 12, batchSize: 8 };
      return { owned: [teacher.params, generator.params], train: () => diffInstruct({ teacher, generator, config, rng: new Rng(1), onProgress: failing }) };
    },
  ],
  [
    'diffInstruct (with the real-data head)',
    () => {
      const teacher = smallTeacher(2, 3);
      const generator = tweedieGenerator(teacher, 2.5);
      const config = { ...DIFF_INSTRUCT_DEFAULTS, steps: 12, batchSize: 8, realDataWeight: 0.5 };
      return { owned: [teacher.params, generator.params], train: () => diffInstruct({ teacher, generator, realData: points, config, rng: new Rng(1), onProgress: failing }) };
    },
  ],
  [
    'scoreDistill (SDS)',
    () => {
      const d = dirac();
      const config = { ...SCORE_DISTILL_DEFAULTS, steps: 12 };
      return { owned: [d.params], train: () => scoreDistill({ ...d, teacher: exactTeacher, config, rng: new Rng(1), onProgress: failing }) };
    },
  ],
  [
    'scoreDistill (VSD, the fake score a clone of the teacher)',
    () => {
      const d = dirac();
      const teacher = denoiser3(2);
      const config = { ...SCORE_DISTILL_DEFAULTS, mode: 'vsd' as const, steps: 12 };
      return { owned: [d.params, teacher.params], train: () => scoreDistill({ ...d, teacher, config, rng: new Rng(1), onProgress: failing }) };
    },
  ],
];

describe('the training session of every trainer', () => {
  it.each(runs)('%s leaves no tensors behind when training throws mid-run', async (_name, setup) => {
    const { owned, train } = setup();
    const before = tf.memory().numTensors;
    await expect(train()).rejects.toThrow('stopped by the test');
    expect(tf.memory().numTensors).toBe(before);
    for (const params of owned) tf.dispose(Object.values(params));
  });
});

/** Each trainer's state: its kind, its groups of tensors and its Adam step counts (the on-disk format). */
const formats: Array<[string, (store: StateStore) => Promise<unknown>, string, string[], string[]]> = [
  [
    'trainTeacher',
    (stateStore) => trainTeacher({ model: smallTeacher(2), data: points, config: { ...TEACHER_DEFAULTS, steps: 2, batchSize: 8 }, rng: new Rng(1), stateStore }),
    'teacher',
    ['net', 'ema', 'adam.m', 'adam.v'],
    ['adam'],
  ],
  [
    'trainClassifier',
    (stateStore) => trainClassifier({ model: lenet(), data: images, config: { ...CLASSIFIER_DEFAULTS, steps: 2, batchSize: 8 }, rng: new Rng(1), stateStore }),
    'classifier',
    ['net', 'adam.m', 'adam.v'],
    ['adam'],
  ],
  [
    'trainGan',
    (stateStore) =>
      trainGan({ generator: mlpGenerator(1), discriminator: mlpDiscriminator(2), data: points, config: { ...GAN_DEFAULTS, steps: 2, batchSize: 8 }, rng: new Rng(1), stateStore }),
    'gan',
    ['generator', 'discriminator', 'ema', 'adamG.m', 'adamG.v', 'adamD.m', 'adamD.v'],
    ['generator', 'discriminator'],
  ],
  [
    'diffInstruct',
    (stateStore) => {
      const teacher = smallTeacher(2, 3);
      return diffInstruct({ teacher, generator: tweedieGenerator(teacher, 2.5), config: { ...DIFF_INSTRUCT_DEFAULTS, steps: 2, batchSize: 8 }, rng: new Rng(1), stateStore });
    },
    'diff-instruct',
    ['generator', 'fake', 'ema', 'adamG.m', 'adamG.v', 'adamF.m', 'adamF.v'],
    ['generator', 'fake'],
  ],
  [
    'diffInstruct with the real-data head',
    (stateStore) => {
      const teacher = smallTeacher(2, 3);
      const config = { ...DIFF_INSTRUCT_DEFAULTS, steps: 2, batchSize: 8, realDataWeight: 0.5 };
      return diffInstruct({ teacher, generator: tweedieGenerator(teacher, 2.5), realData: points, config, rng: new Rng(1), stateStore });
    },
    'diff-instruct',
    ['generator', 'fake', 'ema', 'adamG.m', 'adamG.v', 'adamF.m', 'adamF.v', 'head', 'adamH.m', 'adamH.v'],
    ['generator', 'fake', 'head'],
  ],
  [
    'scoreDistill (SDS)',
    (stateStore) => scoreDistill({ ...dirac(), teacher: exactTeacher, config: { ...SCORE_DISTILL_DEFAULTS, steps: 2 }, rng: new Rng(1), stateStore }),
    'score-distill',
    ['params', 'adam.m', 'adam.v'],
    ['params'],
  ],
  [
    'scoreDistill (VSD)',
    (stateStore) => scoreDistill({ ...dirac(), teacher: denoiser3(2), config: { ...SCORE_DISTILL_DEFAULTS, mode: 'vsd', steps: 2 }, rng: new Rng(1), stateStore }),
    'score-distill',
    ['params', 'adam.m', 'adam.v', 'fake', 'adamF.m', 'adamF.v'],
    ['params', 'fake'],
  ],
];

describe('the training state of every trainer keeps its format', () => {
  it.each(formats)('%s: kind, groups, Adam step counts and header keys', async (_name, run, kind, groups, optimizers) => {
    const store = memoryStateStore();
    await run(store);
    const { info, tensors } = decodeTrainState(store.bytes!, 'state', kind);
    expect(Object.keys(info)).toEqual(['kind', 'step', 'rng', 'optimizerSteps', 'config']);
    expect(info.step).toBe(2);
    expect(Object.keys(info.optimizerSteps)).toEqual(optimizers);
    expect(Object.values(info.optimizerSteps)).toEqual(optimizers.map(() => 2));
    const prefixes = [...new Set(Object.keys(tensors).map((k) => k.slice(0, k.lastIndexOf('/'))))];
    expect(prefixes.sort()).toEqual([...groups].sort());
  });
});

describe('TrainingSession', () => {
  /** A toy trainer: w ← w − Adam(∇(w − 3)²), with an EMA, one random draw per step. */
  const toy = async (store: StateStore, steps: number, resume = false, seen: number[] = []) => {
    const w = tf.variable(tf.scalar(0));
    const result = await trainingSession({ who: 'toy', kind: 'toy', options: { rng: new Rng(5), stateStore: store, resume }, config: { lr: 0.1, steps } }, async (s) => {
      s.group('w', { w });
      const ema = s.ema('ema', { w }, 2);
      const adam = s.adam('opt', 'adam', { w }, { lr: 0.1, beta1: 0.9, beta2: 0.99 });
      const { rng, startStep } = s.restore();
      expect(s.restore().rng).toBe(rng); // the same on a second call
      await s.run({
        totalSteps: steps,
        checkpointEvery: 2,
        memoryProbe: () => tf.grad((x: tf.Tensor) => tf.square(tf.sub(x, 3)))(w),
        step: (i) => {
          seen.push(i);
          const jitter = rng.next();
          const g = tf.grad((x: tf.Tensor) => tf.square(tf.sub(x, 3 + 0.01 * jitter)))(w);
          adam.apply({ w: g });
          ema.update();
          return { loss: (w.dataSync()[0]! - 3) ** 2 };
        },
      });
      return { startStep, t: adam.t, w: w.dataSync()[0]!, ema: ema.shadow.w!.dataSync()[0]! };
    });
    w.dispose();
    return result;
  };

  it('names the groups, writes the state at checkpoints, and resumes exactly: step, Adam steps, RNG, weights', async () => {
    const whole = await toy(memoryStateStore(), 5);
    const store = memoryStateStore();
    const seen: number[] = [];
    const first = await toy(store, 3, false, seen);
    expect(first).toMatchObject({ startStep: 0, t: 3 });
    const { info, tensors } = decodeTrainState(store.bytes!, 'state', 'toy');
    expect(info).toMatchObject({ kind: 'toy', step: 3, optimizerSteps: { opt: 3 }, config: { lr: 0.1, steps: 3 } });
    expect(Object.keys(tensors).sort()).toEqual(['adam.m/w', 'adam.v/w', 'ema/w', 'w/w']);
    const rest = await toy(store, 5, true, seen);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(rest).toEqual({ ...whole, startStep: 3 });
    expect(decodeTrainState(store.bytes!, 'state', 'toy').info).toMatchObject({ step: 5, optimizerSteps: { opt: 5 } });
  });

  it('refuses a state of another kind or config, and a group named twice or after the restore', async () => {
    const store = memoryStateStore('toy-state');
    await toy(store, 2);
    const other = new TrainingSession({ who: 'other', kind: 'other', options: { rng: new Rng(0), stateStore: store, resume: true }, config: {} });
    expect(() => other.restore()).toThrow("toy-state holds a 'toy' training state, expected 'other'");
    const changed = new TrainingSession({ who: 'toy', kind: 'toy', options: { rng: new Rng(0), stateStore: store, resume: true }, config: { lr: 0.2, steps: 2 } });
    expect(() => changed.restore()).toThrow(/cannot resume from toy-state: the config differs \(lr: stored 0\.1, now 0\.2\)/);
    const w = tf.variable(tf.scalar(1));
    const s = new TrainingSession({ who: 'toy', kind: 'toy', options: { rng: new Rng(0) }, config: {} });
    s.group('w', { w });
    expect(() => s.group('w', { w })).toThrow("toy: the training state already has a group 'w'");
    s.restore();
    expect(() => s.group('late', { w })).toThrow("toy: group 'late' named after the state was restored");
    s.end(false);
    expect(() => s.adam('a', 'a', { w }, { lr: 1, beta1: 0, beta2: 0.9 })).toThrow('toy: adam \'a\' after the training session ended');
    w.dispose();
  });

  it('frees what it owns when the body returns or throws, and what the caller would keep only when it throws', async () => {
    const w = tf.variable(tf.ones([3]));
    const before = tf.memory().numTensors;
    const freed: string[] = [];
    const body = (fail: boolean) => async (s: TrainingSession) => {
      s.adam('opt', 'adam', { w }, { lr: 1, beta1: 0, beta2: 0.9 });
      s.ema('ema', { w }, 3);
      s.own('own', (x) => freed.push(x));
      const kept = s.ownOnFailure(tf.zeros([3]), (t) => {
        freed.push('kept');
        t.dispose();
      });
      if (fail) throw new Error('boom');
      return kept;
    };
    const spec = { who: 'toy', kind: 'toy', options: { rng: new Rng(0) }, config: {} };
    const kept = await trainingSession(spec, body(false));
    expect(freed).toEqual(['own']);
    expect(tf.memory().numTensors).toBe(before + 1); // the result only
    kept.dispose();
    await expect(trainingSession(spec, body(true))).rejects.toThrow('boom');
    expect(freed).toEqual(['own', 'own', 'kept']);
    expect(tf.memory().numTensors).toBe(before);
    w.dispose();
  });
});
