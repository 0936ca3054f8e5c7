import { createHash } from 'node:crypto';
import type { SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { CodecPool } from '../../lib/agent/codec-pool.js';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import type { RestorePoint, Run } from '../../lib/catalog/types.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { parseRetentionPolicy } from '../../lib/domain/retention/index.js';
import { createCopyTasksHandler } from '../../lib/handlers/copy-tasks.js';
import { sqsHandler } from '../../lib/handlers/sqs.js';
import type { Log } from '../../lib/log.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import type { StartCopyRun } from '../../lib/queue/messages.js';
import type { Queue } from '../../lib/queue/queue.js';
import { DiskIndexWriter } from '../../lib/repository/disk-index.js';
import { FORMAT_VERSION, indexKey, newPointId, type PointDisk } from '../../lib/repository/format.js';
import type { KeySource } from '../../lib/repository/keys.js';
import { MemoryStore } from '../../lib/repository/memory-store.js';
import type { Body } from '../../lib/repository/object-store.js';
import { Repository } from '../../lib/repository/repository.js';
import { Secret } from '../../lib/secret.js';
import { BackupService } from '../../lib/services/backup-service.js';
import { copyPointCatalogId, pointLeaseResource } from '../../lib/services/copy-ids.js';
import { CopyService, type OpenRepository } from '../../lib/services/copy-service.js';
import type { VcdGateway } from '../../lib/services/ports.js';
import { SchedulerService } from '../../lib/services/scheduler.js';

const BLOCK = 256 * 1024;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const TENANT = 'urn:vcloud:org:acme';
const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };
const quiet: Log = { debug() {}, info() {}, warn() {}, error() {} };

/** A memory store that counts block writes, so "copied exactly once" is checked at the storage. */
class CountingStore extends MemoryStore {
  blockPuts = 0;
  override async put(key: string, body: Body): Promise<void> {
    if (key.startsWith('blocks/')) this.blockPuts++;
    return super.put(key, body);
  }
  async blockCount(): Promise<number> {
    let n = 0;
    for await (const _ of this.list('blocks/')) n++;
    return n;
  }
}

/** Deterministic block content: the same seed gives the same block (so unchanged blocks deduplicate). */
const blockOf = (seed: string) => Buffer.alloc(BLOCK, createHash('sha256').update(seed).digest());

type Disks = Record<string, ReadonlyArray<string | null>>;

const pools: CodecPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

/**
 * The service on memory adapters and a manual clock, with a driver that pumps the runs and copy-tasks
 * queues through the real SQS handlers (partial batch responses, visibility timeouts, redelivery).
 */
class Harness {
  readonly clock: ManualClock;
  readonly catalog: MemoryCatalog;
  readonly runsQueue: MemoryQueue;
  readonly copyTasks: MemoryQueue;
  readonly stores = new Map<string, CountingStore>();
  readonly repos = new Map<string, OpenRepository>();
  readonly copies: CopyService;
  readonly scheduler: SchedulerService;
  readonly backups: BackupService;
  private seq = 0;
  private readonly runsHandler;
  private readonly copyHandler;

  constructor(start: string, options: { batchBlocks?: number; copyTasks?: Queue } = {}) {
    this.clock = new ManualClock(start);
    this.catalog = new MemoryCatalog(this.clock);
    this.runsQueue = new MemoryQueue({ name: 'runs', clock: this.clock, visibilityTimeoutSeconds: 30 });
    this.copyTasks = new MemoryQueue({ name: 'copy-tasks', clock: this.clock, visibilityTimeoutSeconds: 30 });
    this.copies = new CopyService({
      catalog: this.catalog,
      repositories: { open: async (id) => this.repo(id) },
      copyTasks: options.copyTasks ?? this.copyTasks,
      runs: this.runsQueue,
      clock: this.clock,
      log: quiet,
      batchBlocks: options.batchBlocks ?? 4,
    });
    this.scheduler = new SchedulerService({ catalog: this.catalog, runs: this.runsQueue, clock: this.clock, log: quiet, copies: this.copies });
    const vcd = {} as VcdGateway;
    this.backups = new BackupService({ catalog: this.catalog, vcd, repositories: { open: async (id) => this.repo(id) }, agentTasks: this.runsQueue, clock: this.clock, log: quiet });
    this.runsHandler = sqsHandler('runs', quiet, async (m) => {
      if (m.type !== 'StartCopyRun') throw new Error(`unexpected ${m.type}`);
      await this.copies.startRun(m);
    });
    this.copyHandler = createCopyTasksHandler({ copies: this.copies, log: quiet });
  }

