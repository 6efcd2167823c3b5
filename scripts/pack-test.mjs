// Proves that a user can `npm install` one library: packs every package under packages/, then for
// each one installs its tarball into an empty project together with only the tarballs of its own
// @diff-instruct dependencies and its peer @tensorflow/tfjs, imports it there and takes one
// gradient step. Every tarball must also pass publint and "are the types wrong" (ESM only).
// Then it installs the `distill` command (apps/distill-cli) from its tarball alone, runs a tiny
// `distill toy` through npx and checks that a command needing the repository's committed
// checkpoints fails with one clear line (exit code 2). Run after `pnpm build`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'di-pack-'));
const tarballs = join(tmp, 'tarballs');
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

const manifestOf = (path) => {
  const manifest = JSON.parse(readFileSync(join(root, path, 'package.json'), 'utf8'));
  return { path, dir: path.split('/').pop(), name: manifest.name, version: manifest.version, deps: Object.keys(manifest.dependencies ?? {}) };
};
const packages = readdirSync(join(root, 'packages')).map((dir) => manifestOf(`packages/${dir}`));
/** The published apps: the `distill` command. */
const apps = [manifestOf('apps/distill-cli')];
const byName = new Map([...packages, ...apps].map((p) => [p.name, p]));

// pnpm pack applies publishConfig (exports without the @diff-instruct/source condition) and turns
// workspace:* into versions, as pnpm publish (and so changeset publish) does.
for (const p of [...packages, ...apps]) run('pnpm', ['pack', '--pack-destination', tarballs], join(root, p.path));
const tarballOf = (name) => {
  const p = byName.get(name);
  return join(tarballs, `${name.replace('@', '').replace('/', '-')}-${p.version}.tgz`);
};
const closure = (name, seen = new Set()) => {
  if (seen.has(name)) return seen;
  seen.add(name);
  for (const d of byName.get(name).deps) if (d.startsWith('@diff-instruct/')) closure(d, seen);
  return seen;
};

