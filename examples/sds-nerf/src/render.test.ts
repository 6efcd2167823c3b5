import * as tf from '@tensorflow/tfjs';
import { Rng } from '@diff-instruct/sde';
import { gradCheck, tol } from '@diff-instruct/sde/testing';
import { describe, expect, it } from 'vitest';

import { cameraRays, composite, fieldGrid, interpolate, render, trilinear, viewBatch, type Camera } from './render.js';
import { azimuthBin, cameraAt, initField, sceneGrid } from './scene.js';

const cam = (azimuth: number, elevation = 0): Camera => ({ azimuth, elevation, radius: 3, fov: Math.PI / 4 });

describe('composite', () => {
  it('matches a hand computation of alpha compositing', () => {
    const density = [1, 2, 0.5];
    const delta = 0.5;
    const colors = [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ];
    const bg = 0.2;
    const { rgb, opacity } = composite(tf.tensor2d([density]), tf.tensor3d([colors]), delta, bg);
    // α_k = 1 − e^{−σ_k δ}; T_1 = 1, T_2 = e^{−0.5}, T_3 = e^{−0.5 − 1}; w_k = T_k α_k.
    const alpha = density.map((s) => 1 - Math.exp(-s * delta));
    const T = [1, Math.exp(-0.5), Math.exp(-1.5)];
    const w = alpha.map((a, k) => a * T[k]!);
    const acc = w[0]! + w[1]! + w[2]!;
    expect(opacity.dataSync()[0]).toBeCloseTo(acc, 5);
    expect(acc).toBeCloseTo(1 - Math.exp(-1.75), 6); // 1 − T after the last sample
    const got = rgb.dataSync();
    for (let c = 0; c < 3; c++) expect(got[c]).toBeCloseTo(w[c]! + (1 - acc) * bg, 5);
  });

  it('shows the background through empty space', () => {
    const { rgb, opacity } = composite(tf.zeros([2, 4]) as tf.Tensor2D, tf.ones([2, 4, 3]) as tf.Tensor3D, 0.1, 0.3);
    expect(Array.from(opacity.dataSync())).toEqual([0, 0]);
    for (const v of rgb.dataSync()) expect(v).toBeCloseTo(0.3, 6);
  });
});

describe('cameraRays', () => {
  it('points the centre pixel at the origin, with unit directions and the right orientation', () => {
    const r = cameraRays(cam(0), { size: 3, samples: 4 });
    expect(r.origin[0]).toBeCloseTo(3, 6);
    expect(r.origin[1]).toBeCloseTo(0, 6);
    const dir = (i: number, j: number) => Array.from(r.dirs.subarray((i * 3 + j) * 3, (i * 3 + j) * 3 + 3));
    const centre = dir(1, 1);
    expect(centre[0]).toBeCloseTo(-1, 6);
    for (let p = 0; p < 9; p++) expect(Math.hypot(...r.dirs.subarray(p * 3, p * 3 + 3))).toBeCloseTo(1, 5);
    // Top row looks up (+y); right column looks to the camera's right, −z for a camera on +x.
    expect(dir(0, 1)[1]).toBeGreaterThan(0);
    expect(dir(1, 2)[2]).toBeLessThan(0);
    // The top-middle pixel's angle from the axis: atan((2/3)·tan(fov/2)).
    const angle = Math.acos(-dir(0, 1)[0]!);
    expect(angle).toBeCloseTo(Math.atan((2 / 3) * Math.tan(Math.PI / 8)), 5);
    // Samples cover the chord of the bounding sphere of the cube, at their midpoints.
    expect(r.delta).toBeCloseTo((2 * Math.sqrt(3)) / 4, 6);
    expect(r.t[0]).toBeCloseTo(3 - Math.sqrt(3) + r.delta / 2, 5);
    // A camera at azimuth π/2 sits on +z; elevation lifts it.
    expect(cameraRays(cam(Math.PI / 2), { size: 1, samples: 1 }).origin[2]).toBeCloseTo(3, 6);
    expect(cameraRays(cam(0, Math.PI / 6), { size: 1, samples: 1 }).origin[1]).toBeCloseTo(1.5, 6);
  });

  it('refuses cameras inside the scene', () => {
    expect(() => cameraRays({ ...cam(0), radius: 1 }, { size: 2, samples: 2 })).toThrow(/radius must be > √3/);
  });

  it('bins azimuths around the bin centres', () => {
    const b = (f: number) => azimuthBin(2 * Math.PI * f, 8);
    expect([b(0), b(0.49 / 8), b(0.51 / 8), b(1 - 0.1 / 8), b(-0.2 / 8), b(3 / 8)]).toEqual([0, 0, 1, 0, 0, 3]);
  });
});

