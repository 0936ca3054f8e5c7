import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { backupSingleDisk } from '../../lib/agent/disk-jobs.js';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { createRunsHandler } from '../../lib/handlers/runs.js';
import { createMemoryLogger } from '../../lib/log.js';
import { encodeMessage } from '../../lib/queue/messages.js';
import type { GcRun, RetentionRun } from '../../lib/queue/messages.js';
import { indexKey } from '../../lib/repository/format.js';
import type { Repository } from '../../lib/repository/repository.js';
import { verifyRepository } from '../../lib/repository/verify.js';
import { Secret } from '../../lib/secret.js';
import type { BackupService } from '../../lib/services/backup-service.js';
import { PROVIDER_TENANT_ID, UpkeepService, repositoryLeaseResource } from '../../lib/services/upkeep-service.js';
import { RepositoryRegistry } from '../../lib/wiring/repository-registry.js';
import { writeSyntheticImage } from '../helpers/synthetic-image.js';
import type { SQSEvent } from 'aws-lambda';

/**
 * Repository upkeep with real parts: a local-directory repository shared by two tenants, the memory
 * catalog, a ManualClock. Block ages come from the files' real mtimes, so the clock starts at the real
 * time and "two days later" is the clock moved forward, never a sleep.
 */
const KiB = 1024;
const DAY = 24 * 3600_000;
let work: string;
let images: { a: string; b: string };

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'vcdb-upkeep-'));
  images = { a: path.join(work, 'a.img'), b: path.join(work, 'b.img') };
  await writeSyntheticImage(images.a, 1024 * KiB, { seed: 'tenant a', regionSize: 256 * KiB, layout: ['random', 'text', 'random', 'zero'] });
  await writeSyntheticImage(images.b, 1024 * KiB, { seed: 'tenant b', regionSize: 256 * KiB, layout: ['random', 'text', 'random', 'zero'] });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface World {
  clock: ManualClock;
  catalog: MemoryCatalog;
  registry: RepositoryRegistry;
  upkeep: UpkeepService;
  repoDir: string;
  usage: string[];
}
let w: World;

const jobSpec = (tenantId: string, restorePoints: number) => ({
  name: `nightly ${tenantId}`,
  tenantId,
  scope: { include: [{ kind: 'org', orgId: `urn:vcloud:org:00000000-0000-0000-0000-00000000000${tenantId === 'acme' ? 1 : 2}` }] },
  schedule: { kind: 'daily', times: ['02:00'] },
  retention: { shortTerm: { restorePoints } },
  targetRepositoryId: 'shared',
  blockSize: 256 * KiB,
});

beforeEach(async () => {
  const clock = new ManualClock(new Date().toISOString());
  const catalog = new MemoryCatalog(clock);
  const repoDir = await mkdtemp(path.join(tmpdir(), 'vcdb-upkeep-repo-'));
  const registry = new RepositoryRegistry({ catalog, clock, initMissing: true, keySource: { kind: 'passphrase', passphrase: new Secret('upkeep test passphrase'), scrypt: { N: 1024, r: 8, p: 1 } } });
  const usage: string[] = [];
  const upkeep = new UpkeepService({ catalog, repositories: registry, clock, log: createMemoryLogger(), usage: { recomputeQuietly: async (t) => void usage.push(t) } });
  w = { clock, catalog, registry, upkeep, repoDir, usage };
  await catalog.putTenant({ id: 'acme', name: 'ACME' });
  await catalog.putTenant({ id: 'beta', name: 'Beta' });
  await catalog.putRepository({ id: 'shared', url: `file://${repoDir}`, role: 'primary', bucket: '-', prefix: '' });
  await catalog.putJob({ id: 'job-a', tenantId: 'acme', kind: 'backup', enabled: true, spec: jobSpec('acme', 1) });
  await catalog.putJob({ id: 'job-b', tenantId: 'beta', kind: 'backup', enabled: true, spec: jobSpec('beta', 5) });
});
afterEach(async () => {
  await w.registry.close();
  await rm(w.repoDir, { recursive: true, force: true });
});

async function view(tenantId?: string): Promise<Repository> {
  return (await w.registry.open('shared', tenantId)).repository;
}

