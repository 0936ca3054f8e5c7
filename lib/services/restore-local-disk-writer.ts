/**
 * A DiskWriter that writes disks in this process with the agent's restore writer (lib/agent/restore-disk.ts):
 * for tests and single-process setups. Given one, RestoreService.runRestore writes the disks itself and feeds
 * each outcome to the same onTaskResult the agent's results go through; the service sends DiskRestoreTasks.
 */
import { CodecPool } from '../agent/codec-pool.js';
import { restoreDisk } from '../agent/restore-disk.js';
import { InvalidInputError } from '../errors.js';
import type { DiskWriteRequest, DiskWriter } from './restore-ports.js';

export class LocalDiskWriter implements DiskWriter {
  constructor(private readonly options: { pool?: CodecPool; concurrency?: number } = {}) {}

  async writeDisk(request: DiskWriteRequest): Promise<{ bytesWritten: number }> {
    const { target, repository } = request;
    if (target.kind === 'nbd' || target.path === undefined) {
      throw new InvalidInputError(`disk ${request.diskId}: the in-process writer writes image files and block devices only, not ${target.kind} targets`, { code: 'DISK_LOCATOR_UNSUPPORTED' });
    }
    const index = await repository.readIndexByKey(request.indexKey);
    const pool = this.options.pool ?? new CodecPool(repository.codecSettings(), 2);
    try {
      const stats = await restoreDisk({ repository, pool, index, out: target.path, concurrency: this.options.concurrency });
      return { bytesWritten: stats.bytesWritten };
    } finally {
      if (this.options.pool === undefined) await pool.close();
    }
  }
}
