/**
 * Metrics on the outputs of the project's own image classifier (packages/models): an Inception
 * Score analogue, class coverage and class accuracy. Like "FID (LeNet features)" (./fid.ts), the
 * score is NOT comparable with the Inception Score of papers, which uses Inception-v3 on ImageNet:
 * compare only numbers computed with the same committed classifier and the same sample size.
 * Inputs are row-major [n, k] arrays of probabilities or logits; plain float64 JavaScript, no tfjs.
 */

export interface InceptionScoreOptions {
  /**
   * Number of contiguous, equal splits (the last rows are dropped when n is not a multiple). The
   * score is computed on each and the mean and standard deviation over splits are reported, as in
   * Salimans et al. (2016). Default 10, their choice; at most n.
   */
  splits?: number;
}

/**
 * The Inception Score analogue IS = exp(E_x KL(p(y|x) ‖ p(y))), with p(y) the mean of the rows
 * within each split (Salimans et al., 2016), on the classifier's class probabilities `probs`
 * ([n, k], rows ≥ 0; each row is renormalised to sum 1 in float64, so float32 softmax output is
 * fine). It lies in [1, k]: 1 when every sample gets the same prediction, k when the predictions are
 * confident and the classes are used equally. `std` is the population standard deviation over
 * splits (as the reference code, `np.std`). Not comparable with Inception-v3 scores.
 */
export function inceptionScore(probs: Float32Array, n: number, k: number, opts: InceptionScoreOptions = {}): { mean: number; std: number } {
  checkMatrix('inceptionScore', probs, n, k);
  const splits = opts.splits ?? 10;
  if (!Number.isInteger(splits) || splits < 1 || splits > n) {
    throw new Error(`inceptionScore: splits must be an integer in [1, n = ${n}], got ${splits}`);
  }
  const size = Math.floor(n / splits);
  const p = new Float64Array(size * k);
  const py = new Float64Array(k);
  const scores: number[] = [];
  for (let s = 0; s < splits; s++) {
    py.fill(0);
    for (let i = 0; i < size; i++) {
      const o = (s * size + i) * k;
      let sum = 0;
      for (let c = 0; c < k; c++) {
        const x = probs[o + c]!;
        if (!(x >= 0) || x === Infinity) throw new Error(`inceptionScore: probs[${s * size + i}, ${c}] = ${x} is not a probability`);
        sum += x;
      }
      if (!(sum > 0)) throw new Error(`inceptionScore: row ${s * size + i} sums to 0`);
      for (let c = 0; c < k; c++) {
        const x = probs[o + c]! / sum;
        p[i * k + c] = x;
        py[c] = py[c]! + x / size;
      }
    }
    // KL(p(y|x) ‖ p(y)) = Σ_c p log(p / p(y)); 0·log 0 = 0, and p > 0 implies p(y) > 0.
    let kl = 0;
    for (let i = 0; i < size; i++) {
      for (let c = 0; c < k; c++) {
        const x = p[i * k + c]!;
        if (x > 0) kl += x * Math.log(x / py[c]!);
      }
    }
    scores.push(Math.exp(kl / size));
  }
  const mean = scores.reduce((a, b) => a + b, 0) / splits;
  const std = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / splits);
  return { mean, std };
}

export interface ClassCoverageOptions {
  /**
   * A class counts as covered when it receives at least this fraction of all n samples (and at
   * least one sample). Default 0.1/k: a tenth of a class's fair share, so a class that a generator
   * produces only by accident (one or two samples in a thousand, for k = 10) does not count, while
   * one it under-produces by a factor of 2–5 still does.
   */
  minFraction?: number;
}

/**
 * The fraction of the k classes that are covered by the predicted labels of n generated samples
 * (see {@link ClassCoverageOptions.minFraction}): 1 when every class appears, 1/k under total mode
 * collapse.
 */
export function classCoverage(predictions: Int32Array, k: number, opts: ClassCoverageOptions = {}): number {
  const counts = classCounts('classCoverage', predictions, k);
  const minFraction = opts.minFraction ?? 0.1 / k;
  if (!(minFraction >= 0 && minFraction <= 1)) throw new Error(`classCoverage: minFraction must be in [0, 1], got ${minFraction}`);
  // Relative slack so that, e.g., 0.1/10 · 100 samples means 1 sample despite rounding.
  const threshold = Math.max(1, minFraction * predictions.length * (1 - 1e-12));
  let covered = 0;
  for (const c of counts) if (c >= threshold) covered++;
  return covered / k;
}

/**
 * The fraction of the n predicted labels that falls in each of the k classes (sums to 1): the class
 * balance of a generator, e.g. to see a mode-seeking update shift mass towards a few classes, which
 * coverage (any share above a tenth of the fair one) does not show.
 */
export function classFractions(predictions: Int32Array, k: number): number[] {
  const counts = classCounts('classFractions', predictions, k);
  return Array.from(counts, (c) => c / predictions.length);
}

/**
 * The fraction of samples whose predicted class equals the label they were generated for: the
 * classifier's accuracy on the samples of a class-conditional generator. Compare it with the
 * classifier's accuracy on the real test set, its ceiling.
 */
export function classAccuracy(predictions: Int32Array, labels: Int32Array): number {
  if (predictions.length !== labels.length) {
    throw new Error(`classAccuracy: predictions has ${predictions.length} entries but labels has ${labels.length}`);
  }
  if (predictions.length === 0) throw new Error('classAccuracy: no predictions');
  let hits = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === labels[i]) hits++;
  return hits / predictions.length;
}

/** The index of the largest entry of each row of a row-major [n, k] array (the first one on ties). */
export function argmaxRows(probsOrLogits: Float32Array, n: number, k: number): Int32Array {
  checkMatrix('argmaxRows', probsOrLogits, n, k);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let best = 0;
    let max = probsOrLogits[o]!;
    for (let c = 1; c < k; c++) {
      const x = probsOrLogits[o + c]!;
      if (x > max || (Number.isNaN(max) && !Number.isNaN(x))) {
        max = x;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

/** Row-wise softmax of [n, k] logits, computed in float64 with the row maximum subtracted. */
export function softmaxRows(logits: Float32Array, n: number, k: number): Float32Array {
  checkMatrix('softmaxRows', logits, n, k);
  const out = new Float32Array(n * k);
  const e = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, logits[o + c]!);
    let sum = 0;
    for (let c = 0; c < k; c++) {
      e[c] = Math.exp(logits[o + c]! - max);
      sum += e[c]!;
    }
    for (let c = 0; c < k; c++) out[o + c] = e[c]! / sum;
  }
  return out;
}

function checkMatrix(name: string, a: Float32Array, n: number, k: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`${name}: k must be a positive integer, got ${k}`);
  if (a.length !== n * k) throw new Error(`${name}: array has ${a.length} values, expected n·k = ${n * k}`);
}

function classCounts(name: string, predictions: Int32Array, k: number): Int32Array {
  if (!Number.isInteger(k) || k < 1) throw new Error(`${name}: k must be a positive integer, got ${k}`);
  if (predictions.length === 0) throw new Error(`${name}: no predictions`);
  const counts = new Int32Array(k);
  for (let i = 0; i < predictions.length; i++) {
    const c = predictions[i]!;
    if (c < 0 || c >= k) throw new Error(`${name}: predictions[${i}] = ${c} is not a class in [0, ${k})`);
    counts[c] = counts[c]! + 1;
  }
  return counts;
}
