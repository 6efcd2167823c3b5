import type { ProgressEvent } from '@diff-instruct/trainer';

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '--';
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/**
 * A progress bar on stderr: phase, bar, step/total, rate, ETA and the current losses. On a
 * terminal it redraws one line; otherwise (CI logs, files) it prints a line every 10% and at
 * least once a minute.
 */
export function progressBar(stream: NodeJS.WriteStream = process.stderr, enabled = true): (e: ProgressEvent) => void {
  let lastDecile = -1;
  let lastPrint = 0;
  return (e) => {
    if (!enabled) return;
    const frac = e.step / e.total;
    const width = 24;
    const filled = Math.round(frac * width);
    const losses = Object.entries(e.losses)
      .map(([k, v]) => `${k} ${Math.abs(v) >= 1e3 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toFixed(4)}`)
      .join('  ');
    const line = `[${e.phase}] ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${e.step}/${e.total}  ${e.itPerSec.toFixed(1)} it/s  ETA ${fmtTime(e.etaSec)}  ${losses}`;
    if (stream.isTTY) {
      stream.write(`\r\x1b[2K${line}`);
      if (e.step === e.total) stream.write('\n');
    } else {
      // Every 10%, and at least once a minute for long runs.
      const decile = Math.floor(frac * 10);
      const now = Date.now();
      if (decile !== lastDecile || e.step === e.total || now - lastPrint > 60_000) {
        lastDecile = decile;
        lastPrint = now;
        stream.write(`${line}\n`);
      }
    }
  };
}
