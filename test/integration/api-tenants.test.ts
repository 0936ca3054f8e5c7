import { beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../lib/api/client.js';
import { apiRoutes } from '../../lib/api/routes.js';
import { ApiService } from '../../lib/api/service.js';
import type { DynamoDbCatalog } from '../../lib/catalog/dynamodb-catalog.js';
import type { SqsQueue } from '../../lib/queue/sqs-queue.js';
import { useApiServer } from '../helpers/api-server.js';

const api = useApiServer('api-tenants');
const { clock } = api;
let catalog: DynamoDbCatalog;
let runsQueue: SqsQueue;
let provider: ApiClient;
beforeAll(() => {
  ({ catalog, runsQueue, provider } = api);
});

const uid = () => api.uid();

const setup = (options: { quotaBytes?: number } = {}) => api.setupTenant(options);

describe('tenants and repositories API', () => {
  it('lets the provider create, read, list and change tenants and quotas', async () => {
    const id = `org-${uid()}`;
    const created = await provider.post('/v1/tenants', { id, name: 'Org', quotaBytes: 5000 });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/v1/tenants/${id}`);
    expect((await provider.post<{ error: { code: string } }>('/v1/tenants', { id, name: 'again' })).body.error.code).toBe('ALREADY_EXISTS');
    expect((await provider.get(`/v1/tenants/${id}`)).body).toEqual({ id, name: 'Org', quotaBytes: 5000 });
    expect((await provider.put(`/v1/tenants/${id}`, { name: 'Org Inc' })).body).toEqual({ id, name: 'Org Inc', quotaBytes: 5000 });
    expect((await provider.put(`/v1/tenants/${id}`, { quotaBytes: null })).body).toEqual({ id, name: 'Org Inc' });
    expect((await provider.put(`/v1/tenants/${id}`, {})).status).toBe(422);
    expect((await provider.put('/v1/tenants/nobody', { name: 'x' })).status).toBe(404);
    const list = await provider.get<{ items: Array<{ id: string }> }>('/v1/tenants?limit=200');
    expect(list.body.items.map((t) => t.id)).toContain(id);
    const bad = await provider.post<{ error: { code: string; details: { issues: Array<{ field: string }> } } }>('/v1/tenants', { id: 'a#b', name: '', quotaBytes: -1, extra: 1 });
    expect(bad.status).toBe(422);
    expect(bad.body.error.details.issues.map((i) => i.field).sort()).toEqual(['extra', 'id', 'name', 'quotaBytes']);
  });

  it('lets a tenant read itself but not other tenants or the tenant list', async () => {
    const a = await setup();
    const b = await setup();
    expect((await a.client.get(`/v1/tenants/${a.tenantId}`)).status).toBe(200);
    expect((await a.client.get(`/v1/tenants/${b.tenantId}`)).status).toBe(404);
    expect((await a.client.get('/v1/tenants')).status).toBe(403);
    expect((await a.client.post('/v1/tenants', { id: 'mine', name: 'x' })).status).toBe(403);
    expect((await a.client.put(`/v1/tenants/${a.tenantId}`, { quotaBytes: null })).status).toBe(403);
  });

  it('lets the provider manage repositories; tenants see the shared ones and their own, read-only', async () => {
    const a = await setup();
    const b = await setup();
    const repo = await provider.get<{ id: string; tenantId?: string }>(`/v1/repositories/${a.cloud}`);
    expect(repo.body).toMatchObject({ id: a.cloud, tenantId: a.tenantId, role: 'cloud' });
    expect((await provider.post<{ error: { code: string } }>('/v1/repositories', { id: a.cloud, url: 's3://x', role: 'cloud', bucket: 'x' })).status).toBe(409);
    const replaced = await provider.put<{ endpoint: string }>(`/v1/repositories/${a.cloud}`, { tenantId: a.tenantId, url: 's3://other/p', role: 'cloud', bucket: 'other', prefix: 'p', endpoint: 'https://s3.example.net' });
    expect(replaced.status).toBe(200);
    expect(replaced.body.endpoint).toBe('https://s3.example.net');
    expect((await provider.post('/v1/repositories', { id: `r-${uid()}`, tenantId: 'no-such-tenant', url: 's3://x', role: 'cloud', bucket: 'x' })).status).toBe(422);

    const visible = await a.client.get<{ items: Array<{ id: string }> }>('/v1/repositories?limit=200');
    const ids = visible.body.items.map((r) => r.id);
    expect(ids).toEqual(expect.arrayContaining([a.primary, b.primary, a.cloud]));
    expect(ids).not.toContain(b.cloud);
    expect((await a.client.get(`/v1/repositories/${b.cloud}`)).status).toBe(404);
    expect((await a.client.get(`/v1/repositories/${a.cloud}`)).status).toBe(200);
    expect((await a.client.post('/v1/repositories', { id: 'x', url: 's3://x', role: 'cloud', bucket: 'x' })).status).toBe(403);
    expect((await a.client.put(`/v1/repositories/${a.cloud}`, { url: 's3://x', role: 'cloud', bucket: 'x' })).status).toBe(403);
  });
});

describe('isolation over the whole route table', () => {
  it('answers 404 (or 403 for provider routes) to a tenant reaching for another tenant\'s entities on every route', async () => {
    const a = await setup();
    const b = await setup();
    const job = (await a.client.post<{ id: string }>('/v1/jobs', { type: 'backup', name: 'n', scope: { include: [{ kind: 'vapp', vappId: 'v' }] }, targetRepositoryId: a.cloud })).body;
    const runId = `run-${uid()}`;
    await catalog.createRun({ id: runId, jobId: job.id, tenantId: a.tenantId, kind: 'restore', state: 'running', startedAt: '2026-03-02T09:00:00.000Z' });
    const pointId = `pt-${uid()}`;
    await catalog.commitRestorePoint({ id: pointId, vappId: 'v', vappName: 'v', tenantId: a.tenantId, jobId: job.id, repositoryId: a.cloud, createdAt: '2026-03-02T09:00:00.000Z', sizeBytes: 1, flags: [], disks: [] });
    const ids: Record<string, string> = { tenantId: a.tenantId, repositoryId: a.cloud, jobId: job.id, runId, pointId };
    // A valid body for each route, so that only the tenant check can refuse the request.
    const bodies: Record<string, unknown> = {
      replaceJob: { type: 'backup', name: 'n', scope: { include: [{ kind: 'vapp', vappId: 'v' }] }, targetRepositoryId: a.cloud },
      runJob: {},
      planRestore: { pointId },
      startRestore: { pointId },
    };

    const routes = apiRoutes(new ApiService({ catalog, runsQueue, clock }));
    let checked = 0;
    for (const r of routes) {
      if (!r.path.includes('{') && r.access !== 'provider') continue; // lists: checked by the per-resource tests
      const p = r.path.replace(/\{(\w+)\}/g, (_, name: string) => ids[name]!);
      const res = await b.client.request<{ error: { code: string } }>(r.method, p, bodies[r.operationId] === undefined ? {} : { body: bodies[r.operationId] });
      const expected = r.access === 'provider' ? 403 : 404;
      expect(res.status, `${r.method} ${r.path}`).toBe(expected);
      checked += 1;
    }
    expect(checked).toBeGreaterThanOrEqual(18);
    expect(await catalog.getJob(job.id)).toBeDefined();
    expect((await catalog.getRun(runId))!.state).toBe('running');
  });
});

describe('OpenAPI document', () => {
  it('is served at /openapi.json without a token and describes every route with its schemas', async () => {
    const res = await provider.as(undefined).get<{ openapi: string; paths: Record<string, Record<string, { parameters?: Array<{ name: string }>; requestBody?: unknown }>>; components: { schemas: Record<string, unknown> } }>('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    const routes = apiRoutes(new ApiService({ catalog, runsQueue, clock }));
    for (const r of routes) expect(res.body.paths[r.path]?.[r.method.toLowerCase()], `${r.method} ${r.path}`).toBeDefined();
    expect(Object.keys(res.body.components.schemas)).toEqual(expect.arrayContaining(['Tenant', 'Repository', 'Job', 'Run', 'RestorePoint', 'Usage', 'Error', 'BackupJobSpec', 'CopyJobSpec']));
    expect(res.body.paths['/v1/jobs/{jobId}/run']!.post!.parameters!.map((p) => p.name)).toEqual(['jobId', 'Idempotency-Key']);
    expect(JSON.stringify(res.body)).not.toContain('#/$defs/');
  });
});
