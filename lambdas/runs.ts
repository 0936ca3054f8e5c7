import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createRunsHandler } from '../lib/handlers/runs.js';
import { awsDeps } from '../lib/wiring/aws.js';

/** The runs queue: backup, copy and restore runs, and repository upkeep (retention sweeps, GC). */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const deps = awsDeps('runs', process.env);
  return createRunsHandler({ backups: await deps.backups(), copies: await deps.copies(), restores: await deps.restores(), upkeep: await deps.upkeep(), log: deps.log })(event);
};