  private repo(id: string): OpenRepository {
    const r = this.repos.get(id);
    if (!r) throw new Error(`no repository ${id}`);
    return r;
  }

  async addRepository(id: string, keySource?: KeySource): Promise<Repository> {
    const store = new CountingStore(this.clock);
    const repository = await Repository.init(store, { clock: this.clock, blockSize: BLOCK, keySource });
    const pool = new CodecPool(repository.codecSettings(), 1);
    pools.push(pool);
    this.stores.set(id, store);
    this.repos.set(id, { repository, ref: { id, url: `memory://${id}` }, pool });
    return repository;
  }

  async putBackupJob(id: string, extra: Record<string, unknown> = {}): Promise<void> {
    const spec = { name: id, tenantId: TENANT, scope: { include: [{ kind: 'vapp', vappId: 'urn:vcloud:vapp:x' }] }, targetRepositoryId: 'primary', ...extra };
    await this.catalog.putJob({ id, tenantId: TENANT, kind: 'backup', enabled: true, spec });
  }

  async putCopyJob(id: string, extra: Record<string, unknown> = {}): Promise<void> {
    const spec = { name: id, tenantId: TENANT, source: { kind: 'backup', jobId: 'job-backup' }, targetRepositoryId: 'cloud', mode: 'immediate', retries: { count: 2, waitMinutes: 10 }, ...extra };
    await this.catalog.putJob({ id, tenantId: TENANT, kind: 'copy', enabled: true, spec });
  }

  /** Writes a committed backup point (repository and catalog) as the backup service would; returns it. */
  async backupPoint(vappId: string, disks: Disks, options: { notify?: boolean } = {}): Promise<{ point: RestorePoint; blocksNew: number }> {
    const repository = this.repos.get('primary')!.repository;
    const now = this.clock.now();
    const pointId = newPointId(now, (++this.seq).toString(16).padStart(8, '0'));
    const pointDisks: PointDisk[] = [];
    let blocksNew = 0;
    for (const [diskId, blocks] of Object.entries(disks)) {
      const writer = new DiskIndexWriter(repository.codec, indexKey(vappId, pointId, diskId), BLOCK, blocks.length * BLOCK);
      let zero = 0;
      let fresh = 0;
      let bytes = 0;
      for (const seed of blocks) {
        if (seed === null) {
          writer.append(null);
          zero++;
          continue;
        }
        const plain = blockOf(seed);
        const hash = repository.codec.hash(plain);
        if (!(await repository.hasBlock(hash))) {
          const encoded = repository.codec.encodeBlock(plain, hash);
          await repository.putBlock(hash, encoded);
          fresh++;
          bytes += encoded.byteLength;
        }
        writer.append(hash);
      }
      await repository.putIndex(vappId, pointId, diskId, writer.finish());
      pointDisks.push({ diskId, vmId: 'vm-1', sizeBytes: blocks.length * BLOCK, blockSize: BLOCK, blocksTotal: blocks.length, blocksZero: zero, blocksNew: fresh, bytesUploaded: bytes });
      blocksNew += fresh;
    }
    await repository.putVAppMetadata(vappId, pointId, { name: `${vappId} name` });
    await repository.commitPoint({ format: FORMAT_VERSION, pointId, vappId, createdAt: now.toISOString(), parentPointId: null, sourcePointId: null, hasVAppMetadata: true, disks: pointDisks });
    const point: RestorePoint = {
      id: pointId,
      vappId,
      vappName: `${vappId} name`,
      tenantId: TENANT,
      jobId: 'job-backup',
      repositoryId: 'primary',
      createdAt: now.toISOString(),
      sizeBytes: pointDisks.reduce((n, d) => n + d.bytesUploaded, 0),
      flags: [],
      disks: pointDisks.map((d) => ({ diskId: d.diskId, vmId: 'vm-1', sizeBytes: d.sizeBytes, indexKey: indexKey(vappId, pointId, d.diskId), bytesUploaded: d.bytesUploaded })),
    };
    await this.catalog.commitRestorePoint(point);
    if (options.notify !== false) await this.copies.onSourcePointCommitted(point);
    return { point, blocksNew };
  }

