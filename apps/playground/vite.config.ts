import { copyFileSync, createReadStream, existsSync, mkdirSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';

import { defaultClientConditions, defineConfig, type Plugin } from 'vite';

import { MIME, STATIC_FILES } from './scripts/static-files.js';

/**
 * Serves the weights and wasm binaries of {@link STATIC_FILES} in `vite` (dev) and copies them into
 * the output of `vite build`. A file that is missing fails the build with its path.
 */
function staticFiles(): Plugin {
  return {
    name: 'playground-static-files',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const path = decodeURIComponent((req.url ?? '').split('?')[0]!).replace(/^\/+/, '');
        const file = STATIC_FILES[path];
        if (file === undefined) return next();
        if (!existsSync(file)) {
          res.statusCode = 404;
          res.end(`${file} is not there`);
          return;
        }
        res.setHeader('Content-Type', MIME[extname(file)] ?? 'application/octet-stream');
        createReadStream(file).pipe(res);
      });
    },
    writeBundle(options) {
      const out = options.dir!;
      const missing = Object.entries(STATIC_FILES).filter(([, file]) => !existsSync(file));
      if (missing.length > 0) {
        const hint = missing.some(([p]) => p === 'model.onnx') ? ' (model.onnx: run the build through `pnpm playground:build`, which exports it first)' : '';
        this.error(`the page needs files that are not there${hint}:\n${missing.map(([p, f]) => `  ${p} <- ${f}`).join('\n')}`);
      }
      for (const [path, file] of Object.entries(STATIC_FILES)) {
        mkdirSync(dirname(join(out, path)), { recursive: true });
        copyFileSync(file, join(out, path));
      }
    },
  };
}

export default defineConfig({
  // Relative URLs, so dist/ works from any folder of any static host.
  base: './',
  resolve: {
    // The workspace libraries from their TypeScript source (no `pnpm build` first), and
    // onnxruntime-web's build that loads its wasm glue from ort.env.wasm.wasmPaths instead of inlining it.
    conditions: ['@diff-instruct/source', 'onnxruntime-web-use-extern-wasm', ...defaultClientConditions],
  },
  build: {
    target: 'es2022',
    // tfjs and onnxruntime-web are large; the page is a demo, not a landing page.
    chunkSizeWarningLimit: 4096,
  },
  plugins: [staticFiles()],
});
