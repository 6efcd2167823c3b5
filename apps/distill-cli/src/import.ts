import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';

import { UsageError, flagHelp, parseArgs, type FlagSpec, type Io } from '@diff-instruct/cli';
import { type EdmImport, countParams, disposeModel, encodeModel, importEdm } from '@diff-instruct/models';
import { readBytes, writeFileAtomic } from '@diff-instruct/models/node';

export const IMPORT_FLAGS: Record<string, FlagSpec> = {
  from: { type: 'string', help: 'where the network comes from: edm (NVlabs/edm DDPM++), or diffusers (not available yet)' },
  out: { type: 'string', help: 'the teacher file to write, e.g. teacher.safetensors' },
  force: { type: 'boolean', help: 'overwrite --out if it exists' },
  backend: { type: 'string', help: 'tfjs backend: tensorflow, wasm or cpu' },
  help: { type: 'boolean', help: 'show this help' },
};

export const IMPORT_HELP = `distill import — write a pretrained diffusion network as a teacher file

Usage: distill import --from edm PATH --out teacher.safetensors [--force]

PATH is one of:
  - a .safetensors file written by bench/reference/export_edm.py (an EDM network pickle,
    EDMPrecond(SongUNet) in the DDPM++ configuration, e.g. edm-cifar10-32x32-cond-vp);
  - a sharded checkpoint's *.safetensors.index.json (the shards are read from its folder);
  - a folder holding exactly one of those.
F32, F16 and BF16 weights are read (widened to float32). The teacher file is what --teacher of
every command and loadDenoiser read; it is written atomically, and an existing file is only
replaced with --force.

--from diffusers is not available yet: the network (importDiffusersUnet2d in @diff-instruct/models)
imports, but the teacher file format cannot store it yet.

${flagHelp(IMPORT_FLAGS)}

Examples:
  distill import --from edm edm-cifar10-32x32-cond-vp.safetensors --out teacher.safetensors
  distill import --from edm checkpoints/edm/model.safetensors.index.json --out teacher.safetensors
  distill import --from edm checkpoints/edm --out teacher.safetensors --force

From code: importEdm(files) from @diff-instruct/models, then saveModel(path, model) from its ./node entry.
`;

const SOURCES = ['edm', 'diffusers'];
const INDEX_SUFFIX = '.safetensors.index.json';

export const DIFFUSERS_NOT_AVAILABLE =
  'importing a diffusers UNet2DModel as a teacher file is not available yet: the network itself is in ' +
  '@diff-instruct/models as importDiffusersUnet2d, but our teacher file format cannot store it yet; use --from edm';

/** The shard file names an index lists ([] when it cannot be read: then it is a candidate the import will report on). */
function shardsOf(indexPath: string): string[] {
  try {
    const wm = (JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map?: Record<string, unknown> }).weight_map;
    return wm && typeof wm === 'object' ? Object.values(wm).filter((v): v is string => typeof v === 'string') : [];
  } catch {
    return [];
  }
}

/** The file PATH names: itself, or in a folder the one index or safetensors file (shards of an index do not count). */
function resolveSource(path: string): string {
  if (!existsSync(path)) throw new UsageError(`${path} not found; PATH is an export_edm.py .safetensors file, a *${INDEX_SUFFIX}, or a folder holding one`);
  if (!statSync(path).isDirectory()) return path;
  const files = readdirSync(path).filter((f) => statSync(join(path, f)).isFile());
  const indexes = files.filter((f) => f.endsWith(INDEX_SUFFIX));
  const shards = new Set(indexes.flatMap((f) => shardsOf(join(path, f))));
  const candidates = [...indexes, ...files.filter((f) => f.endsWith('.safetensors') && !shards.has(f))].sort();
  if (candidates.length === 0) {
    throw new UsageError(`${path} holds no .safetensors file or *${INDEX_SUFFIX}; pass the file exported by bench/reference/export_edm.py`);
  }
  if (candidates.length > 1) {
    throw new UsageError(`${path} holds several candidate files (${candidates.join(', ')}); pass the one to import as PATH`);
  }
  return join(path, candidates[0]!);
}

