import * as tf from '@tensorflow/tfjs';
import type { Rng } from '@diff-instruct/sde';

import type { Camera, Grid, VoxelField } from './render.js';

/** The views of the example: cameras on a circle at a fixed elevation, looking at the origin. */
export interface ViewSettings {
  /** Degrees above the ground plane. */
  elevation: number;
  radius: number;
  /** Degrees. */
  fov: number;
  /** Azimuth bins of the teacher's label. */
  bins: number;
}

const rad = (deg: number) => (deg * Math.PI) / 180;

export function cameraAt(azimuth: number, v: ViewSettings): Camera {
  return { azimuth, elevation: rad(v.elevation), radius: v.radius, fov: rad(v.fov) };
}

/** The bin of an azimuth: bins of width 2π/B centred on k·2π/B, k = 0 … B − 1. */
export function azimuthBin(azimuth: number, bins: number): number {
  const k = Math.round((azimuth / (2 * Math.PI)) * bins);
  return ((k % bins) + bins) % bins;
}

/** n cameras at uniform random azimuths, with their bins. */
export function randomCameras(rng: Rng, n: number, v: ViewSettings): { cameras: Camera[]; bins: Int32Array } {
  const az = Array.from({ length: n }, () => 2 * Math.PI * rng.next());
  return { cameras: az.map((a) => cameraAt(a, v)), bins: Int32Array.from(az, (a) => azimuthBin(a, v.bins)) };
}

/** n evenly spaced azimuths starting at `offset` (a fraction of the spacing). */
export function turntable(n: number, v: ViewSettings, offset = 0): Camera[] {
  return Array.from({ length: n }, (_, k) => cameraAt(((k + offset) * 2 * Math.PI) / n, v));
}

/** One solid of the ground-truth scene, with soft edges (a logistic of the signed distance). */
interface Solid {
  kind: 'ball' | 'box';
  center: [number, number, number];
  /** Radius of a ball; half-widths of a box. */
  size: [number, number, number];
  rgb: [number, number, number];
}

/**
 * The ground truth: an asymmetric, coloured object in [−1, 1]³ (y up), so that every azimuth
 * looks different: a red ball and a green box side by side, a blue ball on top of the box, and
 * a yellow bar lying in front of the ball.
 */
export const SCENE: readonly Solid[] = [
  { kind: 'ball', center: [0.35, -0.2, 0.15], size: [0.38, 0.38, 0.38], rgb: [0.9, 0.15, 0.1] },
  { kind: 'box', center: [-0.35, -0.25, -0.2], size: [0.25, 0.3, 0.25], rgb: [0.1, 0.75, 0.2] },
  { kind: 'ball', center: [-0.35, 0.3, -0.2], size: [0.22, 0.22, 0.22], rgb: [0.15, 0.3, 0.95] },
  { kind: 'box', center: [0.2, -0.5, -0.45], size: [0.45, 0.1, 0.1], rgb: [0.95, 0.85, 0.1] },
];

/** Density inside a solid: α = 1 − exp(−σδ) ≈ 0.9 per sample at δ ≈ 0.11 (32 samples). */
const SOLID_DENSITY = 20;
/** Width of the soft edge, in scene units (about half a voxel of a 16³ grid). */
const EDGE = 0.05;

function signedDistance(s: Solid, p: [number, number, number]): number {
  const d = p.map((v, a) => v - s.center[a]!);
  if (s.kind === 'ball') return Math.hypot(...d) - s.size[0];
  const q = d.map((v, a) => Math.abs(v) - s.size[a]!);
  const outside = Math.hypot(...q.map((v) => Math.max(v, 0)));
  return outside + Math.min(Math.max(q[0]!, q[1]!, q[2]!), 0);
}

/** The ground-truth scene sampled at the centres of a G³ grid (the layout of `Grid`). */
export function sceneGrid(size: number): Grid {
  const v = size ** 3;
  const density = new Float32Array(v);
  const color = new Float32Array(v * 3);
  for (let z = 0; z < size; z++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const p = [x, y, z].map((i) => -1 + (2 * i + 1) / size) as [number, number, number];
        const n = x + size * (y + size * z);
        // The solid nearest to the point gives the colour; the densities add up (capped by the largest).
        let best = Infinity;
        let occ = 0;
        for (const s of SCENE) {
          const d = signedDistance(s, p);
          const o = 1 / (1 + Math.exp(d / EDGE));
          occ = Math.max(occ, o);
          if (d < best) {
            best = d;
            color.set(s.rgb, n * 3);
          }
        }
        density[n] = SOLID_DENSITY * occ;
      }
    }
  }
  return { size, density: tf.tensor2d(density, [v, 1]), color: tf.tensor2d(color, [v, 3]) };
}

/** A fresh field: almost empty (σ ≈ 0.07, a faint haze) and grey, with a little noise from `rng`. */
export function initField(size: number, rng: Rng, name = 'field'): VoxelField {
  const v = size ** 3;
  const d = rng.normal(v).map((e) => -5 + 0.1 * e);
  const c = rng.normal(v * 3).map((e) => 0.1 * e);
  return {
    size,
    params: {
      density: tf.variable(tf.tensor2d(d, [v, 1]), true, `${name}.density.${Math.random().toString(36).slice(2)}`),
      color: tf.variable(tf.tensor2d(c, [v, 3]), true, `${name}.color.${Math.random().toString(36).slice(2)}`),
    },
  };
}
