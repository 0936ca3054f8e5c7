import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createCopyTasksHandler } from '../lib/handlers/copy-tasks.js';
import { awsDeps } from '../lib/wiring/aws.js';

/** The copy-tasks queue: each CopyBlocksBatch moves up to 64 blocks from the source to the target repository. */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const deps = awsDeps('copy-worker', process.env);
  return createCopyTasksHandler({ copies: await deps.copies(), log: deps.log })(event);
};
