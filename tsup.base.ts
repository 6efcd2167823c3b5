import type { Options } from 'tsup';

/** The build of every library: ESM, declarations, source maps, Node 20. */
export function libraryBuild(entry: Options['entry'] = ['src/index.ts']): Options {
  return { entry, format: ['esm'], dts: true, clean: true, sourcemap: true, target: 'node20' };
}
