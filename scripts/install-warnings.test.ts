/**
 * A fresh `pnpm install` prints no warnings. The install itself is checked where it really happens,
 * in `.ci/run` (a clean clone, `pnpm install --frozen-lockfile`, failing on "WARN" or "Failed to
 * create bin"); running a second full install here would be slow and network-bound. This test
 * guards, from the manifests alone, the causes of such warnings that a change in this repository
 * can bring in:
 *
 * - a workspace package that depends on another one with a `bin`: pnpm links that bin at install,
 *   before anything is built, and warns "Failed to create bin" because its `dist/` target is absent;
 * - a dependency range on a workspace package that its version does not satisfy (pnpm would fetch
 *   it from the registry instead of linking it, or fail).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

interface Manifest {
  name: string;
  version?: string;
  bin?: string | Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const read = (dir: string): Manifest & { dir: string } => ({ dir, ...(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest) });
const workspace = ['packages', 'apps', 'examples'].flatMap((group) =>
  readdirSync(join(root, group), { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(root, group, e.name, 'package.json')))
    .map((e) => read(join(root, group, e.name))),
);
const everyManifest = [read(root), ...workspace];
const byName = new Map(workspace.map((m) => [m.name, m]));
const depsOf = (m: Manifest) => ({ ...m.dependencies, ...m.devDependencies, ...m.optionalDependencies });

describe('install warnings', () => {
  it('finds the workspace packages', () => {
    expect(workspace.length).toBeGreaterThan(8);
  });

  it('no workspace package depends on a workspace package with a bin (its target is unbuilt at install)', () => {
    const found = everyManifest.flatMap((m) =>
      Object.keys(depsOf(m))
        .filter((d) => byName.get(d)?.bin !== undefined)
        .map((d) => `${m.name} -> ${d}`),
    );
    expect(found).toEqual([]);
  });

  it('every dependency on a workspace package is workspace:*', () => {
    const found = everyManifest.flatMap((m) =>
      Object.entries(depsOf(m))
        .filter(([d, range]) => byName.has(d) && range !== 'workspace:*')
        .map(([d, range]) => `${m.name} -> ${d}@${range}`),
    );
    expect(found).toEqual([]);
  });
});
