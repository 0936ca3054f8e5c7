/**
 * `npm run bench -- disk --transport nbd [--size 1GiB] [--block-size 1MiB] [--concurrency 16] [--rounds 2] [--dir DIR]`
 *
 * Reads one synthetic image (a third of it sparse) whole, in blocks as the backup pipeline does, through
 * FileDiskSource and through nbdkit's file plugin with NbdDiskSource, and prints MiB/s for each; then through
 * NBD again reading only what BLOCK_STATUS reports allocated, which is what a backup skipping holes reads.
 * Rounds alternate file and NBD so neither always gets the warmer page cache; caches are dropped when root.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { FileDiskSource, type DiskSource } from '../lib/agent/disk-source.js';
import { NbdDiskSource } from '../lib/agent/nbd-disk-source.js';
import { startNbdkit } from '../lib/agent/nbd-server.js';
import { writeSyntheticImage } from '../test/helpers/synthetic-image.js';
import { dropCaches, measure, MiB, row } from './support.js';

function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|m|g|t)?i?b?$/i.exec(v.trim());
  if (!m) throw new Error(`cannot read size "${v}": use e.g. 1GiB, 512MiB or a byte count`);
  const mult = { k: 1024, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB }[(m[2] ?? '').toLowerCase() as 'k'] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

/** Reads the given blocks with `concurrency` readers, each reusing one buffer; returns the bytes read. */
async function readBlocks(source: DiskSource, blocks: readonly number[], blockSize: number, concurrency: number): Promise<number> {
  let next = 0;
  let total = 0;
  const reader = async () => {
    const buf = Buffer.allocUnsafeSlow(blockSize);
    while (next < blocks.length) {
      const offset = blocks[next++]! * blockSize;
      const n = await source.read(offset, Math.min(blockSize, source.size - offset), buf);
      total += n;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, reader));
  return total;
}

export async function benchNbdTransport(args: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const size = parseSize(opt('--size') ?? '1GiB');
  const blockSize = parseSize(opt('--block-size') ?? '1MiB');
  const concurrency = Number(opt('--concurrency') ?? 16);
  const rounds = Number(opt('--rounds') ?? 2);
  const dir = path.resolve(opt('--dir') ?? '.vcd-backup/bench');
  await mkdir(dir, { recursive: true });
  const image = path.join(dir, `base-${size}.img`);
  if (!(await stat(image).catch(() => undefined))) {
    process.stderr.write(`generating ${size / MiB} MiB synthetic image (zero, text-like and random regions)...\n`);
    await writeSyntheticImage(image, size, { seed: 'bench' });
  }
  const blockCount = Math.ceil(size / blockSize);
  const all = Array.from({ length: blockCount }, (_, i) => i);

  const server = await startNbdkit({ plugin: ['file', `file=${image}`], readOnly: true });
  try {
    const nbd = await NbdDiskSource.open({ socketPath: server.socketPath });
    const file = await FileDiskSource.open(image);
    try {
      // Which blocks hold data: the hole-skipping read asks BLOCK_STATUS first and reads only those.
      const ext = await measure(() => nbd.allocatedExtents(0, size));
      const allocated = new Set<number>();
      for (const e of ext.result) {
        if (e.zero) continue;
        for (let b = Math.floor(e.offset / blockSize); b * blockSize < e.offset + e.length; b++) allocated.add(b);
      }
      const dataBlocks = [...allocated].sort((a, b) => a - b);
      process.stdout.write(`\nimage ${size / MiB} MiB, block ${blockSize / MiB} MiB, ${concurrency} reads in flight, nbdkit ${server.socketPath}\n`);
      process.stdout.write(`BLOCK_STATUS: ${ext.result.length} extents in ${(ext.seconds * 1000).toFixed(1)} ms; ${dataBlocks.length} of ${blockCount} blocks hold data\n\n`);
      const widths = [24, 7, 10, 10, 8];
      process.stdout.write(row(['source', 'round', 'MiB read', 'MiB/s', 'cache'], widths) + '\n');
      const results: Record<string, number[]> = {};
      const run = async (name: string, source: DiskSource, blocks: readonly number[], round: number) => {
        const cache = dropCaches();
        const r = await measure(() => readBlocks(source, blocks, blockSize, concurrency));
        // MiB/s of disk covered, so the hole-skipping row shows what the backup gains on the whole disk.
        const mbps = size / MiB / r.seconds;
        (results[name] ??= []).push(mbps);
        process.stdout.write(row([name, round, (r.result / MiB).toFixed(0), mbps.toFixed(0), cache], widths) + '\n');
      };
      for (let round = 1; round <= rounds; round++) {
        const order: Array<[string, DiskSource, readonly number[]]> = [
          ['file (FileDiskSource)', file, all],
          ['nbd (nbdkit file)', nbd, all],
          ['nbd, holes skipped', nbd, dataBlocks],
        ];
        if (round % 2 === 0) order.reverse();
        for (const [name, source, blocks] of order) await run(name, source, blocks, round);
      }
      const best = (name: string) => Math.max(...(results[name] ?? [0]));
      process.stdout.write(`\nbest MiB/s of disk: file ${best('file (FileDiskSource)').toFixed(0)}, nbd ${best('nbd (nbdkit file)').toFixed(0)} (${(best('nbd (nbdkit file)') / best('file (FileDiskSource)')).toFixed(2)}× file), nbd skipping holes ${best('nbd, holes skipped').toFixed(0)}\n`);
    } finally {
      await nbd.close();
      await file.close();
    }
  } finally {
    await server.stop();
  }
}
