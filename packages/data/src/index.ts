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
  readPoints,
  parseCsvPoints,
  parseNpy,
  encodeNpy,
  formatCsvPoints,
  validatePoints,
} from './points.js';
export { encodePng, crc32, PNG_SIGNATURE } from './png.js';
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
