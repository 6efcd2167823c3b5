/**
 * Test fixtures for the example of appendix A.1 (not exported from the package): the exact
 * denoisers of P_θ = (θ, U[0,1]) diffused in the VE space with σ² = t (the Brownian motion (A.3)).
 */
import * as tf from '@tensorflow/tfjs';
import type { Denoiser } from '@diff-instruct/sde';

/** erfc in float64 (Numerical Recipes erfcc, relative error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}
const Phi = (x: number) => 0.5 * erfc(-x / Math.SQRT2);
const phi = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

/** E[z0 | z_t] for z0 ∼ U[0,1], z_t = z0 + σ n: the mean of N(z_t, σ²) truncated to [0, 1]. */
export function boxDenoiser(zt: number, sigma: number): number {
  let a = -zt / sigma;
  let b = (1 - zt) / sigma;
  // Reflect into the lower tail (E[z0] = 1 − E[1 − z0]) so Φ(b) − Φ(a) is not a difference of ones.
  const flip = a + b > 0;
  if (flip) [a, b] = [-b, -a];
  const Z = Phi(b) - Phi(a);
  const base = flip ? 1 - zt : zt;
  const m = Z > 1e-300 ? base + (sigma * (phi(a) - phi(b))) / Z : Math.min(1, Math.max(0, base));
  return flip ? 1 - m : m;
}

/** The exact denoiser of P_θ diffused to noise level σ (rows (x, z)): D = (θ, E[z0 | z_t]). */
export function a1Denoiser(theta: number): Denoiser {
  return (x, sigma) => {
    const xs = x.dataSync();
    const s = sigma.dataSync();
    const out = new Float32Array(xs.length);
    for (let i = 0; i < s.length; i++) {
      out[2 * i] = theta;
      out[2 * i + 1] = boxDenoiser(xs[2 * i + 1]!, s[i]!);
    }
    return tf.tensor(out, x.shape, 'float32');
  };
}
