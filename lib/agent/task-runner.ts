import { BackupError, InvalidInputError } from '../errors.js';
import type { DiskBackupTask, DiskRestoreTask, RepositoryRef, TaskResult } from '../queue/messages.js';
import { BlockCorruptError } from '../repository/errors.js';
import type { Repository } from '../repository/repository.js';
import { backupDisk } from './backup-disk.js';
import { ObjectStoreLock, defaultLockHolder } from '../repository/lock.js';
import { restoreDisk } from './restore-disk.js';
import type { CodecPool } from './codec-pool.js';
import type { DiskLocatorPort } from './disk-locator.js';

/**
 * Opens the repository a task names, with the agent's own keys (secrets never travel in messages), bound to
 * the task's tenant: blocks are named and sealed under that tenant's derived keys, so deduplication never
 * reaches another tenant's blocks (and `blocksReused` says nothing about them).
 */
export interface AgentRepositories {
  open(ref: RepositoryRef, tenantId: string): Promise<{ repository: Repository; pool: CodecPool }>;
}

export interface TaskRunnerDeps {
  readonly repositories: AgentRepositories;
  readonly locator: DiskLocatorPort;
  /**
   * Hold a shared lock object in the repository (`locks/`) while backing up, against a concurrent
   * `repo gc`. Off for create-only agents: a lock must be refreshed and deleted, which a create-only agent
   * may not do; GC's grace period then protects the blocks such an agent writes. @default true
   */
  readonly repositoryLocks?: boolean;
}

/**
 * Runs one DiskBackupTask: opens the disk and the repository, backs the disk up against its parent index,
 * writes the index and the disk descriptor, and returns the TaskResult to report. Rerunning a task (a
 * redelivery after a crash) reuses every block already uploaded and rewrites the same index.
 */
export async function runDiskBackupTask(
  task: DiskBackupTask,
  deps: TaskRunnerDeps,
  options: { signal?: AbortSignal; onProgress?: (bytesDone: number, bytesTotal: number) => void } = {},
): Promise<TaskResult> {
  const started = Date.now();
  const { repository, pool } = await deps.repositories.open(task.repository, task.tenantId);
  const parent = task.parentIndexKey ? await repository.readIndexByKey(task.parentIndexKey) : undefined;
  const source = await deps.locator.open(task.diskLocator);
  // A shared lease keeps GC (exclusive) away while this task deduplicates against existing blocks.
  const lease = deps.repositoryLocks === false ? { release: async () => undefined } : await new ObjectStoreLock(repository.store, { holder: defaultLockHolder(`agent task ${task.taskId}`) }).acquire('shared');
  try {
    const result = await backupDisk({
      repository,
      pool,
      source,
      vappId: task.vappId,
      pointId: task.pointId,
      diskId: task.diskId,
      vmId: task.vmId,
      blockSize: task.blockSize,
      parent: parent && parent.blockSize === task.blockSize ? parent : undefined,
      changedAreas: parent && task.changedAreas ? task.changedAreas.map((a) => ({ start: a.offset, length: a.length })) : undefined,
      signal: options.signal,
      onProgress: (p) => options.onProgress?.(p.bytesDone, p.bytesTotal),
    });
    await repository.putDiskDescriptor(task.vappId, task.pointId, result.disk);
    return {
      ...resultOf(task),
      ok: true,
      stats: {
        bytesRead: result.stats.bytesRead,
        bytesUploaded: result.stats.bytesUploaded,
        blocksNew: result.stats.blocksNew,
        blocksReused: result.stats.blocksReused,
        blocksZero: result.stats.blocksZero,
        durationMs: Date.now() - started,
        indexKey: result.indexKey,
        diskSizeBytes: result.disk.sizeBytes,
      },
    };
  } finally {
    await lease.release();
    await source.close();
  }
}

/**
 * Runs one DiskRestoreTask: writes the disk of a restore point to its target (a file or device of the
 * restored VM), every block checked against its hash. Rerunning rewrites the same bytes.
 */
export async function runDiskRestoreTask(task: DiskRestoreTask, deps: TaskRunnerDeps, options: { signal?: AbortSignal; onProgress?: (bytesDone: number, bytesTotal: number) => void } = {}): Promise<TaskResult> {
  const started = Date.now();
  const { repository, pool } = await deps.repositories.open(task.repository, task.tenantId);
  const index = await repository.readIndexByKey(task.indexKey);
  const target = await deps.locator.openTarget(task.target);
  let stats;
  try {
    stats = await restoreDisk({ repository, pool, index, target, signal: options.signal, onProgress: (p) => options.onProgress?.(p.bytesDone, p.bytesTotal) });
  } finally {
    await target.close();
  }
  return {
    ...resultOf(task),
    ok: true,
    stats: { bytesRead: stats.bytesDownloaded, bytesUploaded: 0, blocksNew: 0, blocksReused: 0, blocksZero: stats.blocksZero, bytesWritten: stats.bytesWritten, durationMs: Date.now() - started, diskSizeBytes: stats.bytesTotal },
  };
}

/** Errors a retry cannot fix: report them at once instead of waiting for redeliveries. */
export function isPermanentTaskError(err: unknown): boolean {
  return err instanceof InvalidInputError || err instanceof BlockCorruptError || (err instanceof BackupError && (err.code.startsWith('DISK_') || PERMANENT_CODES.has(err.code)));
}

/** vSphere refusals a redelivery meets again: a disk https cannot read, a deleted VM or snapshot, a bad login. */
const PERMANENT_CODES = new Set(['VSPHERE_DISK_UNSUPPORTED', 'VSPHERE_OBJECT_NOT_FOUND', 'VSPHERE_INVALID_LOGIN', 'VSPHERE_NO_PERMISSION', 'NBD_READ_ONLY', 'NBD_TARGET_TOO_SMALL']);

export function failedResult(task: DiskBackupTask | DiskRestoreTask, err: unknown): TaskResult {
  return {
    ...resultOf(task),
    ok: false,
    error: {
      code: err instanceof BackupError ? err.code : 'AGENT_TASK_FAILED',
      message: err instanceof Error ? err.message : String(err),
      retryable: !isPermanentTaskError(err),
    },
  };
}

/** The part of a TaskResult that names the task it answers. */
function resultOf(task: DiskBackupTask | DiskRestoreTask) {
  return {
    type: 'TaskResult' as const,
    version: 1 as const,
    taskId: task.taskId,
    runId: task.runId,
    vappId: task.vappId,
    diskId: task.diskId,
    pointId: task.pointId,
    kind: task.type === 'DiskRestoreTask' ? ('restore' as const) : ('backup' as const),
  };
}
