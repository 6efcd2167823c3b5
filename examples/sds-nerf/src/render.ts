import * as tf from '@tensorflow/tfjs';
import { matmul } from '@diff-instruct/models';

/**
 * A tiny differentiable volume renderer (NeRF's quadrature, Max 1995 / Mildenhall et al. 2020) on
 * a voxel grid, in TensorFlow.js:
 *
 *   C(r) = Σ_k T_k·α_k·c_k + (1 − Σ_k T_k·α_k)·c_bg,   α_k = 1 − exp(−σ_k·δ),   T_k = exp(−Σ_{j<k} σ_j·δ),
 *
 * with σ_k and c_k trilinearly interpolated from the grid at the ray's sample points. The scene lives
 * in the cube [−1, 1]³ (y is up); outside it the density is 0.
 */

/** A pinhole camera on a sphere around the origin, looking at it. Angles in radians. */
export interface Camera {
  /** Angle around the y axis; 0 puts the camera on +x, π/2 on +z. */
  azimuth: number;
  /** Angle above the x–z plane. */
  elevation: number;
  /** Distance from the origin; > √3, so the camera is outside the scene's cube. */
  radius: number;
  /** Full vertical (= horizontal) field of view. */
  fov: number;
}

/** How a view is drawn. */
export interface RenderOptions {
  /** Image height = width, in pixels. */
  size: number;
  /** Samples per ray, evenly spaced over the chord of the cube's bounding sphere. */
  samples: number;
  /** Colour behind the scene, in [0, 1] (the same for every channel). */
  background: number;
}

/** The activated field on a G³ grid: density σ ≥ 0 [G³, 1] and colour in [0, 1] [G³, C], x fastest, then y, then z. */
export interface Grid {
  size: number;
  density: tf.Tensor2D;
  color: tf.Tensor2D;
}

/** Rays of one view: origin (the camera) and unit directions [H·W, 3], row-major from the top-left pixel. */
export interface Rays {
  origin: [number, number, number];
  dirs: Float32Array;
  /** Distances along each ray of the S samples, and the spacing δ between them. */
  t: Float32Array;
  delta: number;
}

type Vec3 = [number, number, number];
const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const cross = (a: Vec3, b: Vec3): Vec3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const normalize = (a: Vec3): Vec3 => {
  const n = Math.hypot(...a);
  return [a[0] / n, a[1] / n, a[2] / n];
};

/** Where a camera sits: r·(cos e·cos a, sin e, cos e·sin a). */
export function cameraPosition(c: Camera): Vec3 {
  return [c.radius * Math.cos(c.elevation) * Math.cos(c.azimuth), c.radius * Math.sin(c.elevation), c.radius * Math.cos(c.elevation) * Math.sin(c.azimuth)];
}

/**
 * The rays of a view: pixel (i, j) looks along normalize(f + u·right + v·up), u and v the pixel
 * centre's offsets times tan(fov/2), f the direction to the origin. Samples cover the chord of the
 * sphere of radius √3 around the origin (which holds the cube): t ∈ [radius − √3, radius + √3].
 */
export function cameraRays(c: Camera, o: Pick<RenderOptions, 'size' | 'samples'>): Rays {
  if (!(c.radius > Math.sqrt(3))) throw new Error(`cameraRays: radius must be > √3 (outside the scene's cube), got ${c.radius}`);
  if (!(c.fov > 0 && c.fov < Math.PI)) throw new Error(`cameraRays: fov must be in (0, π) radians, got ${c.fov}`);
  if (!(Number.isInteger(o.size) && o.size >= 1)) throw new Error(`cameraRays: size must be a positive integer, got ${o.size}`);
  if (!(Number.isInteger(o.samples) && o.samples >= 1)) throw new Error(`cameraRays: samples must be a positive integer, got ${o.samples}`);
  const origin = cameraPosition(c);
  const f = normalize(sub([0, 0, 0], origin));
  // At elevation ±90° the world's up is parallel to f; any perpendicular vector serves.
  const right = normalize(Math.abs(f[1]) > 0.999 ? [1, 0, 0] : cross(f, [0, 1, 0]));
  const up = cross(right, f);
  const h = o.size;
  const tan = Math.tan(c.fov / 2);
  const dirs = new Float32Array(h * h * 3);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < h; j++) {
      const u = ((2 * (j + 0.5)) / h - 1) * tan;
      const v = (1 - (2 * (i + 0.5)) / h) * tan;
      const d = normalize([f[0] + u * right[0] + v * up[0], f[1] + u * right[1] + v * up[1], f[2] + u * right[2] + v * up[2]]);
      dirs.set(d, (i * h + j) * 3);
    }
  }
  const near = c.radius - Math.sqrt(3);
  const delta = (2 * Math.sqrt(3)) / o.samples;
  const t = Float32Array.from({ length: o.samples }, (_, k) => near + (k + 0.5) * delta);
  return { origin, dirs, t, delta };
}

