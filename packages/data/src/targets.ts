import { GaussianMixture, Rng } from '@diff-instruct/sde';

/**
 * A distribution of points that the teacher is trained on and the generator is measured against.
 * Every built-in 2-D target lives roughly within [-4, 4]², with a per-coordinate std of about 1–2,
 * so one noise schedule (σ_data ≈ 1.5) suits them all.
 */
export interface PointTarget {
  readonly name: string;
  readonly dim: number;
  readonly description: string;
  /** `n` draws as a row-major [n, dim] Float32Array. Deterministic given the state of `rng`. */
  sample(rng: Rng, n: number): Float32Array;
  /** Present when the density is known exactly (a Gaussian mixture): enables the log-likelihood metric. */
  readonly mixture?: GaussianMixture;
}

/** A target whose density is an isotropic Gaussian mixture, in any dimension. */
export function gaussianMixtureTarget(name: string, mixture: GaussianMixture, description?: string): PointTarget {
  return {
    name,
    dim: mixture.dim,
    description:
      description ?? `${mixture.components.length}-component Gaussian mixture in ${mixture.dim}-D (exact density)`,
    sample: (rng, n) => mixture.sample(rng, checkCount(name, n)),
    mixture,
  };
}

/**
 * A random mixture of `k` isotropic Gaussians in `dim` dimensions, fixed by `seed`: means drawn
 * from N(0, 1.5² I), stds uniform on [0.3, 0.6], weights uniform on [0.5, 1.5] (then normalised).
 * For tests and benchmarks of several dimensions; named `gmm-<dim>d-<k>` (see {@link getTarget}).
 */
export function highDimMixture(dim: number, k = 8, seed = 0): PointTarget {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`highDimMixture: dim must be a positive integer, got ${dim}`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`highDimMixture: k must be a positive integer, got ${k}`);
  const rng = new Rng(seed);
  const components = Array.from({ length: k }, () => ({
    mean: Array.from(rng.normal(dim), (v) => 1.5 * v),
    std: 0.3 + 0.3 * rng.next(),
    weight: 0.5 + rng.next(),
  }));
  return gaussianMixtureTarget(
    `gmm-${dim}d-${k}`,
    new GaussianMixture(components),
    `${k} random isotropic Gaussians in ${dim}-D (seed ${seed}; exact density)`,
  );
}

/** Eight Gaussians on a circle of radius 2, std 0.1. Per-coordinate std ≈ 1.42. */
const RING8_RADIUS = 2;
const RING8_STD = 0.1;
function ring8(): PointTarget {
  const components = Array.from({ length: 8 }, (_, i) => {
    const a = (2 * Math.PI * i) / 8;
    return { mean: [RING8_RADIUS * Math.cos(a), RING8_RADIUS * Math.sin(a)], std: RING8_STD, weight: 1 };
  });
  return gaussianMixtureTarget(
    'ring8',
    new GaussianMixture(components),
    `8 Gaussians (std ${RING8_STD}) on a circle of radius ${RING8_RADIUS}; exact density`,
  );
}

/** A 5×5 grid of Gaussians at spacing 1 on [-2, 2]², std 0.05. Per-coordinate std ≈ 1.41. */
function grid25(): PointTarget {
  const components = [];
  for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) components.push({ mean: [i - 2, j - 2], std: 0.05, weight: 1 });
  return gaussianMixtureTarget(
    'grid25',
    new GaussianMixture(components),
    '5×5 grid of Gaussians (std 0.05) at spacing 1 on [-2, 2]²; exact density',
  );
}

/** A few Gaussians of unequal weight and width: tests mode coverage and mode weighting. */
function gmm(): PointTarget {
  return gaussianMixtureTarget(
    'gmm',
    new GaussianMixture([
      { mean: [-1.5, -1], std: 0.5, weight: 0.45 },
      { mean: [1.5, 1.5], std: 0.3, weight: 0.3 },
      { mean: [2, -2], std: 0.15, weight: 0.15 },
      { mean: [-2, 2], std: 0.2, weight: 0.1 },
    ]),
    '4 Gaussians with unequal weights (0.45/0.3/0.15/0.1) and stds (0.5/0.3/0.15/0.2); exact density',
  );
}

