import { createHash } from 'node:crypto';
import type { Catalog } from '../catalog/catalog.js';
import type { Clock } from '../domain/clock.js';
import { BackupError } from '../errors.js';
import type { DiskRestoreTask, TaskResult } from '../queue/messages.js';
import { sendMessages, type Queue } from '../queue/queue.js';
import type { DiskWriteRequest, DiskWriter } from './restore-ports.js';

/** Where a restore disk's outcome is left for the waiting restore run (a catalog idempotency record). */
export const restoreResultKey = (taskId: string) => `restore-disk-result:${taskId}`;

interface StoredResult {
  ok: boolean;
  /** When the result was recorded: a rerun only trusts a failure reported after it asked again. */
  at: string;
  bytesWritten: number;
  code?: string;
  message?: string;
}

/**
 * Restores disks through the on-prem agent (DESIGN §1): each disk becomes a DiskRestoreTask; the agent's
 * TaskResult, wherever it is handled (the agent-results function), is left in the catalog by
 * `recordRestoreResult`, and the restore run waiting here picks it up. The catalog is the mailbox, so the
 * run and the results may live in different processes (two Lambda functions in AWS).
 */
export class CatalogDiskWriter implements DiskWriter {
  constructor(
    private readonly deps: { catalog: Catalog; agentTasks: Queue; clock: Clock; pollMs?: number; timeoutMs?: number; sleep?: (ms: number) => Promise<void> },
  ) {}

  async writeDisk(req: DiskWriteRequest): Promise<{ bytesWritten: number }> {
    const taskId = createHash('sha256').update(`restore\n${req.runId}\n${req.vappId}\n${req.diskId}`).digest('hex').slice(0, 24);
    const task: DiskRestoreTask = {
      type: 'DiskRestoreTask',
      version: 2,
      taskId,
      runId: req.runId,
      tenantId: req.tenantId,
      vappId: req.vappId,
      vmId: req.vmId,
      diskId: req.diskId,
      pointId: req.pointId,
      repository: req.repositoryRef,
      indexKey: req.indexKey,
      target: req.target,
    };
    const { catalog, clock } = this.deps;
    const sleep = this.deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    // A rerun of the restore finds a success of an earlier try instead of writing the disk again.
    const earlier = (await catalog.getIdempotencyRecord(restoreResultKey(taskId)))?.result as StoredResult | undefined;
    if (earlier?.ok) return { bytesWritten: earlier.bytesWritten };
    // A failure left by an earlier try is stale: only a failure recorded after it counts for this try.
    const staleFailureAt = earlier?.at;
    await sendMessages(this.deps.agentTasks, 'agentTasks', [task]);
    const deadline = clock.now().getTime() + (this.deps.timeoutMs ?? 12 * 3600_000);
    for (;;) {
      const result = (await catalog.getIdempotencyRecord(restoreResultKey(taskId)))?.result as StoredResult | undefined;
      if (result?.ok) return { bytesWritten: result.bytesWritten };
      if (result && (staleFailureAt === undefined || result.at > staleFailureAt)) throw new BackupError(result.code ?? 'DISK_RESTORE_FAILED', `the agent could not write disk ${req.diskId}: ${result.message ?? 'unknown error'}`);
      if (clock.now().getTime() > deadline) throw new BackupError('DISK_RESTORE_TIMEOUT', `no agent wrote disk ${req.diskId} in time; check that an agent runs and can reach the disk`);
      await sleep(this.deps.pollMs ?? 1000);
    }
  }
}

/** Leaves a restore TaskResult for the run waiting in CatalogDiskWriter (idempotent: the latest outcome wins). */
export async function recordRestoreResult(catalog: Catalog, result: TaskResult, clock: Clock): Promise<void> {
  const at = clock.now().toISOString();
  const value: StoredResult = result.ok
    ? { ok: true, at, bytesWritten: result.stats?.bytesWritten ?? 0 }
    : { ok: false, at, bytesWritten: 0, code: result.error?.code, message: result.error?.message };
  const key = restoreResultKey(result.taskId);
  const expiresAt = new Date(clock.now().getTime() + 7 * 24 * 3600_000).toISOString();
  const { created } = await catalog.putIdempotencyRecord(key, expiresAt, value);
  if (!created) await catalog.completeIdempotencyRecord(key, value);
}
