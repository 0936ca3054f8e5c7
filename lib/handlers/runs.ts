import type { Log } from '../log.js';
import type { BackupService } from '../services/backup-service.js';
import { sqsHandler } from './sqs.js';

export interface RunsDeps {
  readonly backups: BackupService;
  readonly log: Log;
}

/** The runs queue: starts backup runs (copy, restore, retention and GC runs join as their services land). */
export function createRunsHandler(deps: RunsDeps) {
  return sqsHandler('runs', deps.log, async (message) => {
    switch (message.type) {
      case 'StartBackupRun':
        await deps.backups.startRun(message);
        return;
      default:
        throw new Error(`${message.type} is not handled by this deployment yet`);
    }
  });
}
