import * as tf from '@tensorflow/tfjs';
import {
  argmaxRows,
  classAccuracy,
  classCoverage,
  classFractions,
  frechetDistance,
  gaussianStats,
  inceptionScore,
  softmaxRows,
  type GaussianStats,
} from '@diff-instruct/metrics';
import type { ClassifierModel } from '@diff-instruct/models';

/** Image metrics of one sample set, on the metric classifier. */
export interface ImageMetrics {
  /** FID (LeNet features) against the test split. Not comparable with Inception FID. */
  fid: number;
  /** Inception-Score analogue on the same classifier. */
  is: number;
  /** Fraction of classes that receive a fair share of the samples. */
  coverage: number;
  /** The share of the samples that the classifier puts in each class (sums to 1). */
  classFractions: number[];
  /** For conditional samples: the classifier's accuracy on the requested labels. */
  accuracy?: number;
  /** Milliseconds per sample. */
  msPerSample?: number;
}

/** Features and class probabilities of images, in chunks so memory stays small. */
export function classify(cls: ClassifierModel, images: Float32Array, n: number, shape: number[]): { features: Float32Array; probs: Float32Array; d: number } {
  const per = shape.reduce((a, b) => a * b, 1);
  const k = cls.config.numClasses;
  const d = cls.config.featureDim;
  const features = new Float32Array(n * d);
  const probs = new Float32Array(n * k);
  for (let i = 0; i < n; i += 250) {
    const m = Math.min(250, n - i);
    tf.tidy(() => {
      const x = tf.tensor(images.subarray(i * per, (i + m) * per), [m, ...shape]);
      features.set(cls.features(x).dataSync(), i * d);
      probs.set(softmaxRows(cls.logits(x).dataSync() as Float32Array, m, k), i * k);
    });
  }
  return { features, probs, d };
}

/** FID's reference: the Gaussian statistics of the classifier's features of a dataset split (the test split). */
export function referenceStats(cls: ClassifierModel, data: { images: Float32Array; n: number; height: number; width: number; channels: number }): GaussianStats {
  const ref = classify(cls, data.images, data.n, [data.height, data.width, data.channels]);
  return gaussianStats(ref.features, data.n, ref.d);
}

export function imageMetrics(cls: ClassifierModel, ref: GaussianStats, images: Float32Array, n: number, shape: number[], labels?: Int32Array): ImageMetrics {
  const { features, probs, d } = classify(cls, images, n, shape);
  const k = cls.config.numClasses;
  const preds = argmaxRows(probs, n, k);
  const m: ImageMetrics = {
    fid: frechetDistance(gaussianStats(features, n, d), ref),
    is: inceptionScore(probs, n, k).mean,
    coverage: classCoverage(preds, k),
    classFractions: classFractions(preds, k),
  };
  if (labels) m.accuracy = classAccuracy(preds, labels);
  return m;
}
