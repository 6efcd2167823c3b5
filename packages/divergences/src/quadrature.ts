/**
 * Composite Simpson's rule on [a, b] with `n` nodes (n is rounded up to the next odd number):
 * ∫_a^b f(u) du ≈ Σ_k weights[k]·f(nodes[k]). Accurate to O(h⁴) for smooth f, and still O(h⁴) for
 * piecewise-smooth f whose kinks fall on even-indexed nodes (panel boundaries).
 */
export function simpson(a: number, b: number, n: number): { nodes: Float64Array; weights: Float64Array } {
  if (!(b > a)) throw new Error(`simpson: need a < b, got [${a}, ${b}]`);
  if (!(n >= 3)) throw new Error(`simpson: need at least 3 nodes, got ${n}`);
  const m = n % 2 === 1 ? n : n + 1;
  const h = (b - a) / (m - 1);
  const nodes = new Float64Array(m);
  const weights = new Float64Array(m);
  for (let k = 0; k < m; k++) {
    nodes[k] = a + k * h;
    weights[k] = ((k === 0 || k === m - 1 ? 1 : k % 2 === 1 ? 4 : 2) * h) / 3;
  }
  return { nodes, weights };
}
