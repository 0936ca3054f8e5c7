import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { ApiClient } from '../../lib/api/client.js';
import { createLocalAuthenticator, issueLocalToken, loadOrCreateApiSecret } from '../../lib/api/local-tokens.js';
import { startApiServer, type ApiServer } from '../../lib/api/server.js';
import { DynamoDbCatalog } from '../../lib/catalog/dynamodb-catalog.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { SqsQueue } from '../../lib/queue/sqs-queue.js';
import type { Secret } from '../../lib/secret.js';
import { useLocalStack } from './local-stack.js';

export interface ApiServerWorld {
  readonly clock: ManualClock;
  server: ApiServer;
  catalog: DynamoDbCatalog;
  runsQueue: SqsQueue;
  secret: Secret;
  /** A client with a provider token. */
  provider: ApiClient;
}

/**
 * The API served over real HTTP for one test file, on DynamoDB Local and fauxqs (started by the file), with
 * a frozen clock and a local token secret. Fields are set once `beforeAll` has run.
 */
export function useApiServer(name: string): ApiServerWorld {
  const stack = useLocalStack();
  const world = { clock: new ManualClock('2026-03-02T10:00:00.000Z') } as ApiServerWorld;
  let dataDir: string | undefined;
  beforeAll(async () => {
    const s = stack();
    const { clock } = world;
    world.catalog = new DynamoDbCatalog({ documents: s.documents!, tableName: s.tableName, clock });
    world.runsQueue = new SqsQueue({ client: s.sqs, queueUrl: s.queueUrls.runs });
    dataDir = await mkdtemp(path.join(tmpdir(), `${name}-`));
    world.secret = await loadOrCreateApiSecret(dataDir);
    world.server = await startApiServer({ deps: { catalog: world.catalog, runsQueue: world.runsQueue, clock, auth: createLocalAuthenticator({ secret: world.secret, clock }) }, port: 0, host: '127.0.0.1' });
    world.provider = new ApiClient(world.server.url, issueLocalToken({ secret: world.secret, principal: { kind: 'provider' }, clock }));
  });
  afterAll(async () => {
    await world.server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });
  return world;
}
