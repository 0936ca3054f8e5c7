import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createAgentResultsHandler } from '../lib/handlers/agent-results.js';
import { systemClock } from '../lib/system-clock.js';
import { awsDeps } from '../lib/wiring/aws.js';

/** The agent-results queue: disk results advance runs and commit restore points. */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const deps = awsDeps('agent-results', process.env);
  return createAgentResultsHandler({ backups: await deps.backups(), catalog: deps.catalog, clock: systemClock, log: deps.log })(event);
};
