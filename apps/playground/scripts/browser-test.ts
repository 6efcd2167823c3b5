/**
 * The playground in a real browser: builds the page (unless dist/ is newer than everything it is
 * built from), serves apps/playground/dist on 127.0.0.1 and opens it in headless Chromium
 * (playwright-core; $CHROMIUM or /usr/bin/chromium) on the wasm backend. It fails on any request to
 * another host, any console error or uncaught page error, and checks:
 *
 * - Sample: the generator's grid is a grid of MNIST-like digits by its pixel statistics, the same
 *   seed draws the same grid without leaking tensors, another seed another grid; the teacher at
 *   9 NFE and the ONNX export draw plausible grids too, the ONNX one the same images as tfjs.
 * - Distil live: the live distillation runs, its energy distance falls over its first points, and
 *   it stops and restarts.
 * - Bad input: a missing or truncated weight file, a missing ONNX file and an unknown backend each
 *   give one clear message on the page and no page error.
 *
 * Usage (from the repository root): pnpm playground:test [--screenshots] [--build | --no-build]
 *   --screenshots   write apps/playground/docs/sample.png and distil.png
 *   --build         build even if dist/ looks fresh; --no-build: use dist/ as it is
 *   --only=LIST     run only some of the checks: sample, distil, bad-input (comma-separated)
 * Environment: CHROMIUM (the browser), PLAYGROUND_TEST_LIMIT_S (overall limit, default 600).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium, type Browser, type Page } from 'playwright-core';

import { MIME, STATIC_FILES } from './static-files.js';

const app = resolve(fileURLToPath(new URL('..', import.meta.url)));
const repo = resolve(app, '../..');
const dist = join(app, 'dist');
const args = new Set(process.argv.slice(2));
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const runs = (check: string) => only === undefined || only.includes(check);
const LIMIT_S = Number(process.env.PLAYGROUND_TEST_LIMIT_S ?? 600);
/** Longest wait for one thing on the page (a grid, a few distillation points). */
const WAIT_MS = 180_000;

class Failure extends Error {}

const t0 = performance.now();
const timings: Array<[string, number]> = [];
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Runs `fn` as a named step: prints its name and time, and keeps the time for the summary. */
async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  process.stdout.write(`· ${name}\n`);
  try {
    return await fn();
  } finally {
    const ms = performance.now() - start;
    timings.push([name, ms]);
    process.stdout.write(`  ${name}: ${seconds(ms)}\n`);
  }
}

function check(cond: boolean, message: string): asserts cond {
  if (!cond) throw new Failure(message);
}

// ——— the build ———

/** The newest modification time of the files under `dir` (or of the file `dir`). */
function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let t = 0;
  for (const e of readdirSync(path, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist' || e.name.endsWith('.test.ts')) continue;
    t = Math.max(t, newest(join(path, e.name)));
  }
  return t;
}

function buildIfStale(): void {
  const inputs = [
    join(app, 'index.html'),
    join(app, 'vite.config.ts'),
    join(app, 'src'),
    join(app, 'scripts/static-files.ts'),
    join(app, 'scripts/export-onnx.ts'),
    ...readdirSync(join(repo, 'packages')).map((p) => join(repo, 'packages', p, 'src')),
    ...Object.values(STATIC_FILES).filter((f) => !f.includes(`${sep}.generated${sep}`)),
  ];
  const built = newest(join(dist, 'index.html'));
  const stale = built === 0 || inputs.some((f) => newest(f) > built);
  if (args.has('--no-build') || (!args.has('--build') && !stale)) {
    check(built > 0, `no build in ${dist}: run pnpm playground:build, or leave out --no-build`);
    console.log(`  using the build in ${dist}${stale ? ' (older than its sources: --no-build)' : ''}`);
    return;
  }
  const r = spawnSync('pnpm', ['run', 'build'], { cwd: app, stdio: 'inherit' });
  check(r.status === 0, `the page did not build (pnpm run build in ${app} exited with ${r.status ?? r.signal})`);
}

// ——— the server ———

/** A truncated weight file, for the bad-input check: the generator's first 1,000 bytes. */
const TEST_FILES: Record<string, () => Buffer> = {
  '__test/truncated.safetensors': () => readFileSync(join(dist, 'weights/mnist/generator.safetensors')).subarray(0, 1000),
};

