import { beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../lib/api/client.js';
import type { DynamoDbCatalog } from '../../lib/catalog/dynamodb-catalog.js';
import { useApiServer } from '../helpers/api-server.js';

const api = useApiServer('api-points');
let catalog: DynamoDbCatalog;
let provider: ApiClient;
beforeAll(() => {
  ({ catalog, provider } = api);
});

const uid = () => api.uid();

const setup = (options: { quotaBytes?: number } = {}) => api.setupTenant(options);

const seedJob = (tenantId: string, repositoryId: string, retention?: unknown) => api.seedJob(tenantId, repositoryId, retention);

async function seedPoint(p: { tenantId: string; jobId: string; repositoryId: string; vappId: string; createdAt: string; sizeBytes?: number; flags?: string[] }): Promise<string> {
  const id = `pt-${uid()}`;
  await catalog.commitRestorePoint({ id, vappName: 'web', sizeBytes: 100, flags: [], disks: [{ diskId: 'd1', vmId: 'vm1', sizeBytes: 1024, indexKey: `points/${p.vappId}/${id}/disks/d1.idx` }], ...p });
  return id;
}

interface PointBody {
  id: string;
  createdAt: string;
  flags: string[];
  retention: { kept: boolean; reasons: string[]; notes: string[] } | null;
}

const POLICY = { shortTerm: { restorePoints: 2 }, gfs: { weekly: { keep: 4, weekday: 'sunday' } } };

describe('restore points API', () => {
  it('lists a chain with GFS flags and the reasons retention keeps (or would delete) each point', async () => {
    const { tenantId, primary, client } = await setup();
    const jobId = await seedJob(tenantId, primary, POLICY);
    const vappId = `urn:vcloud:vapp:${uid()}`;
    const at = (createdAt: string, flags: string[] = []) => seedPoint({ tenantId, jobId, repositoryId: primary, vappId, createdAt, flags });
    const sunday1 = await at('2026-02-22T22:00:00.000Z', ['weekly']);
    const tuesday = await at('2026-02-24T22:00:00.000Z');
    const thursday = await at('2026-02-26T22:00:00.000Z');
    const saturday = await at('2026-02-28T22:00:00.000Z');
    const sunday2 = await at('2026-03-01T22:00:00.000Z', ['weekly']);

    const res = await client.get<{ items: PointBody[] }>(`/v1/restore-points?vappId=${vappId}`);
    expect(res.status).toBe(200);
    const byId = new Map(res.body.items.map((p) => [p.id, p]));
    expect(res.body.items.map((p) => p.id)).toEqual([sunday1, tuesday, thursday, saturday, sunday2]);
    expect(byId.get(sunday1)!.flags).toEqual(['weekly']);
    expect(byId.get(sunday1)!.retention!.reasons).toEqual([expect.stringMatching(/^weekly \(until /)]);
    expect(byId.get(sunday2)!.retention!.reasons).toEqual([expect.stringMatching(/^weekly \(until /), 'newest point']);
    expect(byId.get(saturday)!.retention).toEqual({ kept: true, reasons: ['short-term: 1 of 2 newest'], notes: [] });
    expect(byId.get(thursday)!.retention!.reasons).toEqual(['short-term: 2 of 2 newest']);
    expect(byId.get(tuesday)!.retention).toEqual({ kept: false, reasons: [], notes: ['short-term: not among 2 newest'] });

    const byJob = await client.get<{ items: PointBody[]; nextCursor: string }>(`/v1/restore-points?jobId=${jobId}&limit=2`);
    expect(byJob.body.items.map((p) => p.id)).toEqual([sunday1, tuesday]);
    const next = await client.get<{ items: PointBody[] }>(`/v1/restore-points?jobId=${jobId}&limit=2&cursor=${byJob.body.nextCursor}`);
    expect(next.body.items.map((p) => p.id)).toEqual([thursday, saturday]);
    expect(next.body.items[1]!.retention!.kept).toBe(true);

    expect((await client.get<{ items: PointBody[] }>(`/v1/restore-points?repositoryId=${primary}&vappId=${vappId}`)).body.items).toHaveLength(5);
    expect((await client.get<{ items: PointBody[] }>(`/v1/restore-points?repositoryId=${primary}`)).body.items.length).toBeGreaterThanOrEqual(5);
    expect((await client.get<{ items: PointBody[] }>('/v1/restore-points')).body.items).toHaveLength(5);
    expect((await client.get(`/v1/restore-points?jobId=${jobId}&vappId=${vappId}`)).status).toBe(400);

    const one = await client.get<PointBody & { disks: unknown[] }>(`/v1/restore-points/${tuesday}`);
    expect(one.status).toBe(200);
    expect(one.body.disks).toHaveLength(1);
    expect(one.body.retention!.kept).toBe(false);
  });

  it('gives no keep reasons when the job has no retention policy', async () => {
    const { tenantId, primary, client } = await setup();
    const jobId = await seedJob(tenantId, primary);
    const point = await seedPoint({ tenantId, jobId, repositoryId: primary, vappId: `v-${uid()}`, createdAt: '2026-03-01T22:00:00.000Z' });
    expect((await client.get<PointBody>(`/v1/restore-points/${point}`)).body.retention).toBeNull();
  });

  it('refuses other tenants\' restore points with 404 and lists none of them', async () => {
    const a = await setup();
    const b = await setup();
    const jobId = await seedJob(a.tenantId, a.primary, POLICY);
    const vappId = `v-${uid()}`;
    const point = await seedPoint({ tenantId: a.tenantId, jobId, repositoryId: a.primary, vappId, createdAt: '2026-03-01T22:00:00.000Z' });
    expect((await b.client.get(`/v1/restore-points/${point}`)).status).toBe(404);
    for (const q of [`vappId=${vappId}`, `jobId=${jobId}`, `repositoryId=${a.primary}`, `tenantId=${a.tenantId}`, `repositoryId=${a.primary}&vappId=${vappId}`]) {
      const res = await b.client.get<{ items: unknown[] }>(`/v1/restore-points?${q}`);
      expect(res.status, q).toBe(200);
      expect(res.body.items, q).toEqual([]);
    }
    expect((await b.client.post('/v1/restores/plan', { pointId: point })).status).toBe(501);
  });
});

describe('usage API', () => {
  it('reports the usage the orchestrator measured, per repository, against the quota', async () => {
    const { tenantId, primary, cloud, client } = await setup({ quotaBytes: 10_000 });
    const other = await setup();
    const jobId = await seedJob(tenantId, primary);
    await seedPoint({ tenantId, jobId, repositoryId: primary, vappId: 'v1', createdAt: '2026-03-01T22:00:00.000Z', sizeBytes: 3000 });
    await seedPoint({ tenantId, jobId, repositoryId: primary, vappId: 'v2', createdAt: '2026-03-01T22:00:00.000Z', sizeBytes: 1000 });
    await seedPoint({ tenantId, jobId, repositoryId: cloud, vappId: 'v1', createdAt: '2026-03-02T01:00:00.000Z', sizeBytes: 2500 });
    // What a tenant stores is measured from the repositories (test/integration/usage-service.test.ts), not
    // summed from what each backup uploaded; the API reports that figure.
    await catalog.putTenantUsage({
      tenantId,
      usedBytes: 6500,
      blocks: 9,
      restorePoints: 3,
      repositories: [
        { repositoryId: primary, usedBytes: 4000, blocks: 5, restorePoints: 2 },
        { repositoryId: cloud, usedBytes: 2500, blocks: 4, restorePoints: 1 },
      ],
      computedAt: '2026-03-02T01:00:00.000Z',
    });

    const usage = await client.get(`/v1/tenants/${tenantId}/usage`);
    expect(usage.status).toBe(200);
    expect(usage.body).toEqual({
      tenantId,
      quotaBytes: 10_000,
      usedBytes: 6500,
      availableBytes: 3500,
      overQuota: false,
      restorePoints: 3,
      computedAt: '2026-03-02T01:00:00.000Z',
      repositories: [
        { repositoryId: cloud, usedBytes: 2500, restorePoints: 1 },
        { repositoryId: primary, usedBytes: 4000, restorePoints: 2 },
      ].sort((x, y) => (x.repositoryId < y.repositoryId ? -1 : 1)),
    });
    const own = await client.get<{ items: Array<{ tenantId: string }> }>('/v1/usage');
    expect(own.body.items.map((u) => u.tenantId)).toEqual([tenantId]);
    const all = await provider.get<{ items: Array<{ tenantId: string }> }>('/v1/usage?limit=200');
    expect(all.body.items.map((u) => u.tenantId)).toEqual(expect.arrayContaining([tenantId, other.tenantId]));
    expect((await other.client.get(`/v1/tenants/${tenantId}/usage`)).status).toBe(404);
    expect((await other.client.get<{ usedBytes: number; quotaBytes: null }>(`/v1/tenants/${other.tenantId}/usage`)).body).toMatchObject({ usedBytes: 0, quotaBytes: null, overQuota: false });
  });
});
