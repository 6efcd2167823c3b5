import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));

/** Workspace packages resolve to their TypeScript source, so tests never wait for a build. */
const alias = [
  { find: /^@diff-instruct\/([a-z-]+)\/testing$/, replacement: `${root}packages/$1/src/testing/index.ts` },
  { find: /^@diff-instruct\/([a-z-]+)\/node$/, replacement: `${root}packages/$1/src/node.ts` },
  { find: /^@diff-instruct\/([a-z-]+)$/, replacement: `${root}packages/$1/src/index.ts` },
];

const project = (name: string, dir: string) => ({
  resolve: { alias },
  test: {
    name,
    include: [`${dir}/src/**/*.test.ts`],
    setupFiles: [`${root}vitest.setup.ts`],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});

export default defineConfig({
  test: {
    // tfjs tests are CPU-bound; two cores, two workers.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    pool: 'forks',
    projects: [
      ...['sde', 'divergences', 'models', 'data', 'metrics', 'trainer', 'native', 'cli', 'image-eval'].map((n) => project(n, `packages/${n}`)),
      project('distill-cli', 'apps/distill-cli'),
      project('gan-refine', 'apps/gan-refine'),
      project('playground', 'apps/playground'),
      project('sds-nerf', 'examples/sds-nerf'),
      // Tests of the repository as a whole (its layering); they need no tfjs backend.
      { test: { name: 'repo', include: ['scripts/**/*.test.ts'] } },
    ],
  },
});
