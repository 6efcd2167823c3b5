export {
  type PointTarget,
  TARGET_NAMES,
  getTarget,
  gaussianMixtureTarget,
  highDimMixture,
} from './targets.js';
export {
  type Points,
  type ValidateOptions,
  parsePoints,
  pointFileType,
  parseCsvPoints,
  parseNpy,
  parseNpyArray,
  type NpyArray,
  encodeNpy,
  formatCsvPoints,
  validatePoints,
} from './points.js';
export { encodePng, type Deflate, storedDeflate, crc32, PNG_SIGNATURE } from './png.js';
export { Canvas, textWidth, type Rgb } from './canvas.js';
export {
  scatterPlot,
  linePlot,
  PALETTE,
  type ScatterSeries,
  type ScatterPlotOptions,
  type LineSeries,
  type LinePlotOptions,
} from './plots.js';
export { type IdxArray, type Gunzip, parseIdx } from './idx.js';
export {
  type ImageDataset,
  type ImageDatasetName,
  type LoadImageOptions,
  IMAGE_DATASET_NAMES,
  IMAGE_SIZE,
  MNIST_CLASSES,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_ROOT,
  trainingSet,
  padTo32,
  toSigned,
} from './images.js';
export { imageGrid, type ImageGridOptions } from './grid.js';
// File I/O (readPoints, readIdxFile, loadMnist, loadFashionMnist, loadImageDataset) is in
// './node.ts', the `@diff-instruct/data/node` entry, so that this one runs in a browser.
