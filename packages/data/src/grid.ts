import { Canvas, TEXT_HEIGHT, textWidth, type Rgb } from './canvas.js';

export interface ImageGridOptions {
  /** Row-major [n, height, width, channels] (NHWC), in [-1, 1]; values outside are clipped. */
  images: Float32Array;
  n: number;
  height: number;
  width: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: number;
  /**
   * Images per row. Default: n / rowLabels.length with row labels (one row per label), else
   * ceil(√n).
   */
  cols?: number;
  /** Gap between images and around the grid, in output pixels. Default 2. */
  pad?: number;
  /** Integer upscaling of each image pixel (nearest neighbour). Default 2, so 32×32 images show at 64×64. */
  scale?: number;
  /** Drawn above the grid. */
  title?: string;
  /** One label per row, drawn at the left, e.g. "step 0", "step 500" for the same latents at each checkpoint. */
  rowLabels?: string[];
}

const INK: Rgb = [0, 0, 0];
const BACKGROUND: Rgb = [255, 255, 255];
/** Drawn where an image has NaN, so a diverged generator is visible rather than black. */
const NAN_COLOR: Rgb = [255, 0, 255];

/** [-1, 1] → 0..255, clipped. */
function toByte(v: number): number {
  return Math.round(Math.min(1, Math.max(-1, v)) * 127.5 + 127.5);
}

function checkInt(name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!(Number.isInteger(v) && v >= min && v <= max)) {
    throw new Error(`imageGrid: ${name} must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}], got ${v}`);
  }
}

/**
 * A grid of images as PNG bytes: white gaps of `pad` pixels, each image pixel drawn as a
 * `scale`×`scale` block, values in [-1, 1] mapped to 0..255 (NaN shows as magenta), an optional
 * title above and optional row labels at the left.
 */
export function imageGrid(opts: ImageGridOptions): Uint8Array {
  const { images, n, height: h, width: w, channels: c, title, rowLabels } = opts;
  checkInt('n', n, 1);
  checkInt('height', h, 1);
  checkInt('width', w, 1);
  if (c !== 1 && c !== 3) throw new Error(`imageGrid: channels must be 1 (grayscale) or 3 (RGB), got ${c}`);
  if (images.length !== n * h * w * c) {
    throw new Error(`imageGrid: expected ${n}×${h}×${w}×${c} = ${n * h * w * c} values, got ${images.length}`);
  }
  const scale = opts.scale ?? 2;
  const pad = opts.pad ?? 2;
  checkInt('scale', scale, 1, 32);
  checkInt('pad', pad, 0, 256);
  let cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  if (rowLabels !== undefined && opts.cols === undefined) {
    if (rowLabels.length === 0 || n % rowLabels.length !== 0) {
      throw new Error(`imageGrid: ${n} images do not split into ${rowLabels.length} labelled rows; give cols, or n a multiple of the rows`);
    }
    cols = n / rowLabels.length;
  }
  checkInt('cols', cols, 1);
  cols = Math.min(cols, n);
  const rows = Math.ceil(n / cols);
  if (rowLabels !== undefined && rowLabels.length !== rows) {
    throw new Error(`imageGrid: ${rowLabels.length} row labels for ${rows} rows of ${cols} images; give one label per row`);
  }

  const tileW = w * scale;
  const tileH = h * scale;
  const textScale = tileH >= 48 ? 2 : 1;
  const margin = 4 * textScale;
  const labelW = rowLabels === undefined ? 0 : Math.max(...rowLabels.map((l) => textWidth(l, textScale))) + 2 * margin;
  const titleH = title === undefined ? 0 : TEXT_HEIGHT * textScale + 2 * margin;
  const gridW = labelW + cols * (tileW + pad) + pad;
  const width = Math.max(gridW, title === undefined ? 0 : textWidth(title, textScale) + 2 * margin);
  const height = titleH + rows * (tileH + pad) + pad;
  const canvas = new Canvas(width, height, BACKGROUND);
  if (title !== undefined) canvas.text(margin, margin, title, INK, textScale);

  const { rgba } = canvas;
  const pixel: Rgb = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const r = Math.floor(i / cols);
    const x0 = labelW + pad + (i % cols) * (tileW + pad);
    const y0 = titleH + pad + r * (tileH + pad);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = ((i * h + y) * w + x) * c;
        let nan = false;
        for (let k = 0; k < 3; k++) {
          const v = images[o + (c === 1 ? 0 : k)]!;
          if (Number.isNaN(v)) nan = true;
          pixel[k] = toByte(v);
        }
        const color = nan ? NAN_COLOR : pixel;
        for (let dy = 0; dy < scale; dy++) {
          let p = 4 * ((y0 + y * scale + dy) * width + x0 + x * scale);
          for (let dx = 0; dx < scale; dx++, p += 4) {
            rgba[p] = color[0];
            rgba[p + 1] = color[1];
            rgba[p + 2] = color[2];
          }
        }
      }
    }
  }
  rowLabels?.forEach((label, r) => {
    const y0 = titleH + pad + r * (tileH + pad);
    canvas.text(margin, y0 + Math.floor((tileH - TEXT_HEIGHT * textScale) / 2), label, INK, textScale);
  });
  return canvas.toPng();
}