  /** Handles the visible messages of both queues (runs first) until none is left; returns how many were handled. */
  async pump(options: { maxCopyBatches?: number } = {}): Promise<number> {
    let handled = 0;
    let batches = 0;
    for (;;) {
      const runs = await this.runsQueue.receive({ waitSeconds: 0 });
      if (runs.length > 0) {
        await this.deliver(this.runsQueue, runs, this.runsHandler);
        handled += runs.length;
        continue;
      }
      const room = options.maxCopyBatches === undefined ? 10 : Math.min(10, options.maxCopyBatches - batches);
      if (room <= 0) return handled;
      const tasks = await this.copyTasks.receive({ waitSeconds: 0, maxMessages: room });
      if (tasks.length === 0) return handled;
      await this.deliver(this.copyTasks, tasks, this.copyHandler);
      handled += tasks.length;
      batches += tasks.length;
    }
  }

  private async deliver(queue: MemoryQueue, messages: Array<{ messageId: string; body: string; receiptHandle: string }>, handler: (e: SQSEvent) => Promise<{ batchItemFailures: Array<{ itemIdentifier: string }> }>) {
    const event = { Records: messages.map((m) => ({ messageId: m.messageId, body: m.body })) } as unknown as SQSEvent;
    const res = await handler(event);
    const failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
    const done = messages.filter((m) => !failed.has(m.messageId)).map((m) => m.receiptHandle);
    if (done.length > 0) await queue.delete(done);
  }

  async runsOf(jobId: string): Promise<Run[]> {
    return this.catalog.listRuns({ jobId });
  }

  async targetPoints(repositoryId: string, vappId: string): Promise<string[]> {
    const out: string[] = [];
    for await (const p of this.repos.get(repositoryId)!.repository.listPoints()) if (p.vappId === vappId) out.push(p.pointId);
    return out.sort();
  }
}

/** A vApp's disk content: `n` blocks named by seed, with a zero block every 7th position. */
const disk = (prefix: string, n: number, changed: ReadonlySet<number> = new Set(), generation = 1) =>
  Array.from({ length: n }, (_, i) => (i % 7 === 6 ? null : changed.has(i) ? `${prefix}-${i}-g${generation}` : `${prefix}-${i}`));

async function standard(start = '2026-11-02T10:00:00.000Z', options: { batchBlocks?: number; copyTasks?: Queue; cloudKeys?: KeySource } = {}): Promise<Harness> {
  const h = new Harness(start, options);
  await h.addRepository('primary');
  await h.addRepository('cloud', options.cloudKeys);
  await h.putBackupJob('job-backup');
  return h;
}

