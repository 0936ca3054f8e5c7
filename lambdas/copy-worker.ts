import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createCopyTasksHandler } from '../lib/handlers/copy-tasks.js';
import { createS3Client } from '../lib/repository/s3-store.js';
import { Secret } from '../lib/secret.js';
import { CopyService } from '../lib/services/copy-service.js';
import { systemClock } from '../lib/system-clock.js';
import { awsDeps, type AwsDeps } from '../lib/wiring/aws.js';
import { RepositoryRegistry } from '../lib/wiring/repository-registry.js';

/** The copy service of a Lambda container, built once (cold start) from the shared AWS dependencies. */
export function createCopyWorker(deps: Pick<AwsDeps, 'config' | 'catalog' | 'log' | 'queue'>): CopyService {
  const passphrase = deps.config.repositoryPassphrase?.reveal();
  const repositories = new RepositoryRegistry({
    catalog: deps.catalog,
    s3: createS3Client({ region: deps.config.region }),
    clock: systemClock,
    keySource: passphrase ? { kind: 'passphrase', passphrase: new Secret(passphrase) } : undefined,
  });
  return new CopyService({ catalog: deps.catalog, repositories, copyTasks: deps.queue('copyTasks'), runs: deps.queue('runs'), clock: systemClock, log: deps.log });
}

let copies: CopyService | undefined;

/** The copy-tasks queue: one CopyBlocksBatch per record (partial batch response). */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const deps = awsDeps('copy-worker', process.env);
  copies ??= createCopyWorker(deps);
  return createCopyTasksHandler({ copies, log: deps.log })(event);
};
