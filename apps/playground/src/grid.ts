/**
 * Draws N images (NHWC, values in [-1, 1]) into a canvas as a square grid, one canvas pixel per
 * image pixel (CSS scales it up): pixel = (x + 1)/2, clipped, as the CLI's PNG grids.
 */
export function drawGrid(canvas: HTMLCanvasElement, images: Float32Array, n: number, shape: readonly number[]): void {
  const [h, w, c] = shape as [number, number, number];
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  canvas.width = cols * w;
  canvas.height = rows * h;
  const ctx = canvas.getContext('2d');
  if (ctx === null) throw new Error('this browser gives no 2-D canvas context');
  const img = ctx.createImageData(canvas.width, canvas.height);
  const byte = (x: number) => Math.round(Math.min(1, Math.max(0, (x + 1) / 2)) * 255);
  for (let i = 0; i < n; i++) {
    const x0 = (i % cols) * w;
    const y0 = Math.floor(i / cols) * h;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const src = ((i * h + y) * w + x) * c;
        const dst = ((y0 + y) * canvas.width + x0 + x) * 4;
        const r = byte(images[src]!);
        img.data[dst] = r;
        img.data[dst + 1] = c >= 3 ? byte(images[src + 1]!) : r;
        img.data[dst + 2] = c >= 3 ? byte(images[src + 2]!) : r;
        img.data[dst + 3] = 255;
      }
    }
  }
  ctx.putImageData(img, 0, 0);
}