function serve(): Promise<Server> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    const special = TEST_FILES[path];
    const file = resolve(dist, path);
    if (special === undefined && (!file.startsWith(dist + sep) || !existsSync(file) || statSync(file).isDirectory())) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    const body = special ? special() : readFileSync(file);
    res.writeHead(200, { 'Content-Type': MIME[extname(path)] ?? 'application/octet-stream', 'Content-Length': body.length, 'Cache-Control': 'no-store' });
    res.end(body);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

// ——— the page ———

interface Guarded {
  page: Page;
  /** Rejects with the first problem seen (a request to another host, a console error, a page error). */
  failed: Promise<never>;
  problems: string[];
  close(): Promise<void>;
}

/**
 * Opens `path` in a fresh context. Every request to a host other than 127.0.0.1 or localhost is
 * aborted and is a failure, as is any console error (but those matching `allow`) or page error.
 */
async function open(browser: Browser, base: string, path: string, allow: RegExp[] = []): Promise<Guarded> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
  const problems: string[] = [];
  let fail: (e: Failure) => void = () => {};
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => {});
  const problem = (p: string) => {
    problems.push(p);
    fail(new Failure(`${path}: ${p}`));
  };
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'data:' || url.protocol === 'blob:' || url.hostname === '127.0.0.1' || url.hostname === 'localhost') return route.continue();
    problem(`request to another host: ${url.href}`);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = `${m.text()} (${m.location().url})`;
    if (!allow.some((a) => a.test(text))) problem(`console error: ${text}`);
  });
  page.on('pageerror', (e) => problem(`page error: ${e.message}`));
  await Promise.race([page.goto(`${base}${path}`), failed]);
  await race(page.waitForFunction(() => document.body.dataset.ready === 'true' || !document.getElementById('banner')!.hidden, null, { timeout: WAIT_MS }), failed);
  return { page, failed, problems, close: () => context.close() };
}

const race = <T>(p: Promise<T>, failed: Promise<never>) => Promise.race([p, failed]);

/** Waits until `#id` has data-state `state` (and not 'error', which fails at once). */
async function waitState(g: Guarded, id: string, state: string): Promise<void> {
  await race(
    g.page.waitForFunction(([i, s]) => [s, 'error'].includes(document.getElementById(i!)?.dataset.state ?? ''), [id, state] as const, { timeout: WAIT_MS }),
    g.failed,
  );
  const got = await g.page.getAttribute(`#${id}`, 'data-state');
  if (got !== state) {
    const banner = await g.page.textContent('#banner');
    throw new Failure(`#${id} is '${got}', expected '${state}'; the page says: ${banner?.trim() || '(nothing)'}`);
  }
}

/** Clicks a sampler's button and waits for its grid. Returns its time per image. */
async function sample(g: Guarded, id: string): Promise<number> {
  await race(
    g.page.waitForFunction((i) => ['ready', 'done', 'error'].includes(document.getElementById(i)?.dataset.state ?? ''), id, { timeout: WAIT_MS }),
    g.failed,
  );
  await g.page.click(`#${id}-sample`);
  await waitState(g, id, 'done');
  return Number(await g.page.getAttribute(`#${id}`, 'data-ms'));
}

/** The canvas's gray levels (its red channel), row by row. */
async function pixels(g: Guarded, id: string): Promise<{ width: number; height: number; gray: number[] }> {
  return g.page.evaluate((i) => {
    const c = document.getElementById(i) as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    return { width: c.width, height: c.height, gray: Array.from({ length: c.width * c.height }, (_, k) => d[4 * k]!) };
  }, `${id}-canvas`);
}

// ——— pixel statistics of a grid of digits ———

interface GridStats {
  tiles: number;
  /** Fraction of pixels near the black background (< 64) and of bright stroke pixels (> 192). */
  dark: number;
  bright: number;
  /** Fraction of the 2-pixel frame of each tile that is dark: MNIST digits sit in the middle. */
  frameDark: number;
  /** Fraction of tiles with a standard deviation above 20 gray levels (something drawn). */
  varied: number;
  /** Smallest and mean difference between two tiles (mean absolute, gray levels). */
  minPairDiff: number;
  meanPairDiff: number;
}