describe('trilinear interpolation', () => {
  it('reproduces a linear field inside the grid, is zero outside, and its gradient is the exact adjoint', () => {
    const g = 4;
    const centres = (i: number) => -1 + (2 * i + 1) / g;
    const vals = new Float32Array(g ** 3);
    for (let z = 0; z < g; z++) for (let y = 0; y < g; y++) for (let x = 0; x < g; x++) vals[x + g * (y + g * z)] = 1 + centres(x) - 2 * centres(y) + 0.5 * centres(z);
    const pts = Float32Array.from([0.1, -0.2, 0.3, 0.5, 0.5, -0.6, 5, 5, 5]);
    const m = trilinear(pts, g);
    const v = tf.tensor2d(vals, [g ** 3, 1]);
    const out = interpolate(v, m).dataSync();
    expect(out[0]).toBeCloseTo(1 + 0.1 + 0.4 + 0.15, 5);
    expect(out[1]).toBeCloseTo(1 + 0.5 - 1 - 0.3, 5);
    expect(out[2]).toBe(0);
    // ⟨A v, y⟩ = ⟨v, Aᵀ y⟩ with Aᵀ y from the gradient.
    const y = tf.tensor2d([[0.3], [-1.2], [2]]);
    const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(interpolate(x as tf.Tensor2D, m), y)))(v);
    const lhs = tf.sum(tf.mul(interpolate(v, m), y)).dataSync()[0]!;
    const rhs = tf.sum(tf.mul(v, grad)).dataSync()[0]!;
    expect(rhs).toBeCloseTo(lhs, 4);
  });
});

describe('render', () => {
  it("has the gradient of finite differences w.r.t. a field's density and colour voxels", () => {
    const size = 6;
    const field = initField(size, new Rng(1));
    // A denser field than a fresh one, so that colour and occlusion both matter.
    field.params.density.assign(tf.add(field.params.density, tf.tensor2d(new Rng(2).normal(size ** 3).map((e) => 4.6 + e), [size ** 3, 1])));
    const opts = { size: 4, samples: 8, background: 0.1 };
    const views = viewBatch([cam(0.3, 0.2), cam(2.1, -0.3)], size, opts);
    const weights = new Rng(3).normalTensor([2, 4, 4, 3]);
    const f = (d: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.mul(render(fieldGrid({ size, params: { density: d as tf.Variable<tf.Rank.R2>, color: c as tf.Variable<tf.Rank.R2> } }), views, opts), weights)) as tf.Scalar;
    const r = gradCheck(f, [field.params.density, field.params.color], { eps: 1e-2, probes: 24 });
    expect(r.analytic.some((g) => Math.abs(g) > 1e-2)).toBe(true); // some probed voxels are seen
    expect(r.maxRelError).toBeLessThan(tol(2e-2));
  });

  it('draws the ground-truth scene in [−1, 1], the object in the middle and the background at the corners', () => {
    const opts = { size: 8, samples: 32, background: 0 };
    const img = render(sceneGrid(16), [cameraAt(0.4, { elevation: 20, radius: 3, fov: 40, bins: 8 })], opts);
    expect(img.shape).toEqual([1, 8, 8, 3]);
    const px = img.arraySync()[0]!;
    expect(Math.max(...px[4]![4]!)).toBeGreaterThan(0); // a bright solid in the middle
    expect(px[0]![0]!.every((v) => v < -0.95)).toBe(true); // black background at the corner
  });
});
