import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Catalog } from '../../lib/catalog/catalog.js';
import { CatalogInputError, ConflictError, NotFoundError } from '../../lib/catalog/errors.js';
import type { Job, RestorePoint } from '../../lib/catalog/types.js';
import { ManualClock } from '../../lib/domain/clock.js';

/**
 * The Catalog contract: every adapter runs exactly these tests. `make` returns a catalog whose "now" is the
 * given clock. Adapters may share storage between tests, so every test uses ids of its own.
 */
export function catalogContract(name: string, make: (clock: ManualClock) => Promise<Catalog>): void {
  const setup = async () => {
    const clock = new ManualClock('2026-03-02T10:00:00.000Z');
    const catalog = await make(clock);
    const u = randomUUID().slice(0, 8);
    return { clock, catalog, id: (s: string) => `${s}-${u}` };
  };

  const job = (id: string, tenantId: string, patch: Partial<Job> = {}): Job => ({
    id,
    tenantId,
    kind: 'backup',
    enabled: true,
    nextRunAt: '2026-03-02T09:00:00.000Z',
    spec: { scope: { vapps: ['a', 'b'] }, schedule: { kind: 'daily', times: ['02:00'] }, blockSize: 1048576, note: null },
    ...patch,
  });

  const point = (id: string, p: Partial<RestorePoint> & Pick<RestorePoint, 'vappId' | 'tenantId' | 'repositoryId' | 'jobId'>): RestorePoint => ({
    id,
    vappName: `name of ${p.vappId}`,
    createdAt: '2026-03-01T02:00:00.000Z',
    sizeBytes: 4096,
    flags: [],
    disks: [{ diskId: 'd1', vmId: 'vm1', sizeBytes: 4096, indexKey: `points/${p.vappId}/${id}/disks/d1.idx` }],
    ...p,
  });

  describe(`Catalog contract: ${name}`, () => {
    // ---------------------------------------------------------------- tenants, repositories, jobs

    it('stores, replaces and lists tenants; a missing tenant is undefined', async () => {
      const { catalog, id } = await setup();
      await catalog.putTenant({ id: id('t2'), name: 'Org Two' });
      await catalog.putTenant({ id: id('t1'), name: 'Org One', quotaBytes: 10 });
      await catalog.putTenant({ id: id('t1'), name: 'Org One renamed', quotaBytes: 20 });
      expect(await catalog.getTenant(id('t1'))).toEqual({ id: id('t1'), name: 'Org One renamed', quotaBytes: 20 });
      expect(await catalog.getTenant(id('nope'))).toBeUndefined();
      const mine = (await catalog.listTenants()).filter((t) => t.id.endsWith(id('')));
      expect(mine.map((t) => t.id)).toEqual([id('t1'), id('t2')]);
    });

    it('keeps a tenant\'s usage apart from the tenant and from other tenants, replaced whole', async () => {
      const { catalog, id } = await setup();
      await catalog.putTenant({ id: id('u1'), name: 'One', quotaBytes: 100, vcdOrg: 'org-one' });
      expect(await catalog.getTenantUsage(id('u1'))).toBeUndefined();
      const usage = { tenantId: id('u1'), usedBytes: 42, blocks: 3, restorePoints: 2, repositories: [{ repositoryId: id('r'), usedBytes: 42, blocks: 3, restorePoints: 2 }], computedAt: '2026-12-07T10:00:00.000Z' };
      await catalog.putTenantUsage(usage);
      await catalog.putTenantUsage({ ...usage, tenantId: id('u2'), usedBytes: 7 });
      expect(await catalog.getTenantUsage(id('u1'))).toEqual(usage);
      await catalog.putTenantUsage({ ...usage, usedBytes: 0, blocks: 0, restorePoints: 0, repositories: [] });
      expect((await catalog.getTenantUsage(id('u1')))?.usedBytes).toBe(0);
      expect((await catalog.getTenantUsage(id('u2')))?.usedBytes).toBe(7);
      // The usage row shares the tenant's partition but never shows up as a tenant or changes it.
      expect(await catalog.getTenant(id('u1'))).toEqual({ id: id('u1'), name: 'One', quotaBytes: 100, vcdOrg: 'org-one' });
      expect((await catalog.listTenants()).filter((t) => t.id === id('u1'))).toHaveLength(1);
      await expect(catalog.putTenantUsage({ ...usage, usedBytes: -1 })).rejects.toThrow(/usedBytes/);
    });

    it('keeps a point\'s captured model beside it and deletes it with the point', async () => {
      const { catalog, id } = await setup();
      const p = point(id('pm'), { vappId: id('va'), tenantId: id('t'), repositoryId: id('r'), jobId: id('j') });
      await catalog.commitRestorePoint(p);
      expect(await catalog.getPointModel(p.id)).toBeUndefined();
      const model = { name: 'web-shop', vms: [{ name: 'web-01', disks: [{ instanceId: 2000 }] }], metadata: [{ key: 'k', value: 'v' }] };
      await catalog.putPointModel({ pointId: p.id, tenantId: id('t'), model });
      expect(await catalog.getPointModel(p.id)).toEqual({ pointId: p.id, tenantId: id('t'), model });
      // the model row is not a restore point
      expect((await catalog.listRestorePoints({ tenantId: id('t') })).map((x) => x.id)).toEqual([p.id]);
      await expect(catalog.putPointModel({ pointId: p.id, tenantId: id('t'), model: { blob: 'x'.repeat(300_001) } })).rejects.toThrow(/larger than/);
      await catalog.deleteRestorePoint(p.id);
      expect(await catalog.getPointModel(p.id)).toBeUndefined();
    });

    it('lists repositories of a tenant and provider-wide ones', async () => {
      const { catalog, id } = await setup();
      await catalog.putRepository({ id: id('r1'), tenantId: id('t'), url: 's3://b/p', role: 'primary', bucket: 'b', prefix: 'p' });
      await catalog.putRepository({ id: id('r2'), url: 's3://c/', role: 'cloud', endpoint: 'https://s3.example', bucket: 'c', prefix: '' });
      expect((await catalog.listRepositories({ tenantId: id('t') })).map((r) => r.id)).toEqual([id('r1')]);
      const all = (await catalog.listRepositories()).filter((r) => r.id.endsWith(id('')));
      expect(all.map((r) => r.id)).toEqual([id('r1'), id('r2')]);
      expect(await catalog.getRepository(id('r2'))).toEqual({ id: id('r2'), url: 's3://c/', role: 'cloud', endpoint: 'https://s3.example', bucket: 'c', prefix: '' });
    });

    it('rejects invalid entities with the field named', async () => {
      const { catalog, id } = await setup();
      await expect(catalog.putJob({ ...job(id('j'), id('t')), nextRunAt: '2026-03-02 09:00' })).rejects.toThrow(CatalogInputError);
      await expect(catalog.putJob({ ...job(id('j'), id('t')), nextRunAt: '2026-03-02 09:00' })).rejects.toThrow(/nextRunAt/);
      await expect(catalog.putTenant({ id: 'has#hash', name: 'x' })).rejects.toThrow(/id: must not contain "#"/);
      await expect(catalog.putRepository({ id: id('r'), url: 'x', role: 'archive' as 'primary', bucket: 'b', prefix: '' })).rejects.toThrow(/role/);
      await expect(catalog.addCounters(id('run'), { bytesRead: -1 })).rejects.toThrow(/bytesRead/);
    });

    it('stores jobs with their opaque spec, lists them by tenant and deletes them', async () => {
      const { catalog, id } = await setup();
      const a = job(id('ja'), id('t1'));
      await catalog.putJob(a);
      await catalog.putJob(job(id('jb'), id('t1'), { kind: 'copy', enabled: false, nextRunAt: undefined }));
      await catalog.putJob(job(id('jc'), id('t2')));
      expect(await catalog.getJob(id('ja'))).toEqual(a);
      expect((await catalog.listJobs({ tenantId: id('t1') })).map((j) => j.id)).toEqual([id('ja'), id('jb')]);
      const all = (await catalog.listJobs()).filter((j) => j.id.endsWith(id('')));
      expect(all.map((j) => j.id)).toEqual([id('ja'), id('jb'), id('jc')]);
      await catalog.deleteJob(id('ja'));
      await catalog.deleteJob(id('ja'));
      expect(await catalog.getJob(id('ja'))).toBeUndefined();
      // A returned job is a copy.
      const b = (await catalog.getJob(id('jb')))!;
      (b.spec as { scope: { vapps: string[] } }).scope.vapps.push('mutated');
      expect(((await catalog.getJob(id('jb')))!.spec as { scope: { vapps: string[] } }).scope.vapps).toEqual(['a', 'b']);
    });

    it('lists due jobs: enabled, nextRunAt at or before now, earliest first', async () => {
      const { catalog, id } = await setup();
      await catalog.putJob(job(id('late'), id('t'), { nextRunAt: '2026-03-02T09:30:00.000Z' }));
      await catalog.putJob(job(id('early'), id('t'), { nextRunAt: '2026-03-02T08:00:00.000Z' }));
      await catalog.putJob(job(id('exact'), id('t'), { nextRunAt: '2026-03-02T10:00:00.000Z' }));
      await catalog.putJob(job(id('future'), id('t'), { nextRunAt: '2026-03-02T10:00:00.001Z' }));
      await catalog.putJob(job(id('disabled'), id('t'), { enabled: false, nextRunAt: '2026-03-02T07:00:00.000Z' }));
      await catalog.putJob(job(id('manual'), id('t'), { nextRunAt: undefined }));
      const due = (await catalog.listDueJobs('2026-03-02T10:00:00.000Z', 1000)).filter((j) => j.id.endsWith(id('')));
      expect(due.map((j) => j.id)).toEqual([id('early'), id('late'), id('exact')]);
    });

    it('claimDueJob: of two racing callers exactly one wins, and the slot moves on', async () => {
      const { catalog, id } = await setup();
      const slot = '2026-03-02T09:00:00.000Z';
      const next = '2026-03-03T09:00:00.000Z';
      await catalog.putJob(job(id('j'), id('t'), { nextRunAt: slot }));
      const results = await Promise.all([catalog.claimDueJob(id('j'), slot, next), catalog.claimDueJob(id('j'), slot, next)]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const claimed = (await catalog.getJob(id('j')))!;
      expect(claimed.nextRunAt).toBe(next);
      expect(claimed.lastRunAt).toBe(slot);
      const due = await catalog.listDueJobs('2026-03-02T23:00:00.000Z', 1000);
      expect(due.map((j) => j.id)).not.toContain(id('j'));
      expect((await catalog.listDueJobs(next, 1000)).map((j) => j.id)).toContain(id('j'));
      // A stale slot, a missing job, a disabled job: no claim.
      expect(await catalog.claimDueJob(id('j'), slot, next)).toBe(false);
      expect(await catalog.claimDueJob(id('missing'), slot, next)).toBe(false);
      await catalog.putJob(job(id('off'), id('t'), { enabled: false, nextRunAt: slot }));
      expect(await catalog.claimDueJob(id('off'), slot, next)).toBe(false);
    });

    it('claimDueJob: ten racing callers, one winner; claiming with no next run leaves the job unscheduled', async () => {
      const { catalog, id } = await setup();
      const slot = '2026-03-02T09:00:00.000Z';
      await catalog.putJob(job(id('j'), id('t'), { nextRunAt: slot }));
      const results = await Promise.all(Array.from({ length: 10 }, () => catalog.claimDueJob(id('j'), slot, undefined)));
      expect(results.filter(Boolean)).toHaveLength(1);
      const claimed = (await catalog.getJob(id('j')))!;
      expect(claimed.nextRunAt).toBeUndefined();
      expect(claimed.lastRunAt).toBe(slot);
      expect((await catalog.listDueJobs('2030-01-01T00:00:00.000Z', 1000)).map((j) => j.id)).not.toContain(id('j'));
    });

    // ---------------------------------------------------------------- runs

    const newRun = (runId: string, jobId: string, tenantId: string, startedAt = '2026-03-02T10:00:00.000Z') =>
      ({ id: runId, jobId, tenantId, kind: 'backup', state: 'queued', startedAt }) as const;

    it('createRun is idempotent by id', async () => {
      const { catalog, id } = await setup();
      const first = await catalog.createRun(newRun(id('r'), id('j'), id('t')));
      expect(first.created).toBe(true);
      expect(first.run).toMatchObject({ id: id('r'), state: 'queued', vapps: {}, errors: [] });
      expect(first.run.counters.bytesRead).toBe(0);
      await catalog.updateRunState(id('r'), 'running');
      const again = await catalog.createRun({ ...newRun(id('r'), id('j'), id('t')), state: 'queued' });
      expect(again.created).toBe(false);
      expect(again.run.state).toBe('running');
      const racing = await Promise.all(Array.from({ length: 5 }, () => catalog.createRun(newRun(id('r2'), id('j'), id('t')))));
      expect(racing.filter((r) => r.created)).toHaveLength(1);
      expect(await catalog.getRun(id('missing'))).toBeUndefined();
    });

    it('lists runs by job and by tenant, newest first', async () => {
      const { catalog, id } = await setup();
      await catalog.createRun(newRun(id('r1'), id('j1'), id('t'), '2026-03-01T00:00:00.000Z'));
      await catalog.createRun(newRun(id('r2'), id('j1'), id('t'), '2026-03-02T00:00:00.000Z'));
      await catalog.createRun(newRun(id('r3'), id('j2'), id('t'), '2026-03-03T00:00:00.000Z'));
      expect((await catalog.listRuns({ jobId: id('j1') })).map((r) => r.id)).toEqual([id('r2'), id('r1')]);
      expect((await catalog.listRuns({ tenantId: id('t') })).map((r) => r.id)).toEqual([id('r3'), id('r2'), id('r1')]);
      expect((await catalog.listRuns({ tenantId: id('t') }, 2)).map((r) => r.id)).toEqual([id('r3'), id('r2')]);
    });

    it('updateRunState guards the expected states', async () => {
      const { catalog, id } = await setup();
      await catalog.createRun(newRun(id('r'), id('j'), id('t')));
      await catalog.updateRunState(id('r'), 'running', { expectedStates: ['queued'] });
      await expect(catalog.updateRunState(id('r'), 'running', { expectedStates: ['queued'] })).rejects.toMatchObject({ code: 'RUN_STATE_CONFLICT' });
      await catalog.updateRunState(id('r'), 'succeeded', { expectedStates: ['running'], endedAt: '2026-03-02T11:00:00.000Z' });
      expect(await catalog.getRun(id('r'))).toMatchObject({ state: 'succeeded', endedAt: '2026-03-02T11:00:00.000Z' });
      await expect(catalog.updateRunState(id('missing'), 'running')).rejects.toBeInstanceOf(NotFoundError);
    });

    it('keeps every concurrently appended run error', async () => {
      const { catalog, id } = await setup();
      await catalog.createRun(newRun(id('r'), id('j'), id('t')));
      await Promise.all(Array.from({ length: 10 }, (_, i) => catalog.appendRunError(id('r'), { at: '2026-03-02T10:00:00.000Z', code: `E${i}`, message: `failure ${i}`, vappId: 'v1' })));
      const run = (await catalog.getRun(id('r')))!;
      expect(run.errors.map((e) => e.code).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `E${i}`).sort());
      await expect(catalog.appendRunError(id('missing'), { at: '2026-03-02T10:00:00.000Z', code: 'E', message: 'm' })).rejects.toBeInstanceOf(NotFoundError);
    });

    it('adds counters atomically: 20 parallel updates lose nothing', async () => {
      const { catalog, id } = await setup();
      await catalog.createRun(newRun(id('r'), id('j'), id('t')));
      expect(await catalog.startVAppAttempt(id('r'), 'v1', { attempt: 1, disksTotal: 3 })).toBe(true);
      await Promise.all([
        ...Array.from({ length: 20 }, () => catalog.addCounters(id('r'), { bytesRead: 1000, blocksNew: 1 }, 'v1')),
        ...Array.from({ length: 20 }, () => catalog.addCounters(id('r'), { bytesUploaded: 7 })),
      ]);
      const run = (await catalog.getRun(id('r')))!;
      expect(run.vapps.v1!.counters).toMatchObject({ bytesRead: 20_000, blocksNew: 20, bytesUploaded: 0 });
      expect(run.counters).toMatchObject({ bytesRead: 20_000, blocksNew: 20, bytesUploaded: 140, blocksReused: 0 });
      await expect(catalog.addCounters(id('r'), { bytesRead: 1 }, 'no-such-vapp')).rejects.toBeInstanceOf(NotFoundError);
      await expect(catalog.addCounters(id('missing'), { bytesRead: 1 })).rejects.toBeInstanceOf(NotFoundError);
    });

    it('recordDiskDone counts each disk once and reports completion exactly once under redelivery', async () => {
      const { catalog, id } = await setup();
      await catalog.createRun(newRun(id('r'), id('j'), id('t')));
      await catalog.startVAppAttempt(id('r'), 'v1', { attempt: 1, disksTotal: 5, pointId: 'p1' });
      const disks = ['d1', 'd2', 'd3', 'd4', 'd5'];
      const calls = disks.flatMap((d) => [d, d, d]).map((d) => catalog.recordDiskDone(id('r'), 'v1', d, { bytesUploaded: 100, blocksNew: 2 }));
      const outcomes = await Promise.all(calls);
      expect(outcomes.filter((o) => o.completedVApp)).toHaveLength(1);
      expect(outcomes.filter((o) => o.settledVApp)).toHaveLength(1);
      expect(outcomes.filter((o) => o.duplicate)).toHaveLength(10);
      const run = (await catalog.getRun(id('r')))!;
      expect(run.vapps.v1).toMatchObject({ disksDone: 5, disksTotal: 5, disksFailed: 0, pointId: 'p1', state: 'running' });
      expect(run.vapps.v1!.counters).toMatchObject({ bytesUploaded: 500, blocksNew: 10 });
      const late = await catalog.recordDiskDone(id('r'), 'v1', 'd3', { bytesUploaded: 100 });
      expect(late).toMatchObject({ duplicate: true, completedVApp: false });
      expect(late.progress.disksDone).toBe(5);
      await expect(catalog.recordDiskDone(id('r'), 'v-missing', 'd1')).rejects.toBeInstanceOf(NotFoundError);
    });

    it('recordDiskFailed settles the vApp without completing it; a disk has one outcome per attempt', async () => {
      const { catalog, id } = await setup();
      await catalog.createRun(newRun(id('r'), id('j'), id('t')));
      await catalog.startVAppAttempt(id('r'), 'v1', { attempt: 1, disksTotal: 2 });
      expect(await catalog.recordDiskFailed(id('r'), 'v1', 'd1')).toMatchObject({ duplicate: false, completedVApp: false, settledVApp: false });
      expect((await catalog.recordDiskDone(id('r'), 'v1', 'd1')).duplicate).toBe(true);
      const last = await catalog.recordDiskDone(id('r'), 'v1', 'd2');
      expect(last).toMatchObject({ duplicate: false, completedVApp: false, settledVApp: true });
      expect(last.progress).toMatchObject({ disksDone: 1, disksFailed: 1 });
    });

    it('startVAppAttempt is idempotent per attempt; a new attempt resets the disks and keeps the counters', async () => {
      const { catalog, id } = await setup();
      await expect(catalog.startVAppAttempt(id('missing'), 'v1', { attempt: 1, disksTotal: 1 })).rejects.toBeInstanceOf(NotFoundError);
      await catalog.createRun(newRun(id('r'), id('j'), id('t')));
      const starts = await Promise.all([1, 2, 3].map(() => catalog.startVAppAttempt(id('r'), 'v1', { attempt: 1, disksTotal: 2 })));
      expect(starts.filter(Boolean)).toHaveLength(1);
      await catalog.recordDiskDone(id('r'), 'v1', 'd1', { bytesRead: 10 });
      await catalog.recordDiskFailed(id('r'), 'v1', 'd2');
      await catalog.updateVApp(id('r'), 'v1', { state: 'failed', error: 'disk d2: read error', retryAt: '2026-03-02T10:10:00.000Z' });
      expect(await catalog.startVAppAttempt(id('r'), 'v1', { attempt: 1, disksTotal: 2 })).toBe(false);
      expect(await catalog.startVAppAttempt(id('r'), 'v1', { attempt: 2, disksTotal: 2, pointId: 'p2' })).toBe(true);
      const progress = (await catalog.getRun(id('r')))!.vapps.v1!;
      expect(progress).toEqual({
        vappId: 'v1',
        state: 'running',
        disksTotal: 2,
        disksDone: 0,
        disksFailed: 0,
        attempts: 2,
        pointId: 'p2',
        counters: expect.objectContaining({ bytesRead: 10 }),
      });
      expect((await catalog.recordDiskDone(id('r'), 'v1', 'd1')).duplicate).toBe(false);
    });

    it('updateVApp sets and clears fields', async () => {
      const { catalog, id } = await setup();
      await catalog.createRun(newRun(id('r'), id('j'), id('t')));
      await catalog.startVAppAttempt(id('r'), 'v1', { attempt: 1, disksTotal: 1 });
      const failed = await catalog.updateVApp(id('r'), 'v1', { state: 'failed', error: 'boom', retryAt: '2026-03-02T10:30:00.000Z' });
      expect(failed).toMatchObject({ state: 'failed', error: 'boom', retryAt: '2026-03-02T10:30:00.000Z' });
      const cleared = await catalog.updateVApp(id('r'), 'v1', { error: null, retryAt: null, state: 'succeeded', pointId: 'p9' });
      expect(cleared.error).toBeUndefined();
      expect(cleared.retryAt).toBeUndefined();
      expect(cleared).toMatchObject({ state: 'succeeded', pointId: 'p9' });
      await expect(catalog.updateVApp(id('r'), 'nope', { state: 'failed' })).rejects.toBeInstanceOf(NotFoundError);
      await expect(catalog.updateVApp(id('r'), 'v1', { retryAt: 'tomorrow' })).rejects.toThrow(/retryAt/);
    });

    // ---------------------------------------------------------------- restore points

    it('commits restore points and finds them by chain, repository, vApp, tenant and job', async () => {
      const { catalog, id } = await setup();
      const base = { tenantId: id('t'), jobId: id('j'), repositoryId: id('repo') };
      const p1 = point(id('p1'), { ...base, vappId: id('v1'), createdAt: '2026-03-01T02:00:00.000Z', flags: ['weekly'] });
      const p2 = point(id('p2'), { ...base, vappId: id('v1'), createdAt: '2026-03-02T02:00:00.000Z' });
      const p3 = point(id('p3'), { ...base, vappId: id('v2'), createdAt: '2026-02-28T02:00:00.000Z', jobId: id('j2') });
      const copy = point(id('p4'), { ...base, vappId: id('v1'), repositoryId: id('cloud'), sourcePointId: id('p1') });
      for (const p of [p2, p1, p3, copy]) expect(await catalog.commitRestorePoint(p)).toEqual({ created: true });
      expect(await catalog.getRestorePoint(id('p1'))).toEqual(p1);
      expect(await catalog.getRestorePoint(id('nope'))).toBeUndefined();
      const ids = async (f: Parameters<Catalog['listRestorePoints']>[0]) => (await catalog.listRestorePoints(f)).map((p) => p.id);
      expect(await ids({ repositoryId: id('repo'), vappId: id('v1') })).toEqual([id('p1'), id('p2')]);
      expect(await ids({ repositoryId: id('repo') })).toEqual([id('p3'), id('p1'), id('p2')]);
      expect(await ids({ vappId: id('v1') })).toEqual([id('p1'), id('p4'), id('p2')]);
      expect(await ids({ tenantId: id('t') })).toEqual([id('p3'), id('p1'), id('p4'), id('p2')]);
      expect(await ids({ jobId: id('j2') })).toEqual([id('p3')]);
      // Idempotent by id: nothing changes.
      expect(await catalog.commitRestorePoint({ ...p1, sizeBytes: 1 }, ['weekly:2026-W09'])).toEqual({ created: false });
      expect((await catalog.getRestorePoint(id('p1')))!.sizeBytes).toBe(4096);
      expect(await catalog.listChainPeriods(id('repo'), id('v1'))).toEqual([]);
    });

    it('commits a point with its GFS periods in one transaction: a period already given applies nothing', async () => {
      const { catalog, id } = await setup();
      const base = { tenantId: id('t'), jobId: id('j'), repositoryId: id('repo'), vappId: id('v') };
      await catalog.commitRestorePoint(point(id('p1'), base), ['weekly:2026-W09', 'monthly:2026-03']);
      const second = point(id('p2'), { ...base, createdAt: '2026-03-02T02:00:00.000Z' });
      const attempt = catalog.commitRestorePoint(second, ['yearly:2026', 'monthly:2026-03']);
      await expect(attempt).rejects.toBeInstanceOf(ConflictError);
      await expect(catalog.commitRestorePoint(second, ['yearly:2026', 'monthly:2026-03'])).rejects.toMatchObject({ code: 'GFS_PERIOD_GIVEN', message: expect.stringContaining(id('p1')) });
      expect(await catalog.getRestorePoint(id('p2'))).toBeUndefined();
      expect((await catalog.listRestorePoints({ repositoryId: id('repo'), vappId: id('v') })).map((p) => p.id)).toEqual([id('p1')]);
      const periods = await catalog.listChainPeriods(id('repo'), id('v'));
      expect(periods.map((p) => `${p.period}=${p.pointId}`)).toEqual([`monthly:2026-03=${id('p1')}`, `weekly:2026-W09=${id('p1')}`]);
      expect(periods[0]!.givenAt).toBe('2026-03-02T10:00:00.000Z');
      // Without the taken period it commits, and another chain's periods are independent.
      expect(await catalog.commitRestorePoint(second, ['yearly:2026'])).toEqual({ created: true });
      expect(await catalog.commitRestorePoint(point(id('p3'), { ...base, vappId: id('other') }), ['monthly:2026-03'])).toEqual({ created: true });
    });

    it('racing commits of the same point create it once', async () => {
      const { catalog, id } = await setup();
      const p = point(id('p'), { tenantId: id('t'), jobId: id('j'), repositoryId: id('repo'), vappId: id('v') });
      const results = await Promise.all(Array.from({ length: 4 }, () => catalog.commitRestorePoint(p, ['weekly:2026-W09'])));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(await catalog.listRestorePoints({ repositoryId: id('repo'), vappId: id('v') })).toHaveLength(1);
    });

    it('sets flags and deletes points everywhere; given periods stay given', async () => {
      const { catalog, id } = await setup();
      const base = { tenantId: id('t'), jobId: id('j'), repositoryId: id('repo'), vappId: id('v') };
      await catalog.commitRestorePoint(point(id('p1'), base), ['weekly:2026-W09']);
      await catalog.setRestorePointFlags(id('p1'), ['weekly', 'monthly']);
      expect((await catalog.getRestorePoint(id('p1')))!.flags).toEqual(['weekly', 'monthly']);
      expect((await catalog.listRestorePoints({ repositoryId: id('repo'), vappId: id('v') }))[0]!.flags).toEqual(['weekly', 'monthly']);
      await expect(catalog.setRestorePointFlags(id('nope'), [])).rejects.toBeInstanceOf(NotFoundError);
      await catalog.deleteRestorePoint(id('p1'));
      await catalog.deleteRestorePoint(id('p1'));
      expect(await catalog.getRestorePoint(id('p1'))).toBeUndefined();
      for (const f of [{ repositoryId: id('repo'), vappId: id('v') }, { repositoryId: id('repo') }, { vappId: id('v') }, { tenantId: id('t') }, { jobId: id('j') }]) {
        expect(await catalog.listRestorePoints(f)).toEqual([]);
      }
      expect((await catalog.listChainPeriods(id('repo'), id('v'))).map((p) => p.period)).toEqual(['weekly:2026-W09']);
    });

    // ---------------------------------------------------------------- leases

    it('an exclusive lease excludes every other holder until it is released or expires', async () => {
      const { catalog, clock, id } = await setup();
      const res = `repository:${id('r')}`;
      const lease = await catalog.acquireLease(res, 'gc-1', 'exclusive', 60_000);
      expect(lease).toEqual({ resource: res, holder: 'gc-1', mode: 'exclusive', expiresAt: '2026-03-02T10:01:00.000Z' });
      await expect(catalog.acquireLease(res, 'gc-2', 'exclusive', 60_000)).rejects.toMatchObject({ code: 'LEASE_HELD', message: expect.stringContaining('gc-1') });
      await expect(catalog.acquireLease(res, 'backup-1', 'shared', 60_000)).rejects.toMatchObject({ code: 'LEASE_HELD' });
      // The holder renews.
      clock.advance(30_000);
      expect((await catalog.renewLease(res, 'gc-1', 60_000)).expiresAt).toBe('2026-03-02T10:01:30.000Z');
      clock.advance(59_999);
      await expect(catalog.acquireLease(res, 'gc-2', 'exclusive', 60_000)).rejects.toMatchObject({ code: 'LEASE_HELD' });
      // Expired: another holder takes it, and the old holder has lost it.
      clock.advance(1);
      expect((await catalog.acquireLease(res, 'gc-2', 'exclusive', 60_000)).holder).toBe('gc-2');
      await expect(catalog.renewLease(res, 'gc-1', 60_000)).rejects.toMatchObject({ code: 'LEASE_LOST' });
      expect((await catalog.listLeases(res)).map((l) => l.holder)).toEqual(['gc-2']);
      await catalog.releaseLease(res, 'gc-2');
      await catalog.releaseLease(res, 'gc-2');
      expect(await catalog.listLeases(res)).toEqual([]);
      expect((await catalog.acquireLease(res, 'backup-1', 'shared', 60_000)).mode).toBe('shared');
    });

    it('shared leases coexist and keep exclusive ones out', async () => {
      const { catalog, clock, id } = await setup();
      const res = `repository:${id('r')}`;
      await catalog.acquireLease(res, 'backup-1', 'shared', 60_000);
      await catalog.acquireLease(res, 'backup-2', 'shared', 120_000);
      expect((await catalog.listLeases(res)).map((l) => l.holder)).toEqual(['backup-1', 'backup-2']);
      await expect(catalog.acquireLease(res, 'gc', 'exclusive', 60_000)).rejects.toMatchObject({ code: 'LEASE_HELD', message: expect.stringMatching(/backup-1.*backup-2/) });
      await catalog.releaseLease(res, 'backup-1');
      await expect(catalog.acquireLease(res, 'gc', 'exclusive', 60_000)).rejects.toMatchObject({ code: 'LEASE_HELD' });
      clock.advance(120_000);
      expect((await catalog.acquireLease(res, 'gc', 'exclusive', 60_000)).mode).toBe('exclusive');
      // The sole holder may switch its own lease's mode.
      expect((await catalog.acquireLease(res, 'gc', 'shared', 60_000)).mode).toBe('shared');
      await expect(catalog.renewLease(res, 'stranger', 1000)).rejects.toBeInstanceOf(ConflictError);
    });

    it('of racing exclusive acquisitions exactly one succeeds', async () => {
      const { catalog, id } = await setup();
      const res = `repository:${id('r')}`;
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => catalog.acquireLease(res, `gc-${i}`, 'exclusive', 60_000)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'LEASE_HELD' });
      expect(await catalog.listLeases(res)).toHaveLength(1);
    });

    // ---------------------------------------------------------------- idempotency

    it('idempotency records are put-if-absent, complete with a result and expire', async () => {
      const { catalog, clock, id } = await setup();
      const key = id('StartBackupRun:run-1');
      const racing = await Promise.all(Array.from({ length: 5 }, () => catalog.putIdempotencyRecord(key, '2026-03-02T11:00:00.000Z')));
      expect(racing.filter((r) => r.created)).toHaveLength(1);
      expect(racing.find((r) => !r.created)!.record).toEqual({ key, expiresAt: '2026-03-02T11:00:00.000Z' });
      await catalog.completeIdempotencyRecord(key, { runId: 'run-1', points: ['p1'] });
      expect(await catalog.getIdempotencyRecord(key)).toEqual({ key, expiresAt: '2026-03-02T11:00:00.000Z', result: { runId: 'run-1', points: ['p1'] } });
      const again = await catalog.putIdempotencyRecord(key, '2026-03-02T12:00:00.000Z');
      expect(again).toEqual({ created: false, record: { key, expiresAt: '2026-03-02T11:00:00.000Z', result: { runId: 'run-1', points: ['p1'] } } });
      clock.set('2026-03-02T11:00:00.000Z');
      expect(await catalog.getIdempotencyRecord(key)).toBeUndefined();
      await expect(catalog.completeIdempotencyRecord(key, 1)).rejects.toBeInstanceOf(NotFoundError);
      expect((await catalog.putIdempotencyRecord(key, '2026-03-02T12:00:00.000Z', 'done')).created).toBe(true);
      expect((await catalog.getIdempotencyRecord(key))!.result).toBe('done');
    });
  });
}