describe('CopyService: immediate copies', () => {
  it('copies a full, then exactly the new blocks of an incremental (run counters and target objects)', async () => {
    const h = await standard();
    await h.putCopyJob('job-copy');
    const full = await h.backupPoint('vapp-1', { 'disk-a': disk('a', 20), 'disk-b': disk('b', 9) });
    await h.pump();
    const cloud = h.stores.get('cloud')!;
    const [run1] = await h.runsOf('job-copy');
    expect(run1).toMatchObject({ kind: 'copy', state: 'succeeded' });
    expect(run1!.counters.blocksNew).toBe(full.blocksNew);
    expect(run1!.vapps['vapp-1']).toMatchObject({ state: 'succeeded', disksTotal: Math.ceil(full.blocksNew / 4), pointId: full.point.id });
    expect(await cloud.blockCount()).toBe(full.blocksNew);
    expect(cloud.blockPuts).toBe(full.blocksNew);

    h.clock.advance(HOUR);
    const incr = await h.backupPoint('vapp-1', { 'disk-a': disk('a', 20, new Set([1, 2, 15])), 'disk-b': disk('b', 9, new Set([0])) });
    expect(incr.blocksNew).toBe(4);
    await h.pump();
    const run2 = (await h.runsOf('job-copy')).find((r) => r.id !== run1!.id)!;
    expect(run2.state).toBe('succeeded');
    expect(run2.counters.blocksNew).toBe(4);
    expect(run2.counters.bytesUploaded).toBe(incr.point.sizeBytes);
    expect(await cloud.blockCount()).toBe(full.blocksNew + 4);
    expect(cloud.blockPuts).toBe(full.blocksNew + 4);

    // the copied point: same id in the repository, `id@repository` in the catalog, with its source
    const target = h.repos.get('cloud')!.repository;
    const copied = await target.readPoint('vapp-1', incr.point.id);
    expect(copied).toMatchObject({ sourcePointId: incr.point.id, parentPointId: full.point.id, createdAt: incr.point.createdAt });
    const row = await h.catalog.getRestorePoint(copyPointCatalogId(incr.point.id, 'cloud'));
    expect(row).toMatchObject({ repositoryId: 'cloud', jobId: 'job-copy', sourcePointId: incr.point.id, vappName: 'vapp-1 name', createdAt: incr.point.createdAt });
    // the lease that protected the source point is gone
    expect(await h.catalog.listLeases(pointLeaseResource(incr.point.id))).toEqual([]);
    // the same commit noticed again changes nothing
    await h.copies.onSourcePointCommitted(incr.point);
    expect(await h.pump()).toBe(0);
    expect(cloud.blockPuts).toBe(full.blocksNew + 4);
  });

  it('copies at once inside the window; a point committed outside waits for the window to open (scheduler tick)', async () => {
    const h = await standard('2026-11-02T10:00:00.000Z');
    await h.putCopyJob('job-copy', { window: { timezone: 'UTC', everyDay: '22:00-06:00' } });
    const p = await h.backupPoint('vapp-1', { d: disk('w', 6) });
    expect(await h.pump()).toBe(0);
    const [waiting] = await h.runsOf('job-copy');
    expect(waiting).toMatchObject({ state: 'queued' });
    expect(await h.targetPoints('cloud', 'vapp-1')).toEqual([]);

    h.clock.set('2026-11-02T21:59:00.000Z');
    expect((await h.scheduler.tick()).started).toEqual([]);
    expect(await h.pump()).toBe(0);

    h.clock.set('2026-11-02T22:00:00.000Z');
    expect((await h.scheduler.tick()).started).toEqual([waiting!.id]);
    await h.pump();
    expect((await h.catalog.getRun(waiting!.id))!.state).toBe('succeeded');
    expect(await h.targetPoints('cloud', 'vapp-1')).toEqual([p.point.id]);

    // inside the window a new point is copied as it commits, without a tick
    h.clock.set('2026-11-02T23:00:00.000Z');
    const q = await h.backupPoint('vapp-1', { d: disk('w', 6, new Set([0])) });
    await h.pump();
    expect(await h.targetPoints('cloud', 'vapp-1')).toEqual([p.point.id, q.point.id]);
  });

  it('copies a copy: points flow primary → cloud (encrypted, other names) → third', async () => {
    const h = await standard('2026-11-02T10:00:00.000Z', { cloudKeys: { kind: 'passphrase', passphrase: new Secret('cloud passphrase'), scrypt: FAST_SCRYPT } });
    await h.addRepository('third');
    await h.putCopyJob('job-copy');
    await h.putCopyJob('job-copy2', { source: { kind: 'copy', jobId: 'job-copy' }, targetRepositoryId: 'third' });
    const p = await h.backupPoint('vapp-1', { d: disk('c', 12) });
    await h.pump();
    expect(await h.targetPoints('cloud', 'vapp-1')).toEqual([p.point.id]);
    expect(await h.targetPoints('third', 'vapp-1')).toEqual([p.point.id]);
    const inThird = await h.catalog.getRestorePoint(copyPointCatalogId(p.point.id, 'third'));
    expect(inThird).toMatchObject({ jobId: 'job-copy2', sourcePointId: copyPointCatalogId(p.point.id, 'cloud') });
    expect(await h.stores.get('third')!.blockCount()).toBe(p.blocksNew);
    // the copied data is the source's
    const third = h.repos.get('third')!.repository;
    const idx = await third.readIndex('vapp-1', p.point.id, 'd');
    expect((await third.getBlock(Buffer.from(idx.entry(0)!))).equals(blockOf('c-0'))).toBe(true);
    const [run2] = await h.runsOf('job-copy2');
    expect(run2).toMatchObject({ state: 'succeeded' });
    expect(run2!.counters.blocksNew).toBe(p.blocksNew);
  });
});

