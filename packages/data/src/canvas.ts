import { GLYPH_ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH, glyphPixel } from './font.js';
import { encodePng } from './png.js';

export type Rgb = [number, number, number];

/** A tiny RGBA raster with alpha blending, lines, rectangles and 5×7 bitmap text. */
export class Canvas {
  readonly rgba: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    this.rgba = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      this.rgba[4 * i] = background[0];
      this.rgba[4 * i + 1] = background[1];
      this.rgba[4 * i + 2] = background[2];
      this.rgba[4 * i + 3] = 255;
    }
  }

  /** Blends `color` over pixel (x, y) with opacity `alpha`; pixels outside are ignored. */
  blend(x: number, y: number, color: Rgb, alpha = 1): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = 4 * (y * this.width + x);
    for (let c = 0; c < 3; c++) this.rgba[o + c] = Math.round(this.rgba[o + c]! * (1 - alpha) + color[c]! * alpha);
  }

  fillRect(x0: number, y0: number, w: number, h: number, color: Rgb, alpha = 1): void {
    for (let y = Math.round(y0); y < Math.round(y0 + h); y++) {
      for (let x = Math.round(x0); x < Math.round(x0 + w); x++) this.blend(x, y, color, alpha);
    }
  }

  strokeRect(x0: number, y0: number, w: number, h: number, color: Rgb): void {
    this.line(x0, y0, x0 + w, y0, color);
    this.line(x0 + w, y0, x0 + w, y0 + h, color);
    this.line(x0 + w, y0 + h, x0, y0 + h, color);
    this.line(x0, y0 + h, x0, y0, color);
  }

  /** A one-pixel line from (x0, y0) to (x1, y1) (DDA). */
  line(x0: number, y0: number, x1: number, y1: number, color: Rgb, alpha = 1): void {
    const steps = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    if (!Number.isFinite(steps) || steps > 1e5) return;
    const n = Math.ceil(steps);
    for (let i = 0; i <= n; i++) this.blend(x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n, color, alpha);
  }

  /** Draws `text` with its top-left corner at (x, y), each font pixel `scale`×`scale` screen pixels. */
  text(x: number, y: number, text: string, color: Rgb, scale = 1): void {
    x = Math.round(x);
    y = Math.round(y);
    for (let k = 0; k < text.length; k++) {
      const ch = text[k]!;
      for (let col = 0; col < GLYPH_WIDTH; col++) {
        for (let row = 0; row < GLYPH_HEIGHT; row++) {
          if (glyphPixel(ch, col, row)) this.fillRect(x + (k * GLYPH_ADVANCE + col) * scale, y + row * scale, scale, scale, color);
        }
      }
    }
  }

  toPng(): Uint8Array {
    return encodePng(this.width, this.height, this.rgba);
  }
}

/** Width in pixels of `text` drawn at `scale`. */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * GLYPH_ADVANCE - 1) * scale;
}

export const TEXT_HEIGHT = GLYPH_HEIGHT;
