import type { Log } from '../log.js';
import type { AgentDiskWriter } from '../services/agent-disk-writer.js';
import type { BackupService } from '../services/backup-service.js';
import { sqsHandler } from './sqs.js';

export interface AgentResultsDeps {
  readonly backups: BackupService;
  /** Restores waiting on the agent's disk writes. */
  readonly restoreDisks?: AgentDiskWriter;
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
      if (!deps.restoreDisks?.onTaskResult(message)) deps.log.warn('a restore result nobody waits for (the restore run will rewrite the disk when resumed)', { taskId: message.taskId, runId: message.runId });
      return;
    }
    await deps.backups.onTaskResult(message);
  });
}