/** One gradient step per package, written against its public API only. */
const smoke = {
  '@diff-instruct/sde': `
    import { Rng, perturb, veProcess } from '@diff-instruct/sde';
    const rng = new Rng(0); const w = tf.variable(tf.ones([4, 2]));
    const eps = rng.normalTensor([4, 2]);
    const { value } = tf.variableGrads(() => tf.sum(tf.square(perturb(veProcess(), w, [0.1, 0.2, 0.3, 0.4], eps))), [w]);
    step(value);`,
  '@diff-instruct/divergences': `
    import { dsmLoss } from '@diff-instruct/divergences';
    import { Rng } from '@diff-instruct/sde';
    const rng = new Rng(0); const a = tf.variable(tf.scalar(0.5));
    const x0 = rng.normalTensor([8, 2]);
    const { value } = tf.variableGrads(() => dsmLoss({ denoiser: (x) => tf.mul(x, a), x0, sigma: tf.fill([8], 0.5), noise: rng.normalTensor([8, 2]) }), [a]);
    step(value);`,
  '@diff-instruct/models': `
    import { createDenoiser, encodeModel, loadDenoiser as fromBytes } from '@diff-instruct/models';
    import { loadDenoiser, saveModel } from '@diff-instruct/models/node';
    import { Rng } from '@diff-instruct/sde';
    const rng = new Rng(0);
    const m = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: { kind: 'mlp', dim: 2, hidden: [16, 16], embedDim: 8, numClasses: 0 } }, rng);
    const x0 = rng.normalTensor([8, 2]); const noise = rng.normalTensor([8, 2]); const sigma = tf.fill([8], 0.7);
    const { value } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(m.denoise(tf.add(x0, tf.mul(noise, 0.7)), sigma), x0))), Object.values(m.params));
    step(value);
    saveModel('m.safetensors', m);
    const same = (a, b) => Object.keys(a.params).every((k) => tf.equal(a.params[k], b.params[k]).all().dataSync()[0] === 1);
    if (!same(loadDenoiser('m.safetensors'), m) || !same(fromBytes(encodeModel(m)), m)) throw new Error('weights changed on save and load');`,
  '@diff-instruct/data': `
    import { getTarget, formatCsvPoints, parsePoints } from '@diff-instruct/data';
    import { readPoints } from '@diff-instruct/data/node';
    import { writeFileSync } from 'node:fs';
    import { Rng } from '@diff-instruct/sde';
    const pts = { data: Float32Array.of(1, 2, 3, 4), n: 2, dim: 2 };
    writeFileSync('p.csv', formatCsvPoints(pts));
    if (readPoints('p.csv').n !== 2 || parsePoints(new TextEncoder().encode(formatCsvPoints(pts)), 'p.csv').dim !== 2) throw new Error('points did not read back');
    const x = tf.tensor2d(getTarget('ring8').sample(new Rng(0), 64), [64, 2]);
    const mu = tf.variable(tf.zeros([2]));
    const { value } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(x, mu))), [mu]);
    step(value);`,
  '@diff-instruct/metrics': `
    import { energyDistance } from '@diff-instruct/metrics';
    import { Rng } from '@diff-instruct/sde';
    const rng = new Rng(0);
    const e = energyDistance(rng.normal(200), rng.normal(200), 2);
    if (!(e >= 0)) throw new Error('energy distance ' + e);
    const v = tf.variable(tf.scalar(e));
    const { value } = tf.variableGrads(() => tf.square(v), [v]);
    step(value);`,
  '@diff-instruct/native': `
    import { enableNativeKernels, nativeStatus } from '@diff-instruct/native';
    const s = nativeStatus();
    if (!s.available) throw new Error('the addon did not build at npm install: ' + s.reason);
    const r = enableNativeKernels();
    if (!r.enabled) throw new Error('native kernels not enabled: ' + r.reason);
    const w = tf.variable(tf.randomNormal([3, 3, 4, 16], 0, 1, 'float32', 1));
    const x = tf.randomNormal([2, 8, 8, 4], 0, 1, 'float32', 2);
    const { value } = tf.variableGrads(() => tf.mean(tf.square(tf.matMul(tf.conv2d(x, w, 1, 'same').reshape([128, 16]), tf.ones([16, 1])))), [w]);
    step(value);`,
  '@diff-instruct/trainer': `
    import { trainTeacher, TEACHER_DEFAULTS } from '@diff-instruct/trainer';
    import { trainTeacher as trainTeacherToFile, loadTrainState } from '@diff-instruct/trainer/node';
    import { createDenoiser } from '@diff-instruct/models';
    import { Rng } from '@diff-instruct/sde';
    const rng = new Rng(0);
    const model = createDenoiser({ kind: 'edm', sigmaData: 0.5, net: { kind: 'mlp', dim: 2, hidden: [16], embedDim: 8, numClasses: 0 } }, rng);
    await trainTeacher({ model, data: { data: rng.normal(64 * 2), sampleShape: [2] }, config: { ...TEACHER_DEFAULTS, steps: 1, batchSize: 8 }, rng });
    await trainTeacherToFile({ model, data: { data: rng.normal(64 * 2), sampleShape: [2] }, config: { ...TEACHER_DEFAULTS, steps: 1, batchSize: 8 }, rng, statePath: 'state.safetensors' });
    if (loadTrainState('state.safetensors', 'teacher').info.step !== 1) throw new Error('no training state written');
    step(tf.scalar(0));`,
  '@diff-instruct/cli': `
    import { RUN_FLAGS, parseArgs, seedFor, selectBackend } from '@diff-instruct/cli';
    const { flags } = parseArgs(['--seed', '3', '--quiet'], RUN_FLAGS, 'try');
    if (flags.seed !== 3 || flags.quiet !== true) throw new Error('parseArgs gave ' + JSON.stringify(flags));
    const backend = await selectBackend('cpu');
    if (!backend.startsWith('cpu')) throw new Error('selectBackend gave ' + backend);
    const v = tf.variable(tf.scalar(seedFor(3, 'smoke') / 2 ** 32));
    const { value } = tf.variableGrads(() => tf.square(v), [v]);
    step(value);`,
  '@diff-instruct/image-eval': `
    import { clipImages, imageMetrics, referenceStats } from '@diff-instruct/image-eval';
    import { createClassifier } from '@diff-instruct/models';
    import { Rng } from '@diff-instruct/sde';
    const rng = new Rng(0);
    const cls = createClassifier({ kind: 'lenet', resolution: 8, channels: 1, numClasses: 2, featureDim: 4 }, rng);
    const n = 20; const images = clipImages(rng.normal(n * 64));
    const ref = referenceStats(cls, { images, n, height: 8, width: 8, channels: 1 });
    const m = imageMetrics(cls, ref, images, n, [8, 8, 1]);
    if (!(m.fid >= 0 && m.fid < 1e-2)) throw new Error('FID of a sample set against itself: ' + m.fid);
    const x = tf.tensor(images, [n, 8, 8, 1]);
    const { value } = tf.variableGrads(() => tf.mean(tf.square(cls.logits(x))), Object.values(cls.params));
    step(value);`,
};

let failed = 0;

