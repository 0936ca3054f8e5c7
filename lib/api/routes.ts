import type { z } from 'zod';
import type { Principal } from './auth.js';
import type { Outcome } from './idempotency.js';
import {
  CreateRepositoryBody,
  CreateTenantBody,
  ErrorSchema,
  JobBody,
  JobBodyDoc,
  JobListQuery,
  JobView,
  page,
  PageQuery,
  params,
  PointListQuery,
  RepositoryBody,
  RepositoryListQuery,
  RepositoryView,
  RestoreBody,
  RestorePointView,
  RunAccepted,
  RunListQuery,
  RunNowBody,
  RunView,
  TenantView,
  UpdateTenantBody,
  UsageView,
} from './schemas.js';
import type { ApiService } from './service.js';

/**
 * The route table: one entry per operation, with the schemas that validate its path, query and body, the
 * responses it documents, and a thin handler (parsed input → one service call → result). app.ts registers
 * these on Hono; openapi.ts renders the same entries, so the document describes exactly what is enforced.
 */
export interface HandlerInput<P, Q, B> {
  readonly principal: Principal;
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  readonly idempotencyKey: string | undefined;
}

export interface Result {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

export interface Route {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** OpenAPI path template, e.g. `/v1/jobs/{jobId}`. */
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly tag: string;
  /** `provider`: provider administrators only (403 for tenants); `any`: any authenticated caller, scoped by tenant. */
  readonly access: 'provider' | 'any';
  readonly params?: z.ZodType;
  readonly query?: z.ZodType;
  readonly body?: z.ZodType;
  /** The body as documented, when validation is looser than the contract (jobs: dispatch on `type`). */
  readonly bodyDoc?: z.ZodType;
  /** The route accepts `Idempotency-Key`. */
  readonly idempotent?: boolean;
  readonly responses: Readonly<Record<number, { readonly description: string; readonly schema?: z.ZodType }>>;
  readonly handle: (input: HandlerInput<never, never, never>) => Promise<Result>;
}

function route<P extends z.ZodType = z.ZodUnknown, Q extends z.ZodType = z.ZodUnknown, B extends z.ZodType = z.ZodUnknown>(
  spec: Omit<Route, 'params' | 'query' | 'body' | 'handle'> & {
    params?: P;
    query?: Q;
    body?: B;
    handle: (input: HandlerInput<z.output<P>, z.output<Q>, z.output<B>>) => Promise<Result>;
  },
): Route {
  return spec as unknown as Route;
}

const ok = (body: unknown): Result => ({ status: 200, body });
const created = (body: unknown, location: string): Result => ({ status: 201, body, headers: { Location: location } });
const fromOutcome = (o: Outcome & { replayed: boolean }, location?: string): Result => ({
  status: o.status,
  body: o.body,
  headers: { ...(o.replayed ? { 'Idempotent-Replayed': 'true' } : {}), ...(location ? { Location: location } : {}) },
});

const E = (description: string) => ({ description, schema: ErrorSchema });
const common = { 400: E('malformed path, query or header'), 401: E('missing or invalid bearer token'), 404: E('not found, or it belongs to another tenant') };
const withBody = { ...common, 413: E('body larger than 1 MiB'), 415: E('body is not JSON'), 422: E('body failed validation; details.issues names each field') };

const TenantParams = params('tenantId');
const RepositoryParams = params('repositoryId');
const JobParams = params('jobId');
const RunParams = params('runId');
const PointParams = params('pointId');

export function apiRoutes(service: ApiService): Route[] {
  return [
    // ---------------------------------------------------------------------------------------- tenants
    route({
      method: 'GET', path: '/v1/tenants', operationId: 'listTenants', tag: 'tenants', access: 'provider',
      summary: 'List tenants (provider)',
      query: PageQuery,
      responses: { 200: { description: 'a page of tenants', schema: page(TenantView) }, 403: E('tenants may not list tenants'), ...common },
      handle: async ({ principal, query }) => ok(await service.listTenants(principal, query)),
    }),
    route({
      method: 'POST', path: '/v1/tenants', operationId: 'createTenant', tag: 'tenants', access: 'provider',
      summary: 'Create a tenant (a vCD organization) with an optional quota (provider)',
      body: CreateTenantBody,
      responses: { 201: { description: 'created', schema: TenantView }, 403: E('provider only'), 409: E('the tenant exists'), ...withBody },
      handle: async ({ principal, body }) => created(await service.createTenant(principal, body), `/v1/tenants/${body.id}`),
    }),
    route({
      method: 'GET', path: '/v1/tenants/{tenantId}', operationId: 'getTenant', tag: 'tenants', access: 'any',
      summary: 'Read a tenant (provider, or the tenant itself)',
      params: TenantParams,
      responses: { 200: { description: 'the tenant', schema: TenantView }, ...common },
      handle: async ({ principal, params: p }) => ok(await service.getTenant(principal, p.tenantId)),
    }),
    route({
      method: 'PUT', path: '/v1/tenants/{tenantId}', operationId: 'updateTenant', tag: 'tenants', access: 'provider',
      summary: 'Change a tenant\'s name or quota (provider)',
      params: TenantParams, body: UpdateTenantBody,
      responses: { 200: { description: 'the tenant', schema: TenantView }, 403: E('provider only'), ...withBody },
      handle: async ({ principal, params: p, body }) => ok(await service.updateTenant(principal, p.tenantId, body)),
    }),
    route({
      method: 'GET', path: '/v1/tenants/{tenantId}/usage', operationId: 'getTenantUsage', tag: 'usage', access: 'any',
      summary: 'Stored bytes of a tenant, per repository, against its quota',
      params: TenantParams,
      responses: { 200: { description: 'usage', schema: UsageView }, ...common },
      handle: async ({ principal, params: p }) => ok(await service.tenantUsage(principal, p.tenantId)),
    }),
    route({
      method: 'GET', path: '/v1/usage', operationId: 'listUsage', tag: 'usage', access: 'any',
      summary: 'Usage of every tenant (provider) or of the caller\'s tenant',
      query: PageQuery,
      responses: { 200: { description: 'a page of usage', schema: page(UsageView) }, ...common },
      handle: async ({ principal, query }) => ok(await service.listUsage(principal, query)),
    }),

    // ---------------------------------------------------------------------------------------- repositories
    route({
      method: 'GET', path: '/v1/repositories', operationId: 'listRepositories', tag: 'repositories', access: 'any',
      summary: 'List repositories (provider: all; tenant: the shared ones and its own, read-only)',
      query: RepositoryListQuery,
      responses: { 200: { description: 'a page of repositories', schema: page(RepositoryView) }, ...common },
      handle: async ({ principal, query: { tenantId, ...req } }) => ok(await service.listRepositories(principal, { tenantId }, req)),
    }),
    route({
      method: 'POST', path: '/v1/repositories', operationId: 'createRepository', tag: 'repositories', access: 'provider',
      summary: 'Register a repository (provider)',
      body: CreateRepositoryBody,
      responses: { 201: { description: 'created', schema: RepositoryView }, 403: E('provider only'), 409: E('the repository exists'), ...withBody },
      handle: async ({ principal, body }) => created(await service.createRepository(principal, body), `/v1/repositories/${body.id}`),
    }),
    route({
      method: 'GET', path: '/v1/repositories/{repositoryId}', operationId: 'getRepository', tag: 'repositories', access: 'any',
      summary: 'Read a repository',
      params: RepositoryParams,
      responses: { 200: { description: 'the repository', schema: RepositoryView }, ...common },
      handle: async ({ principal, params: p }) => ok(await service.getRepository(principal, p.repositoryId)),
    }),
    route({
      method: 'PUT', path: '/v1/repositories/{repositoryId}', operationId: 'replaceRepository', tag: 'repositories', access: 'provider',
      summary: 'Replace a repository\'s settings (provider)',
      params: RepositoryParams, body: RepositoryBody,
      responses: { 200: { description: 'the repository', schema: RepositoryView }, 403: E('provider only'), ...withBody },
      handle: async ({ principal, params: p, body }) => ok(await service.replaceRepository(principal, p.repositoryId, body)),
    }),

    // ---------------------------------------------------------------------------------------- jobs
    route({
      method: 'GET', path: '/v1/jobs', operationId: 'listJobs', tag: 'jobs', access: 'any',
      summary: 'List backup and copy jobs',
      query: JobListQuery,
      responses: { 200: { description: 'a page of jobs', schema: page(JobView) }, ...common },
      handle: async ({ principal, query: { tenantId, kind, ...req } }) => ok(await service.listJobs(principal, { tenantId, kind }, req)),
    }),
    route({
      method: 'POST', path: '/v1/jobs', operationId: 'createJob', tag: 'jobs', access: 'any', idempotent: true,
      summary: 'Create a backup or copy job (validated spec, next run computed)',
      body: JobBody, bodyDoc: JobBodyDoc,
      responses: { 201: { description: 'created', schema: JobView }, 403: E('a tenant may not create jobs for another tenant'), 409: E('the tenant is over quota, or the Idempotency-Key is in use'), ...withBody },
      handle: async ({ principal, body, idempotencyKey }) => {
        const outcome = await service.createJob(principal, body, idempotencyKey);
        const id = (outcome.body as { id?: string } | null)?.id;
        return fromOutcome(outcome, outcome.status === 201 && id ? `/v1/jobs/${id}` : undefined);
      },
    }),
    route({
      method: 'GET', path: '/v1/jobs/{jobId}', operationId: 'getJob', tag: 'jobs', access: 'any',
      summary: 'Read a job',
      params: JobParams,
      responses: { 200: { description: 'the job', schema: JobView }, ...common },
      handle: async ({ principal, params: p }) => ok(await service.getJob(principal, p.jobId)),
    }),
    route({
      method: 'PUT', path: '/v1/jobs/{jobId}', operationId: 'replaceJob', tag: 'jobs', access: 'any',
      summary: 'Replace a job\'s spec (its type and tenant stay)',
      params: JobParams, body: JobBody, bodyDoc: JobBodyDoc,
      responses: { 200: { description: 'the job', schema: JobView }, ...withBody },
      handle: async ({ principal, params: p, body }) => ok(await service.replaceJob(principal, p.jobId, body)),
    }),
    route({
      method: 'DELETE', path: '/v1/jobs/{jobId}', operationId: 'deleteJob', tag: 'jobs', access: 'any',
      summary: 'Delete a job (its runs and restore points stay)',
      params: JobParams,
      responses: { 204: { description: 'deleted' }, 409: E('another job copies from it or runs after it'), ...common },
      handle: async ({ principal, params: p }) => {
        await service.deleteJob(principal, p.jobId);
        return { status: 204 };
      },
    }),
    route({
      method: 'POST', path: '/v1/jobs/{jobId}/enable', operationId: 'enableJob', tag: 'jobs', access: 'any',
      summary: 'Enable a job (scheduled again)',
      params: JobParams,
      responses: { 200: { description: 'the job', schema: JobView }, ...common },
      handle: async ({ principal, params: p }) => ok(await service.setJobEnabled(principal, p.jobId, true)),
    }),
    route({
      method: 'POST', path: '/v1/jobs/{jobId}/disable', operationId: 'disableJob', tag: 'jobs', access: 'any',
      summary: 'Disable a job (not scheduled; run now still works)',
      params: JobParams,
      responses: { 200: { description: 'the job', schema: JobView }, ...common },
      handle: async ({ principal, params: p }) => ok(await service.setJobEnabled(principal, p.jobId, false)),
    }),
    route({
      method: 'POST', path: '/v1/jobs/{jobId}/run', operationId: 'runJob', tag: 'jobs', access: 'any', idempotent: true,
      summary: 'Run a job now: queues a StartBackupRun / StartCopyRun and returns the run id',
      params: JobParams, body: RunNowBody,
      responses: { 202: { description: 'queued', schema: RunAccepted }, 409: E('the tenant is over quota, or the Idempotency-Key is in use'), ...withBody },
      handle: async ({ principal, params: p, body, idempotencyKey }) => {
        const outcome = await service.runJob(principal, p.jobId, body, idempotencyKey);
        return fromOutcome(outcome, (outcome.body as { runUrl?: string } | null)?.runUrl);
      },
    }),
    route({
      method: 'GET', path: '/v1/jobs/{jobId}/runs', operationId: 'listJobRuns', tag: 'runs', access: 'any',
      summary: 'Runs of a job, newest first',
      params: JobParams, query: PageQuery,
      responses: { 200: { description: 'a page of runs', schema: page(RunView) }, ...common },
      handle: async ({ principal, params: p, query }) => ok(await service.listJobRuns(principal, p.jobId, query)),
    }),

    // ---------------------------------------------------------------------------------------- runs
    route({
      method: 'GET', path: '/v1/runs', operationId: 'listRuns', tag: 'runs', access: 'any',
      summary: 'Runs by job or tenant, newest first',
      query: RunListQuery,
      responses: { 200: { description: 'a page of runs', schema: page(RunView) }, ...common },
      handle: async ({ principal, query: { jobId, tenantId, kind, ...req } }) => ok(await service.listRuns(principal, { jobId, tenantId, kind }, req)),
    }),
    route({
      method: 'GET', path: '/v1/runs/{runId}', operationId: 'getRun', tag: 'runs', access: 'any',
      summary: 'A run with per-vApp progress, counters and errors',
      params: RunParams,
      responses: { 200: { description: 'the run', schema: RunView }, ...common },
      handle: async ({ principal, params: p }) => ok(await service.getRun(principal, p.runId)),
    }),
    route({
      method: 'POST', path: '/v1/runs/{runId}/cancel', operationId: 'cancelRun', tag: 'runs', access: 'any',
      summary: 'Cancel a queued or running run',
      params: RunParams,
      responses: { 200: { description: 'the run, canceled', schema: RunView }, 409: E('the run already ended'), ...common },
      handle: async ({ principal, params: p }) => ok(await service.cancelRun(principal, p.runId)),
    }),

    // ---------------------------------------------------------------------------------------- restore points
    route({
      method: 'GET', path: '/v1/restore-points', operationId: 'listRestorePoints', tag: 'restore points', access: 'any',
      summary: 'Restore points by vApp, job, repository or tenant (oldest first), with GFS flags and keep reasons',
      query: PointListQuery,
      responses: { 200: { description: 'a page of restore points', schema: page(RestorePointView) }, ...common },
      handle: async ({ principal, query: { vappId, jobId, repositoryId, tenantId, ...req } }) =>
        ok(await service.listRestorePoints(principal, { vappId, jobId, repositoryId, tenantId }, req)),
    }),
    route({
      method: 'GET', path: '/v1/restore-points/{pointId}', operationId: 'getRestorePoint', tag: 'restore points', access: 'any',
      summary: 'A restore point with its disks, GFS flags and keep reasons',
      params: PointParams,
      responses: { 200: { description: 'the restore point', schema: RestorePointView }, ...common },
      handle: async ({ principal, params: p }) => ok(await service.getRestorePoint(principal, p.pointId)),
    }),

    // ---------------------------------------------------------------------------------------- restores
    route({
      method: 'POST', path: '/v1/restores/plan', operationId: 'planRestore', tag: 'restores', access: 'any',
      summary: 'Validate a restore plan against the target (needs the restore service)',
      body: RestoreBody,
      responses: { 200: { description: 'the plan, or every non-conforming attribute' }, 501: E('no restore service is configured'), ...withBody },
      handle: async ({ principal, body }) => ok(await service.planRestore(principal, body)),
    }),
    route({
      method: 'POST', path: '/v1/restores', operationId: 'startRestore', tag: 'restores', access: 'any', idempotent: true,
      summary: 'Start a restore (needs the restore service)',
      body: RestoreBody,
      responses: { 202: { description: 'started; follow GET /v1/restores/{runId}' }, 409: E('the Idempotency-Key is in use'), 501: E('no restore service is configured'), ...withBody },
      handle: async ({ principal, body, idempotencyKey }) => {
        const outcome = await service.startRestore(principal, body, idempotencyKey);
        return fromOutcome(outcome, (outcome.body as { statusUrl?: string } | null)?.statusUrl);
      },
    }),
    route({
      method: 'GET', path: '/v1/restores/{runId}', operationId: 'getRestore', tag: 'restores', access: 'any',
      summary: 'Status of a restore run',
      params: RunParams,
      responses: { 200: { description: 'the restore run', schema: RunView }, ...common },
      handle: async ({ principal, params: p }) => ok(await service.getRestore(principal, p.runId)),
    }),
  ];
}
