import { createHash } from 'node:crypto';
import { BackupError } from '../errors.js';
import type { DiskRestoreTask, TaskResult } from '../queue/messages.js';
import { sendMessages, type Queue } from '../queue/queue.js';
import type { DiskWriteRequest, DiskWriter } from './restore-ports.js';

/**
 * Restores disks through the on-prem agent (DESIGN §1): each disk becomes a DiskRestoreTask, and the write
 * is done when the agent's TaskResult comes back on agent-results (`onTaskResult`). The restore run waits
 * on these promises, so the runs handler and the agent-results handler must share this instance.
 */
export class AgentDiskWriter implements DiskWriter {
  private readonly pending = new Map<string, { resolve: (r: { bytesWritten: number }) => void; reject: (e: Error) => void }>();

  constructor(private readonly agentTasks: Queue) {}

  async writeDisk(req: DiskWriteRequest): Promise<{ bytesWritten: number }> {
    const taskId = createHash('sha256').update(`restore\n${req.runId}\n${req.vappId}\n${req.diskId}`).digest('hex').slice(0, 24);
    const task: DiskRestoreTask = {
      type: 'DiskRestoreTask',
      version: 1,
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
    const done = new Promise<{ bytesWritten: number }>((resolve, reject) => this.pending.set(taskId, { resolve, reject }));
    await sendMessages(this.agentTasks, 'agentTasks', [task]);
    return done;
  }

  /** Settles the write a restore TaskResult reports; returns false for results this instance did not ask for. */
  onTaskResult(result: TaskResult): boolean {
    const waiting = this.pending.get(result.taskId);
    if (!waiting) return false;
    this.pending.delete(result.taskId);
    if (result.ok) waiting.resolve({ bytesWritten: result.stats?.bytesWritten ?? 0 });
    else waiting.reject(new BackupError(result.error?.code ?? 'DISK_RESTORE_FAILED', `the agent could not write disk ${result.diskId}: ${result.error?.message ?? 'unknown error'}`));
    return true;
  }
}
