import { beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../lib/api/client.js';
import type { DynamoDbCatalog } from '../../lib/catalog/dynamodb-catalog.js';
import { useApiServer } from '../helpers/api-server.js';

const api = useApiServer('api-runs');
let catalog: DynamoDbCatalog;
let provider: ApiClient;
beforeAll(() => {
  ({ catalog, provider } = api);
});

const uid = () => api.uid();

const setup = (options: { quotaBytes?: number } = {}) => api.setupTenant(options);

const seedJob = (tenantId: string, repositoryId: string, retention?: unknown) => api.seedJob(tenantId, repositoryId, retention);

async function seedRun(tenantId: string, jobId: string, startedAt: string, kind: 'backup' | 'restore' = 'backup', state: 'queued' | 'running' | 'succeeded' = 'running'): Promise<string> {
  const id = `run-${uid()}`;
  await catalog.createRun({ id, jobId, tenantId, kind, state, startedAt });
  return id;
}

interface RunBody {
  id: string;
  state: string;
  vapps: Record<string, { state: string; disksDone: number; disksTotal: number }>;
  errors: Array<{ code: string; message: string }>;
}

describe('runs API', () => {
  it('lists runs by job and by tenant, newest first, in pages', async () => {
    const { tenantId, primary, client } = await setup();
    const jobId = await seedJob(tenantId, primary);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await seedRun(tenantId, jobId, `2026-03-0${i + 1}T22:00:00.000Z`));
    const newestFirst = [...ids].reverse();

    const page1 = await client.get<{ items: RunBody[]; nextCursor: string }>(`/v1/runs?jobId=${jobId}&limit=3`);
    expect(page1.status).toBe(200);
    expect(page1.body.items.map((r) => r.id)).toEqual(newestFirst.slice(0, 3));
    const page2 = await client.get<{ items: RunBody[]; nextCursor: string | null }>(`/v1/runs?jobId=${jobId}&limit=3&cursor=${page1.body.nextCursor}`);
    expect(page2.body.items.map((r) => r.id)).toEqual(newestFirst.slice(3));
    expect(page2.body.nextCursor).toBeNull();

    expect((await client.get<{ items: RunBody[] }>('/v1/runs')).body.items.map((r) => r.id)).toEqual(newestFirst);
    expect((await client.get<{ items: RunBody[] }>(`/v1/jobs/${jobId}/runs?limit=1`)).body.items.map((r) => r.id)).toEqual([newestFirst[0]]);
    expect((await provider.get<{ items: RunBody[] }>(`/v1/runs?tenantId=${tenantId}`)).body.items).toHaveLength(5);
    const noFilter = await provider.get<{ error: { code: string } }>('/v1/runs');
    expect(noFilter.status).toBe(400);
    expect(noFilter.body.error.code).toBe('INVALID_REQUEST');
  });

  it('shows a run with per-vApp progress and errors', async () => {
    const { tenantId, primary, client } = await setup();
    const jobId = await seedJob(tenantId, primary);
    const runId = await seedRun(tenantId, jobId, '2026-03-02T09:00:00.000Z');
    await catalog.startVAppAttempt(runId, 'vapp-web', { attempt: 1, disksTotal: 2 });
    await catalog.recordDiskDone(runId, 'vapp-web', 'disk-1', { bytesRead: 100, bytesUploaded: 40 });
    await catalog.startVAppAttempt(runId, 'vapp-db', { attempt: 1, disksTotal: 1 });
    await catalog.recordDiskFailed(runId, 'vapp-db', 'disk-9');
    await catalog.updateVApp(runId, 'vapp-db', { state: 'failed', error: 'NBD connection refused' });
    await catalog.appendRunError(runId, { at: '2026-03-02T09:05:00.000Z', code: 'DISK_READ_FAILED', message: 'NBD connection refused', vappId: 'vapp-db', diskId: 'disk-9' });

    const res = await client.get<RunBody & { counters: Record<string, number> }>(`/v1/runs/${runId}`);
    expect(res.status).toBe(200);
    expect(res.body.vapps['vapp-web']).toMatchObject({ state: 'running', disksDone: 1, disksTotal: 2 });
    expect(res.body.vapps['vapp-db']).toMatchObject({ state: 'failed', error: 'NBD connection refused' });
    expect(res.body.errors).toEqual([expect.objectContaining({ code: 'DISK_READ_FAILED', vappId: 'vapp-db' })]);
    expect(res.body.counters.bytesRead).toBe(100);
    expect((await client.get(`/v1/runs/run-does-not-exist`)).status).toBe(404);
  });

  it('cancels a queued or running run once; an ended run answers 409', async () => {
    const { tenantId, primary, client } = await setup();
    const jobId = await seedJob(tenantId, primary);
    const runId = await seedRun(tenantId, jobId, '2026-03-02T09:00:00.000Z', 'backup', 'queued');
    const canceled = await client.post<RunBody & { endedAt: string }>(`/v1/runs/${runId}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ state: 'canceled', endedAt: '2026-03-02T10:00:00.000Z' });
    const again = await client.post<{ error: { code: string; message: string } }>(`/v1/runs/${runId}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'RUN_STATE_CONFLICT' });
    expect(again.body.error.message).toMatch(/is canceled/);
    const done = await seedRun(tenantId, jobId, '2026-03-02T08:00:00.000Z', 'backup', 'succeeded');
    expect((await client.post(`/v1/runs/${done}/cancel`)).status).toBe(409);
  });

  it('refuses other tenants\' runs and restores with 404', async () => {
    const a = await setup();
    const b = await setup();
    const jobId = await seedJob(a.tenantId, a.primary);
    const runId = await seedRun(a.tenantId, jobId, '2026-03-02T09:00:00.000Z');
    const restoreId = await seedRun(a.tenantId, jobId, '2026-03-02T09:30:00.000Z', 'restore');
    expect((await b.client.get(`/v1/runs/${runId}`)).status).toBe(404);
    expect((await b.client.post(`/v1/runs/${runId}/cancel`)).status).toBe(404);
    expect((await b.client.get(`/v1/restores/${restoreId}`)).status).toBe(404);
    expect((await b.client.get<{ items: unknown[] }>(`/v1/runs?jobId=${jobId}`)).body.items).toEqual([]);
    expect((await b.client.get<{ items: unknown[] }>(`/v1/runs?tenantId=${a.tenantId}`)).body.items).toEqual([]);
    expect((await catalog.getRun(runId))!.state).toBe('running');
  });
});

describe('restores API', () => {
  it('shows a restore run\'s status; plan and start answer 501 without a restore service', async () => {
    const { tenantId, primary, client } = await setup();
    const jobId = await seedJob(tenantId, primary);
    const restoreId = await seedRun(tenantId, jobId, '2026-03-02T09:30:00.000Z', 'restore');
    const backupId = await seedRun(tenantId, jobId, '2026-03-02T09:00:00.000Z', 'backup');
    const status = await client.get<RunBody & { kind: string }>(`/v1/restores/${restoreId}`);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ id: restoreId, kind: 'restore', state: 'running' });
    expect((await client.get(`/v1/restores/${backupId}`)).status).toBe(404);

    const plan = await client.post<{ error: { code: string; message: string } }>('/v1/restores/plan', { pointId: 'p1' });
    expect(plan.status).toBe(501);
    expect(plan.body.error.code).toBe('NOT_IMPLEMENTED');
    expect(plan.body.error.message).toMatch(/no restore service is configured/);
    expect((await client.post('/v1/restores', { pointId: 'p1' }, { 'idempotency-key': 'k1' })).status).toBe(501);
  });
});
