/**
 * `npm run bench -- index [--disk-size 2TiB]`: builds and reads back the index of a 2 TiB disk at 1 MiB
 * blocks (2 Mi entries) and prints the time and the memory it took: the aim is under 100 MiB.
 */
import { BlockCodec } from '../lib/repository/block-codec.js';
import { DiskIndexReader, DiskIndexWriter } from '../lib/repository/disk-index.js';
import { generateMasterKeys } from '../lib/repository/keys.js';
import { Prng } from '../test/helpers/synthetic-image.js';
import { measure, MiB } from './support.js';

export async function benchDiskIndex(_args: string[]): Promise<void> {
  const diskSize = 2 * 1024 * 1024 * MiB;
  const blockSize = MiB;
  const codec = new BlockCodec({ compressionLevel: 1, keys: generateMasterKeys() });
  const prng = new Prng('index-bench');
  let pool: Buffer = Buffer.alloc(0);
  global.gc?.();
  let baseline = process.memoryUsage.rss();
  const built = await measure(async () => {
    const writer = new DiskIndexWriter(codec, 'points/v/p/disks/d.idx', blockSize, diskSize);
    const count = diskSize / blockSize;
    // a quarter zero blocks, the rest unique, incompressible hashes (the worst case for the index's size)
    for (let i = 0; i < count; i++) {
      if (i % 4 === 0) writer.append(null);
      else {
        if (i % 65536 === 1) pool = prng.bytes(32 * 65536);
        writer.append(pool.subarray((i % 65536) * 32, (i % 65536) * 32 + 32));
      }
    }
    return writer.finish(); // parts, as ObjectStore.put takes them
  });
  const buildPeak = built.peakRssMiB - Math.round(baseline / MiB);
  const body = Buffer.concat(built.result);
  built.result.length = 0;
  global.gc?.();
  baseline = process.memoryUsage.rss() - body.length; // the fetched object is part of what reading costs
  const read = await measure(async () => {
    const reader = new DiskIndexReader(codec, 'points/v/p/disks/d.idx', body);
    let n = 0;
    for (const e of reader.entries()) if (e) n++;
    return n;
  });
  process.stdout.write(
    `disk index, 2 TiB at 1 MiB blocks (${diskSize / blockSize} entries), encrypted:\n` +
      `  build  ${built.seconds.toFixed(2)} s, object ${(body.length / MiB).toFixed(1)} MiB, peak RSS +${buildPeak} MiB over the start\n` +
      `  read   ${read.seconds.toFixed(2)} s (${read.result} non-zero entries), peak RSS +${read.peakRssMiB - Math.round(baseline / MiB)} MiB over the start (object included)\n`,
  );
}
