import { SingleBar, Presets } from 'cli-progress';
import type { CliIo } from './support.js';

export interface Progress {
  update(done: number, extra?: Record<string, string | number>): void;
  stop(): void;
}

const MiB = 1024 * 1024;

/**
 * A byte progress bar on stderr for people at a terminal; silent when stderr is not a terminal (CI, pipes),
 * so logs and `--json` consumers see no control characters.
 */
export function byteProgress(io: CliIo, label: string, total: number): Progress {
  if (!io.interactive) return { update: () => undefined, stop: () => undefined };
  const started = Date.now();
  const bar = new SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {doneMiB}/{totalMiB} MiB | {rate} MB/s | {info}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
    },
    Presets.shades_classic,
  );
  bar.start(total, 0, { doneMiB: '0', totalMiB: (total / MiB).toFixed(0), rate: '0', info: '' });
  return {
    update(done, extra) {
      const seconds = (Date.now() - started) / 1000;
      bar.update(done, {
        doneMiB: (done / MiB).toFixed(0),
        rate: seconds > 0 ? (done / 1e6 / seconds).toFixed(0) : '0',
        info: extra ? Object.entries(extra).map(([k, v]) => `${k} ${v}`).join(' ') : '',
      });
    },
    stop() {
      bar.stop();
    },
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

/** A plain left-aligned table for stderr/stdout. */
export function table(rows: ReadonlyArray<ReadonlyArray<string>>): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}
