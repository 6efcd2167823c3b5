/**
 * What the host offers beyond the web platform, looked up at run time so that the main entry
 * imports nothing Node-only and bundles for a browser: Node's zlib through
 * `process.getBuiltinModule` (Node ≥ 20.16), absent in a browser. Also POSIX path helpers.
 */
import type * as Zlib from 'node:zlib';

type GetBuiltin = (id: string) => unknown;

/** Node's zlib when running on Node (≥ 20.16), else undefined. */
export function hostZlib(): typeof Zlib | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: GetBuiltin } }).process;
  const getBuiltin = proc?.getBuiltinModule;
  return typeof getBuiltin === 'function' ? (getBuiltin.call(proc, 'node:zlib') as typeof Zlib | undefined) : undefined;
}

/** The last component of a '/'-separated path, as Node's `path.posix.basename`. */
export function baseName(path: string): string {
  let end = path.length;
  while (end > 1 && path[end - 1] === '/') end--;
  const s = path.slice(0, end);
  return s === '/' ? '' : s.slice(s.lastIndexOf('/') + 1);
}

/** The extension of a path's last component ('.npy'; '' when none), as Node's `path.posix.extname`. */
export function extName(path: string): string {
  const b = baseName(path);
  const i = b.lastIndexOf('.');
  return i <= 0 || /^\.+$/.test(b) ? '' : b.slice(i);
}
