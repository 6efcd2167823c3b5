/**
 * A seed for one named stream of a run, derived from the run's seed. Each phase draws from its own
 * stream, so resuming one phase never shifts the numbers of another.
 */
export function seedFor(seed: number, stream: string): number {
  let h = (seed ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < stream.length; i++) {
    h ^= stream.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