/** A one-disk point in the tenant's namespace, in the repository and in the catalog under `jobId`. */
async function point(tenantId: string, jobId: string, vappId: string, image: string, createdAt: string): Promise<string> {
  const repository = await view(tenantId);
  const { pointId } = await backupSingleDisk({ repository, clock: w.clock, sourcePath: image, vappId, diskId: 'disk-0' });
  await w.catalog.commitRestorePoint({
    id: pointId,
    vappId,
    vappName: vappId,
    tenantId,
    jobId,
    repositoryId: 'shared',
    createdAt,
    sizeBytes: 1,
    flags: [],
    disks: [{ diskId: 'disk-0', vmId: 'vm-1', sizeBytes: 1024 * KiB, indexKey: indexKey(vappId, pointId, 'disk-0') }],
  });
  return pointId;
}

async function repositoryPoints(): Promise<string[]> {
  const ids: string[] = [];
  for await (const p of (await view()).listPoints()) ids.push(p.pointId);
  return ids.sort();
}

const gcMessage = (runId: string, extra: Partial<GcRun> = {}): GcRun => ({ type: 'GcRun', version: 1, runId, repositoryId: 'shared', requestedAt: w.clock.now().toISOString(), ...extra });
const retentionMessage = (runId: string, extra: Partial<RetentionRun> = {}): RetentionRun => ({ type: 'RetentionRun', version: 1, runId, tenantId: PROVIDER_TENANT_ID, repositoryId: 'shared', trigger: 'schedule', requestedAt: w.clock.now().toISOString(), ...extra });

describe('retention run', () => {
  it("deletes only each job's own expired points, never another tenant's, and keeps leased points", async () => {
    const t0 = w.clock.now().getTime();
    const at = (d: number) => new Date(t0 - d * DAY).toISOString();
    const a1 = await point('acme', 'job-a', 'vapp-1', images.a, at(3));
    const a2 = await point('acme', 'job-a', 'vapp-1', images.a, at(2));
    const a3 = await point('acme', 'job-a', 'vapp-1', images.a, at(1));
    // beta's points: one under its own job, one (forged) under acme's job id in the same vApp chain.
    const b1 = await point('beta', 'job-b', 'vapp-1', images.b, at(3));
    const b2 = await point('beta', 'job-a', 'vapp-1', images.b, at(4));
    // a copy is reading a1: it stays until the copy is done.
    await w.catalog.acquireLease(`point:${a1}`, 'copy:run-x', 'shared', DAY);

    const run = await w.upkeep.runRetention(retentionMessage('run-ret-1'));
    expect(run.kind).toBe('retention');
    expect(run.state).toBe('succeeded');
    const findings = await w.upkeep.findings('run-ret-1');
    expect(findings).toMatchObject({ kind: 'retention', pointsDeleted: [a2], pointsKeptLeased: [a1], tenantsAffected: ['acme'] });
    expect((await w.catalog.listRestorePoints({ repositoryId: 'shared' })).map((p) => p.id).sort()).toEqual([a1, a3, b1, b2].sort());
    expect(await repositoryPoints()).toEqual([a1, a3, b1, b2].sort());
    expect(w.usage).toEqual(['acme']);

    // Redelivery: the run is finished, nothing happens again.
    await w.catalog.releaseLease(`point:${a1}`, 'copy:run-x');
    expect((await w.upkeep.runRetention(retentionMessage('run-ret-1'))).state).toBe('succeeded');
    expect(await repositoryPoints()).toEqual([a1, a3, b1, b2].sort());

    // A tenant's own run sweeps its jobs only: beta's run never touches acme's now unleased a1.
    await w.upkeep.runRetention(retentionMessage('run-ret-beta', { tenantId: 'beta' }));
    expect(await repositoryPoints()).toEqual([a1, a3, b1, b2].sort());
    await w.upkeep.runRetention(retentionMessage('run-ret-2'));
    expect(await repositoryPoints()).toEqual([a3, b1, b2].sort());
    expect((await verifyRepository(await view())).ok).toBe(true);
  });

  it('a retention run naming another tenant\'s job fails with the reason and deletes nothing', async () => {
    const t0 = w.clock.now().getTime();
    await point('acme', 'job-a', 'vapp-1', images.a, new Date(t0 - 2 * DAY).toISOString());
    await point('acme', 'job-a', 'vapp-1', images.a, new Date(t0 - DAY).toISOString());
    const run = await w.upkeep.runRetention(retentionMessage('run-ret-x', { tenantId: 'beta', jobId: 'job-a' }));
    expect(run.state).toBe('failed');
    expect(run.errors[0]!.code).toBe('JOB_NOT_FOUND');
    expect(await repositoryPoints()).toHaveLength(2);
  });
});

