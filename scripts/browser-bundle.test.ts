/**
 * The libraries run in a browser: the main entry of each of them bundles for the browser platform
 * with nothing Node-only in it (no `node:*` import, no bare Node builtin such as `fs` or `path`).
 * Their file I/O lives in each package's `./node` entry, which is not checked here.
 *
 * Bundles `packages/<name>/src/index.ts` with esbuild (the one tsup uses), resolving workspace
 * packages to their sources through the `@diff-instruct/source` condition and leaving
 * `@tensorflow/*` (a peer dependency the page provides) external.
 */
import { builtinModules, createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The part of esbuild's API used here (esbuild is tsup's dependency, not the root's, so no types). */
interface OnResolveArgs {
  path: string;
  importer: string;
}
interface PluginBuild {
  onResolve(options: { filter: RegExp }, callback: (args: OnResolveArgs) => { path: string; external: boolean } | undefined): void;
}
interface Esbuild {
  build(options: {
    entryPoints: string[];
    bundle: boolean;
    platform: 'browser';
    format: 'esm';
    write: false;
    conditions: string[];
    external: string[];
    logLevel: 'silent';
    plugins: { name: string; setup(build: PluginBuild): void }[];
  }): Promise<{ errors: { text: string }[]; outputFiles: { text: string }[] }>;
}
const requireFromTsup = createRequire(createRequire(import.meta.url).resolve('tsup/package.json'));
const esbuild = requireFromTsup('esbuild') as Esbuild;

/** The libraries whose main entry must run in a browser. */
const LIBRARIES = ['sde', 'divergences', 'models', 'metrics', 'trainer', 'data'];

const NODE_BUILTINS = new Set(builtinModules);
const isNodeBuiltin = (spec: string) => spec.startsWith('node:') || NODE_BUILTINS.has(spec) || NODE_BUILTINS.has(spec.split('/')[0]!);

/** Bundles a main entry for the browser; returns every Node builtin it imports, as `builtin (from file)`. */
async function nodeImportsOf(entry: string): Promise<{ nodeImports: string[]; bytes: number }> {
  const found: string[] = [];
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    conditions: ['@diff-instruct/source'],
    external: ['@tensorflow/*'],
    logLevel: 'silent',
    plugins: [
      {
        name: 'report-node-builtins',
        setup(build) {
          build.onResolve({ filter: /.*/ }, (args) => {
            if (!isNodeBuiltin(args.path)) return undefined;
            found.push(`${args.path} (from ${relative(root, args.importer)})`);
            return { path: args.path, external: true };
          });
        },
      },
    ],
  });
  expect(result.errors.map((e) => e.text)).toEqual([]);
  return { nodeImports: [...new Set(found)].sort(), bytes: result.outputFiles.reduce((a, f) => a + f.text.length, 0) };
}

describe('the main entry of every library bundles for the browser', () => {
  for (const name of LIBRARIES) {
    it(`@diff-instruct/${name} imports nothing Node-only`, async () => {
      const { nodeImports, bytes } = await nodeImportsOf(join(root, 'packages', name, 'src', 'index.ts'));
      expect(nodeImports, `@diff-instruct/${name}: Node-only imports in the main entry; move that file I/O to ./node`).toEqual([]);
      expect(bytes).toBeGreaterThan(0);
    });
  }

  it('notices a Node builtin (the check itself works)', async () => {
    const { nodeImports } = await nodeImportsOf(join(root, 'packages', 'models', 'src', 'node.ts'));
    expect(nodeImports).toContain('node:fs (from packages/models/src/node.ts)');
  });
});