describe('CopyService: periodic copies', () => {
  it('copies the latest point of each vApp as of the tick, skips intermediate points and vApps already copied', async () => {
    const h = await standard('2026-11-02T01:00:00.000Z');
    await h.putCopyJob('job-periodic', { mode: 'periodic', schedule: { kind: 'everyHours', hours: 6 } });
    const a1 = await h.backupPoint('vapp-a', { d: disk('a', 5) });
    const b1 = await h.backupPoint('vapp-b', { d: disk('b', 5) });
    const start = (runId: string, at: string): StartCopyRun => ({ type: 'StartCopyRun', version: 1, runId, jobId: 'job-periodic', tenantId: TENANT, trigger: 'schedule', requestedAt: at });
    // immediate notices do nothing for a periodic job
    expect(await h.pump()).toBe(0);

    h.clock.set('2026-11-02T02:00:00.000Z');
    await h.copies.startRun(start('run-p1', '2026-11-02T02:00:00.000Z'));
    await h.pump();
    expect(await h.targetPoints('cloud', 'vapp-a')).toEqual([a1.point.id]);
    expect(await h.targetPoints('cloud', 'vapp-b')).toEqual([b1.point.id]);

    h.clock.set('2026-11-02T03:00:00.000Z');
    const a2 = await h.backupPoint('vapp-a', { d: disk('a', 5, new Set([0])) });
    h.clock.set('2026-11-02T04:00:00.000Z');
    const a3 = await h.backupPoint('vapp-a', { d: disk('a', 5, new Set([0, 1]), 3) });
    h.clock.set('2026-11-02T09:00:00.000Z');
    const a4 = await h.backupPoint('vapp-a', { d: disk('a', 5, new Set([2]), 4) });
    // the tick was at 08:00: a4 (09:00) waits for the next tick; a2 is an intermediate point
    const run = await h.copies.startRun(start('run-p2', '2026-11-02T08:00:00.000Z'));
    await h.pump();
    expect(await h.targetPoints('cloud', 'vapp-a')).toEqual([a1.point.id, a3.point.id].sort());
    expect(await h.targetPoints('cloud', 'vapp-b')).toEqual([b1.point.id]);
    const done = (await h.catalog.getRun(run.id))!;
    expect(done.state).toBe('succeeded');
    expect(Object.keys(done.vapps)).toEqual(['vapp-a']);
    expect(done.counters.blocksNew).toBe(2); // a3 changed blocks 0 and 1 against a1
    expect(a2.point.id).not.toBe(a3.point.id);
    expect(a4.point.id > a3.point.id).toBe(true);
  });

  it('the scheduler starts periodic runs (slot claimed once) and they run through the service', async () => {
    const h = await standard('2026-11-02T05:59:00.000Z');
    await h.catalog.putJob({ id: 'job-periodic', tenantId: TENANT, kind: 'copy', enabled: true, nextRunAt: '2026-11-02T06:00:00.000Z', spec: { name: 'p', tenantId: TENANT, source: { kind: 'backup', jobId: 'job-backup' }, targetRepositoryId: 'cloud', mode: 'periodic', schedule: { kind: 'everyHours', hours: 6 } } });
    const a1 = await h.backupPoint('vapp-a', { d: disk('s', 5) });
    h.clock.set('2026-11-02T06:00:00.000Z');
    const { started } = await h.scheduler.tick();
    expect(started).toHaveLength(1);
    await h.pump();
    expect(await h.targetPoints('cloud', 'vapp-a')).toEqual([a1.point.id]);
    expect((await h.catalog.getRun(started[0]!))!.state).toBe('succeeded');
  });
});

