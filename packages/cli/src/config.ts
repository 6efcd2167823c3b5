import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { UsageError } from './args.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Deep merge of plain objects; arrays and scalars replace. Unknown keys are an error. */
export function mergeConfig<T>(base: T, patch: unknown, where: string): T {
  if (patch === undefined) return base;
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw new UsageError(`${where}: expected an object`);
  }
  const out = structuredClone(base) as Record<string, Json>;
  for (const [k, v] of Object.entries(patch as Record<string, Json>)) {
    if (!(k in out)) throw new UsageError(`${where}: unknown key "${k}"; known keys: ${Object.keys(out).join(', ')}`);
    const cur = out[k];
    if (cur !== null && typeof cur === 'object' && !Array.isArray(cur)) {
      out[k] = mergeConfig(cur, v, `${where}.${k}`) as Json;
    } else {
      if (cur !== null && v !== null && typeof cur !== typeof v) {
        throw new UsageError(`${where}.${k}: expected a ${typeof cur}, got ${JSON.stringify(v)}`);
      }
      out[k] = v;
    }
  }
  return out as T;
}

export function readConfigFile(path: string): unknown {
  if (!existsSync(path)) throw new UsageError(`config file not found: ${path}`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`${path} is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * What a Diff-Instruct config stored before `objective` and `sidAlpha` existed ran with: under
 * `--resume`, a stored config without them takes these, never today's defaults.
 */
export const BEFORE_OBJECTIVES = { objective: 'ikl', sidAlpha: 1.2 } as const;

/**
 * The stored config of the run in `dir`, for `--resume dir`: every other flag except the harmless
 * ones is refused, because a resumed run continues with the settings it started with. `older` holds
 * the values of settings added since some runs were stored (e.g. `{ distill: BEFORE_OBJECTIVES }`):
 * a key the stored config lacks takes that value instead of the current default.
 */
export function resumeConfig<T>(defaults: T, dir: string, flags: Record<string, unknown>, older: unknown = {}): T {
  const path = `${dir}/config.json`;
  if (!existsSync(path)) throw new UsageError(`--resume ${dir}: no run there (config.json is missing)`);
  const allowed = new Set(['resume', 'json', 'quiet', 'backend', 'help', 'dryRun']);
  const other = Object.keys(flags).filter((k) => !allowed.has(k));
  if (other.length > 0) {
    const kebab = (k: string) => k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
    throw new UsageError(`--resume continues a run with its stored settings; drop ${other.map((k) => `--${kebab(k)}`).join(', ')}`);
  }
  return { ...mergeConfig(mergeConfig(defaults, older, 'settings added since'), readConfigFile(path), path), out: dir };
}

/**
 * Creates the run folder. A folder that already holds files is never overwritten: the user either
 * picks another --out or continues that run with --resume.
 */
export function prepareOut(out: string, resuming: boolean): string {
  const dir = resolve(out);
  if (!resuming && existsSync(dir) && readdirSync(dir).length > 0) {
    throw new UsageError(`${out} already holds files; choose another --out, or continue that run with --resume ${out}`);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}
