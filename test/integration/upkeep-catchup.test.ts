import { createHash } from 'node:crypto';
import type { SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { CodecPool } from '../../lib/agent/codec-pool.js';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import type { RestorePoint } from '../../lib/catalog/types.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { createCopyTasksHandler } from '../../lib/handlers/copy-tasks.js';
import { createRunsHandler } from '../../lib/handlers/runs.js';
import type { Log } from '../../lib/log.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import { DiskIndexWriter } from '../../lib/repository/disk-index.js';
import { FORMAT_VERSION, indexKey, newPointId } from '../../lib/repository/format.js';
import { MemoryStore } from '../../lib/repository/memory-store.js';
import { Repository } from '../../lib/repository/repository.js';
import type { BackupService } from '../../lib/services/backup-service.js';
import { immediateCopyRunId } from '../../lib/services/copy-ids.js';
import { CopyService, type OpenRepository } from '../../lib/services/copy-service.js';
import { SchedulerService } from '../../lib/services/scheduler.js';
import { UpkeepService, repositoryLeaseResource } from '../../lib/services/upkeep-service.js';

/**
 * Missed immediate copies caught up by the scheduler tick, with the real copy service on memory
 * repositories, the memory catalog and queues, and a ManualClock.
 */
const BLOCK = 256 * 1024;
const TENANT = 'acme';
const quiet: Log = { debug() {}, info() {}, warn() {}, error() {} };
const pools: CodecPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

async function world() {
  const clock = new ManualClock('2026-11-02T10:00:00.000Z');
  const catalog = new MemoryCatalog(clock);
  const runs = new MemoryQueue({ name: 'runs', clock });
  const copyTasks = new MemoryQueue({ name: 'copy-tasks', clock });
  const repos = new Map<string, OpenRepository>();
  for (const id of ['primary', 'cloud']) {
    const repository = await Repository.init(new MemoryStore(clock), { clock, blockSize: BLOCK });
    const pool = new CodecPool(repository.codecSettings(), 1);
    pools.push(pool);
    repos.set(id, { repository, ref: { id, url: `memory://${id}` }, pool });
  }
  const copies = new CopyService({ catalog, repositories: { open: async (id) => repos.get(id)! }, copyTasks, runs, clock, log: quiet });
  const scheduler = new SchedulerService({ catalog, runs, clock, log: quiet, copies });
  const runsHandler = createRunsHandler({ backups: {} as BackupService, copies, log: quiet });
  const copyHandler = createCopyTasksHandler({ copies, log: quiet });
  await catalog.putTenant({ id: TENANT, name: 'ACME' });
  for (const id of ['primary', 'cloud']) await catalog.putRepository({ id, tenantId: TENANT, url: `memory://${id}`, role: id === 'cloud' ? 'cloud' : 'primary', bucket: '-', prefix: '' });
  await catalog.putJob({ id: 'job-backup', tenantId: TENANT, kind: 'backup', enabled: true, spec: { name: 'b', tenantId: TENANT, scope: { include: [{ kind: 'vapp', vappId: 'urn:vcloud:vapp:x' }] }, targetRepositoryId: 'primary' } });
  const copyJob = (enabled: boolean, extra: Record<string, unknown> = {}) =>
    catalog.putJob({ id: 'job-copy', tenantId: TENANT, kind: 'copy', enabled, spec: { name: 'c', tenantId: TENANT, source: { kind: 'backup', jobId: 'job-backup' }, targetRepositoryId: 'cloud', mode: 'immediate', ...extra } });
  const upkeep = new UpkeepService({ catalog, repositories: { open: async (id) => repos.get(id)! }, clock, log: quiet });

  let seq = 0;
  /** A committed backup point of `vappId` (repository and catalog), announced to the copy service. */
  const backupPoint = async (vappId: string, seed: string): Promise<RestorePoint> => {
    const { repository } = repos.get('primary')!;
    const now = clock.now();
    const pointId = newPointId(now, (++seq).toString(16).padStart(8, '0'));
    const writer = new DiskIndexWriter(repository.codec, indexKey(vappId, pointId, 'd'), BLOCK, 2 * BLOCK);
    for (const i of [0, 1]) {
      const plain = Buffer.alloc(BLOCK, createHash('sha256').update(`${seed}-${i}`).digest());
      const hash = repository.codec.hash(plain);
      if (!(await repository.hasBlock(hash))) await repository.putBlock(hash, repository.codec.encodeBlock(plain, hash));
      writer.append(hash);
    }
    await repository.putIndex(vappId, pointId, 'd', writer.finish());
    await repository.commitPoint({ format: FORMAT_VERSION, pointId, vappId, createdAt: now.toISOString(), parentPointId: null, sourcePointId: null, hasVAppMetadata: false, disks: [{ diskId: 'd', vmId: 'vm-1', sizeBytes: 2 * BLOCK, blockSize: BLOCK, blocksTotal: 2, blocksZero: 0, blocksNew: 2, bytesUploaded: 1 }] });
    const point: RestorePoint = { id: pointId, vappId, vappName: vappId, tenantId: TENANT, jobId: 'job-backup', repositoryId: 'primary', createdAt: now.toISOString(), sizeBytes: 1, flags: [], disks: [{ diskId: 'd', vmId: 'vm-1', sizeBytes: 2 * BLOCK, indexKey: indexKey(vappId, pointId, 'd') }] };
    await catalog.commitRestorePoint(point);
    await copies.onSourcePointCommitted(point);
    clock.advance(60_000);
    return point;
  };

  const pump = async () => {
    for (;;) {
      let handled = 0;
      for (const [queue, handler] of [[runs, runsHandler], [copyTasks, copyHandler]] as const) {
        const got = await queue.receive({ maxMessages: 10, waitSeconds: 0 });
        if (got.length === 0) continue;
        handled += got.length;
        const res = await handler({ Records: got.map((m) => ({ messageId: m.messageId, body: m.body })) } as unknown as SQSEvent);
        const failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
        await queue.delete(got.filter((m) => !failed.has(m.messageId)).map((m) => m.receiptHandle));
      }
      if (handled === 0) return;
    }
  };
  const onTarget = async (): Promise<string[]> => {
    const ids: string[] = [];
    for await (const p of repos.get('cloud')!.repository.listPoints()) ids.push(p.pointId);
    return ids.sort();
  };
  const tick = async () => {
    const { started } = await scheduler.tick();
    await pump();
    clock.advance(60_000);
    return started;
  };
  return { clock, catalog, copyJob, backupPoint, pump, onTarget, tick, upkeep, runs, runsHandler };
}

describe('missed immediate copies', () => {
  it('points older than the job, committed while it was disabled, or whose copy failed are copied by later ticks, in commit order', async () => {
    const w = await world();
    const old = await w.backupPoint('vapp-1', 'old'); // before the copy job exists
    await w.copyJob(false);
    const whileOff = await w.backupPoint('vapp-1', 'off'); // the job is disabled
    const other = await w.backupPoint('vapp-2', 'other');
    await w.pump();
    expect(await w.onTarget()).toEqual([]);
    expect(await w.tick()).toEqual([]); // disabled: nothing

    await w.copyJob(true);
    // First tick: the oldest missed point of each vApp.
    expect(await w.tick()).toHaveLength(2);
    expect(await w.onTarget()).toEqual([old.id, other.id].sort());
    // Next tick: vApp 1's next point, on top of the older copy.
    expect(await w.tick()).toHaveLength(1);
    expect(await w.onTarget()).toEqual([old.id, whileOff.id, other.id].sort());
    expect(await w.tick()).toEqual([]);

    // A point whose immediate copy failed for good (its run is final, nothing on the target).
    await w.copyJob(false);
    const failed = await w.backupPoint('vapp-1', 'failed');
    await w.catalog.createRun({ id: immediateCopyRunId('job-copy', failed.id), jobId: 'job-copy', tenantId: TENANT, kind: 'copy', state: 'failed', startedAt: w.clock.now().toISOString() });
    await w.copyJob(true);
    const started = await w.tick();
    expect(started).toHaveLength(1);
    expect(started[0]).not.toBe(immediateCopyRunId('job-copy', failed.id));
    expect(await w.onTarget()).toContain(failed.id);
    expect(await w.tick()).toEqual([]);
  });

  it('a point whose own immediate run is still open is left to that run', async () => {
    const w = await world();
    await w.copyJob(true);
    const p = await w.backupPoint('vapp-1', 'p'); // requested and queued, not yet delivered
    expect(await w.catalog.getRun(immediateCopyRunId('job-copy', p.id))).toMatchObject({ state: 'queued' });
    // The tick sends the queued run again (its message may be lost); no catch-up run joins it.
    expect(await w.tick()).toEqual([immediateCopyRunId('job-copy', p.id)]);
    expect(await w.onTarget()).toEqual([p.id]);
    expect(await w.tick()).toEqual([]);
    expect((await w.catalog.listRuns({ jobId: 'job-copy' })).map((r) => r.id)).toEqual([immediateCopyRunId('job-copy', p.id)]);
  });
});

describe('copy targets', () => {
  it('a copy holds the shared lease on its target from dispatch to commit', async () => {
    const w = await world();
    await w.copyJob(true);
    await w.backupPoint('vapp-1', 'p');
    // Only the runs queue: the copy is planned and its batches wait in the copy-tasks queue.
    const got = await w.runs.receive({ maxMessages: 10, waitSeconds: 0 });
    expect(got).toHaveLength(1);
    await w.runsHandler({ Records: got.map((m) => ({ messageId: m.messageId, body: m.body })) } as unknown as SQSEvent);
    await w.runs.delete(got.map((m) => m.receiptHandle));
    const held = await w.catalog.listLeases(repositoryLeaseResource('cloud'));
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ mode: 'shared' });
    expect(held[0]!.holder).toMatch(/^copy:run-job-copy-copy-.*:vapp-1$/);
    await w.pump();
    expect(await w.onTarget()).toHaveLength(1);
    expect(await w.catalog.listLeases(repositoryLeaseResource('cloud'))).toEqual([]);
  });

  it("a retention run applies a copy job's policy to its chain on the target", async () => {
    const w = await world();
    await w.copyJob(true, { retention: { shortTerm: { restorePoints: 1 } } });
    // Commit-time retention would keep the target at one point: hold copies back, then shorten by hand.
    const points = [await w.backupPoint('vapp-1', 'a'), await w.backupPoint('vapp-1', 'b')];
    await w.pump();
    expect(await w.onTarget()).toEqual([points[1]!.id]);
    await w.copyJob(true, { retention: { shortTerm: { restorePoints: 5 } } });
    const c = await w.backupPoint('vapp-1', 'c');
    await w.pump();
    expect(await w.onTarget()).toEqual([points[1]!.id, c.id].sort());
    await w.copyJob(true, { retention: { shortTerm: { restorePoints: 1 } } });
    const run = await w.upkeep.runRetention({ type: 'RetentionRun', version: 1, runId: 'run-ret-cloud', tenantId: TENANT, repositoryId: 'cloud', trigger: 'schedule', requestedAt: w.clock.now().toISOString() });
    expect(run.errors).toEqual([]);
    expect(run.state).toBe('succeeded');
    expect(await w.onTarget()).toEqual([c.id]);
    // the source chain is the backup job's (no policy): untouched
    expect((await w.catalog.listRestorePoints({ jobId: 'job-backup' })).map((p) => p.id)).toEqual([points[0]!.id, points[1]!.id, c.id]);
  });
});