// Package lint of what consumers get: publint (warnings count as errors) and attw on each tarball.
const bin = (name) => join(root, 'node_modules', '.bin', name);
for (const p of [...packages, ...apps]) {
  for (const [tool, args] of [
    ['publint', ['run', '--strict', tarballOf(p.name)]],
    ['attw', [tarballOf(p.name), '--profile', 'esm-only', '--format', 'ascii', '--no-color']],
  ]) {
    const r = spawnSync(bin(tool), args, { encoding: 'utf8' });
    if (r.status !== 0) {
      failed += 1;
      console.error(`FAILED ${tool} ${p.name}:\n${r.stdout}${r.stderr}`);
    }
  }
}
console.log(`publint and attw (esm-only) ran on ${packages.length + apps.length} tarballs`);

for (const p of packages) {
  const dir = join(tmp, p.dir);
  run('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `try-${p.dir}`, private: true, type: 'module' }));
  const tgz = [...closure(p.name)].map(tarballOf);
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tgz, '@tensorflow/tfjs@4.22.0'], dir);
  const code = smoke[p.name];
  if (!code) throw new Error(`pack-test: no smoke test for ${p.name}`);
  writeFileSync(
    join(dir, 'smoke.mjs'),
    `import * as tf from '@tensorflow/tfjs';\nawait tf.setBackend('cpu');\nconst step = (value) => { const v = value.dataSync()[0]; if (!Number.isFinite(v)) throw new Error('non-finite loss ' + v); };\n${code}\nconsole.log('ok ${p.name}: installed alone with ' + ${JSON.stringify(tgz.length - 1)} + ' @diff-instruct deps, one gradient step');\n`,
  );
  try {
    process.stdout.write(run('node', ['smoke.mjs'], dir));
  } catch (e) {
    failed += 1;
    console.error(`FAILED ${p.name}: ${e.message}`);
  }
}
// The `distill` command from its tarball alone (its @diff-instruct deps as tarballs; @tensorflow/tfjs
// is its own dependency), as `npm install @diff-instruct/distill-cli` or npx would install it.
{
  const dir = join(tmp, 'distill');
  run('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'try-distill', private: true, type: 'module' }));
  const tgz = [...closure('@diff-instruct/distill-cli')].map(tarballOf);
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tgz], dir);
  const distill = (...args) => spawnSync('npx', ['--no-install', 'distill', ...args], { cwd: dir, encoding: 'utf8' });
  const check = (what, ok, r) => {
    if (ok) return console.log(`ok distill: ${what}`);
    failed += 1;
    console.error(`FAILED distill: ${what} (exit ${r.status})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  };

  const version = distill('--version');
  check('--version', version.status === 0 && version.stdout.trim() === byName.get('@diff-instruct/distill-cli').version, version);

  // A tiny run: a 20-step teacher, 10 Diff-Instruct steps, 100 samples per evaluation row.
  const toy = distill('toy', '--target', 'ring8', '--teacher-steps', '20', '--steps', '10', '--batch-size', '32', '--num-samples', '100', '--out', 'out/toy', '--quiet', '--json');
  const outputs = ['config.json', 'teacher.safetensors', 'generator.safetensors', 'samples.csv', 'teacher-nfe35.csv', 'report.json', 'report.md', 'scatter.png', 'losses.png'];
  const missing = outputs.filter((f) => !existsSync(join(dir, 'out', 'toy', f)));
  let report = null;
  try {
    report = JSON.parse(toy.stdout);
  } catch {
    // not JSON: reported below
  }
  check(`toy --target ring8 (tiny): exit 0, ${outputs.length} outputs, a JSON report`, toy.status === 0 && missing.length === 0 && report !== null, {
    ...toy,
    stderr: `${toy.stderr}\nmissing outputs: ${missing.join(', ') || 'none'}`,
  });

  // Without the repository's checkpoints/ folder: one line naming the flag to pass, exit code 2, no output folder.
  for (const args of [['images', '--dataset', 'mnist', '--out', 'out/images'], []]) {
    const r = distill(...args);
    const lines = r.stderr.trim().split('\n');
    const ok = r.status === 2 && lines.length === 1 && /no committed teacher/.test(lines[0]) && lines[0].includes('--teacher') && !existsSync(join(dir, 'out', 'images')) && !existsSync(join(dir, 'runs'));
    check(`\`distill ${args.join(' ') || '(the quick demo)'}\` with no committed teacher: ${JSON.stringify(lines[0])}`, ok, r);
  }
}

rmSync(tmp, { recursive: true, force: true });
if (failed > 0) {
  console.error(`pack-test: ${failed} check(s) failed`);
  process.exit(1);
}
