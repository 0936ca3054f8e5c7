import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createAgentResultsHandler } from '../lib/handlers/agent-results.js';
import { systemClock } from '../lib/system-clock.js';
import { awsDeps } from '../lib/wiring/aws.js';

/**
 * The agent-results queue: disk results advance backup runs (commit restore points) and restore runs (the
 * last disk applies the configuration and finishes). The restore service is built on its first result.
 */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const deps = awsDeps('agent-results', process.env);
  return createAgentResultsHandler({ backups: await deps.backups(), restores: () => deps.restores(), catalog: deps.catalog, clock: systemClock, log: deps.log })(event);
};
