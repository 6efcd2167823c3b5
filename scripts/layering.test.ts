/**
 * The layering of the repository: an app (apps/*, examples/*) is a thin shell over the libraries in
 * packages/, and nothing imports an app except its own files. What apps share lives in a package
 * (`@diff-instruct/cli` for the command-line pieces, `@diff-instruct/image-eval` for image metrics),
 * never in another app.
 *
 * Walks every .ts/.mts/.mjs/.js file of the repository outside node_modules, dist and runs, and
 * reads its import specifiers: static and dynamic imports, re-exports and require().
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SKIP = new Set(['node_modules', 'dist', 'runs', '.git', '.turbo']);
const SOURCE = /\.(ts|mts|mjs|js)$/;

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (!SKIP.has(e.name)) walk(join(dir, e.name), out);
    } else if (e.isFile() && SOURCE.test(e.name)) out.push(join(dir, e.name));
  }
  return out;
}

/** Every module specifier a file names: `import … from 'x'`, `export … from 'x'`, `import 'x'`, `import('x')`, `require('x')`. */
function specifiers(source: string): string[] {
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  return patterns.flatMap((p) => [...source.matchAll(p)].map((m) => m[1]!));
}

/** The apps: every workspace package under apps/ and examples/, by folder and package name. */
const apps = ['apps', 'examples'].flatMap((group) =>
  readdirSync(join(root, group), { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(root, group, e.name, 'package.json')))
    .map((e) => {
      const dir = join(root, group, e.name);
      return { dir, name: (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string }).name };
    }),
);

const files = walk(root);
const inside = (path: string, dir: string) => path === dir || path.startsWith(dir + sep);

/** The imports of `app` from files outside it, as "file: specifier". */
function importsOf(app: { dir: string; name: string }): string[] {
  const found: string[] = [];
  for (const file of files) {
    if (inside(file, app.dir)) continue;
    for (const s of specifiers(readFileSync(file, 'utf8'))) {
      const byName = s === app.name || s.startsWith(`${app.name}/`);
      const byPath = s.startsWith('.') && inside(resolve(dirname(file), s), app.dir);
      if (byName || byPath) found.push(`${relative(root, file)}: ${s}`);
    }
  }
  return found;
}

describe('layering', () => {
  it('finds the apps and the source files', () => {
    expect(apps.map((a) => a.name)).toEqual(expect.arrayContaining(['@diff-instruct/distill-cli', '@diff-instruct/gan-refine']));
    expect(files.length).toBeGreaterThan(50);
  });

  it('reads import specifiers of every form', () => {
    const src = `import { a,\n b } from '@x/a';\nexport { c } from "../c.js";\nimport 'side';\nconst d = await import('d');\nconst e = require('e');\nimport type { F } from './f.js';`;
    expect(specifiers(src).sort()).toEqual(['../c.js', './f.js', '@x/a', 'd', 'e', 'side']);
  });

  it('nothing outside apps/distill-cli imports @diff-instruct/distill-cli or its files', () => {
    const app = apps.find((a) => a.name === '@diff-instruct/distill-cli')!;
    expect(importsOf(app)).toEqual([]);
  });

  it.each(apps.map((a) => [relative(root, a.dir), a] as const))('no other app, package, script or bench imports %s', (_, app) => {
    expect(importsOf(app)).toEqual([]);
  });
});