describe('GC run', () => {
  it('deletes unreferenced blocks older than the grace period, keeps young ones and every referenced block', async () => {
    const doomed = await point('acme', 'job-a', 'vapp-1', images.a, w.clock.now().toISOString());
    await point('beta', 'job-b', 'vapp-2', images.b, w.clock.now().toISOString());
    await (await view('acme')).deletePoint('vapp-1', doomed);
    await w.catalog.deleteRestorePoint(doomed);

    const young = await w.upkeep.runGc(gcMessage('run-gc-1'));
    expect(young.kind).toBe('gc');
    expect(young.state).toBe('succeeded');
    const f1 = await w.upkeep.findings('run-gc-1');
    expect(f1).toMatchObject({ kind: 'gc', blocksDeleted: 0, graceMs: DAY });
    expect(f1!.kind === 'gc' && f1!.blocksKeptYoung).toBeGreaterThan(0);

    w.clock.advance(2 * DAY);
    const old = await w.upkeep.runGc(gcMessage('run-gc-2'));
    expect(old.state).toBe('succeeded');
    const f2 = await w.upkeep.findings('run-gc-2');
    expect(f2!.kind === 'gc' && f2!.blocksDeleted).toBe(f1!.kind === 'gc' && f1!.blocksKeptYoung);
    expect(f2!.kind === 'gc' && f2!.bytesFreed).toBeGreaterThan(0);
    expect(f2).toMatchObject({ blocksKeptYoung: 0, blocksMissing: 0 });
    // beta's point is whole; GC's lease is gone.
    expect((await verifyRepository(await view())).ok).toBe(true);
    expect(await w.catalog.listLeases(repositoryLeaseResource('shared'))).toEqual([]);
    // Redelivery of a finished GC run does nothing.
    expect((await w.upkeep.runGc(gcMessage('run-gc-2'))).state).toBe('succeeded');
  });

  it('refuses while a backup holds the repository lease, and runs once it is released', async () => {
    const doomed = await point('acme', 'job-a', 'vapp-1', images.a, w.clock.now().toISOString());
    await (await view('acme')).deletePoint('vapp-1', doomed);
    w.clock.advance(2 * DAY);
    // The lease a backup run holds from dispatch to commit (BackupService).
    await w.catalog.acquireLease(repositoryLeaseResource('shared'), 'backup:run-b:vapp-1', 'shared', 2 * DAY);

    // Through the runs handler, as the queue delivers it: acknowledged (not redelivered), the run failed.
    const runs = createRunsHandler({ backups: {} as BackupService, upkeep: w.upkeep, log: createMemoryLogger() });
    const event = { Records: [{ messageId: 'm1', body: encodeMessage('runs', gcMessage('run-gc-refused')) }] } as SQSEvent;
    expect((await runs(event)).batchItemFailures).toEqual([]);
    const refused = (await w.catalog.getRun('run-gc-refused'))!;
    expect(refused.state).toBe('failed');
    expect(refused.errors[0]).toMatchObject({ code: 'REPOSITORY_LOCKED' });
    expect(refused.errors[0]!.message).toMatch(/backup:run-b:vapp-1/);
    expect(await w.upkeep.findings('run-gc-refused')).toBeUndefined();

    await w.catalog.releaseLease(repositoryLeaseResource('shared'), 'backup:run-b:vapp-1');
    await runs({ Records: [{ messageId: 'm2', body: encodeMessage('runs', gcMessage('run-gc-later')) }] } as SQSEvent);
    expect((await w.catalog.getRun('run-gc-later'))!.state).toBe('succeeded');
    const f = await w.upkeep.findings('run-gc-later');
    expect(f!.kind === 'gc' && f!.blocksDeleted).toBeGreaterThan(0);
  });
});