function gridStats({ width, height, gray }: { width: number; height: number; gray: number[] }, tile = 32): GridStats {
  const cols = width / tile;
  const tiles: number[][] = [];
  for (let ty = 0; ty < height / tile; ty++) {
    for (let tx = 0; tx < cols; tx++) {
      const t: number[] = [];
      for (let y = 0; y < tile; y++) for (let x = 0; x < tile; x++) t.push(gray[(ty * tile + y) * width + tx * tile + x]!);
      tiles.push(t);
    }
  }
  const frac = (xs: number[], p: (v: number) => boolean) => xs.filter(p).length / xs.length;
  const frame = tiles.flatMap((t) => t.filter((_, k) => Math.min(k % tile, Math.floor(k / tile), tile - 1 - (k % tile), tile - 1 - Math.floor(k / tile)) < 2));
  const std = (t: number[]) => {
    const m = t.reduce((a, b) => a + b, 0) / t.length;
    return Math.sqrt(t.reduce((a, b) => a + (b - m) ** 2, 0) / t.length);
  };
  let minPairDiff = Infinity;
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < tiles.length; i++) {
    for (let j = i + 1; j < tiles.length; j++) {
      const d = tiles[i]!.reduce((a, v, k) => a + Math.abs(v - tiles[j]![k]!), 0) / tile ** 2;
      minPairDiff = Math.min(minPairDiff, d);
      sum += d;
      pairs++;
    }
  }
  return {
    tiles: tiles.length,
    dark: frac(gray, (v) => v < 64),
    bright: frac(gray, (v) => v > 192),
    frameDark: frac(frame, (v) => v < 64),
    varied: tiles.filter((t) => std(t) > 20).length / tiles.length,
    minPairDiff,
    meanPairDiff: sum / pairs,
  };
}

const fmt = (s: GridStats) =>
  `dark ${s.dark.toFixed(3)}, bright ${s.bright.toFixed(3)}, frame dark ${s.frameDark.toFixed(3)}, varied tiles ${s.varied.toFixed(2)}, tile difference min ${s.minPairDiff.toFixed(1)} mean ${s.meanPairDiff.toFixed(1)}`;

/**
 * A grid of MNIST-like digits: mostly black background (MNIST: 81% of pixels below 64), a fraction
 * of bright strokes (MNIST: 9% above 192), dark tile frames, every tile with something drawn, no two
 * tiles the same. The teacher at 3 NFE, still noisy, fails it (dark 54%, bright 46%, frames 40% dark).
 */
function checkDigits(name: string, s: GridStats, expectTiles: number): void {
  const problems: string[] = [];
  if (s.tiles !== expectTiles) problems.push(`${s.tiles} tiles, expected ${expectTiles}`);
  if (s.dark < 0.6) problems.push(`only ${(100 * s.dark).toFixed(0)}% of pixels are dark background`);
  if (s.bright < 0.03 || s.bright > 0.35) problems.push(`${(100 * s.bright).toFixed(1)}% of pixels are bright strokes (expected 3–35%)`);
  if (s.frameDark < 0.85) problems.push(`only ${(100 * s.frameDark).toFixed(0)}% of the tiles' frames are dark (digits should be centred)`);
  if (s.varied < 0.9) problems.push(`only ${(100 * s.varied).toFixed(0)}% of tiles have anything drawn`);
  if (s.minPairDiff < 2) problems.push(`two tiles are the same (difference ${s.minPairDiff.toFixed(2)})`);
  if (s.meanPairDiff < 15) problems.push(`tiles differ little from each other (mean difference ${s.meanPairDiff.toFixed(1)})`);
  console.log(`  ${name}: ${fmt(s)}`);
  check(problems.length === 0, `${name} does not look like a grid of digits: ${problems.join('; ')}`);
}

const meanAbsDiff = (a: number[], b: number[]) => a.reduce((s, v, k) => s + Math.abs(v - b[k]!), 0) / a.length;

// ——— the checks ———