/**
 * Trilinear interpolation of a G³ grid at P points, as a sparse linear map: 8 (voxel, weight)
 * pairs per point, weight 0 where a corner lies outside the grid (zero padding). Voxel centres
 * sit at −1 + (2k + 1)/G.
 */
export interface Interpolation {
  points: number;
  voxels: number;
  index: Int32Array;
  weight: Float32Array;
}

export function trilinear(points: Float32Array, grid: number): Interpolation {
  const p = points.length / 3;
  const index = new Int32Array(p * 8);
  const weight = new Float32Array(p * 8);
  const fr = [0, 0, 0];
  const i0 = [0, 0, 0];
  for (let n = 0; n < p; n++) {
    for (let a = 0; a < 3; a++) {
      const f = ((points[n * 3 + a]! + 1) / 2) * grid - 0.5;
      i0[a] = Math.floor(f);
      fr[a] = f - i0[a]!;
    }
    for (let corner = 0; corner < 8; corner++) {
      const bx = corner & 1;
      const by = (corner >> 1) & 1;
      const bz = (corner >> 2) & 1;
      const x = i0[0]! + bx;
      const y = i0[1]! + by;
      const z = i0[2]! + bz;
      if (x < 0 || y < 0 || z < 0 || x >= grid || y >= grid || z >= grid) continue; // weight stays 0, index 0
      const k = n * 8 + corner;
      index[k] = x + grid * (y + grid * z);
      weight[k] = (bx ? fr[0]! : 1 - fr[0]!) * (by ? fr[1]! : 1 - fr[1]!) * (bz ? fr[2]! : 1 - fr[2]!);
    }
  }
  return { points: p, voxels: grid ** 3, index, weight };
}

/**
 * values [V, C] ↦ [P, C] through an {@link Interpolation}, with its exact adjoint (a scatter-add)
 * as the gradient. Both run in plain JS on data read from the backend: the map has 8 entries a row,
 * and tfjs's gather has no gradient on wasm (docs/design.md).
 */
export function interpolate(values: tf.Tensor2D, m: Interpolation): tf.Tensor2D {
  if (values.rank !== 2 || values.shape[0] !== m.voxels) {
    throw new Error(`interpolate: values must be [${m.voxels}, channels], got [${values.shape.join(', ')}]`);
  }
  const ch = values.shape[1];
  const f = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const v = (inputs[0] as tf.Tensor).dataSync();
    const out = new Float32Array(m.points * ch);
    for (let n = 0; n < m.points; n++) {
      for (let c8 = 0; c8 < 8; c8++) {
        const w = m.weight[n * 8 + c8]!;
        if (w === 0) continue;
        const src = m.index[n * 8 + c8]! * ch;
        for (let c = 0; c < ch; c++) out[n * ch + c]! += w * v[src + c]!;
      }
    }
    const gradFunc = (dy: tf.Tensor) => {
      const g = dy.dataSync();
      const back = new Float32Array(m.voxels * ch);
      for (let n = 0; n < m.points; n++) {
        for (let c8 = 0; c8 < 8; c8++) {
          const w = m.weight[n * 8 + c8]!;
          if (w === 0) continue;
          const dst = m.index[n * 8 + c8]! * ch;
          for (let c = 0; c < ch; c++) back[dst + c]! += w * g[n * ch + c]!;
        }
      }
      return tf.tensor2d(back, [m.voxels, ch]);
    };
    return { value: tf.tensor2d(out, [m.points, ch]), gradFunc };
  });
  return f(values) as tf.Tensor2D;
}

/**
 * Alpha compositing along rays: density [R, S] (≥ 0), color [R, S, C], spacing δ, background.
 * Returns the colours [R, C] and the opacities Σ_k w_k [R]. The exclusive cumulative sum of σ·δ is
 * a matMul with a strictly upper-triangular matrix (differentiable on every backend).
 */