function sampler(
  name: string,
  description: string,
  draw: (rng: Rng, out: Float32Array, i: number) => void,
): PointTarget {
  return {
    name,
    dim: 2,
    description,
    sample(rng, n) {
      const out = new Float32Array(2 * checkCount(name, n));
      for (let i = 0; i < n; i++) draw(rng, out, i);
      return out;
    },
  };
}

function gauss(rng: Rng): number {
  return rng.normal(1)[0]!;
}

/** Two interleaved half-circles (scikit-learn's make_moons), centred and scaled by 2, noise std 0.1. */
const moons = () =>
  sampler('moons', 'two interleaving half-circles, scaled to about [-3, 3]×[-2, 2], noise std 0.1', (rng, out, i) => {
    const t = Math.PI * rng.next();
    const upper = rng.next() < 0.5;
    const x = upper ? Math.cos(t) : 1 - Math.cos(t);
    const y = upper ? Math.sin(t) : 0.5 - Math.sin(t);
    out[2 * i] = 2 * (x - 0.5) + 0.1 * gauss(rng);
    out[2 * i + 1] = 2 * (y - 0.25) + 0.1 * gauss(rng);
  });

/** Uniform on the "black" squares of a 4×4 checkerboard on [-3, 3]². Per-coordinate std ≈ 1.73. */
const checkerboard = () =>
  sampler('checkerboard', 'uniform on the dark squares of a 4×4 checkerboard on [-3, 3]²', (rng, out, i) => {
    const x = 4 * rng.next() - 2;
    let y = 4 * rng.next() - 2;
    // A square is dark when floor(x) + floor(y) is even; otherwise move one square up (wrapping).
    if ((Math.floor(x) + Math.floor(y)) % 2 !== 0) y = y + 1 >= 2 ? y - 3 : y + 1;
    out[2 * i] = 1.5 * x;
    out[2 * i + 1] = 1.5 * y;
  });

/** Two interleaved arms r = t, θ = t for t ∈ [0, 3π] (density uniform in area), scaled by 1/3. */
const spiral = () =>
  sampler('spiral', 'two-armed spiral of radius about 3.1, noise std 0.1', (rng, out, i) => {
    const t = 3 * Math.PI * Math.sqrt(rng.next());
    const s = rng.next() < 0.5 ? 1 : -1;
    out[2 * i] = (s * -Math.cos(t) * t) / 3 + 0.1 * gauss(rng);
    out[2 * i + 1] = (s * Math.sin(t) * t) / 3 + 0.1 * gauss(rng);
  });

/** scikit-learn's make_swiss_roll projected to 2-D: t ∈ [1.5π, 4.5π], (t cos t, t sin t)/5. */
const swissroll = () =>
  sampler('swissroll', '2-D Swiss roll, radius up to about 2.8, noise std 0.1', (rng, out, i) => {
    const t = 1.5 * Math.PI * (1 + 2 * rng.next());
    out[2 * i] = (t * Math.cos(t)) / 5 + 0.1 * gauss(rng);
    out[2 * i + 1] = (t * Math.sin(t)) / 5 + 0.1 * gauss(rng);
  });

const BUILTIN: Record<string, () => PointTarget> = { ring8, grid25, gmm, moons, checkerboard, spiral, swissroll };

/** The built-in 2-D targets; `ring8` is the default. `gmm-<dim>d[-<k>]` names are also accepted by {@link getTarget}. */
export const TARGET_NAMES: readonly string[] = Object.freeze(Object.keys(BUILTIN));

/**
 * A target by name: one of {@link TARGET_NAMES}, or `gmm-<dim>d` / `gmm-<dim>d-<k>` for
 * {@link highDimMixture}(dim, k = 8, seed 0), e.g. `gmm-13d`.
 */
export function getTarget(name: string): PointTarget {
  const make = Object.hasOwn(BUILTIN, name) ? BUILTIN[name] : undefined;
  if (make) return make();
  const m = /^gmm-(\d+)d(?:-(\d+))?$/.exec(name);
  if (m) return highDimMixture(Number(m[1]), m[2] === undefined ? 8 : Number(m[2]));
  throw new Error(`unknown target "${name}"; choose one of: ${TARGET_NAMES.join(', ')}, or gmm-<dim>d[-<k>] (e.g. gmm-13d)`);
}

function checkCount(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}.sample: n must be a non-negative integer, got ${n}`);
  return n;
}
