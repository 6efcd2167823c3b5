// What the teacher scripts share: the backend, the committed MNIST classifier, the FID reference of
// the test split, and an `Io` that writes to the process's streams.
import { selectBackend } from '@diff-instruct/cli';
import { loadImageDataset } from '@diff-instruct/data/node';
import { committed, referenceStats } from '@diff-instruct/image-eval';
import { loadClassifier } from '@diff-instruct/models/node';

export async function mnistReference() {
  await selectBackend(undefined);
  const cls = loadClassifier(committed('mnist', 'classifier', false));
  const test = loadImageDataset('mnist', { split: 'test' });
  const shape = [test.height, test.width, test.channels];
  const refStats = referenceStats(cls, test);
  const io = { stdout: (s: string) => process.stdout.write(s), stderr: (s: string) => process.stderr.write(s) };
  return { cls, shape, refStats, io };
}
