#!/usr/bin/env node
// Install step of @diff-instruct/native: compiles the addon with node-gyp against the Node headers
// already on the machine (no download), linking OpenBLAS when its headers and library are there.
// It never fails the install: without a compiler the package still loads and tfjs keeps its own
// kernels (`nativeStatus()` says why). DI_NATIVE_SKIP_BUILD=1 skips it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const warn = (msg) => console.warn(`@diff-instruct/native: ${msg}`);

if (process.env.DI_NATIVE_SKIP_BUILD === '1') {
  warn('DI_NATIVE_SKIP_BUILD=1: not building the native kernels; tfjs keeps its own');
  process.exit(0);
}

/** node-gyp: the one npm or pnpm hands to install scripts, else npm's bundled copy. */
function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return [process.execPath, process.env.npm_config_node_gyp];
  const onPath = spawnSync('node-gyp', ['--version'], { stdio: 'ignore', shell: false });
  if (onPath.status === 0) return ['node-gyp'];
  for (const p of [join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')]) {
    if (existsSync(p)) return [process.execPath, p];
  }
  return null;
}

/** The Node headers: npm's nodedir setting, else the system's (Debian's nodejs ships them). */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  for (const d of [join(dirname(process.execPath), '..'), '/usr', '/usr/local']) {
    if (existsSync(join(d, 'include', 'node', 'node_api.h')) && existsSync(join(d, 'include', 'node', 'common.gypi'))) return d;
  }
  return null;
}

function hasOpenBlas() {
  const headers = ['/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/openblas/cblas.h', '/usr/include/cblas.h'];
  const libs = ['/usr/lib/x86_64-linux-gnu/libopenblas.so', '/usr/lib/aarch64-linux-gnu/libopenblas.so', '/usr/lib/libopenblas.so', '/usr/lib64/libopenblas.so'];
  return headers.some(existsSync) && libs.some(existsSync);
}

const gyp = nodeGyp();
const dir = nodeDir();
if (gyp === null || dir === null) {
  warn(`cannot build the native kernels (${gyp === null ? 'node-gyp not found' : 'Node headers not found: install nodejs headers (Debian: libnode-dev)'}); tfjs keeps its own kernels`);
  process.exit(0);
}

function build(openblas) {
  const [cmd, ...pre] = gyp;
  const args = [...pre, 'rebuild', `--nodedir=${dir}`, '--', `-Duse_openblas=${openblas ? 1 : 0}`];
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  return { ok: r.status === 0, log: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

let openblas = hasOpenBlas();
let result = build(openblas);
if (!result.ok && openblas) {
  warn('building with OpenBLAS failed; trying the built-in GEMM');
  openblas = false;
  result = build(false);
}
if (!result.ok) {
  const tail = result.log.trim().split('\n').slice(-8).join('\n');
  warn(`the native kernels did not build; tfjs keeps its own kernels. Install g++, make and python3, then run \`pnpm rebuild @diff-instruct/native\`.\n${tail}`);
  process.exit(0);
}
console.log(
  `@diff-instruct/native: built the native kernels with ${openblas ? 'OpenBLAS' : 'the built-in GEMM'}` +
    (openblas ? '' : ' (apt-get install libopenblas-dev and rebuild for a faster GEMM)'),
);
