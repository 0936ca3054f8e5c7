import { BackupError, InvalidInputError } from '../errors.js';
import { DiskIndexWriter, blockCountOf, type DiskIndexReader } from '../repository/disk-index.js';
import { indexKey, type PointDisk } from '../repository/format.js';
import type { Repository } from '../repository/repository.js';
import { changedBlocks, isMarked, type ChangedArea } from './changed-areas.js';
import type { CodecPool } from './codec-pool.js';
import type { DiskExtent, DiskSource } from './disk-source.js';
import { Limiter } from '../limiter.js';

export interface DiskBackupInput {
  readonly repository: Repository;
  readonly pool: CodecPool;
  readonly source: DiskSource;
  readonly vappId: string;
  readonly pointId: string;
  readonly diskId: string;
  readonly vmId?: string | null;
  readonly blockSize: number;
  /** The same disk's index in the previous point: unchanged blocks are taken from it. */
  readonly parent?: DiskIndexReader;
  /** Byte ranges written since the parent (CBT). Only these are read; needs `parent`. */
  readonly changedAreas?: readonly ChangedArea[];
  /** Blocks being read, hashed and compressed at once (memory ≈ this × block size × 2). @default 4 × pool size + 8 */
  readonly readAhead?: number;
  /** Uploads in flight. @default 16 */
  readonly uploadConcurrency?: number;
  readonly onProgress?: (progress: DiskBackupProgress) => void;
  readonly signal?: AbortSignal;
}

export interface DiskBackupProgress {
  readonly bytesTotal: number;
  /** Bytes of the disk accounted for (read, or known unchanged). */
  readonly bytesDone: number;
  readonly bytesRead: number;
  readonly bytesUploaded: number;
}

export interface DiskBackupStats {
  bytesRead: number;
  bytesUploaded: number;
  blocksTotal: number;
  blocksZero: number;
  /** Blocks uploaded by this backup. */
  blocksNew: number;
  /** Non-zero blocks not uploaded: unchanged since the parent, or already in the repository. */
  blocksReused: number;
}

export interface DiskBackupResult {
  readonly disk: PointDisk;
  readonly indexKey: string;
  readonly stats: DiskBackupStats;
}

/** Blocks remembered as uploaded by this run, to skip the existence check for repeats inside one disk. */
const SESSION_MEMORY = 1_000_000;

/**
 * Backs up one disk into the repository: read → zero check → hash → (dedupe) → compress → encrypt →
 * upload, then writes the disk's index. It does not commit a point: the caller writes vapp.json and
 * point.json once every disk of the point is in (DESIGN §3 write ordering).
 *
 * Bounded memory: at most `readAhead` blocks are between reading and the index at any time; results that
 * finish out of order wait in a small reorder buffer so the index is written strictly in disk order.
 * Idempotent: blocks are content-named, so a rerun after a crash finds the blocks already uploaded.
 */