describe('CopyService: redelivery, crashes, windows, retries', () => {
  it('redelivered batches copy nothing again and count once', async () => {
    const h = await standard();
    await h.putCopyJob('job-copy');
    const p = await h.backupPoint('vapp-1', { d: disk('r', 30) }, { notify: true });
    // fan out, then duplicate every batch message before any is handled
    expect(await h.pump({ maxCopyBatches: 0 })).toBe(1);
    const bodies: string[] = [];
    for (;;) {
      const got = await h.copyTasks.receive({ waitSeconds: 0 });
      if (got.length === 0) break;
      bodies.push(...got.map((m) => m.body));
      await h.copyTasks.delete(got.map((m) => m.receiptHandle));
    }
    expect(bodies.length).toBe(Math.ceil(p.blocksNew / 4));
    await h.copyTasks.send([...bodies, ...bodies]);
    await h.pump();
    const [run] = await h.runsOf('job-copy');
    expect(run).toMatchObject({ state: 'succeeded' });
    expect(run!.counters.blocksNew).toBe(p.blocksNew);
    expect(run!.vapps['vapp-1']!.disksDone).toBe(bodies.length);
    expect(h.stores.get('cloud')!.blockPuts).toBe(p.blocksNew);
    expect(await h.targetPoints('cloud', 'vapp-1')).toEqual([p.point.id]);
  });

  it('a worker that dies after some batches resumes on redelivery without copying again', async () => {
    const h = await standard();
    await h.putCopyJob('job-copy');
    const p = await h.backupPoint('vapp-1', { d: disk('k', 40) });
    await h.pump({ maxCopyBatches: 3 });
    // the "crashed" worker took 3 more batches and never answered: they stay invisible, then come back
    const taken = await h.copyTasks.receive({ waitSeconds: 0, maxMessages: 3 });
    expect(taken).toHaveLength(3);
    const before = h.stores.get('cloud')!.blockPuts;
    expect(before).toBe(12);
    await h.pump();
    let [run] = await h.runsOf('job-copy');
    expect(run!.state).toBe('running');
    h.clock.advance(31_000);
    await h.pump();
    [run] = await h.runsOf('job-copy');
    expect(run).toMatchObject({ state: 'succeeded' });
    expect(run!.counters.blocksNew).toBe(p.blocksNew);
    expect(h.stores.get('cloud')!.blockPuts).toBe(p.blocksNew);
  });

  it('a dispatch that dies mid fan-out is superseded on redelivery by an attempt that plans only what is missing', async () => {
    let hang = true;
    const inner = new MemoryQueue({ name: 'copy-tasks' });
    // The first fan-out sends its batches, then the process "dies" (the call never returns).
    const copyTasks: Queue = {
      name: 'copy-tasks',
      send: async (bodies) => {
        const ids = await h.copyTasks.send(bodies);
        if (hang) {
          hang = false;
          return new Promise<string[]>(() => {});
        }
        return ids;
      },
      receive: (o) => inner.receive(o),
      delete: (r) => inner.delete(r),
      extendVisibility: (r, s) => inner.extendVisibility(r, s),
      dlqDepth: async () => 0,
    };
    const h = await standard('2026-11-02T10:00:00.000Z', { copyTasks });
    await h.putCopyJob('job-copy');
    const p = await h.backupPoint('vapp-1', { d: disk('m', 20) });
    const [msg] = await h.runsQueue.receive({ waitSeconds: 0 });
    void h.copies.startRun(JSON.parse(msg!.body) as StartCopyRun); // dies after sending
    await new Promise((r) => setTimeout(r, 50));
    // two batches of the lost attempt get copied before the redelivery
    await h.pump({ maxCopyBatches: 2 });
    expect(h.stores.get('cloud')!.blockPuts).toBe(8);
    h.clock.advance(31_000); // the runs message comes back
    await h.pump();
    const [run] = await h.runsOf('job-copy');
    expect(run).toMatchObject({ state: 'succeeded' });
    expect(run!.vapps['vapp-1']!.attempts).toBe(2);
    expect(h.stores.get('cloud')!.blockPuts).toBe(p.blocksNew);
    expect(run!.counters.blocksNew).toBe(p.blocksNew);
  });

  it('a window closing mid-run stops at a batch boundary and resumes when it opens again', async () => {
    const h = await standard('2026-11-02T22:30:00.000Z');
    await h.putCopyJob('job-copy', { window: { timezone: 'UTC', everyDay: '22:00-23:00' } });
    const p = await h.backupPoint('vapp-1', { d: disk('x', 40) });
    await h.pump({ maxCopyBatches: 4 });
    expect(h.stores.get('cloud')!.blockPuts).toBe(16);
    h.clock.set('2026-11-02T23:00:00.000Z');
    await h.pump();
    let [run] = await h.runsOf('job-copy');
    expect(run!.state).toBe('running');
    expect(run!.vapps['vapp-1']).toMatchObject({ state: 'pending', retryAt: '2026-11-03T22:00:00.000Z' });
    expect(h.stores.get('cloud')!.blockPuts).toBe(16); // nothing copied outside the window
    expect(h.copyTasks.depth()).toBe(0);

    h.clock.set('2026-11-03T12:00:00.000Z');
    expect((await h.scheduler.tick()).started).toEqual([]);
    h.clock.set('2026-11-03T22:00:00.000Z');
    expect((await h.scheduler.tick()).started).toEqual([run!.id]);
    await h.pump();
    [run] = await h.runsOf('job-copy');
    expect(run).toMatchObject({ state: 'succeeded' });
    expect(run!.vapps['vapp-1']!.attempts).toBe(2);
    expect(run!.vapps['vapp-1']!.disksTotal).toBe(Math.ceil((p.blocksNew - 16) / 4));
    expect(h.stores.get('cloud')!.blockPuts).toBe(p.blocksNew);
    expect(run!.counters.blocksNew).toBe(p.blocksNew);
    expect(await h.targetPoints('cloud', 'vapp-1')).toEqual([p.point.id]);
  });

  it('retries a failed vApp after the wait; a permanent failure is recorded with its reason', async () => {
    let failSends = 1;
    const inner = new MemoryQueue({ name: 'copy-tasks' });
    const copyTasks: Queue = {
      name: 'copy-tasks',
      send: async (bodies) => {
        if (failSends-- > 0) throw new Error('throttled');
        return h.copyTasks.send(bodies);
      },
      receive: (o) => inner.receive(o),
      delete: (r) => inner.delete(r),
      extendVisibility: (r, s) => inner.extendVisibility(r, s),
      dlqDepth: async () => 0,
    };
    const h = await standard('2026-11-02T10:00:00.000Z', { copyTasks });
    await h.putCopyJob('job-copy');
    const p = await h.backupPoint('vapp-1', { d: disk('t', 8) });
    await h.pump();
    let [run] = await h.runsOf('job-copy');
    expect(run!.vapps['vapp-1']).toMatchObject({ state: 'failed', retryAt: '2026-11-02T10:10:00.000Z' });
    expect(run!.state).toBe('running');
    h.clock.advance(5 * MINUTE);
    expect((await h.scheduler.tick()).started).toEqual([]);
    h.clock.advance(5 * MINUTE);
    expect((await h.scheduler.tick()).started).toEqual([run!.id]);
    await h.pump();
    [run] = await h.runsOf('job-copy');
    expect(run).toMatchObject({ state: 'succeeded' });
    expect(run!.errors.map((e) => e.code)).toEqual(['VAPP_COPY_FAILED']);
    expect(await h.targetPoints('cloud', 'vapp-1')).toEqual([p.point.id]);

    // a block missing from the source cannot heal: failed for good, with the reason, lease released
    h.clock.advance(HOUR);
    const q = await h.backupPoint('vapp-1', { d: disk('t', 8, new Set([3])) }, { notify: false });
    const primary = h.repos.get('primary')!.repository;
    await h.stores.get('primary')!.deleteMany([primary.blockKeyOf(primary.codec.hash(blockOf('t-3-g1')))]);
    await h.copies.onSourcePointCommitted(q.point);
    await h.pump();
    const failed = (await h.runsOf('job-copy')).find((r) => r.id !== run!.id)!;
    expect(failed.state).toBe('failed');
    expect(failed.vapps['vapp-1']!.error).toMatch(/BLOCK_MISSING.*failed for good/);
    expect(failed.vapps['vapp-1']!.retryAt).toBeUndefined();
    expect(await h.catalog.listLeases(pointLeaseResource(q.point.id))).toEqual([]);
    expect(await h.targetPoints('cloud', 'vapp-1')).toEqual([p.point.id]);
  });
});

