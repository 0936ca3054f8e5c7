import type { Log } from '../log.js';
import type { CopyService } from '../services/copy-service.js';
import { sqsHandler } from './sqs.js';

export interface CopyTasksDeps {
  readonly copies: Pick<CopyService, 'onCopyBatch'>;
  readonly log: Log;
}

/**
 * The copy-tasks queue (the copy worker): each CopyBlocksBatch copies its blocks from the source repository
 * to the target, records the batch in its run, and the vApp's last batch commits the copied point.
 */
export function createCopyTasksHandler(deps: CopyTasksDeps) {
  return sqsHandler('copyTasks', deps.log, async (message) => {
    await deps.copies.onCopyBatch(message);
  });
}
