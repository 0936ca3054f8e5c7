import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../lib/agent/agent.js';
import { FileDiskLocator } from '../../lib/agent/disk-locator.js';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { createAgentResultsHandler } from '../../lib/handlers/agent-results.js';
import { createRunsHandler } from '../../lib/handlers/runs.js';
import { ensureDemoDisks } from '../../lib/local/demo.js';
import { createMemoryLogger } from '../../lib/log.js';
import { encodeMessage } from '../../lib/queue/messages.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import type { Queue } from '../../lib/queue/queue.js';
import { verifyRepository } from '../../lib/repository/verify.js';
import { Secret } from '../../lib/secret.js';
import { BackupService } from '../../lib/services/backup-service.js';
import { UpkeepService, repositoryLeaseResource } from '../../lib/services/upkeep-service.js';
import { VcdBackupGateway, simDiskLocate } from '../../lib/vcd/backup-gateway.js';
import { VcdClient } from '../../lib/vcd/client.js';
import { demoInventory, startVcdSimulator, type SimInventoryInput, type VcdSimulator } from '../../lib/vcd/sim/index.js';
import { RepositoryRegistry } from '../../lib/wiring/repository-registry.js';

/**
 * Service GC against a real backup run (vCD simulator, real agent, local-directory repository, memory
 * catalog and queues pumped by hand): the run's shared repository lease keeps GC out from dispatch to commit.
 */
const KiB = 1024;
const DISKS = 6;
let dataDir: string;
let sim: VcdSimulator;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'vcdb-upkeep-bk-'));
  const inventory = JSON.parse(JSON.stringify(demoInventory(dataDir)), (k, v: unknown) => (k === 'sizeBytes' && typeof v === 'number' ? 1024 * KiB : v)) as SimInventoryInput;
  await ensureDemoDisks(inventory);
  sim = await startVcdSimulator({ inventory });
});
afterAll(async () => {
  await sim.stop();
  await rm(dataDir, { recursive: true, force: true });
});

let w: {
  clock: ManualClock;
  catalog: MemoryCatalog;
  registry: RepositoryRegistry;
  upkeep: UpkeepService;
  runs: MemoryQueue;
  tasks: MemoryQueue;
  results: MemoryQueue;
  runsHandler: (e: SQSEvent) => Promise<SQSBatchResponse>;
  resultsHandler: (e: SQSEvent) => Promise<SQSBatchResponse>;
  repoDir: string;
  log: ReturnType<typeof createMemoryLogger>;
};

beforeEach(async () => {
  const clock = new ManualClock('2026-11-02T02:00:00Z');
  const catalog = new MemoryCatalog(clock);
  const log = createMemoryLogger();
  const repoDir = await mkdtemp(path.join(tmpdir(), 'vcdb-upkeep-bk-repo-'));
  const registry = new RepositoryRegistry({ catalog, clock, initMissing: true, keySource: { kind: 'passphrase', passphrase: new Secret('upkeep backup passphrase'), scrypt: { N: 1024, r: 8, p: 1 } } });
  const client = await VcdClient.connect({ url: sim.url, credentials: { kind: 'password', user: 'administrator', org: 'System', password: new Secret('vmware') }, retry: { retries: 1, baseDelayMs: 5, maxDelayMs: 20 } });
  const runs = new MemoryQueue({ name: 'runs', clock, visibilityTimeoutSeconds: 60 });
  const tasks = new MemoryQueue({ name: 'tasks', visibilityTimeoutSeconds: 300, clock: new ManualClock('2026-11-02T02:00:00Z') });
  const results = new MemoryQueue({ name: 'results', clock });
  const backups = new BackupService({ catalog, vcd: new VcdBackupGateway(client, simDiskLocate(dataDir), { maintenance: { exitBackoffMs: 5 } }), repositories: registry, agentTasks: tasks, clock, log });
  const upkeep = new UpkeepService({ catalog, repositories: registry, clock, log });
  w = {
    clock,
    catalog,
    registry,
    upkeep,
    runs,
    tasks,
    results,
    runsHandler: createRunsHandler({ backups, upkeep, log }),
    resultsHandler: createAgentResultsHandler({ backups, catalog, clock, log }),
    repoDir,
    log,
  };
  const acme = sim.state.orgs.find((o) => o.name === 'acme')!;
  await catalog.putTenant({ id: 'acme', name: 'ACME' });
  await catalog.putRepository({ id: 'primary', tenantId: 'acme', url: `file://${repoDir}`, role: 'primary', bucket: '-', prefix: '' });
  await catalog.putJob({
    id: 'job-1',
    tenantId: 'acme',
    kind: 'backup',
    enabled: true,
    spec: { name: 'nightly', tenantId: 'acme', scope: { include: [{ kind: 'org', orgId: `urn:vcloud:org:${acme.id}` }] }, retries: { count: 2, waitMinutes: 10 }, targetRepositoryId: 'primary', blockSize: 256 * KiB },
  });
});
afterEach(async () => {
  await w.registry.close();
  await rm(w.repoDir, { recursive: true, force: true });
});