async function checkSample(browser: Browser, base: string): Promise<void> {
  const g = await open(browser, base, '?backend=wasm');
  try {
    const backend = await g.page.getAttribute('#backend', 'data-backend');
    check(backend === 'wasm', `the page runs on '${backend}', not the wasm backend it was asked for`);
    const n = 64;
    await waitState(g, 'teacher', 'ready');
    await waitState(g, 'generator', 'ready');
    // Every click must leave as many tfjs tensors alive as before it (the two models' weights).
    const tensors = () => g.page.getAttribute('#tensors', 'data-tensors');
    const loaded = await tensors();
    const flat = async (what: string) => {
      const now = await tensors();
      check(now === loaded, `tfjs tensors went from ${loaded} to ${now} over ${what}: something is not disposed`);
    };
    const msGen = await step('generator grid (8×8, 1 NFE)', () => sample(g, 'generator'));
    const first = await pixels(g, 'generator');
    checkDigits('generator grid', gridStats(first), n);
    await flat('a generator click');

    await step('generator again, same seed', () => sample(g, 'generator'));
    check(meanAbsDiff(first.gray, (await pixels(g, 'generator')).gray) === 0, 'the same seed drew a different generator grid');
    await flat('two generator clicks');
    await g.page.fill('#seed', '1');
    await step('generator, seed 1', () => sample(g, 'generator'));
    const other = meanAbsDiff(first.gray, (await pixels(g, 'generator')).gray);
    check(other > 10, `seed 1 drew almost the grid of seed 0 (mean difference ${other.toFixed(1)})`);
    await g.page.fill('#seed', '0');

    // The default NFE, 9 (at 3 NFE the teacher's images are still noise, and fail the check).
    await g.page.selectOption('#teacher-nfe', '9');
    const msTeacher = await step('teacher grid (8×8, Heun, 9 NFE)', () => sample(g, 'teacher'));
    checkDigits('teacher grid (9 NFE)', gridStats(await pixels(g, 'teacher')), n);
    await flat('a teacher click');

    const msOnnx = await step('ONNX generator grid (8×8, onnxruntime-web)', () => sample(g, 'onnx'));
    const onnx = await pixels(g, 'onnx');
    checkDigits('ONNX grid', gridStats(onnx), n);
    const d = meanAbsDiff(first.gray, onnx.gray);
    console.log(`  ONNX against tfjs, same latents: mean difference ${d.toFixed(3)} gray levels`);
    check(d < 1, `the ONNX generator drew other images than tfjs from the same latents (mean difference ${d.toFixed(2)} gray levels)`);
    console.log(`  ms per image on wasm: generator ${msGen.toFixed(2)}, teacher at 9 NFE ${msTeacher.toFixed(1)}, ONNX ${msOnnx.toFixed(2)}`);

    if (args.has('--screenshots')) {
      // The tfjs grid shows seed 1 now: draw seed 0 again, so the three grids share their latents.
      await sample(g, 'generator');
      await screenshot(g.page, 'sample.png');
    }
    check(g.problems.length === 0, g.problems.join('; '));
  } finally {
    await g.close();
  }
}

/** What the tab adds for the timing of a whole run (see src/distil.ts). */
interface DistilTiming {
  state: string;
  total: number;
  elapsedSec: number;
  below005: { step: number; sec: number } | null;
  backend: string;
}

interface DistilState {
  step: number;
  running: boolean;
  energyAboveFloor: Array<{ step: number; value: number }>;
  error: string | null;
}

