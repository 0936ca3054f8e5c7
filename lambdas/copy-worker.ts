import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createCopyTasksHandler } from '../lib/handlers/copy-tasks.js';
import type { Queue } from '../lib/queue/queue.js';
import { createS3Client } from '../lib/repository/s3-store.js';
import { Secret } from '../lib/secret.js';
import { CopyService } from '../lib/services/copy-service.js';
import { systemClock } from '../lib/system-clock.js';
import { awsDeps, type AwsDeps } from '../lib/wiring/aws.js';
import { RepositoryRegistry } from '../lib/wiring/repository-registry.js';

/**
 * The copy service of a Lambda container, built once (cold start) from the shared AWS dependencies.
 * Repository keys: REPOSITORY_PASSPHRASE (until lib/wiring/aws.ts offers a shared `copies()` that also reads
 * the passphrase from the vCD secret, as `backups()` does).
 */
export function createCopyWorker(deps: Pick<AwsDeps, 'config' | 'catalog' | 'log' | 'queue'>): CopyService {
  const passphrase = deps.config.repositoryPassphrase?.reveal();
  const repositories = new RepositoryRegistry({
    catalog: deps.catalog,
    s3: createS3Client({ region: deps.config.region }),
    clock: systemClock,
    keySource: passphrase ? { kind: 'passphrase', passphrase: new Secret(passphrase) } : undefined,
  });
  return new CopyService({ catalog: deps.catalog, repositories, copyTasks: lazyQueue(deps, 'copyTasks'), runs: lazyQueue(deps, 'runs'), clock: systemClock, log: deps.log });
}

/** Resolves the queue on first use: the worker only sends to runs (after a commit), never to copy-tasks. */
function lazyQueue(deps: Pick<AwsDeps, 'queue'>, id: 'runs' | 'copyTasks'): Queue {
  return {
    get name() {
      return deps.queue(id).name;
    },
    send: (bodies) => deps.queue(id).send(bodies),
    receive: (options) => deps.queue(id).receive(options),
    delete: (handles) => deps.queue(id).delete(handles),
    extendVisibility: (handle, seconds) => deps.queue(id).extendVisibility(handle, seconds),
    dlqDepth: () => deps.queue(id).dlqDepth(),
  };
}

let copies: CopyService | undefined;

/** The copy-tasks queue: one CopyBlocksBatch per record (partial batch response). */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const deps = awsDeps('copy-worker', process.env);
  copies ??= createCopyWorker(deps);
  return createCopyTasksHandler({ copies, log: deps.log })(event);
};