describe('CopyService: retention', () => {
  it("applies the copy job's retention on the target chain", async () => {
    const h = await standard();
    await h.putCopyJob('job-copy', { retention: { shortTerm: { restorePoints: 2 } } });
    const ids: string[] = [];
    for (let g = 1; g <= 4; g++) {
      h.clock.advance(HOUR);
      ids.push((await h.backupPoint('vapp-1', { d: disk('g', 6, new Set([g % 5]), g) })).point.id);
      await h.pump();
    }
    expect(await h.targetPoints('cloud', 'vapp-1')).toEqual(ids.slice(2));
    const rows = await h.catalog.listRestorePoints({ repositoryId: 'cloud', vappId: 'vapp-1' });
    expect(rows.map((r) => r.id)).toEqual(ids.slice(2).map((id) => copyPointCatalogId(id, 'cloud')));
    // the source chain keeps everything (the backup job has no retention)
    expect(await h.targetPoints('primary', 'vapp-1')).toEqual(ids);
  });

  it('a source point being copied is not deleted by the backup retention until its copy commits', async () => {
    const h = await standard();
    await h.putCopyJob('job-copy');
    const policy = parseRetentionPolicy({ shortTerm: { restorePoints: 1 } });
    const primary = h.repos.get('primary')!.repository;
    const p1 = await h.backupPoint('vapp-1', { d: disk('l', 12) });
    await h.pump({ maxCopyBatches: 1 }); // the copy of p1 is under way
    expect(await h.catalog.listLeases(pointLeaseResource(p1.point.id))).toHaveLength(1);
    h.clock.advance(HOUR);
    await h.backupPoint('vapp-1', { d: disk('l', 12, new Set([0])) }, { notify: false });
    expect(await h.backups.applyChainRetention(primary, { repositoryId: 'primary', vappId: 'vapp-1', jobId: 'job-backup', tenantId: TENANT }, policy)).toEqual([]);
    expect(await primary.readPoint('vapp-1', p1.point.id)).toBeTruthy();
    await h.pump();
    expect(await h.targetPoints('cloud', 'vapp-1')).toEqual([p1.point.id]);
    expect(await h.catalog.listLeases(pointLeaseResource(p1.point.id))).toEqual([]);
    expect(await h.backups.applyChainRetention(primary, { repositoryId: 'primary', vappId: 'vapp-1', jobId: 'job-backup', tenantId: TENANT }, policy)).toEqual([p1.point.id]);
  });
});
