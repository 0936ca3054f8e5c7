import type { Log } from '../log.js';
import type { BackupService } from '../services/backup-service.js';
import { sqsHandler } from './sqs.js';

export interface AgentResultsDeps {
  readonly backups: BackupService;
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
    await deps.backups.onTaskResult(message);
  });
}
