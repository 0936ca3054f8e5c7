import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../lib/agent/agent.js';
import { FileDiskLocator } from '../../lib/agent/disk-locator.js';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { createAgentResultsHandler } from '../../lib/handlers/agent-results.js';
import { createRunsHandler } from '../../lib/handlers/runs.js';
import { ensureDemoDisks } from '../../lib/local/demo.js';
import { createMemoryLogger } from '../../lib/log.js';
import { encodeMessage, parseMessage } from '../../lib/queue/messages.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import type { Queue } from '../../lib/queue/queue.js';
import { Secret } from '../../lib/secret.js';
import { BackupService } from '../../lib/services/backup-service.js';
import { SchedulerService } from '../../lib/services/scheduler.js';
import { VcdBackupGateway, simDiskLocate } from '../../lib/vcd/backup-gateway.js';
import { VcdClient } from '../../lib/vcd/client.js';
import { demoInventory, startVcdSimulator, type SimInventoryInput, type VcdSimulator } from '../../lib/vcd/sim/index.js';
import { RepositoryRegistry } from '../../lib/wiring/repository-registry.js';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';

/**
 * The backup service with real parts but in-memory queues and catalog: the simulator speaks vCD, the agent
 * reads real image files, the repository is a local directory. Queues are pumped by hand so each test
 * decides exactly what is delivered, redelivered or lost.
 */
const KiB = 1024;
let dataDir: string;
let inventory: SimInventoryInput;
let sim: VcdSimulator;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'vcdb-svc-'));
  inventory = JSON.parse(JSON.stringify(demoInventory(dataDir)), (k, v: unknown) => (k === 'sizeBytes' && typeof v === 'number' ? 2 * 1024 * KiB : v)) as SimInventoryInput;
  await ensureDemoDisks(inventory);
  sim = await startVcdSimulator({ inventory });
});
afterAll(async () => {
  await sim.stop();
  await rm(dataDir, { recursive: true, force: true });
});

interface World {
  finished: Array<[string, string]>;
  clock: ManualClock;
  catalog: MemoryCatalog;
  runs: MemoryQueue;
  tasks: MemoryQueue;
  results: MemoryQueue;
  backups: BackupService;
  scheduler: SchedulerService;
  registry: RepositoryRegistry;
  runsHandler: (e: SQSEvent) => Promise<SQSBatchResponse>;
  resultsHandler: (e: SQSEvent) => Promise<SQSBatchResponse>;
  log: ReturnType<typeof createMemoryLogger>;
  repoDir: string;
}
let world: World;

async function pump(queue: Queue, handler: (e: SQSEvent) => Promise<SQSBatchResponse>, options: { duplicate?: boolean } = {}): Promise<number> {
  let handled = 0;
  for (;;) {
    const got = await queue.receive({ maxMessages: 10, waitSeconds: 0 });
    if (got.length === 0) return handled;
    const records = got.map((m) => ({ messageId: m.messageId, body: m.body }) as SQSEvent['Records'][number]);
    const event = { Records: options.duplicate ? [...records, ...records.map((r) => ({ ...r, messageId: `${r.messageId}-dup` }))] : records };
    const res = await handler(event);
    const failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
    await queue.delete(got.filter((m) => !failed.has(m.messageId)).map((m) => m.receiptHandle));
    handled += got.length;
  }
}

