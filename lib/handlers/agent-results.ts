import type { Log } from '../log.js';
import type { Catalog } from '../catalog/catalog.js';
import type { Clock } from '../domain/clock.js';
import { BackupError } from '../errors.js';
import type { BackupService } from '../services/backup-service.js';
import type { RestoreService } from '../services/restore-service.js';
import { sqsHandler } from './sqs.js';

export interface AgentResultsDeps {
  readonly backups: BackupService;
  /**
   * Restore runs advance with their disk results. A function is called on the first restore result only, so
   * a deployment whose restore service needs vCD builds it when a restore needs it. Absent: the
   * RestoreService built on `catalog` in this process (transitional, for roots not passing it yet).
   */
  readonly restores?: RestoreService | (() => Promise<RestoreService>);
  readonly catalog: Catalog;
  readonly clock: Clock;
  readonly log: Log;
  /** Progress of running disk tasks, for live displays. */
  readonly onProgress?: (progress: { runId: string; taskId: string; vappId?: string; diskId?: string; bytesDone: number; bytesTotal: number }) => void;
}

/**
 * The agent-results queue: TaskResults advance runs (a backup's or a restore's, by the result's `kind`, which
 * the agent sets from the task it ran); TaskProgress feeds progress displays.
 */
export function createAgentResultsHandler(deps: AgentResultsDeps) {
  return sqsHandler('agentResults', deps.log, async (message) => {
    if (message.type === 'TaskProgress') {
      deps.onProgress?.(message);
      return;
    }
    if (message.kind === 'restore') {
      const restores = typeof deps.restores === 'function' ? await deps.restores() : deps.restores;
      // Thrown, not dropped: the result stays on the queue (then in its DLQ) until a deployment can use it.
      if (!restores) throw new BackupError('RESTORES_NOT_CONFIGURED', `a restore result for run ${message.runId} arrived, but this agent-results function has no restore service; pass \`restores\` to createAgentResultsHandler`);
      await restores.onTaskResult(message);
      return;
    }
    await deps.backups.onTaskResult(message);
  });
}
