import type { Log } from '../log.js';
import type { BackupService } from '../services/backup-service.js';
import type { RestoreService } from '../services/restore-service.js';
import type { CopyService } from '../services/copy-service.js';
import type { UpkeepService } from '../services/upkeep-service.js';
import { sqsHandler } from './sqs.js';

export interface RunsDeps {
  readonly backups: BackupService;
  readonly restores?: RestoreService;
  readonly copies?: CopyService;
  readonly upkeep?: UpkeepService;
  readonly log: Log;
}

/** The runs queue: backup, copy and restore runs, and repository upkeep (retention sweeps and GC). */
export function createRunsHandler(deps: RunsDeps) {
  return sqsHandler('runs', deps.log, async (message) => {
    switch (message.type) {
      case 'StartBackupRun':
        await deps.backups.startRun(message);
        return;
      case 'StartCopyRun':
        if (!deps.copies) throw new Error('copy jobs are not configured in this deployment');
        await deps.copies.startRun(message);
        return;
      case 'StartRestoreRun':
        if (!deps.restores) throw new Error('restores are not configured in this deployment');
        await deps.restores.runRestore(message);
        return;
      case 'RetentionRun':
        if (!deps.upkeep) throw new Error('repository upkeep is not configured in this deployment');
        await deps.upkeep.runRetention(message);
        return;
      case 'GcRun':
        if (!deps.upkeep) throw new Error('repository upkeep is not configured in this deployment');
        await deps.upkeep.runGc(message);
        return;
    }
  });
}
