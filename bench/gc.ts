import { pathToFileURL } from 'node:url';
import { ManualClock } from '../lib/domain/clock.js';
import { DiskIndexWriter } from '../lib/repository/disk-index.js';
import { FORMAT_VERSION, indexKey, blockKey } from '../lib/repository/format.js';
import { collectGarbage } from '../lib/repository/gc.js';
import { MemoryStore } from '../lib/repository/memory-store.js';
import type { Body, ByteRange, ObjectInfo, ObjectStore } from '../lib/repository/object-store.js';
import { Repository } from '../lib/repository/repository.js';

/**
 * `npm run bench -- gc [--blocks N] [--referenced FRACTION] [--points N]` (GC half of issue 5's benchmark):
 * mark and sweep over a repository of 1 000 000 blocks, of which a fraction (default 30 %) is referenced by
 * `--points` synthetic restore points (default 3, each a synthetic full naming every referenced block, as a
 * chain of fulls would). The store keeps points, indexes and config in memory and SYNTHESISES the block
 * listing (no bodies, nothing retained), so what GC itself holds is what the numbers show. Aim: memory bounded
 * by the referenced blocks (the mark set), not by the listing.
 */
class SyntheticBlockStore implements ObjectStore {
  readonly description = 'synthetic block store';
  readonly inner: MemoryStore;
  deleted = 0;
  private readonly old: Date;

  constructor(
    private readonly blocks: number,
    clock: ManualClock,
  ) {
    this.inner = new MemoryStore(clock);
    this.old = new Date(clock.now().getTime() - 7 * 86_400_000);
  }

  get(key: string, range?: ByteRange): Promise<Buffer> {
    return this.inner.get(key, range);
  }

  put(key: string, body: Body): Promise<void> {
    return this.inner.put(key, body);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    return key.startsWith('blocks/') ? { key, size: 400_000, lastModified: this.old } : this.inner.stat(key);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (prefix !== 'blocks/') {
      yield* this.inner.list(prefix);
      return;
    }
    for (let i = 0; i < this.blocks; i++) yield { key: blockKey(blockHash(i).toString('hex')), size: 400_000, lastModified: this.old };
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    const blocks = keys.filter((k) => k.startsWith('blocks/'));
    this.deleted += blocks.length;
    await this.inner.deleteMany(keys.filter((k) => !k.startsWith('blocks/')));
  }
}

/** A synthetic 32-byte block name for block `i`: murmur3's finaliser over the words, uniform and cheap (SHA-256 would dominate the run). */
function blockHash(i: number): Buffer {
  const out = Buffer.allocUnsafe(32);
  for (let w = 0; w < 8; w++) {
    let h = Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(w + 1, 0x85ebca6b);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    out.writeUInt32LE(h >>> 0, w * 4);
  }
  return out;
}

function option(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const n = Number(args[at + 1]);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} needs a positive number`);
  return n;
}

const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;

export async function benchGc(args: string[] = []): Promise<void> {
  const blocks = Math.floor(option(args, '--blocks', 1_000_000));
  const fraction = option(args, '--referenced', 0.3);
  const points = Math.floor(option(args, '--points', 3));
  const clock = new ManualClock('2026-11-01T10:00:00Z');
  const store = new SyntheticBlockStore(blocks, clock);
  const repository = await Repository.init(store, { clock });

  // Setup (not measured): `points` points whose single disk names every referenced block.
  const stride = Math.max(1, Math.round(1 / fraction));
  const referenced = Math.ceil(blocks / stride);
  for (let p = 0; p < points; p++) {
    const pointId = `20261101T1000${String(p).padStart(2, '0')}Z-0000000${p}`;
    const key = indexKey('vapp-bench', pointId, 'disk-0');
    const writer = new DiskIndexWriter(repository.codec, key, 1024 * 1024, referenced * 1024 * 1024);
    for (let i = 0; i < blocks; i += stride) writer.append(blockHash(i));
    await store.put(key, writer.finish());
    await repository.commitPoint({
      format: FORMAT_VERSION, pointId, vappId: 'vapp-bench', createdAt: clock.now().toISOString(), parentPointId: null, sourcePointId: null, hasVAppMetadata: false,
      disks: [{ diskId: 'disk-0', vmId: null, sizeBytes: referenced * 1024 * 1024, blockSize: 1024 * 1024, blocksTotal: referenced, blocksZero: 0, blocksNew: 0, bytesUploaded: 0 }],
    });
  }
  // The cost of producing the listing itself (what S3 would spend on its side), to tell it apart from GC's.
  let listed = 0;
  const l0 = performance.now();
  for await (const _info of store.list('blocks/')) listed++;
  const listingSeconds = (performance.now() - l0) / 1000;
  (globalThis as { gc?: () => void }).gc?.();

  const rssBefore = process.memoryUsage().rss;
  const heapBefore = process.memoryUsage().heapUsed;
  let peakRss = rssBefore;
  let peakHeap = heapBefore;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  const timer = setInterval(sample, 20);
  const t0 = performance.now();
  const report = await collectGarbage(repository, { clock, graceMs: 86_400_000, onProgress: sample });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  sample();

  const out = {
    bench: 'gc',
    blocksListed: report.blocksListed,
    blocksReferenced: report.blocksReferenced,
    points: report.points,
    indexesRead: report.indexesRead,
    blocksDeleted: report.blocksDeleted,
    seconds: Math.round(seconds * 100) / 100,
    listingAloneSeconds: Math.round(listingSeconds * 100) / 100,
    listingAloneBlocks: listed,
    markSet: mib(report.markSetBytes),
    rssBefore: mib(rssBefore),
    peakRss: mib(peakRss),
    rssGrowth: mib(peakRss - rssBefore),
    peakHeapGrowth: mib(peakHeap - heapBefore),
    /** What a Set of hex strings of the same blocks would take, for comparison (~120 B an entry). */
    hexSetEstimate: mib(report.blocksReferenced * 120),
    listingIfRetained: mib(report.blocksListed * 200),
  };
  console.log(
    `gc: ${out.blocksListed} blocks listed, ${out.blocksReferenced} referenced by ${out.points} points (${out.indexesRead} indexes), ${out.blocksDeleted} deleted in ${out.seconds} s (producing the listing alone: ${out.listingAloneSeconds} s); ` +
      `mark set ${out.markSet}, RSS growth ${out.rssGrowth} (peak ${out.peakRss}), heap growth ${out.peakHeapGrowth}`,
  );
  console.log(JSON.stringify(out));
  if (store.deleted !== report.blocksDeleted || report.blocksDeleted !== blocks - referenced) throw new Error(`GC deleted ${store.deleted} blocks, expected ${blocks - referenced}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchGc(process.argv.slice(2));
}