/** The dtypes of a safetensors file's tensors, from its header alone. */
function headerDtypes(bytes: Uint8Array): string[] {
  try {
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype?: string }>;
    return Object.entries(header).flatMap(([k, v]) => (k === '__metadata__' || typeof v?.dtype !== 'string' ? [] : [v.dtype]));
  } catch {
    return [];
  }
}

function readEdm(file: string): { imported: EdmImport; dtypes: Set<string> } {
  const dtypes = new Set<string>();
  const track = (b: Uint8Array) => {
    for (const d of headerDtypes(b)) dtypes.add(d);
    return b;
  };
  let imported: EdmImport;
  try {
    if (file.endsWith(INDEX_SUFFIX)) {
      const dir = dirname(file);
      imported = importEdm({
        index: readFileSync(file, 'utf8'),
        readShard: (name) => (existsSync(join(dir, name)) ? track(readBytes(join(dir, name))) : undefined),
      });
    } else {
      imported = importEdm({ bytes: track(readBytes(file)) });
    }
  } catch (e) {
    // importEdm lists each problem on a line of its own: one line here, as every error of the CLI.
    const msg = (e as Error).message.replace(/:\n/g, ': ').split('\n').join('; ');
    const hint = /does not match the network of its edm_kwargs/.test(msg)
      ? ' (re-export the network pickle with bench/reference/export_edm.py)'
      : /has dtype F64/.test(msg)
        ? '; re-export it as F32, F16 or BF16 (bench/reference/export_edm.py writes F32 by default)'
        : '';
    throw new Error(`${file}: ${msg}${hint}`, { cause: e });
  }
  return { imported, dtypes };
}

export async function runImport(argv: readonly string[], io: Io): Promise<number> {
  const { positionals, flags } = parseArgs(argv, IMPORT_FLAGS, 'distill import');
  if (flags.help || positionals.includes('--help')) {
    io.stdout(IMPORT_HELP);
    return 0;
  }
  if (flags.from === undefined) throw new UsageError(`distill import needs --from SOURCE (${SOURCES.join(' or ')}); e.g. distill import --from edm PATH --out teacher.safetensors`);
  const from = String(flags.from);
  if (!SOURCES.includes(from)) throw new UsageError(`unknown --from "${from}"; sources: ${SOURCES.join(', ')}`);
  if (from === 'diffusers') throw new UsageError(DIFFUSERS_NOT_AVAILABLE);
  if (positionals.length === 0) throw new UsageError('distill import needs PATH, the export_edm.py .safetensors file (or index, or folder); see distill import --help');
  if (positionals.length > 1) throw new UsageError(`distill import takes one PATH, got ${positionals.length}: ${positionals.join(' ')}`);
  if (flags.out === undefined) throw new UsageError('distill import needs --out FILE (e.g. teacher.safetensors)');
  const out = String(flags.out);
  if (extname(out).toLowerCase() !== '.safetensors') throw new UsageError(`--out must end in .safetensors, got "${out}"`);
  const dir = dirname(resolve(out));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`cannot write ${out}: directory ${dirname(out)} does not exist`);
  if (existsSync(out) && !flags.force) throw new UsageError(`${out} exists; pass --force to overwrite it, or choose another --out`);

  const file = resolveSource(positionals[0]!);
  const { imported, dtypes } = readEdm(file);
  const { model, config, sigmaMin, sigmaMax } = imported;
  let bytes: Uint8Array;
  let params: number;
  try {
    bytes = encodeModel(model, { source: basename(file), importedFrom: 'edm' });
    params = countParams(model.params);
  } finally {
    disposeModel(model);
  }
  writeFileAtomic(out, bytes);
  const net = config.net as { resolution: number; channels: number; numClasses?: number };
  const classes = net.numClasses ?? 0;
  const range = `σ ${sigmaMin}–${sigmaMax === Infinity ? '∞' : sigmaMax}`;
  io.stdout(
    `imported EDM DDPM++ (EDMPrecond(SongUNet)) ${net.resolution}×${net.resolution}×${net.channels}, ` +
      `${classes > 0 ? `${classes} classes` : 'unconditional'}, ${params.toLocaleString('en-US')} parameters, σ_data ${config.sigmaData}, ${range}, ` +
      `from ${file} (${[...dtypes].sort().join('/') || 'unknown dtype'}); wrote ${out} (${(bytes.length / 1e6).toFixed(2)} MB)\n`,
  );
  return 0;
}
