import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect } from 'vitest';
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
  /** A short unique suffix for ids. */
  uid(): string;
  /** A client with a tenant user's token. */
  tenantClient(tenantId: string): ApiClient;
  /** A tenant with a shared primary and its own cloud repository, as the provider sets them up. */
  setupTenant(options?: { quotaBytes?: number }): Promise<{ tenantId: string; primary: string; cloud: string; client: ApiClient }>;
  /** A backup job written straight to the catalog. */
  seedJob(tenantId: string, repositoryId: string, retention?: unknown): Promise<string>;
}

/**
 * The API served over real HTTP for one test file, on DynamoDB Local and fauxqs (started by the file), with
 * a frozen clock and a local token secret. Fields are set once `beforeAll` has run.
 */
export function useApiServer(name: string): ApiServerWorld {
  const stack = useLocalStack();
  const world = { clock: new ManualClock('2026-03-02T10:00:00.000Z') } as ApiServerWorld;
  world.uid = () => randomUUID().slice(0, 8);
  world.tenantClient = (tenantId) => world.provider.as(issueLocalToken({ secret: world.secret, principal: { kind: 'tenant', tenantId }, clock: world.clock }));
  world.setupTenant = async (options = {}) => {
    const { provider, uid } = world;
    const tenantId = `acme-${uid()}`;
    const primary = `primary-${uid()}`;
    const cloud = `cloud-${uid()}`;
    expect((await provider.post('/v1/tenants', { id: tenantId, name: 'Acme', ...options })).status).toBe(201);
    expect((await provider.post('/v1/repositories', { id: primary, url: `s3://vcd-backup-primary/${primary}`, role: 'primary', bucket: 'vcd-backup-primary', prefix: primary })).status).toBe(201);
    expect((await provider.post('/v1/repositories', { id: cloud, tenantId, url: `s3://vcd-backup-cloud/${cloud}`, role: 'cloud', bucket: 'vcd-backup-cloud' })).status).toBe(201);
    return { tenantId, primary, cloud, client: world.tenantClient(tenantId) };
  };
  world.seedJob = async (tenantId, repositoryId, retention) => {
    const id = `job-${world.uid()}`;
    await world.catalog.putJob({
      id,
      tenantId,
      kind: 'backup',
      enabled: true,
      spec: { type: 'backup', id, name: 'seeded', tenantId, scope: { include: [{ kind: 'vapp', vappId: 'v' }] }, targetRepositoryId: repositoryId, ...(retention ? { retention } : {}) },
    });
    return id;
  };
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
