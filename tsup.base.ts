import type { Options } from 'tsup';

/** The build of every library: ESM, declarations, source maps, Node 20. */
export function libraryBuild(entry: Options['entry'] = ['src/index.ts']): Options {
  return { entry, format: ['esm'], dts: true, clean: true, sourcemap: true, target: 'node20' };
}

/** The build of a command-line app (distill, gan-refine, sds-nerf): its bin and index, no declarations. */
export function appBuild(): Options {
  return { entry: ['src/bin.ts', 'src/index.ts'], format: ['esm'], dts: false, clean: true, sourcemap: true, target: 'node20' };
}