export function composite(density: tf.Tensor2D, color: tf.Tensor3D, delta: number, background: number): { rgb: tf.Tensor2D; opacity: tf.Tensor1D } {
  return tf.tidy(() => {
    const s = density.shape[1];
    const upper = tf.tensor2d(Float32Array.from({ length: s * s }, (_, idx) => (Math.floor(idx / s) < idx % s ? 1 : 0)), [s, s]);
    const tau = tf.mul(density, delta) as tf.Tensor2D; // σ_k·δ
    const alpha = tf.sub(1, tf.exp(tf.neg(tau))); // α_k = 1 − exp(−σ_k δ)
    const trans = tf.exp(tf.neg(matmul(tau, upper))); // T_k = exp(−Σ_{j<k} σ_j δ)
    const w = tf.mul(trans, alpha); // [R, S]
    const opacity = tf.sum(w, 1) as tf.Tensor1D;
    const rgb = tf.add(tf.sum(tf.mul(w.expandDims(2), color), 1), tf.mul(tf.sub(1, opacity).expandDims(1), background)) as tf.Tensor2D;
    return { rgb, opacity };
  });
}

/** Precomputed sampling of a set of views: the interpolation map of every ray sample. */
export interface ViewBatch {
  views: number;
  interp: Interpolation;
  delta: number;
}

/** The sample points of the views' rays and their interpolation map (no tensors; cheap to cache). */
export function viewBatch(cameras: readonly Camera[], grid: number, o: Pick<RenderOptions, 'size' | 'samples'>): ViewBatch {
  const rays = cameras.map((c) => cameraRays(c, o));
  const per = o.size * o.size * o.samples;
  const points = new Float32Array(cameras.length * per * 3);
  rays.forEach((r, v) => {
    for (let p = 0; p < o.size * o.size; p++) {
      for (let k = 0; k < o.samples; k++) {
        const at = ((v * o.size * o.size + p) * o.samples + k) * 3;
        for (let a = 0; a < 3; a++) points[at + a] = r.origin[a]! + r.t[k]! * r.dirs[p * 3 + a]!;
      }
    }
  });
  return { views: cameras.length, interp: trilinear(points, grid), delta: rays[0]?.delta ?? 0 };
}

/**
 * Renders views of a grid: [N, size, size, C] in [−1, 1] (2·C(r) − 1, the teacher's range).
 * Differentiable w.r.t. the grid's density and colour.
 */
export function render(g: Grid, cameras: readonly Camera[] | ViewBatch, o: RenderOptions): tf.Tensor4D {
  const batch = 'interp' in cameras ? cameras : viewBatch(cameras, g.size, o);
  if (batch.interp.voxels !== g.size ** 3) throw new Error(`render: the views were sampled for another grid size than ${g.size}`);
  return tf.tidy(() => {
    const ch = g.color.shape[1];
    const field = interpolate(tf.concat([g.density, g.color], 1) as tf.Tensor2D, batch.interp); // [P, 1 + C]
    const rays = batch.views * o.size * o.size;
    const density = field.slice([0, 0], [-1, 1]).reshape([rays, o.samples]) as tf.Tensor2D;
    const color = field.slice([0, 1], [-1, ch]).reshape([rays, o.samples, ch]) as tf.Tensor3D;
    const { rgb } = composite(density, color, batch.delta, o.background);
    return tf.sub(tf.mul(rgb, 2), 1).reshape([batch.views, o.size, o.size, ch]) as tf.Tensor4D;
  });
}

/** A learnable voxel field: raw variables, activated as σ = scale·softplus(raw), c = sigmoid(raw). */
export interface VoxelField {
  size: number;
  params: { density: tf.Variable<tf.Rank.R2>; color: tf.Variable<tf.Rank.R2> };
}

/** Density of the field per unit of raw softplus: lets Adam reach opaque voxels (σ ≈ 20) in tens of steps. */
export const DENSITY_SCALE = 10;

export function fieldGrid(f: VoxelField): Grid {
  return {
    size: f.size,
    density: tf.mul(tf.softplus(f.params.density), DENSITY_SCALE) as tf.Tensor2D,
    color: tf.sigmoid(f.params.color) as tf.Tensor2D,
  };
}

/** Peak signal-to-noise ratio of images in [−1, 1], on the [0, 1] scale: 10·log10(1/MSE). */
export function psnr(a: tf.Tensor, b: tf.Tensor): number {
  const mse = tf.tidy(() => tf.mean(tf.square(tf.sub(a, b))).dataSync()[0]! / 4);
  return 10 * Math.log10(1 / Math.max(mse, 1e-12));
}