async function checkDistil(browser: Browser, base: string): Promise<void> {
  const g = await open(browser, base, '?backend=wasm&tab=distil');
  try {
    const state = () => g.page.evaluate(() => (window as unknown as { __distil?: DistilState }).__distil ?? null);
    const placeholder = await g.page.$('#panel-distil .placeholder');
    check(placeholder === null, 'the Distil live tab is not part of the build (src/distil.ts is missing)');
    await race(g.page.waitForFunction(() => '__distil' in window, null, { timeout: WAIT_MS }), g.failed);
    const click = (id: string) => g.page.click(`#${id}`, { timeout: WAIT_MS });
    const waitFor = (pred: string, arg: number) =>
      race(
        g.page.waitForFunction(
          ([body, k]) => new Function('d', 'k', `return ${body}`)((window as unknown as { __distil: DistilState }).__distil, k) as boolean,
          [pred, arg] as const,
          { timeout: WAIT_MS, polling: 100 },
        ),
        g.failed,
      );
    await click('distil-start');
    const points = 4;
    await step(`distil until ${points} energy points`, () => waitFor('d.error !== null || d.energyAboveFloor.length >= k', points));
    let s = (await state())!;
    check(s.error === null, `the distillation failed: ${s.error}`);
    const e = s.energyAboveFloor;
    console.log(`  energy above floor: ${e.map((p) => `step ${p.step}: ${p.value.toPrecision(3)}`).join(', ')}`);
    check(e.at(-1)!.value < e[0]!.value, `the energy distance did not fall: ${e[0]!.value} at step ${e[0]!.step}, ${e.at(-1)!.value} at step ${e.at(-1)!.step}`);
    if (args.has('--screenshots')) await screenshot(g.page, 'distil.png');

    let stopped = 0;
    await step('stop', async () => {
      await click('distil-stop');
      await waitFor('!d.running', 0);
      stopped = (await state())!.step;
      await g.page.waitForTimeout(1500);
      const later = (await state())!.step;
      check(later === stopped, `the distillation went on after stop (step ${stopped}, then ${later})`);
    });
    await step('continue', async () => {
      await click('distil-continue');
      await waitFor('d.running && d.step > k', stopped);
      s = (await state())!;
      check(s.error === null && s.energyAboveFloor[0]!.step === 0, `continue did not pick up the run: ${JSON.stringify({ step: s.step, error: s.error })}`);
      await click('distil-stop');
      await waitFor('!d.running', 0);
      stopped = (await state())!.step;
    });
    await step('restart', async () => {
      await click('distil-restart');
      // A restart begins again at step 0: its measurements start over.
      await waitFor('d.running && d.energyAboveFloor.length >= 2 && d.energyAboveFloor.at(-1).step < k', stopped);
      s = (await state())!;
      check(s.running && s.error === null, `the distillation did not restart: ${JSON.stringify({ running: s.running, error: s.error })}`);
    });
    // The issue's bar: the energy distance above the floor below 0.05 within the 500 steps.
    await step('the restarted run to its last step', async () => {
      await waitFor('d.state === "done" || d.error !== null', 0);
      const d = (await g.page.evaluate(() => (window as unknown as { __distil: DistilState & DistilTiming }).__distil))!;
      check(d.error === null, `the distillation failed: ${d.error}`);
      const last = d.energyAboveFloor.at(-1)!;
      console.log(
        `  ${d.total} steps in ${d.elapsedSec.toFixed(1)} s on ${d.backend}; energy above floor < 0.05 first at step ` +
          `${d.below005?.step ?? '–'} (${d.below005?.sec.toFixed(1) ?? '–'} s); at the end ${last.value.toPrecision(3)} (EMA generator)`,
      );
      check(d.below005 !== null && d.below005.step <= d.total, 'the energy distance above the floor never fell below 0.05');
      check(last.value < 0.05, `the final energy distance above the floor is ${last.value}, not below 0.05`);
    });
    check(g.problems.length === 0, g.problems.join('; '));
  } finally {
    await g.close();
  }
}

/** A bad toy teacher: the Distil tab shows one message in place of its run, with no page error. */
async function checkBadToyTeacher(browser: Browser, base: string, file: string, expect: string[], allow?: RegExp[]): Promise<void> {
  const path = `?backend=wasm&tab=distil&toy-teacher=${file}`;
  const g = await open(browser, base, path, allow);
  try {
    await race(
      g.page.waitForFunction(() => (window as unknown as { __distil?: DistilState }).__distil?.error != null, null, { timeout: WAIT_MS }),
      g.failed,
    );
    const text = (await g.page.textContent('#distil-error')) ?? '';
    console.log(`  ${path}: ${text}`);
    check(await g.page.isVisible('#distil-error'), `${path}: the error is not shown`);
    for (const e of expect) check(text.includes(e), `${path}: the message does not say '${e}': ${text}`);
    check(await g.page.isDisabled('#distil-start'), `${path}: Start is enabled without a teacher`);
    check(g.problems.length === 0, g.problems.join('; '));
  } finally {
    await g.close();
  }
}

/** One bad input: the page shows exactly one message, with every `expect` in it, and no page error. */
async function checkBadInput(
  browser: Browser,
  base: string,
  c: { path: string; level: 'error' | 'warning'; expect: string[]; allow?: RegExp[]; then?: (g: Guarded) => Promise<void> },
): Promise<void> {
  const g = await open(browser, base, c.path, c.allow);
  try {
    await c.then?.(g);
    await race(g.page.waitForFunction(() => !document.getElementById('banner')!.hidden, null, { timeout: WAIT_MS }), g.failed);
    await g.page.waitForTimeout(300); // a second message, if any, would come with the first
    const messages = await g.page.$$eval('#banner p', (ps) => ps.map((p) => ({ level: p.className, text: p.textContent ?? '' })));
    check(messages.length === 1, `${c.path}: expected one message, got ${messages.length}: ${JSON.stringify(messages.map((m) => m.text))}`);
    const m = messages[0]!;
    console.log(`  ${c.path}: ${m.text}`);
    check(m.level === c.level, `${c.path}: the message is a${m.level === 'error' ? 'n' : ''} ${m.level}, expected ${c.level}`);
    for (const e of c.expect) check(m.text.includes(e), `${c.path}: the message does not say '${e}': ${m.text}`);
    check(await g.page.isVisible('#panel-sample .samplers'), `${c.path}: the Sample tab is not shown`);
    check(g.problems.length === 0, g.problems.join('; '));
  } finally {
    await g.close();
  }
}

