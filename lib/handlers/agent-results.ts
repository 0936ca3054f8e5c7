import type { Log } from '../log.js';
import type { Catalog } from '../catalog/catalog.js';
import type { Clock } from '../domain/clock.js';
import { recordRestoreResult } from '../services/catalog-disk-writer.js';
import type { BackupService } from '../services/backup-service.js';
import { sqsHandler } from './sqs.js';

export interface AgentResultsDeps {
  readonly backups: BackupService;
  /** Where restore results are left for the restore runs waiting on them. */
  readonly catalog: Catalog;
  readonly clock: Clock;
  readonly log: Log;
  /** Progress of running disk tasks, for live displays. */
  readonly onProgress?: (progress: { runId: string; taskId: string; vappId?: string; diskId?: string; bytesDone: number; bytesTotal: number }) => void;
}

/** The agent-results queue: TaskResults advance runs; TaskProgress feeds progress displays. */
export function createAgentResultsHandler(deps: AgentResultsDeps) {
  return sqsHandler('agentResults', deps.log, async (message) => {
    if (message.type === 'TaskProgress') {
      deps.onProgress?.(message);
      return;
    }
    if (message.kind === 'restore') {
      await recordRestoreResult(deps.catalog, message, deps.clock);
      return;
    }
    await deps.backups.onTaskResult(message);
  });
}