/** Runs the real agent until it has finished `expected` tasks (done or failed), then stops it. */
async function drainAgent(expected: number): Promise<void> {
  const agent = new Agent({ tasks: world.tasks, results: world.results, deps: { repositories: world.registry, locator: new FileDiskLocator([path.join(dataDir, 'disks')]) }, log: world.log, waitSeconds: 0 });
  agent.start();
  const deadline = Date.now() + 30_000;
  while (agent.tasksDone + agent.tasksFailed < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await agent.stop();
  expect(agent.tasksDone + agent.tasksFailed, 'tasks the agent finished').toBe(expected);
}

const DISKS = 6; // web-shop 4 + build-farm 2

let taskClock: ManualClock;

beforeEach(async () => {
  const clock = new ManualClock('2026-11-02T02:00:00Z');
  taskClock = new ManualClock('2026-11-02T02:00:00Z');
  const catalog = new MemoryCatalog(clock);
  const log = createMemoryLogger();
  const repoDir = await mkdtemp(path.join(tmpdir(), 'vcdb-svc-repo-'));
  const registry = new RepositoryRegistry({ catalog, clock, initMissing: true, keySource: { kind: 'passphrase', passphrase: new Secret('svc test passphrase'), scrypt: { N: 1024, r: 8, p: 1 } } });
  const client = await VcdClient.connect({ url: sim.url, credentials: { kind: 'password', user: 'administrator', org: 'System', password: new Secret('vmware') }, retry: { retries: 1, baseDelayMs: 5, maxDelayMs: 20 } });
  const runs = new MemoryQueue({ name: 'runs', clock, visibilityTimeoutSeconds: 60 });
  // The tasks queue has a clock of its own: visibility expiry happens when a test says so, not when a loaded
  // machine happens to be slow (a 1 s timeout once expired while the healthy agent was still busy).
  const tasks = new MemoryQueue({ name: 'tasks', visibilityTimeoutSeconds: 30, clock: taskClock });
  const results = new MemoryQueue({ name: 'results', clock });
  const finished: Array<[string, string]> = [];
  const backups = new BackupService({
    catalog,
    vcd: new VcdBackupGateway(client, simDiskLocate(dataDir), { maintenance: { exitBackoffMs: 5 } }),
    repositories: registry,
    agentTasks: tasks,
    clock,
    log,
    onRunFinished: (runId, state) => finished.push([runId, state]),
  });
  world = {
    clock,
    catalog,
    runs,
    tasks,
    results,
    backups,
    scheduler: new SchedulerService({ catalog, runs, clock, log }),
    registry,
    finished,
    runsHandler: createRunsHandler({ backups, log }),
    resultsHandler: createAgentResultsHandler({ backups, catalog, clock, log }),
    log,
    repoDir,
  };
  const acme = sim.state.orgs.find((o) => o.name === 'acme')!;
  await catalog.putTenant({ id: 'acme', name: 'ACME' });
  await catalog.putRepository({ id: 'primary', tenantId: 'acme', url: `file://${repoDir}`, role: 'primary', bucket: '-', prefix: '' });
  await catalog.putJob({
    id: 'job-1',
    tenantId: 'acme',
    kind: 'backup',
    enabled: true,
    nextRunAt: '2026-11-02T02:00:00.000Z',
    spec: {
      name: 'nightly',
      tenantId: 'acme',
      scope: { include: [{ kind: 'org', orgId: `urn:vcloud:org:${acme.id}` }] },
      schedule: { kind: 'daily', times: ['02:00'] },
      retries: { count: 2, waitMinutes: 10 },
      retention: { shortTerm: { restorePoints: 3 } },
      targetRepositoryId: 'primary',
      blockSize: 256 * KiB,
    },
  });
});
afterEach(async () => {
  sim.faults.clear();
  await world.registry.close();
  await rm(world.repoDir, { recursive: true, force: true });
});

const startMessage = (runId: string) => encodeMessage('runs', { type: 'StartBackupRun', version: 1, runId, jobId: 'job-1', tenantId: 'acme', trigger: 'manual', requestedAt: world.clock.now().toISOString() });

async function committedPoints(): Promise<string[]> {
  const { repository } = await world.registry.open('primary');
  const ids: string[] = [];
  for await (const p of repository.listPoints()) ids.push(p.pointId);
  return ids.sort();
}

describe('backup service', () => {
  it('a doubled scheduler tick starts the run once, and duplicate deliveries make no duplicate runs or points', async () => {
    const [a, b] = await Promise.all([world.scheduler.tick(), world.scheduler.tick()]);
    expect(a.started.length + b.started.length).toBe(1);
    // Deliver every message twice (SQS at-least-once), at every stage.
    await pump(world.runs, world.runsHandler, { duplicate: true });
    // Collect every disk task and put each back twice: the agent sees every task two times.
    const bodies: string[] = [];
    for (;;) {
      const got = await world.tasks.receive({ maxMessages: 10, waitSeconds: 0, visibilityTimeoutSeconds: 300 });
      if (got.length === 0) break;
      bodies.push(...got.map((m) => m.body));
      await world.tasks.delete(got.map((m) => m.receiptHandle));
    }
    expect(bodies.length).toBeGreaterThanOrEqual(DISKS);
    await world.tasks.send([...bodies, ...bodies]);
    await drainAgent(2 * bodies.length);
    await pump(world.results, world.resultsHandler, { duplicate: true });
    const runs = await world.catalog.listRuns({ jobId: 'job-1' });
    expect(runs).toHaveLength(1);
    expect(runs[0]!.state).toBe('succeeded');
    expect(Object.keys(runs[0]!.vapps)).toHaveLength(2);
    const points = await world.catalog.listRestorePoints({ jobId: 'job-1' });
    expect(points).toHaveLength(2);
    expect(await committedPoints()).toEqual(points.map((p) => p.id).sort());
    // counters are exact despite the duplicates: each disk counted once
    const disks = Object.values(runs[0]!.vapps).reduce((n, v) => n + v.disksTotal, 0);
    expect(runs[0]!.counters.disksDone).toBe(disks);
    expect((await world.catalog.getJob('job-1'))!.nextRunAt).toBe('2026-11-03T02:00:00.000Z');
    // the end of the run is announced once, whatever the duplicates
    expect(world.finished).toEqual([[runs[0]!.id, 'succeeded']]);
  });

  it('an agent killed holding a task: the task is delivered again and the point still commits', async () => {
    await world.runs.send([startMessage('run-kill')]);
    await pump(world.runs, world.runsHandler);
    // The "killed" agent: takes one task and dies without deleting it or reporting.
    const [victim] = await world.tasks.receive({ maxMessages: 1, waitSeconds: 0, visibilityTimeoutSeconds: 1 });
    expect(victim).toBeDefined();
    const task = parseMessage('agentTasks', JSON.parse(victim!.body));
    expect(task.type).toBe('DiskBackupTask');
    // The healthy agent gets the other tasks now, and the dead agent's task once its visibility expires.
    await drainAgent(DISKS - 1);
    expect(await world.tasks.receive({ maxMessages: 1, waitSeconds: 0, visibilityTimeoutSeconds: 0 })).toHaveLength(0);
    await pump(world.results, world.resultsHandler);
    expect((await world.catalog.getRun('run-kill'))!.state).toBe('running'); // one disk still missing
    taskClock.advance(1100); // the dead agent's visibility timeout runs out
    await drainAgent(1);
    await pump(world.results, world.resultsHandler);
    const run = await world.catalog.getRun('run-kill');
    expect(run!.state).toBe('succeeded');
    expect(await committedPoints()).toHaveLength(2);
    const { repository } = await world.registry.open('primary');
    const { verifyRepository } = await import('../../lib/repository/verify.js');
    expect((await verifyRepository(repository)).ok).toBe(true);
  });

  it('a vCD failure mid-capture leaves maintenance mode exited and marks the vApp failed with its retry scheduled', async () => {
    const webShop = sim.vapps().find((v) => v.name === 'web-shop')!;
    // Every metadata read of web-shop fails: capture breaks after maintenance mode was entered.
    sim.faults.add({ method: 'GET', path: new RegExp(`vApp/vapp-${webShop.id}/metadata`), status: 500, times: 1000 });
    await world.runs.send([startMessage('run-fail')]);
    await pump(world.runs, world.runsHandler);
    await drainAgent(2); // build-farm's disks; web-shop never got as far as its tasks
    await pump(world.results, world.resultsHandler);
    expect(sim.findVApp(webShop.id)!.inMaintenanceMode).toBe(false);
    const run = await world.catalog.getRun('run-fail');
    const failed = Object.values(run!.vapps).find((v) => v.vappId.endsWith(webShop.id))!;
    expect(failed.state).toBe('failed');
    expect(failed.retryAt).toBe('2026-11-02T02:10:00.000Z');
    expect(failed.error).toMatch(/500|server/i);
    expect(run!.state).toBe('partial');
    expect(run!.errors.some((e) => e.vappId === failed.vappId)).toBe(true);
    // the other vApp of the org still got its point
    expect(await committedPoints()).toHaveLength(1);

    // vCD recovers; at the retry time the scheduler tick retries only the failed vApp, in the same run.
    // (The job's own schedule is moved to tomorrow so the ticks below start nothing but the retry.)
    const job = (await world.catalog.getJob('job-1'))!;
    await world.catalog.putJob({ ...job, nextRunAt: '2026-11-03T02:00:00.000Z' });
    sim.faults.clear();
    world.clock.advance(9 * 60_000);
    expect((await world.scheduler.tick()).started).toEqual([]);
    world.clock.advance(60_000);
    expect((await world.scheduler.tick()).started).toEqual(['run-fail']);
    await pump(world.runs, world.runsHandler);
    await drainAgent(4); // web-shop's four disks
    await pump(world.results, world.resultsHandler);
    const retried = await world.catalog.getRun('run-fail');
    expect(retried!.state).toBe('succeeded');
    const progress = Object.values(retried!.vapps).find((v) => v.vappId.endsWith(webShop.id))!;
    expect(progress.attempts).toBe(2);
    expect(progress.state).toBe('succeeded');
    expect(await committedPoints()).toHaveLength(2);
    expect(sim.findVApp(webShop.id)!.inMaintenanceMode).toBe(false);
  });
});
