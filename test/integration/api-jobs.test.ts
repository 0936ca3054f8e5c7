import { randomUUID } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApiClient } from '../../lib/api/client.js';
import { issueLocalToken } from '../../lib/api/local-tokens.js';
import type { DynamoDbCatalog } from '../../lib/catalog/dynamodb-catalog.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { parseMessage } from '../../lib/queue/messages.js';
import type { SqsQueue } from '../../lib/queue/sqs-queue.js';
import type { Secret } from '../../lib/secret.js';
import { useApiServer } from '../helpers/api-server.js';

const api = useApiServer('api-jobs');
const { clock } = api;
let catalog: DynamoDbCatalog;
let runsQueue: SqsQueue;
let secret: Secret;
let provider: ApiClient;
beforeAll(() => {
  ({ catalog, runsQueue, secret, provider } = api);
});

beforeEach(async () => {
  await drainRuns();
});

async function drainRuns(): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const got = await runsQueue.receive({ waitSeconds: 1, visibilityTimeoutSeconds: 60 });
    if (got.length === 0) return bodies;
    bodies.push(...got.map((m) => m.body));
    await runsQueue.delete(got.map((m) => m.receiptHandle));
  }
}

const setup = (options: { quotaBytes?: number } = {}) => api.setupTenant(options);

const backupJob = (targetRepositoryId: string, extra: Record<string, unknown> = {}) => ({
  type: 'backup',
  name: 'nightly',
  scope: { include: [{ kind: 'vapp', vappId: 'urn:vcloud:vapp:0b0e1c3a-0000-4000-8000-00000000000a' }] },
  schedule: { kind: 'daily', times: ['22:00'] },
  retention: { shortTerm: { restorePoints: 7 } },
  targetRepositoryId,
  ...extra,
});

interface JobBody {
  id: string;
  tenantId: string;
  kind: string;
  enabled: boolean;
  nextRunAt: string | null;
  spec: Record<string, unknown>;
}