async function pump(queue: Queue, handler: (e: SQSEvent) => Promise<SQSBatchResponse>): Promise<void> {
  for (;;) {
    const got = await queue.receive({ maxMessages: 10, waitSeconds: 0 });
    if (got.length === 0) return;
    const res = await handler({ Records: got.map((m) => ({ messageId: m.messageId, body: m.body })) } as SQSEvent);
    const failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
    await queue.delete(got.filter((m) => !failed.has(m.messageId)).map((m) => m.receiptHandle));
  }
}

async function drainAgent(expected: number): Promise<void> {
  const agent = new Agent({ tasks: w.tasks, results: w.results, deps: { repositories: w.registry, locator: new FileDiskLocator([path.join(dataDir, 'disks')]) }, log: w.log, waitSeconds: 0 });
  agent.start();
  const deadline = Date.now() + 30_000;
  while (agent.tasksDone + agent.tasksFailed < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await agent.stop();
  expect(agent.tasksDone + agent.tasksFailed).toBe(expected);
}

const start = (runId: string) => encodeMessage('runs', { type: 'StartBackupRun', version: 1, runId, jobId: 'job-1', tenantId: 'acme', trigger: 'manual', requestedAt: w.clock.now().toISOString() });
const gc = (runId: string) => encodeMessage('runs', { type: 'GcRun', version: 1, runId, repositoryId: 'primary', requestedAt: w.clock.now().toISOString(), graceSeconds: 0 });

describe('GC and backup runs', () => {
  it('a GcRun refuses while a backup run is between dispatch and commit, and runs once the points committed', async () => {
    await w.runs.send([start('run-b1')]);
    await pump(w.runs, w.runsHandler);
    const held = await w.catalog.listLeases(repositoryLeaseResource('primary'));
    expect(held.map((l) => l.mode)).toEqual(['shared', 'shared']); // one per dispatched vApp
    expect(held.every((l) => l.holder.startsWith('backup:run-b1:'))).toBe(true);

    await w.runs.send([gc('run-gc-during')]);
    await pump(w.runs, w.runsHandler);
    const refused = (await w.catalog.getRun('run-gc-during'))!;
    expect(refused).toMatchObject({ kind: 'gc', state: 'failed' });
    expect(refused.errors[0]!.code).toBe('REPOSITORY_LOCKED');

    await drainAgent(DISKS);
    await pump(w.results, w.resultsHandler);
    expect((await w.catalog.getRun('run-b1'))!.state).toBe('succeeded');
    expect(await w.catalog.listLeases(repositoryLeaseResource('primary'))).toEqual([]);

    // Grace 0: everything unreferenced would go; every committed point must survive whole.
    await w.runs.send([gc('run-gc-after')]);
    await pump(w.runs, w.runsHandler);
    expect((await w.catalog.getRun('run-gc-after'))!.state).toBe('succeeded');
    expect(await w.upkeep.findings('run-gc-after')).toMatchObject({ kind: 'gc', points: 2, blocksMissing: 0 });
    const { repository } = await w.registry.open('primary');
    expect((await verifyRepository(repository)).ok).toBe(true);
  });

  it('a backup dispatched while GC holds the repository fails its vApps before capture, with a retry', async () => {
    await w.catalog.acquireLease(repositoryLeaseResource('primary'), 'gc:run-gc-x', 'exclusive', 3600_000);
    await w.runs.send([start('run-b2')]);
    await pump(w.runs, w.runsHandler);
    const run = (await w.catalog.getRun('run-b2'))!;
    expect(run.state).toBe('failed');
    expect(Object.values(run.vapps).every((v) => v.state === 'failed' && v.retryAt === '2026-11-02T02:10:00.000Z')).toBe(true);
    expect(run.errors.some((e) => e.code === 'LEASE_HELD')).toBe(true);
    expect(await w.tasks.receive({ maxMessages: 10, waitSeconds: 0 })).toEqual([]);
    // Not even captured: no maintenance mode was entered, no vapp.json written.
    expect(sim.vapps().every((v) => !v.inMaintenanceMode)).toBe(true);
    const { repository } = await w.registry.open('primary');
    const objects: string[] = [];
    for await (const o of repository.store.list('points/')) objects.push(o.key);
    expect(objects).toEqual([]);
    expect((await w.catalog.listLeases(repositoryLeaseResource('primary'))).map((l) => l.holder)).toEqual(['gc:run-gc-x']);
  });
});
