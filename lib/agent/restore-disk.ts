import { BackupError, InvalidInputError } from '../errors.js';
import type { DiskIndexReader } from '../repository/disk-index.js';
import type { Repository } from '../repository/repository.js';
import type { CodecPool } from './codec-pool.js';
import { FileDiskTarget, type DiskTarget } from './disk-source.js';
import { Limiter } from '../limiter.js';

export interface DiskRestoreInput {
  readonly repository: Repository;
  readonly pool: CodecPool;
  readonly index: DiskIndexReader;
  /** A file path (created or replaced) or a block device; or give `target`. */
  readonly out?: string;
  /** An opened target (NBD export, file, device); the restore flushes it but the caller closes it. */
  readonly target?: DiskTarget;
  /** Downloads and writes in flight. @default 16 */
  readonly concurrency?: number;
  /**
   * Quick rollback: when the target already holds a disk of the same size, read it, and fetch and write only
   * the blocks whose content differs from the point (hashes compared in the codec workers).
   * @default true
   */
  readonly quickRollback?: boolean;
  readonly onProgress?: (progress: { bytesTotal: number; bytesDone: number; bytesWritten: number }) => void;
  readonly signal?: AbortSignal;
}

export interface DiskRestoreStats {
  bytesTotal: number;
  bytesWritten: number;
  bytesDownloaded: number;
  blocksTotal: number;
  blocksZero: number;
  blocksRestored: number;
  /** Quick rollback: blocks the target already held exactly, left untouched. */
  blocksUnchanged: number;
  /** Quick rollback: bytes read from the target to compare. */
  bytesCompared: number;
}

/**
 * Writes a disk back from its index: every non-zero block is fetched, decrypted, decompressed and checked
 * against its hash before it is written; a mismatch stops the restore with a `BlockCorruptError` naming the
 * block. Into a regular file, zero blocks become holes (the file is cut to length first, so stale data never
 * survives); into a block device they are written as zeros.
 */
export async function restoreDisk(input: DiskRestoreInput): Promise<DiskRestoreStats> {
  if ((input.out === undefined) === (input.target === undefined)) throw new InvalidInputError('restoreDisk needs exactly one of out (a path) and target');
  if (input.target) return restoreInto(input, input.target);
  const target = await FileDiskTarget.open(input.out!);
  try {
    return await restoreInto(input, target);
  } finally {
    await target.close();
  }
}

async function restoreInto(input: DiskRestoreInput, target: DiskTarget): Promise<DiskRestoreStats> {
  const { repository, pool, index } = input;
  // Only a regular file can be cut to length; devices and NBD exports have their size and keep old bytes.
  const resizable = target.reset !== undefined;
  if (!resizable && target.size < index.diskSize) {
    throw new BackupError('DISK_TARGET_TOO_SMALL', `${target.description} holds ${target.size} bytes but the point's disk has ${index.diskSize}: grow the target disk to at least the point's size`);
  }
  // A target of the disk's size may still be mostly right (a corrupted or rolled-forward disk): compare first.
  const compare = (input.quickRollback ?? true) && (!resizable || target.size === index.diskSize);
  const stats: DiskRestoreStats = { bytesTotal: index.diskSize, bytesWritten: 0, bytesDownloaded: 0, blocksTotal: index.blockCount, blocksZero: 0, blocksRestored: 0, blocksUnchanged: 0, bytesCompared: 0 };
  const limiter = new Limiter(input.concurrency ?? 16);
  let failure: unknown;
  let bytesDone = 0;
  let lastReport = 0;
  const report = () => input.onProgress?.({ bytesTotal: index.diskSize, bytesDone, bytesWritten: stats.bytesWritten });
  if (resizable && !compare) await target.reset!(index.diskSize);
  // Where zero blocks are not holes (devices, NBD, a compared file) they must be written as zeros.
  const zero = !resizable || compare ? Buffer.alloc(index.blockSize) : undefined;
  /** Quick rollback: is the block on the target already exactly what the point holds? */
  const alreadyThere = async (offset: number, length: number, expected: Buffer | null): Promise<boolean> => {
    const current = Buffer.allocUnsafeSlow(length);
    const got = await target.read(offset, length, current);
    stats.bytesCompared += got;
    if (got !== length) return false;
    return pool.matches(current, expected);
  };
  for (let block = 0; block < index.blockCount; block++) {
    if (failure) break;
    if (input.signal?.aborted) {
      failure = new BackupError('ABORTED', 'the restore was stopped before it finished; run it again');
      break;
    }
    const offset = block * index.blockSize;
    const length = Math.min(index.blockSize, index.diskSize - offset);
    const hash = index.entry(block);
    if (!hash && !compare) {
      stats.blocksZero++;
      bytesDone += length;
      if (zero) {
        await target.write(offset, zero.subarray(0, length));
        stats.bytesWritten += length;
      }
      continue;
    }
    const own = hash ? Buffer.from(hash) : null;
    await limiter.acquire();
    if (failure) {
      limiter.release();
      break;
    }
    (async () => {
      if (compare && (await alreadyThere(offset, length, own))) {
        stats.blocksUnchanged++;
        if (!own) stats.blocksZero++;
        bytesDone += length;
        return;
      }
      if (!own) {
        stats.blocksZero++;
        await target.write(offset, zero!.subarray(0, length));
        stats.bytesWritten += length;
        bytesDone += length;
        return;
      }
      const encoded = await repository.getEncodedBlock(own);
      stats.bytesDownloaded += encoded.length;
      const plain = await pool.decode(encoded, own);
      if (plain.length !== length) throw new BackupError('BLOCK_SIZE_MISMATCH', `block ${own.toString('hex')} has ${plain.length} bytes where the index expects ${length}`);
      await target.write(offset, plain);
      stats.bytesWritten += length;
      stats.blocksRestored++;
      bytesDone += length;
      if (bytesDone - lastReport >= 64 * index.blockSize) {
        lastReport = bytesDone;
        report();
      }
    })()
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(() => limiter.release());
  }
  await limiter.drain();
  if (failure) throw failure;
  await target.flush();
  report();
  return stats;
}