export async function backupDisk(input: DiskBackupInput): Promise<DiskBackupResult> {
  const { repository, pool, source, blockSize, parent } = input;
  const diskSize = source.size;
  const blockCount = blockCountOf(diskSize, blockSize);
  if (parent && parent.blockSize !== blockSize) {
    throw new InvalidInputError(`the parent index uses ${parent.blockSize}-byte blocks and this backup ${blockSize}: start a new chain with a full backup, or keep the block size`);
  }
  if (input.changedAreas && !parent) throw new InvalidInputError('changed areas need a parent point (--parent): without one every block must be read');
  const changed = input.changedAreas ? changedBlocks(input.changedAreas, diskSize, blockSize) : undefined;
  // Blocks CBT may take from the parent unread: whole blocks inside both the old and the new size. When the
  // size changed, the parent's partial last block has another length now, so it must be read again.
  const reusableBlocks = !parent ? 0 : parent.diskSize === diskSize ? parent.blockCount : Math.floor(Math.min(parent.diskSize, diskSize) / blockSize);
  const key = indexKey(input.vappId, input.pointId, input.diskId);
  const writer = new DiskIndexWriter(repository.codec, key, blockSize, diskSize);
  const stats: DiskBackupStats = { bytesRead: 0, bytesUploaded: 0, blocksTotal: blockCount, blocksZero: 0, blocksNew: 0, blocksReused: 0 };
  const readAhead = input.readAhead ?? pool.size * 4 + 8;
  const window = new Limiter(readAhead);
  const uploads = new Limiter(input.uploadConcurrency ?? 16);
  const session = new Set<string>();
  const done = new Map<number, Buffer | null>();
  let nextToWrite = 0;
  let bytesDone = 0;
  let failure: unknown;

  const report = () => input.onProgress?.({ bytesTotal: diskSize, bytesDone, bytesRead: stats.bytesRead, bytesUploaded: stats.bytesUploaded });

  /** Moves finished entries into the index in disk order. */
  const settle = (block: number, hash: Buffer | null) => {
    done.set(block, hash);
    while (done.has(nextToWrite)) {
      writer.append(done.get(nextToWrite)!);
      done.delete(nextToWrite);
      bytesDone += Math.min(blockSize, diskSize - nextToWrite * blockSize);
      nextToWrite++;
    }
  };

  const remember = (name: string) => {
    if (session.size >= SESSION_MEMORY) session.clear();
    session.add(name);
  };

  const upload = async (hash: Buffer, encoded: Buffer) => {
    const name = hash.toString('hex');
    if (session.has(name)) {
      stats.blocksReused++;
      return;
    }
    if (await repository.hasBlock(hash)) {
      remember(name);
      stats.blocksReused++;
      return;
    }
    await uploads.run(() => repository.putBlock(hash, encoded));
    remember(name);
    stats.blocksNew++;
    stats.bytesUploaded += encoded.byteLength;
  };

  const processBlock = async (block: number, parentHash: Buffer | null) => {
    const offset = block * blockSize;
    const length = Math.min(blockSize, diskSize - offset);
    const buf = Buffer.allocUnsafeSlow(length);
    const got = await source.read(offset, length, buf);
    if (got !== length) throw new BackupError('SOURCE_SHORT_READ', `${source.description} ended at ${offset + got} bytes, expected ${diskSize}: the disk changed size during the backup`);
    stats.bytesRead += length;
    const result = await pool.encode(buf, parentHash);
    if (result.kind === 'zero') {
      stats.blocksZero++;
      return null;
    }
    if (result.kind === 'same') {
      stats.blocksReused++;
      return result.hash;
    }
    await upload(result.hash, result.encoded);
    return result.hash;
  };

  let lastReport = 0;
  const zeros = source.allocatedExtents ? new ZeroAreas(source, diskSize, ZERO_WINDOW_BLOCKS * blockSize) : undefined;
  for (let block = 0; block < blockCount; block++) {
    if (failure) break;
    if (input.signal?.aborted) {
      failure = new BackupError('ABORTED', 'the backup was stopped before it finished; run it again to resume (uploaded blocks are reused)');
      break;
    }
    const parentHash = parent && block < parent.blockCount ? parent.entry(block) : null;
    if (changed && block < reusableBlocks && !isMarked(changed, block)) {
      // Unchanged since the parent (CBT): take its entry without reading.
      if (parentHash) stats.blocksReused++;
      else stats.blocksZero++;
      settle(block, parentHash);
      continue;
    }
    if (zeros && (await zeros.covers(block * blockSize, Math.min(blockSize, diskSize - block * blockSize)))) {
      // The source says these bytes read as zeros (a hole): the index entry is "zero" without reading them.
      stats.blocksZero++;
      settle(block, null);
      continue;
    }
    await window.acquire();
    if (failure) {
      window.release();
      break;
    }
    processBlock(block, parentHash)
      .then((hash) => settle(block, hash))
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(() => window.release());
    if (input.onProgress && stats.bytesRead - lastReport >= 64 * blockSize) {
      lastReport = stats.bytesRead;
      report();
    }
  }
  await window.drain();
  if (failure) throw failure;
  report();
  const indexBody = writer.finish();
  await repository.putIndex(input.vappId, input.pointId, input.diskId, indexBody);
  return {
    indexKey: key,
    stats,
    disk: {
      diskId: input.diskId,
      vmId: input.vmId ?? null,
      sizeBytes: diskSize,
      blockSize,
      blocksTotal: blockCount,
      blocksZero: stats.blocksZero,
      blocksNew: stats.blocksNew,
      bytesUploaded: stats.bytesUploaded,
    },
  };
}

/** Blocks whose allocation is asked at once: bounds the extent list held and the reach of one request. */
const ZERO_WINDOW_BLOCKS = 256;

/**
 * The source's zero areas, fetched ahead in windows as the backup walks the disk in order, so a disk of any
 * size costs one small extent list at a time.
 */
class ZeroAreas {
  private extents: DiskExtent[] = [];
  private next = 0;
  private from = 0;
  private until = 0;

  constructor(
    private readonly source: DiskSource,
    private readonly diskSize: number,
    private readonly windowBytes: number,
  ) {}

  /** True when all of `[offset, offset+length)` reads as zeros. */
  async covers(offset: number, length: number): Promise<boolean> {
    const end = offset + length;
    if (offset < this.from || end > this.until) {
      const ask = Math.min(Math.max(this.windowBytes, length), this.diskSize - offset);
      this.extents = await this.source.allocatedExtents!(offset, ask);
      this.next = 0;
      this.from = offset;
      const last = this.extents[this.extents.length - 1];
      this.until = last ? last.offset + last.length : offset;
      if (end > this.until) return false;
    }
    while (this.next < this.extents.length && this.extents[this.next]!.offset + this.extents[this.next]!.length <= offset) this.next++;
    for (let i = this.next, at = offset; at < end; i++) {
      const e = this.extents[i];
      if (!e || e.offset > at || !e.zero) return false;
      at = e.offset + e.length;
    }
    return true;
  }
}