/** The 404 that Chromium logs as a console error for a missing file, the one a bad-input check asks for. */
const notFound = (file: string) => new RegExp(`status of 404.*/${file.replace('.', '\\.')}\\)$`);

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(join(app, 'docs'), { recursive: true });
  await page.screenshot({ path: join(app, 'docs', name), fullPage: true });
  console.log(`  wrote apps/playground/docs/${name}`);
}

async function main(): Promise<void> {
  const limit = setTimeout(() => {
    console.error(`\nplayground browser test: FAILED: over its time limit of ${LIMIT_S} s (PLAYGROUND_TEST_LIMIT_S)`);
    process.exit(1);
  }, LIMIT_S * 1000);
  limit.unref();

  await step('build', async () => buildIfStale());
  const server = await serve();
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  check(existsSync(executablePath), `no Chromium at ${executablePath}: install it (apt-get install chromium) or set CHROMIUM`);
  const browser = await step('launch Chromium', () => chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] }));
  try {
    if (runs('sample')) await step('Sample tab', () => checkSample(browser, base));
    if (runs('distil')) await step('Distil live tab', () => checkDistil(browser, base));
    if (runs('bad-input')) await step('bad input', async () => {
      await checkBadInput(browser, base, {
        path: '?backend=wasm&generator=missing.safetensors',
        level: 'error',
        expect: ['missing.safetensors', '404', 'pnpm playground:build'],
        allow: [notFound('missing.safetensors')],
      });
      await checkBadInput(browser, base, {
        path: '?backend=wasm&generator=__test/truncated.safetensors',
        level: 'error',
        expect: ['truncated.safetensors', 'could not be read'],
      });
      await checkBadInput(browser, base, {
        path: '?backend=wasm&onnx=missing.onnx',
        level: 'error',
        expect: ['missing.onnx', '404'],
        allow: [notFound('missing.onnx')],
        then: async (g) => {
          await waitState(g, 'onnx', 'ready');
          await g.page.click('#onnx-sample');
        },
      });
      await checkBadInput(browser, base, { path: '?backend=tpu', level: 'warning', expect: ['?backend=tpu is not a tfjs backend', 'runs on', '?backend=wasm'] });
      await checkBadToyTeacher(browser, base, 'missing.safetensors', ['toy teacher', 'missing.safetensors', '404'], [notFound('missing.safetensors')]);
      await checkBadToyTeacher(browser, base, '__test/truncated.safetensors', ['toy teacher', 'truncated.safetensors', 'could not be read']);
      // The MNIST generator is a safetensors file of the wrong kind for this tab.
      await checkBadToyTeacher(browser, base, 'weights/mnist/generator.safetensors', ['generator.safetensors', 'could not be read']);
    });
    if (runs('bad-input')) await step('a backend that does not start (WebGL turned off)', async () => {
      const noWebgl = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-webgl'] });
      try {
        await checkBadInput(noWebgl, base, { path: '?backend=webgl', level: 'warning', expect: ['webgl backend (?backend=webgl) did not start', 'no WebGL', 'runs on wasm'] });
      } finally {
        await noWebgl.close();
      }
    });
  } finally {
    await browser.close();
    server.close();
  }
}

main().then(
  () => {
    console.log(`\nplayground browser test: passed in ${seconds(performance.now() - t0)}`);
    for (const [name, ms] of timings) console.log(`  ${name.padEnd(50)} ${seconds(ms)}`);
    process.exit(0);
  },
  (e: unknown) => {
    console.error(`\nplayground browser test: FAILED after ${seconds(performance.now() - t0)}: ${e instanceof Failure ? e.message : (e as Error).stack}`);
    process.exit(1);
  },
);
