import { randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { InvalidInputError } from '../errors.js';
import type { DiskIndexReader } from '../repository/disk-index.js';
import { FORMAT_VERSION, newPointId, type PointDescriptor } from '../repository/format.js';
import type { Repository } from '../repository/repository.js';
import { backupDisk, type DiskBackupProgress, type DiskBackupStats } from './backup-disk.js';
import type { ChangedArea } from './changed-areas.js';
import { CodecPool } from './codec-pool.js';
import { FileDiskSource } from './disk-source.js';
import { ObjectStoreLock, defaultLockHolder } from '../repository/lock.js';
import { restoreDisk, type DiskRestoreStats } from './restore-disk.js';

export interface SingleDiskBackupInput {
  readonly repository: Repository;
  readonly clock: Clock;
  readonly sourcePath: string;
  readonly vappId: string;
  readonly diskId: string;
  readonly parentPointId?: string;
  readonly changedAreas?: readonly ChangedArea[];
  readonly blockSize?: number;
  readonly pool?: CodecPool;
  readonly onProgress?: (p: DiskBackupProgress) => void;
  readonly signal?: AbortSignal;
}

export interface SingleDiskBackupResult extends DiskBackupStats {
  readonly pointId: string;
  readonly parentPointId: string | null;
  readonly seconds: number;
}

/**
 * `vcd-backup disk backup`: one disk into a new restore point of its own, committed when done. With a parent
 * point the backup is incremental (same chain, same block size).
 */
export async function backupSingleDisk(input: SingleDiskBackupInput): Promise<SingleDiskBackupResult> {
  const { repository } = input;
  const started = input.clock.now();
  let parentIndex: DiskIndexReader | undefined;
  if (input.parentPointId) {
    const parent = await repository.readPoint(input.vappId, input.parentPointId).catch(async (err: unknown) => {
      const found = await repository.findPoint(input.parentPointId!).catch(() => undefined);
      if (found) throw new InvalidInputError(`parent point ${input.parentPointId} belongs to vApp ${found.vappId}, not ${input.vappId}`);
      throw err;
    });
    if ((parent.tenantId ?? null) !== repository.tenantId) {
      throw new InvalidInputError(`parent point ${parent.pointId} belongs to ${parent.tenantId ? `tenant ${parent.tenantId}` : 'no tenant'}: back up with ${parent.tenantId ? `--tenant ${parent.tenantId}` : 'no --tenant'} to continue its chain`);
    }
    if (parent.disks.some((d) => d.diskId === input.diskId)) parentIndex = await repository.readIndex(input.vappId, parent.pointId, input.diskId);
    else if (input.changedAreas) throw new InvalidInputError(`parent point ${parent.pointId} has no disk ${input.diskId}, so changed areas cannot be applied to it: back up without --changed-areas`);
  }
  const blockSize = input.blockSize ?? parentIndex?.blockSize ?? repository.config.defaultBlockSize;
  const pointId = newPointId(started, randomBytes(4).toString('hex'));
  const source = await FileDiskSource.open(input.sourcePath);
  const pool = input.pool ?? new CodecPool(repository.codecSettings());
  // A shared lease keeps GC (exclusive) away while this backup deduplicates against existing blocks.
  const lease = await new ObjectStoreLock(repository.store, { clock: input.clock, holder: defaultLockHolder(`disk backup ${input.vappId}/${input.diskId}`) }).acquire('shared');
  try {
    const result = await backupDisk({
      repository,
      pool,
      source,
      vappId: input.vappId,
      pointId,
      diskId: input.diskId,
      blockSize,
      parent: parentIndex,
      changedAreas: input.changedAreas,
      onProgress: input.onProgress,
      signal: input.signal,
    });
    await repository.putDiskDescriptor(input.vappId, pointId, result.disk);
    const point: PointDescriptor = {
      format: FORMAT_VERSION,
      pointId,
      vappId: input.vappId,
      createdAt: started.toISOString(),
      parentPointId: input.parentPointId ?? null,
      sourcePointId: null,
      hasVAppMetadata: false,
      disks: [result.disk],
    };
    await repository.commitPoint(point);
    return { ...result.stats, pointId, parentPointId: input.parentPointId ?? null, seconds: (input.clock.now().getTime() - started.getTime()) / 1000 };
  } finally {
    await lease.release();
    await source.close();
    if (!input.pool) await pool.close();
  }
}

export interface SingleDiskRestoreInput {
  readonly repository: Repository;
  readonly clock: Clock;
  readonly pointId: string;
  readonly vappId?: string;
  readonly diskId: string;
  readonly out: string;
  readonly pool?: CodecPool;
  readonly onProgress?: (p: { bytesTotal: number; bytesDone: number }) => void;
  readonly signal?: AbortSignal;
}

export async function restoreSingleDisk(input: SingleDiskRestoreInput): Promise<DiskRestoreStats & { pointId: string; vappId: string; seconds: number }> {
  const started = input.clock.now();
  const found = await input.repository.findPoint(input.pointId, input.vappId);
  // An unbound repository sees every tenant's points: read this one with its own namespace's keys.
  const repository = input.repository.viewFor(found);
  const point = found;
  if (!point.disks.some((d) => d.diskId === input.diskId)) {
    throw new InvalidInputError(`point ${point.pointId} has no disk "${input.diskId}"; its disks are: ${point.disks.map((d) => d.diskId).join(', ')}`);
  }
  const index = await repository.readIndex(point.vappId, point.pointId, input.diskId);
  // A given pool holds the caller's view's keys: of no use when the point lives in another namespace.
  const given = repository === input.repository ? input.pool : undefined;
  const pool = given ?? new CodecPool(repository.codecSettings());
  try {
    const stats = await restoreDisk({ repository, pool, index, out: input.out, onProgress: input.onProgress, signal: input.signal });
    return { ...stats, pointId: point.pointId, vappId: point.vappId, seconds: (input.clock.now().getTime() - started.getTime()) / 1000 };
  } finally {
    if (!given) await pool.close();
  }
}