describe('jobs API', () => {
  it('creates, reads, lists, replaces, disables, enables and deletes a backup job', async () => {
    const { tenantId, primary, client } = await setup();
    const created = await client.post<JobBody>('/v1/jobs', backupJob(primary));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ tenantId, kind: 'backup', enabled: true, nextRunAt: '2026-03-02T22:00:00.000Z', lastRunAt: null });
    expect(created.body.spec).toMatchObject({ id: created.body.id, tenantId, blockSize: 1048576 });
    expect(created.headers.get('location')).toBe(`/v1/jobs/${created.body.id}`);
    const id = created.body.id;

    expect((await client.get<JobBody>(`/v1/jobs/${id}`)).body).toEqual(created.body);

    const replaced = await client.put<JobBody>(`/v1/jobs/${id}`, backupJob(primary, { schedule: { kind: 'daily', times: ['06:30'] } }));
    expect(replaced.status).toBe(200);
    expect(replaced.body.nextRunAt).toBe('2026-03-03T06:30:00.000Z');

    const disabled = await client.post<JobBody>(`/v1/jobs/${id}/disable`);
    expect(disabled.body).toMatchObject({ enabled: false, nextRunAt: null });
    expect((await catalog.getJob(id))!.enabled).toBe(false);
    const enabled = await client.post<JobBody>(`/v1/jobs/${id}/enable`);
    expect(enabled.body).toMatchObject({ enabled: true, nextRunAt: '2026-03-03T06:30:00.000Z' });

    expect((await client.delete(`/v1/jobs/${id}`)).status).toBe(204);
    expect((await client.get(`/v1/jobs/${id}`)).status).toBe(404);
  });

  it('pages through jobs with an opaque cursor and refuses a cursor from another list', async () => {
    const { primary, client } = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await client.post<JobBody>('/v1/jobs', backupJob(primary, { name: `job ${i}` }))).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: { items: JobBody[]; nextCursor: string | null } } = await client.get(`/v1/jobs?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.items.map((j) => j.id));
      cursor = res.body.nextCursor;
      pages += 1;
    } while (cursor !== null);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].sort());
    const first = await client.get<{ nextCursor: string }>('/v1/jobs?limit=1');
    const wrong = await client.get<{ error: { code: string } }>(`/v1/runs?cursor=${first.body.nextCursor}`);
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.code).toBe('INVALID_CURSOR');
    expect((await client.get<{ error: { code: string } }>('/v1/jobs?cursor=bm9wZQ')).body.error.code).toBe('INVALID_CURSOR');
  });

  it('validates the spec with the job model and names every bad field', async () => {
    const { primary, client } = await setup();
    const res = await client.post<{ error: { code: string; details: { issues: Array<{ field: string }> } } }>('/v1/jobs', backupJob(primary, { blockSize: 1000, schedul: {} }));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('INVALID_JOB');
    expect(res.body.error.details.issues.map((i) => i.field).sort()).toEqual(['blockSize', 'schedul']);
    const noType = await client.post<{ error: { details: { issues: Array<{ field: string }> } } }>('/v1/jobs', { ...backupJob(primary), type: undefined });
    expect(noType.status).toBe(422);
    expect(noType.body.error.details.issues[0]!.field).toBe('type');
    const unknownRepo = await client.post<{ error: { message: string } }>('/v1/jobs', backupJob('no-such-repo'));
    expect(unknownRepo.status).toBe(422);
    expect(unknownRepo.body.error.message).toMatch(/targetRepositoryId: no repository "no-such-repo" is available/);
    const withId = await client.post('/v1/jobs', backupJob(primary, { id: 'mine' }));
    expect(withId.status).toBe(422);
    const instance = await client.post<{ error: { message: string } }>('/v1/jobs', backupJob(primary, { scope: { include: [{ kind: 'instance' }] } }));
    expect(instance.status).toBe(422);
    expect(instance.body.error.message).toMatch(/provider only/);
    const broken = await client.request('POST', '/v1/jobs', { rawBody: '{"type": "backup",', headers: { 'content-type': 'application/json' } });
    expect(broken.status).toBe(400);
    const notJson = await client.request('POST', '/v1/jobs', { rawBody: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(notJson.status).toBe(415);
  });

  it('creates copy jobs from the tenant\'s own jobs only, and keeps a job other jobs depend on', async () => {
    const { primary, cloud, client } = await setup();
    const other = await setup();
    const source = (await client.post<JobBody>('/v1/jobs', backupJob(primary))).body;
    const foreign = (await other.client.post<JobBody>('/v1/jobs', backupJob(other.primary))).body;

    const copy = await client.post<JobBody>('/v1/jobs', { type: 'copy', name: 'offsite', source: { kind: 'backup', jobId: source.id }, targetRepositoryId: cloud, mode: 'periodic', schedule: { kind: 'daily', times: ['03:00'] } });
    expect(copy.status).toBe(201);
    expect(copy.body).toMatchObject({ kind: 'copy', nextRunAt: '2026-03-03T03:00:00.000Z' });

    const cross = await client.post<{ error: { message: string } }>('/v1/jobs', { type: 'copy', name: 'steal', source: { kind: 'backup', jobId: foreign.id }, targetRepositoryId: cloud, mode: 'immediate' });
    expect(cross.status).toBe(422);
    expect(cross.body.error.message).toMatch(/source.jobId: no job/);

    const sameRepo = await client.post('/v1/jobs', { type: 'copy', name: 'same', source: { kind: 'backup', jobId: source.id }, targetRepositoryId: primary, mode: 'immediate' });
    expect(sameRepo.status).toBe(422);

    const del = await client.delete<{ error: { code: string } }>(`/v1/jobs/${source.id}`);
    expect(del.status).toBe(409);
    expect(del.body.error.code).toBe('JOB_IN_USE');

    const retype = await client.put<{ error: { message: string } }>(`/v1/jobs/${copy.body.id}`, backupJob(primary));
    expect(retype.status).toBe(422);
    expect(retype.body.error.message).toMatch(/type cannot change/);
  });

  it('run now puts exactly one StartBackupRun on the runs queue, and a repeated Idempotency-Key does not', async () => {
    const { tenantId, primary, client } = await setup();
    const job = (await client.post<JobBody>('/v1/jobs', backupJob(primary))).body;
    const key = randomUUID();
    const first = await client.post<{ runId: string; state: string }>(`/v1/jobs/${job.id}/run`, undefined, { 'idempotency-key': key });
    expect(first.status).toBe(202);
    expect(first.body.state).toBe('queued');
    expect(first.headers.get('location')).toBe(`/v1/runs/${first.body.runId}`);
    const again = await client.post<{ runId: string }>(`/v1/jobs/${job.id}/run`, undefined, { 'idempotency-key': key });
    expect(again.status).toBe(202);
    expect(again.body.runId).toBe(first.body.runId);
    expect(again.headers.get('idempotent-replayed')).toBe('true');

    const messages = (await drainRuns()).map((b) => parseMessage('runs', b));
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ type: 'StartBackupRun', version: 1, runId: first.body.runId, jobId: job.id, tenantId, trigger: 'manual', requestedAt: '2026-03-02T10:00:00.000Z' });
    expect(await catalog.getRun(first.body.runId)).toBeUndefined();

    const reused = await client.post<{ error: { code: string } }>(`/v1/jobs/${job.id}/run`, { vappIds: ['urn:vcloud:vapp:0b0e1c3a-0000-4000-8000-00000000000a'] }, { 'idempotency-key': key });
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');

    const partial = await client.post<{ runId: string }>(`/v1/jobs/${job.id}/run`, { vappIds: ['urn:vcloud:vapp:0b0e1c3a-0000-4000-8000-00000000000a'] });
    expect(partial.status).toBe(202);
    const second = (await drainRuns()).map((b) => parseMessage('runs', b));
    expect(second).toEqual([expect.objectContaining({ runId: partial.body.runId, vappIds: ['urn:vcloud:vapp:0b0e1c3a-0000-4000-8000-00000000000a'] })]);

    const badKey = await client.post(`/v1/jobs/${job.id}/run`, undefined, { 'idempotency-key': 'x'.repeat(300) });
    expect(badKey.status).toBe(400);
  });

  it('run now on a copy job sends StartCopyRun', async () => {
    const { primary, cloud, client } = await setup();
    const source = (await client.post<JobBody>('/v1/jobs', backupJob(primary))).body;
    const copy = (await client.post<JobBody>('/v1/jobs', { type: 'copy', name: 'offsite', source: { kind: 'backup', jobId: source.id }, targetRepositoryId: cloud, mode: 'immediate' })).body;
    const res = await client.post<{ runId: string; kind: string }>(`/v1/jobs/${copy.id}/run`);
    expect(res.status).toBe(202);
    expect(res.body.kind).toBe('copy');
    expect((await drainRuns()).map((b) => parseMessage('runs', b))).toEqual([expect.objectContaining({ type: 'StartCopyRun', runId: res.body.runId, jobId: copy.id, trigger: 'manual' })]);
  });

  it('refuses to create or run a job for a tenant over quota, and writes nothing', async () => {
    const { tenantId, primary, client } = await setup({ quotaBytes: 1000 });
    const job = (await client.post<JobBody>('/v1/jobs', backupJob(primary))).body;
    // Usage as the orchestrator measured it after a commit (lib/services/usage-service.ts).
    await catalog.putTenantUsage({ tenantId, usedBytes: 1500, blocks: 3, restorePoints: 1, repositories: [{ repositoryId: primary, usedBytes: 1500, blocks: 3, restorePoints: 1 }], computedAt: '2026-03-01T22:00:00.000Z' });

    const create = await client.post<{ error: { code: string; message: string; details: Record<string, unknown> } }>('/v1/jobs', backupJob(primary), { 'idempotency-key': randomUUID() });
    expect(create.status).toBe(409);
    expect(create.body.error.code).toBe('QUOTA_EXCEEDED');
    expect(create.body.error.message).toMatch(/quota/);
    expect(create.body.error.details).toMatchObject({ tenantId, quotaBytes: 1000, usedBytes: 1500 });
    expect(await catalog.listJobs({ tenantId })).toHaveLength(1);

    const run = await client.post<{ error: { code: string } }>(`/v1/jobs/${job.id}/run`);
    expect(run.status).toBe(409);
    expect(run.body.error.code).toBe('QUOTA_EXCEEDED');
    expect(await drainRuns()).toEqual([]);

    expect((await provider.put(`/v1/tenants/${tenantId}`, { quotaBytes: null })).status).toBe(200);
    expect((await client.post(`/v1/jobs/${job.id}/run`)).status).toBe(202);
  });

  it('refuses every job route across tenants with 404 (403 for creating in another tenant)', async () => {
    const a = await setup();
    const b = await setup();
    const job = (await a.client.post<JobBody>('/v1/jobs', backupJob(a.primary))).body;
    for (const [method, p] of [
      ['GET', `/v1/jobs/${job.id}`],
      ['PUT', `/v1/jobs/${job.id}`],
      ['DELETE', `/v1/jobs/${job.id}`],
      ['POST', `/v1/jobs/${job.id}/enable`],
      ['POST', `/v1/jobs/${job.id}/disable`],
      ['POST', `/v1/jobs/${job.id}/run`],
      ['GET', `/v1/jobs/${job.id}/runs`],
    ] as const) {
      const res = await b.client.request<{ error: { code: string } }>(method, p, method === 'PUT' ? { body: backupJob(b.primary) } : {});
      expect(res.status, `${method} ${p}`).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
    expect((await b.client.get<{ items: unknown[] }>('/v1/jobs')).body.items).toEqual([]);
    expect((await b.client.get<{ items: unknown[] }>(`/v1/jobs?tenantId=${a.tenantId}`)).body.items).toEqual([]);
    expect((await b.client.get<{ items: unknown[] }>(`/v1/runs?jobId=${job.id}`)).body.items).toEqual([]);
    expect((await b.client.post('/v1/jobs', backupJob(a.primary, { tenantId: a.tenantId }))).status).toBe(403);
    expect((await catalog.getJob(job.id))!.enabled).toBe(true);
    expect(await drainRuns()).toEqual([]);
  });

  it('answers 401 without a valid token', async () => {
    const anonymous = provider.as(undefined);
    const res = await anonymous.get<{ error: { code: string } }>('/v1/jobs');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(res.body.error.code).toBe('UNAUTHENTICATED');
    const token = issueLocalToken({ secret, principal: { kind: 'provider' }, clock });
    expect((await provider.as(token.slice(0, -2) + 'xx').get('/v1/jobs')).status).toBe(401);
    const expired = issueLocalToken({ secret, principal: { kind: 'provider' }, clock: new ManualClock('2026-03-02T08:00:00.000Z'), ttlMinutes: 60 });
    expect((await provider.as(expired).get('/v1/jobs')).status).toBe(401);
  });
});
