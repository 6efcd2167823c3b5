import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { UsageError } from '@diff-instruct/cli';

/** The repository's `checkpoints/` folder: found upwards from this module, else in the working directory. */
function checkpointsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'checkpoints')) && existsSync(join(dir, 'pnpm-workspace.yaml'))) return join(dir, 'checkpoints');
    dir = dirname(dir);
  }
  return resolve('checkpoints');
}

/**
 * The folder of each dataset's default unconditional teacher, where it is not `teacher-uncond`: the
 * best committed one by FID at 35 NFE (see its README). MNIST: `teacher-uncond-long` (mnist-tiny
 * trained until its FID levelled off), not the step-6,000 `teacher-uncond`.
 */
const DEFAULT_UNCONDITIONAL_TEACHER: Record<string, string> = { mnist: 'teacher-uncond-long' };

/** The committed checkpoint of a dataset, or a clear error saying how to make one. */
export function committed(dataset: string, what: 'teacher' | 'classifier' | 'gan', conditional: boolean): string {
  const root = checkpointsDir();
  const cond = conditional ? ' --conditional' : '';
  const [path, make, flag] =
    what === 'classifier'
      ? [join(root, dataset, 'classifier', 'classifier.safetensors'), 'distill classifier', 'classifier']
      : what === 'gan'
        ? [join(root, dataset, conditional ? 'gan-cond' : 'gan', 'generator.safetensors'), `distill gan${cond}`, 'generator']
        : [join(root, dataset, conditional ? 'teacher-cond' : (DEFAULT_UNCONDITIONAL_TEACHER[dataset] ?? 'teacher-uncond'), 'teacher.safetensors'), `distill teacher${cond}`, 'teacher'];
  if (!existsSync(path)) {
    const name = what === 'gan' ? 'GAN generator' : what;
    throw new UsageError(`no committed ${name} for ${dataset} at ${path}; pass --${flag} FILE, or train one with \`${make} --dataset ${dataset} --out ${dirname(path)}\``);
  }
  return path;
}
