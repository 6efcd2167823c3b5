import * as tf from '@tensorflow/tfjs';

/** The complete state of an {@link Rng}: four 32-bit words. JSON-serialisable, for checkpoints. */
export type RngState = readonly [number, number, number, number];

/** SplitMix32, used only to expand a seed into the xoshiro state. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * A seeded random number generator (xoshiro128**), passed explicitly to everything that draws
 * noise: there is no global RNG. Its state is four integers, so a checkpoint can store it and a
 * resumed run draws exactly the numbers an uninterrupted run would have drawn.
 *
 * Normals use Box–Muller without a cached spare, so the state alone determines the stream.
 */
export class Rng {
  private s: Uint32Array;

  constructor(seed: number | RngState) {
    this.s = new Uint32Array(4);
    if (typeof seed === 'number') {
      if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
      const sm = splitmix32(Math.floor(seed));
      for (let i = 0; i < 4; i++) this.s[i] = sm();
    } else {
      if (seed.length !== 4) throw new Error('Rng: a state is four 32-bit integers');
      for (let i = 0; i < 4; i++) this.s[i] = seed[i]! >>> 0;
    }
    if (this.s[0] === 0 && this.s[1] === 0 && this.s[2] === 0 && this.s[3] === 0) this.s[0] = 1;
  }

  /** The state, to store in a checkpoint. `new Rng(rng.state())` continues the same stream. */
  state(): RngState {
    return [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!];
  }

  /**
   * Continues from `state`, in place (as `new Rng(state)` would): for code that draws this
   * generator's stream elsewhere, e.g. a native kernel that returns the state after its draws.
   */
  setState(state: RngState): void {
    if (state.length !== 4 || state.some((w) => !Number.isInteger(w))) throw new Error('Rng.setState: a state is four 32-bit integers');
    for (let i = 0; i < 4; i++) this.s[i] = state[i]! >>> 0;
    if (this.s[0] === 0 && this.s[1] === 0 && this.s[2] === 0 && this.s[3] === 0) this.s[0] = 1;
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform on [0, 1), 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform on the open interval (0, 1): safe to take a log of. */
  nextOpen(): number {
    return (this.nextUint32() + 0.5) / 4294967296;
  }

  /** An integer uniform on [0, n). */
  int(n: number): number {
    if (!(n >= 1)) throw new Error(`Rng.int: n must be >= 1, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** `n` draws, uniform on [lo, hi). */
  uniform(n: number, lo = 0, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.next();
    return out;
  }

  /**
   * A dropout mask of `n` units, each kept with probability `keep`: 1/keep where the draw,
   * rounded to float32, is below `keep`, else 0. The same draws and the same mask as comparing
   * `uniform(n)` with `keep` (and the same state afterwards), without the intermediate array and
   * with the generator's state in locals: several times faster, which matters for the UNets'
   * dropout (millions of units per training step).
   */
  dropoutMask(n: number, keep: number): Float32Array {
    if (!(keep > 0 && keep <= 1)) throw new Error(`Rng.dropoutMask: keep must be in (0, 1], got ${keep}`);
    const out = new Float32Array(n);
    const scale = 1 / keep;
    let s0 = this.s[0]! | 0, s1 = this.s[1]! | 0, s2 = this.s[2]! | 0, s3 = this.s[3]! | 0;
    for (let i = 0; i < n; i++) {
      const m = Math.imul(s1, 5);
      const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[i] = Math.fround(result / 4294967296) < keep ? scale : 0;
    }
    this.s[0] = s0;
    this.s[1] = s1;
    this.s[2] = s2;
    this.s[3] = s3;
    return out;
  }

  /** `n` standard normal draws (Box–Muller, both halves used). */
  normal(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(this.nextOpen()));
      const th = 2 * Math.PI * this.next();
      out[i] = r * Math.cos(th);
      if (i + 1 < n) out[i + 1] = r * Math.sin(th);
    }
    return out;
  }

  /** A tensor of standard normal draws. */
  normalTensor(shape: number[]): tf.Tensor {
    return tf.tensor(this.normal(sizeOf(shape)), shape, 'float32');
  }

  /** A tensor of draws uniform on [lo, hi). */
  uniformTensor(shape: number[], lo = 0, hi = 1): tf.Tensor {
    return tf.tensor(this.uniform(sizeOf(shape), lo, hi), shape, 'float32');
  }

  /** A random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }

  /** An independent generator derived from this one (advances this one by four draws). */
  fork(): Rng {
    return new Rng([this.nextUint32(), this.nextUint32(), this.nextUint32(), this.nextUint32()]);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function sizeOf(shape: number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}
