import { randomUUID } from 'node:crypto';
import type { Catalog, PointFilter } from '../catalog/catalog.js';
import { ConflictError } from '../catalog/errors.js';
import type { Job, Repository, RestorePoint, Run, RunKind, Tenant } from '../catalog/types.js';
import type { Clock } from '../domain/clock.js';
import {
  checkCopySource,
  JobValidationError,
  nextBackupRun,
  nextPeriodicCopyRun,
  parseBackupJob,
  parseCopyJob,
  type BackupJobSpec,
  type CopyJobSpec,
  type FieldIssue,
  type JobRef,
} from '../domain/jobs/index.js';
import { applyRetention, parseRetentionPolicy, RETENTION_FLAGS, type RetentionFlag } from '../domain/retention/index.js';
import type { Log } from '../log.js';
import { sendMessages, type Queue } from '../queue/queue.js';
import type { ScopeResolution, TenantBinding, VcdGateway } from '../services/ports.js';
import type { Principal } from './auth.js';
import { ApiError, forbidden, notFound, validationFailed } from './errors.js';
import { IdempotencyGuard, type Outcome } from './idempotency.js';
import { paginate, sortByKey, type Page } from './pagination.js';

/**
 * The API's use cases, each taking the caller's principal. Tenant scoping lives here, not in the routes:
 * every read checks the entity's tenantId against the principal, and an entity of another tenant answers
 * exactly like a missing one (404), so tenants learn nothing about each other. Provider-only operations
 * answer 403 to tenants.
 */

/** Restores are planned and run by the restore service (another module); the API only forwards to it. */
export interface RestoreService {
  /** Validates a restore of `point` against the target and returns the plan (or every non-conforming attribute). */
  plan(input: { tenantId: string; point: RestorePoint; options: Record<string, unknown> }): Promise<unknown>;
  /** Starts restore run `runId` (idempotent by run id) and returns what the caller should see. */
  start(input: { tenantId: string; point: RestorePoint; runId: string; options: Record<string, unknown>; requestedBy: string }): Promise<{ runId: string } & Record<string, unknown>>;
}

/**
 * The tenant's vCD organization as the API sees it: resolves a scope inside it (lib/vcd/backup-gateway.ts).
 * Optional: without it, jobs are checked when they run (the orchestrator resolves inside the org too).
 */
export type ScopeResolver = Pick<VcdGateway, 'resolveScope'>;

export interface ApiServiceDeps {
  readonly catalog: Catalog;
  readonly vcd?: ScopeResolver;
  readonly runsQueue: Queue;
  readonly clock: Clock;
  readonly restores?: RestoreService;
  readonly log?: Log;
}

export interface JobView {
  id: string;
  tenantId: string;
  kind: 'backup' | 'copy';
  enabled: boolean;
  nextRunAt: string | null;
  lastRunAt: string | null;
  spec: unknown;
}

export interface RetentionInfo {
  kept: boolean;
  reasons: string[];
  notes: string[];
}
export type PointView = RestorePoint & { retention: RetentionInfo | null };

export interface UsageView {
  tenantId: string;
  quotaBytes: number | null;
  usedBytes: number;
  availableBytes: number | null;
  overQuota: boolean;
  restorePoints: number;
  /** When usedBytes was last measured (null: never, e.g. no point committed yet). */
  computedAt: string | null;
  repositories: Array<{ repositoryId: string; usedBytes: number; restorePoints: number }>;
}

export interface PageRequest {
  limit?: number;
  cursor?: string;
}

/** How many runs one list request reads from the catalog before paging (the catalog returns newest first). */
export const MAX_RUNS_SCANNED = 1000;

export class ApiService {
  private readonly catalog: Catalog;
  private readonly queue: Queue;
  private readonly clock: Clock;
  private readonly restores: RestoreService | undefined;
  private readonly idempotency: IdempotencyGuard;
  private readonly vcd: ScopeResolver | undefined;

  constructor(deps: ApiServiceDeps) {
    this.catalog = deps.catalog;
    this.vcd = deps.vcd;
    this.queue = deps.runsQueue;
    this.clock = deps.clock;
    this.restores = deps.restores;
    this.idempotency = new IdempotencyGuard(deps.catalog, deps.clock);
  }

  // ------------------------------------------------------------------------------------------ tenants

  async listTenants(principal: Principal, req: PageRequest): Promise<Page<Tenant>> {
    requireProvider(principal, 'list tenants');
    return paginate(await this.catalog.listTenants(), { list: 'tenants', key: (t) => t.id, ...req });
  }

  async getTenant(principal: Principal, tenantId: string): Promise<Tenant> {
    return this.visibleTenant(principal, tenantId);
  }

  async createTenant(principal: Principal, input: { id: string; name: string; quotaBytes?: number; vcdOrg?: string }): Promise<Tenant> {
    requireProvider(principal, 'create tenants');
    if (await this.catalog.getTenant(input.id)) {
      throw new ApiError('ALREADY_EXISTS', `tenant "${input.id}" already exists; change it with PUT /v1/tenants/${input.id}`, { details: { tenantId: input.id } });
    }
    const tenant: Tenant = { id: input.id, name: input.name, ...(input.quotaBytes !== undefined ? { quotaBytes: input.quotaBytes } : {}), ...(input.vcdOrg !== undefined ? { vcdOrg: input.vcdOrg } : {}) };
    await this.catalog.putTenant(tenant);
    return tenant;
  }

  async updateTenant(principal: Principal, tenantId: string, patch: { name?: string; quotaBytes?: number | null }): Promise<Tenant> {
    requireProvider(principal, 'change tenants');
    const current = await this.catalog.getTenant(tenantId);
    if (!current) throw notFound('tenant', tenantId);
    const { quotaBytes: _old, ...rest } = current;
    const quotaBytes = patch.quotaBytes === undefined ? current.quotaBytes : (patch.quotaBytes ?? undefined);
    const tenant: Tenant = { ...rest, ...(patch.name !== undefined ? { name: patch.name } : {}), ...(quotaBytes !== undefined ? { quotaBytes } : {}) };
    await this.catalog.putTenant(tenant);
    return tenant;
  }

  // ------------------------------------------------------------------------------------------ repositories

  /** Provider: every repository (or one tenant's). Tenant: the shared repositories and its own, read-only. */
  async listRepositories(principal: Principal, filter: { tenantId?: string }, req: PageRequest): Promise<Page<Repository>> {
    let repositories = await this.catalog.listRepositories();
    if (principal.kind === 'tenant') repositories = repositories.filter((r) => r.tenantId === undefined || r.tenantId === principal.tenantId);
    if (filter.tenantId !== undefined) repositories = repositories.filter((r) => r.tenantId === filter.tenantId);
    return paginate(repositories, { list: `repositories:${filter.tenantId ?? ''}`, key: (r) => r.id, ...req });
  }

  async getRepository(principal: Principal, repositoryId: string): Promise<Repository> {
    const repository = await this.catalog.getRepository(repositoryId);
    if (!repository || !repositoryVisible(principal, repository)) throw notFound('repository', repositoryId);
    return repository;
  }

  async createRepository(principal: Principal, input: Repository): Promise<Repository> {
    requireProvider(principal, 'create repositories');
    if (await this.catalog.getRepository(input.id)) {
      throw new ApiError('ALREADY_EXISTS', `repository "${input.id}" already exists; change it with PUT /v1/repositories/${input.id}`, { details: { repositoryId: input.id } });
    }
    await this.checkRepositoryTenant(input);
    await this.catalog.putRepository(input);
    return input;
  }

  async replaceRepository(principal: Principal, repositoryId: string, input: Omit<Repository, 'id'>): Promise<Repository> {
    requireProvider(principal, 'change repositories');
    if (!(await this.catalog.getRepository(repositoryId))) throw notFound('repository', repositoryId);
    const repository: Repository = { ...input, id: repositoryId };
    await this.checkRepositoryTenant(repository);
    await this.catalog.putRepository(repository);
    return repository;
  }

  private async checkRepositoryTenant(repository: Repository): Promise<void> {
    if (repository.tenantId !== undefined && !(await this.catalog.getTenant(repository.tenantId))) {
      throw validationFailed('repository', [{ field: 'tenantId', message: `tenant "${repository.tenantId}" does not exist; create it first (POST /v1/tenants) or leave tenantId out for a shared repository` }]);
    }
  }

  // ------------------------------------------------------------------------------------------ jobs

  async listJobs(principal: Principal, filter: { tenantId?: string; kind?: 'backup' | 'copy' }, req: PageRequest): Promise<Page<JobView>> {
    const tenantId = principal.kind === 'tenant' ? principal.tenantId : filter.tenantId;
    if (principal.kind === 'tenant' && filter.tenantId !== undefined && filter.tenantId !== principal.tenantId) return { items: [], nextCursor: null };
    let jobs = await this.catalog.listJobs(tenantId === undefined ? {} : { tenantId });
    if (filter.kind !== undefined) jobs = jobs.filter((j) => j.kind === filter.kind);
    const result = paginate(jobs, { list: `jobs:${tenantId ?? ''}:${filter.kind ?? ''}`, key: (j) => j.id, ...req });
    return { items: result.items.map(jobView), nextCursor: result.nextCursor };
  }

  async getJob(principal: Principal, jobId: string): Promise<JobView> {
    return jobView(await this.visibleJob(principal, jobId));
  }

  /**
   * Creates a backup or copy job: the spec is validated by the job model, the tenant must exist and be under
   * quota, the target repository must be available to the tenant, a copy job's source must be one of the
   * tenant's jobs. Nothing is written unless every check passes.
   */
  async createJob(principal: Principal, body: Record<string, unknown>, idempotencyKey?: string): Promise<Outcome & { replayed: boolean }> {
    let job: Job | undefined;
    return this.idempotency.run({
      principal,
      key: idempotencyKey,
      operation: 'POST /v1/jobs',
      request: body,
      prepare: () => ({ jobId: `job-${randomUUID()}` }),
      check: async ({ jobId }) => {
        if (body.id !== undefined) throw validationFailed('job', [{ field: 'id', message: 'is assigned by the service; remove it' }]);
        job = await this.validateJob(principal, body, jobId);
        await this.checkQuota(job.tenantId);
      },
      execute: async ({ jobId }) => {
        // Without `job`, this is the retry of a request that crashed or failed: validate again, same id.
        const stored = job ?? (await this.validateJob(principal, body, jobId));
        await this.catalog.putJob(stored);
        return { status: 201, body: jobView(stored) };
      },
    });
  }

  async replaceJob(principal: Principal, jobId: string, body: Record<string, unknown>): Promise<JobView> {
    const current = await this.visibleJob(principal, jobId);
    const issues: FieldIssue[] = [];
    if (body.id !== undefined && body.id !== jobId) issues.push({ field: 'id', message: `must be "${jobId}" (the job in the path) or left out` });
    if (body.type !== current.kind) issues.push({ field: 'type', message: `a job's type cannot change: this is a ${current.kind} job; create a new job instead` });
    if (body.tenantId !== undefined && body.tenantId !== current.tenantId) issues.push({ field: 'tenantId', message: 'a job cannot move to another tenant; leave tenantId out or unchanged' });
    if (issues.length > 0) throw validationFailed('job', issues);
    const job = await this.validateJob(principal, { ...body, tenantId: current.tenantId }, jobId);
    const stored: Job = { ...job, ...(current.lastRunAt !== undefined ? { lastRunAt: current.lastRunAt } : {}) };
    await this.catalog.putJob(stored);
    return jobView(stored);
  }

  async deleteJob(principal: Principal, jobId: string): Promise<void> {
    const job = await this.visibleJob(principal, jobId);
    const dependents = (await this.catalog.listJobs({ tenantId: job.tenantId })).filter((other) => {
      if (other.id === jobId) return false;
      const spec = other.spec as { source?: { jobId?: unknown }; schedule?: { kind?: unknown; jobId?: unknown } };
      return spec.source?.jobId === jobId || (spec.schedule?.kind === 'afterJob' && spec.schedule.jobId === jobId);
    });
    if (dependents.length > 0) {
      throw new ApiError('JOB_IN_USE', `job "${jobId}" is used by ${dependents.map((d) => `"${d.id}"`).join(', ')} (copy source or afterJob schedule); change or delete those jobs first`, {
        details: { dependentJobIds: dependents.map((d) => d.id) },
      });
    }
    await this.catalog.deleteJob(jobId);
  }

  async setJobEnabled(principal: Principal, jobId: string, enabled: boolean): Promise<JobView> {
    const current = await this.visibleJob(principal, jobId);
    const spec = { ...(current.spec as Record<string, unknown>), enabled };
    const parsed = current.kind === 'backup' ? parseBackupJob(spec) : parseCopyJob(spec);
    const { nextRunAt: _n, ...rest } = current;
    const nextRunAt = this.nextRunAt(parsed);
    const job: Job = { ...rest, enabled, spec: parsed, ...(nextRunAt !== undefined ? { nextRunAt } : {}) };
    await this.catalog.putJob(job);
    return jobView(job);
  }

  /**
   * "Run now": sends one StartBackupRun / StartCopyRun (trigger manual) to the runs queue and returns its run
   * id. Creates nothing in the catalog: the orchestrator creates the run when it takes the message. Works on
   * disabled jobs too (disabled means "not scheduled"). Refused when the tenant is over quota.
   */
  async runJob(principal: Principal, jobId: string, body: { vappIds?: string[] }, idempotencyKey?: string): Promise<Outcome & { replayed: boolean }> {
    let job: Job | undefined;
    return this.idempotency.run({
      principal,
      key: idempotencyKey,
      operation: `POST /v1/jobs/${jobId}/run`,
      request: body,
      prepare: () => ({ runId: `run-${randomUUID()}`, requestedAt: this.clock.now().toISOString() }),
      check: async () => {
        job = await this.visibleJob(principal, jobId);
        await this.checkQuota(job.tenantId);
        if (body.vappIds !== undefined && job.kind === 'backup') await this.checkRunNowVApps(job, body.vappIds);
      },
      execute: async ({ runId, requestedAt }) => {
        const j = job ?? (await this.visibleJob(principal, jobId));
        const vappIds = body.vappIds !== undefined ? { vappIds: body.vappIds } : {};
        const common = { version: 1 as const, runId, jobId: j.id, tenantId: j.tenantId, trigger: 'manual' as const, requestedAt, ...vappIds };
        await sendMessages(this.queue, 'runs', [j.kind === 'backup' ? { type: 'StartBackupRun', ...common } : { type: 'StartCopyRun', ...common }]);
        return { status: 202, body: { runId, jobId: j.id, tenantId: j.tenantId, kind: j.kind, state: 'queued', requestedAt, runUrl: `/v1/runs/${runId}` } };
      },
    });
  }

  private async validateJob(principal: Principal, body: Record<string, unknown>, jobId: string): Promise<Job> {
    const tenantId = body.tenantId ?? (principal.kind === 'tenant' ? principal.tenantId : undefined);
    if (principal.kind === 'tenant' && tenantId !== principal.tenantId) {
      throw forbidden(`a tenant creates jobs for itself only: leave tenantId out or set it to "${principal.tenantId}"`);
    }
    const input = { ...body, id: jobId, ...(tenantId !== undefined ? { tenantId } : {}) };
    const spec: BackupJobSpec | CopyJobSpec = body.type === 'copy' ? parseCopyJob(input) : parseBackupJob(input);
    const issues: FieldIssue[] = [];
    if (!(await this.catalog.getTenant(spec.tenantId))) {
      issues.push({ field: 'tenantId', message: `tenant "${spec.tenantId}" does not exist; the provider creates tenants with POST /v1/tenants` });
    }
    const repository = await this.catalog.getRepository(spec.targetRepositoryId);
    if (!repository || (repository.tenantId !== undefined && repository.tenantId !== spec.tenantId)) {
      issues.push({ field: 'targetRepositoryId', message: `no repository "${spec.targetRepositoryId}" is available to tenant "${spec.tenantId}"; list them with GET /v1/repositories` });
    }
    if (principal.kind === 'tenant' && spec.type === 'backup' && spec.scope.include.some((item) => item.kind === 'instance')) {
      issues.push({ field: 'scope.include', message: 'the whole vCD instance is for the provider only; include your organization, VDCs, vApps or VMs' });
    }
    if (repository && spec.encryption.enabled && repository.encrypted === false) {
      issues.push({ field: 'encryption.enabled', message: `repository "${repository.id}" stores plaintext and this job requires encryption; target an encrypted repository or turn encryption off` });
    }
    if (issues.length > 0) throw new JobValidationError(`${spec.type} job`, issues);
    if (spec.type === 'backup') await this.checkScopeInOrg(spec);
    if (spec.type === 'copy') {
      const refs = new Map<string, JobRef>();
      for (const other of await this.catalog.listJobs({ tenantId: spec.tenantId })) {
        if (other.id === jobId) continue;
        const s = other.spec as { targetRepositoryId?: string; source?: { jobId?: string } };
        refs.set(other.id, { id: other.id, type: other.kind, tenantId: other.tenantId, targetRepositoryId: s.targetRepositoryId ?? '', ...(s.source?.jobId !== undefined ? { sourceJobId: s.source.jobId } : {}) });
      }
      checkCopySource(spec, (id) => refs.get(id));
    }
    const nextRunAt = this.nextRunAt(spec);
    return { id: jobId, tenantId: spec.tenantId, kind: spec.type, enabled: spec.enabled, spec, ...(nextRunAt !== undefined ? { nextRunAt } : {}) };
  }

  /**
   * Every scope item must exist inside the tenant's vCD organization: one of another organization answers
   * 404 exactly like one that does not exist, and nothing is saved.
   */
  private async checkScopeInOrg(spec: BackupJobSpec): Promise<void> {
    const resolution = await this.resolveInOrg(spec.tenantId, spec.scope);
    if (resolution && resolution.outside.length > 0) {
      throw new ApiError('NOT_FOUND', `${resolution.outside[0]} not found; a job's scope names objects of its tenant's organization only`, { details: { notFound: resolution.outside } });
    }
  }

  /** Run-now vApps must be part of the job's scope as it resolves now, inside the tenant's organization. */
  private async checkRunNowVApps(job: Job, vappIds: readonly string[]): Promise<void> {
    const spec = parseBackupJob({ ...(job.spec as object), id: job.id, tenantId: job.tenantId });
    const resolution = await this.resolveInOrg(job.tenantId, spec.scope);
    if (!resolution) return;
    const inScope = new Set(resolution.vapps.map((v) => v.id.toLowerCase()));
    const missing = vappIds.filter((id) => !inScope.has(id.toLowerCase()));
    if (missing.length > 0) {
      throw new ApiError('NOT_FOUND', `vApp ${missing[0]} not found in job "${job.id}"'s scope; nothing was started`, { details: { notFound: missing } });
    }
  }

  private async resolveInOrg(tenantId: string, scope: BackupJobSpec['scope']): Promise<ScopeResolution | undefined> {
    if (!this.vcd) return undefined;
    const tenant = await this.catalog.getTenant(tenantId);
    if (!tenant) throw notFound('tenant', tenantId);
    const binding: TenantBinding = { tenantId: tenant.id, ...(tenant.vcdOrg !== undefined ? { vcdOrg: tenant.vcdOrg } : {}) };
    return this.vcd.resolveScope(binding, scope);
  }

  private nextRunAt(spec: BackupJobSpec | CopyJobSpec): string | undefined {
    const now = this.clock.now();
    const next = spec.type === 'backup' ? nextBackupRun(spec, now) : nextPeriodicCopyRun(spec, now);
    return next?.startAt.toISOString();
  }

  // ------------------------------------------------------------------------------------------ quota and usage

  /** Refuses new work for a tenant at or over its quota (409 QUOTA_EXCEEDED), before anything is written. */
  private async checkQuota(tenantId: string): Promise<void> {
    const tenant = await this.catalog.getTenant(tenantId);
    if (!tenant) throw validationFailed('job', [{ field: 'tenantId', message: `tenant "${tenantId}" does not exist; the provider creates tenants with POST /v1/tenants` }]);
    const usage = await this.usageOf(tenant);
    if (usage.overQuota) {
      throw new ApiError(
        'QUOTA_EXCEEDED',
        `tenant "${tenantId}" stores ${formatBytes(usage.usedBytes)} of its ${formatBytes(usage.quotaBytes ?? 0)} quota; nothing was started. Free space (delete restore points or shorten retention) or ask the provider to raise the quota`,
        { details: { tenantId, quotaBytes: usage.quotaBytes, usedBytes: usage.usedBytes } },
      );
    }
  }

  async tenantUsage(principal: Principal, tenantId: string): Promise<UsageView> {
    return this.usageOf(await this.visibleTenant(principal, tenantId));
  }

  /** Provider: every tenant's usage, paged by tenant id. Tenant: its own, as a one-item page. */
  async listUsage(principal: Principal, req: PageRequest): Promise<Page<UsageView>> {
    const tenants = principal.kind === 'provider' ? await this.catalog.listTenants() : [await this.visibleTenant(principal, principal.tenantId)];
    const result = paginate(tenants, { list: 'usage', key: (t) => t.id, ...req });
    return { items: await Promise.all(result.items.map((t) => this.usageOf(t))), nextCursor: result.nextCursor };
  }

  /**
   * Usage is what the tenant's live points reference as stored, blocks shared between its points counted
   * once (recomputed by the orchestrator after every commit and deletion: lib/services/usage-service.ts).
   */
  private async usageOf(tenant: Tenant): Promise<UsageView> {
    const [points, stored] = await Promise.all([this.catalog.listRestorePoints({ tenantId: tenant.id }), this.catalog.getTenantUsage(tenant.id)]);
    const usedBytes = stored?.usedBytes ?? 0;
    const quota = tenant.quotaBytes ?? null;
    return {
      tenantId: tenant.id,
      quotaBytes: quota,
      usedBytes,
      availableBytes: quota === null ? null : Math.max(0, quota - usedBytes),
      overQuota: quota !== null && usedBytes >= quota,
      restorePoints: points.length,
      computedAt: stored?.computedAt ?? null,
      repositories: sortByKey(
        (stored?.repositories ?? []).map((r) => ({ repositoryId: r.repositoryId, usedBytes: r.usedBytes, restorePoints: r.restorePoints })),
        (r) => r.repositoryId,
      ),
    };
  }

  // ------------------------------------------------------------------------------------------ runs

  async listRuns(principal: Principal, filter: { jobId?: string; tenantId?: string; kind?: RunKind }, req: PageRequest): Promise<Page<Run>> {
    if (filter.jobId !== undefined && filter.tenantId !== undefined) {
      throw new ApiError('INVALID_REQUEST', 'give either jobId or tenantId, not both', { details: { issues: [{ field: 'query.jobId', message: 'not together with tenantId' }] } });
    }
    let runs: Run[];
    if (filter.jobId !== undefined) {
      runs = (await this.catalog.listRuns({ jobId: filter.jobId }, MAX_RUNS_SCANNED)).filter((r) => tenantVisible(principal, r.tenantId));
    } else {
      const tenantId = filter.tenantId ?? (principal.kind === 'tenant' ? principal.tenantId : undefined);
      if (tenantId === undefined) {
        throw new ApiError('INVALID_REQUEST', 'list runs by job or by tenant: add ?jobId=<job> or ?tenantId=<tenant>', { details: { issues: [{ field: 'query.tenantId', message: 'is required for the provider (or give jobId)' }] } });
      }
      runs = tenantVisible(principal, tenantId) ? await this.catalog.listRuns({ tenantId }, MAX_RUNS_SCANNED) : [];
    }
    if (filter.kind !== undefined) runs = runs.filter((r) => r.kind === filter.kind);
    const key = (r: Run) => `${r.startedAt}|${r.id}`;
    return paginate(sortByKey(runs, key, true), { list: `runs:${filter.jobId ?? ''}:${filter.tenantId ?? ''}:${filter.kind ?? ''}`, key, descending: true, ...req });
  }

  /** Runs of a job: 404 when the job belongs to another tenant; a deleted job's runs stay listable. */
  async listJobRuns(principal: Principal, jobId: string, req: PageRequest): Promise<Page<Run>> {
    const job = await this.catalog.getJob(jobId);
    if (job && !tenantVisible(principal, job.tenantId)) throw notFound('job', jobId);
    return this.listRuns(principal, { jobId }, req);
  }

  async getRun(principal: Principal, runId: string): Promise<Run> {
    const run = await this.catalog.getRun(runId);
    if (!run || !tenantVisible(principal, run.tenantId)) throw notFound('run', runId);
    return run;
  }

  /** Cancels a queued or running run; 409 when it already ended (the message says how). */
  async cancelRun(principal: Principal, runId: string): Promise<Run> {
    const run = await this.getRun(principal, runId);
    try {
      await this.catalog.updateRunState(runId, 'canceled', { endedAt: this.clock.now().toISOString(), expectedStates: ['queued', 'running'] });
    } catch (err) {
      if (err instanceof ConflictError) {
        const now = await this.catalog.getRun(runId);
        throw new ApiError('RUN_STATE_CONFLICT', `run "${runId}" is ${now?.state ?? run.state}; only queued or running runs can be canceled`, { details: { runId, state: now?.state ?? run.state }, cause: err });
      }
      throw err;
    }
    return this.getRun(principal, runId);
  }

  // ------------------------------------------------------------------------------------------ restore points

  async listRestorePoints(principal: Principal, filter: { vappId?: string; jobId?: string; repositoryId?: string; tenantId?: string }, req: PageRequest): Promise<Page<PointView>> {
    const catalogFilter = this.pointFilter(principal, filter);
    const points = (await this.catalog.listRestorePoints(catalogFilter)).filter((p) => tenantVisible(principal, p.tenantId) && (filter.tenantId === undefined || p.tenantId === filter.tenantId));
    const key = (p: RestorePoint) => `${p.createdAt}|${p.id}`;
    const list = `points:${filter.vappId ?? ''}:${filter.jobId ?? ''}:${filter.repositoryId ?? ''}:${filter.tenantId ?? ''}`;
    const result = paginate(sortByKey(points, key), { list, key, ...req });
    return { items: await this.withRetention(principal, result.items), nextCursor: result.nextCursor };
  }

  async getRestorePoint(principal: Principal, pointId: string): Promise<PointView> {
    const [view] = await this.withRetention(principal, [await this.visiblePoint(principal, pointId)]);
    return view!;
  }

  private pointFilter(principal: Principal, f: { vappId?: string; jobId?: string; repositoryId?: string; tenantId?: string }): PointFilter {
    const given = [f.vappId, f.jobId, f.repositoryId, f.tenantId].filter((v) => v !== undefined).length;
    if (f.repositoryId !== undefined && f.vappId !== undefined && given === 2) return { repositoryId: f.repositoryId, vappId: f.vappId };
    if (given > 1) {
      throw new ApiError('INVALID_REQUEST', 'filter restore points by one of vappId, jobId, repositoryId or tenantId (or repositoryId with vappId for one chain)', {
        details: { issues: [{ field: 'query', message: 'too many filters' }] },
      });
    }
    if (f.vappId !== undefined) return { vappId: f.vappId };
    if (f.jobId !== undefined) return { jobId: f.jobId };
    if (f.repositoryId !== undefined) return { repositoryId: f.repositoryId };
    const tenantId = f.tenantId ?? (principal.kind === 'tenant' ? principal.tenantId : undefined);
    if (tenantId === undefined) {
      throw new ApiError('INVALID_REQUEST', 'filter restore points: add ?vappId=, ?jobId=, ?repositoryId= or ?tenantId=', { details: { issues: [{ field: 'query', message: 'a filter is required for the provider' }] } });
    }
    return { tenantId };
  }

  /**
   * Adds keep reasons: for each chain (repository, vApp) on the page, the whole chain is read and retention
   * is applied at "now" with the policy of the job that wrote the chain's newest point. Null when that job
   * has no policy or no longer exists.
   */
  private async withRetention(principal: Principal, points: RestorePoint[]): Promise<PointView[]> {
    const chains = new Map<string, { repositoryId: string; vappId: string }>();
    for (const p of points) chains.set(`${p.repositoryId}\n${p.vappId}`, { repositoryId: p.repositoryId, vappId: p.vappId });
    const jobs = new Map<string, Promise<Job | undefined>>();
    const jobOf = (id: string) => {
      let job = jobs.get(id);
      if (!job) jobs.set(id, (job = this.catalog.getJob(id)));
      return job;
    };
    const info = new Map<string, RetentionInfo>();
    const now = this.clock.now();
    await Promise.all(
      [...chains.values()].map(async (chain) => {
        const chainPoints = (await this.catalog.listRestorePoints(chain)).filter((p) => tenantVisible(principal, p.tenantId));
        const newest = chainPoints.reduce<RestorePoint | undefined>((a, p) => (a === undefined || p.createdAt > a.createdAt ? p : a), undefined);
        if (!newest) return;
        const job = await jobOf(newest.jobId);
        const raw = (job?.spec as { retention?: unknown } | undefined)?.retention;
        if (raw === undefined) return;
        let policy;
        try {
          policy = parseRetentionPolicy(raw);
        } catch {
          return; // a stored policy that no longer parses explains nothing; the job's PUT will report it
        }
        const plan = applyRetention(
          policy,
          chainPoints.map((p) => ({ id: p.id, createdAt: p.createdAt, flags: p.flags.filter((f): f is RetentionFlag => (RETENTION_FLAGS as readonly string[]).includes(f)) })),
          now,
        );
        for (const k of plan.keep) info.set(k.point.id, { kept: true, reasons: [...k.reasons], notes: [] });
        for (const d of plan.delete) info.set(d.point.id, { kept: false, reasons: [], notes: [...d.notes] });
      }),
    );
    return points.map((p) => ({ ...p, retention: info.get(p.id) ?? null }));
  }

  // ------------------------------------------------------------------------------------------ restores

  async planRestore(principal: Principal, body: { pointId: string } & Record<string, unknown>): Promise<unknown> {
    const restores = this.requireRestores();
    const point = await this.visiblePoint(principal, body.pointId);
    const { pointId: _p, ...options } = body;
    return restores.plan({ tenantId: point.tenantId, point, options });
  }

  async startRestore(principal: Principal, body: { pointId: string } & Record<string, unknown>, idempotencyKey?: string): Promise<Outcome & { replayed: boolean }> {
    const restores = this.requireRestores();
    let point: RestorePoint | undefined;
    return this.idempotency.run({
      principal,
      key: idempotencyKey,
      operation: 'POST /v1/restores',
      request: body,
      prepare: () => ({ runId: `restore-${randomUUID()}` }),
      check: async () => {
        point = await this.visiblePoint(principal, body.pointId);
        if (!(await this.catalog.getTenant(point.tenantId))) throw notFound('tenant', point.tenantId);
      },
      execute: async ({ runId }) => {
        const p = point ?? (await this.visiblePoint(principal, body.pointId));
        const { pointId: _p, ...options } = body;
        const requestedBy = principal.kind === 'provider' ? 'provider' : `tenant:${principal.tenantId}`;
        const started = await restores.start({ tenantId: p.tenantId, point: p, runId, options, requestedBy });
        return { status: 202, body: { ...started, runId: started.runId, statusUrl: `/v1/restores/${started.runId}` } };
      },
    });
  }

  async getRestore(principal: Principal, runId: string): Promise<Run> {
    const run = await this.catalog.getRun(runId);
    if (!run || run.kind !== 'restore' || !tenantVisible(principal, run.tenantId)) throw notFound('restore', runId);
    return run;
  }

  private requireRestores(): RestoreService {
    if (!this.restores) {
      throw new ApiError('NOT_IMPLEMENTED', 'restores are not available in this deployment: no restore service is configured. Use GET /v1/restores/{runId} for status, or restore with the CLI (vcd-backup restore)', { details: null });
    }
    return this.restores;
  }

  // ------------------------------------------------------------------------------------------ access

  private async visibleTenant(principal: Principal, tenantId: string): Promise<Tenant> {
    const tenant = tenantVisible(principal, tenantId) ? await this.catalog.getTenant(tenantId) : undefined;
    if (!tenant) throw notFound('tenant', tenantId);
    return tenant;
  }

  private async visibleJob(principal: Principal, jobId: string): Promise<Job> {
    const job = await this.catalog.getJob(jobId);
    if (!job || !tenantVisible(principal, job.tenantId)) throw notFound('job', jobId);
    return job;
  }

  private async visiblePoint(principal: Principal, pointId: string): Promise<RestorePoint> {
    const point = await this.catalog.getRestorePoint(pointId);
    if (!point || !tenantVisible(principal, point.tenantId)) throw notFound('restore point', pointId);
    return point;
  }
}

export function tenantVisible(principal: Principal, tenantId: string): boolean {
  return principal.kind === 'provider' || principal.tenantId === tenantId;
}

function repositoryVisible(principal: Principal, repository: Repository): boolean {
  return principal.kind === 'provider' || repository.tenantId === undefined || repository.tenantId === principal.tenantId;
}

function requireProvider(principal: Principal, what: string): void {
  if (principal.kind !== 'provider') throw forbidden(`only the provider may ${what}`);
}

function jobView(job: Job): JobView {
  return { id: job.id, tenantId: job.tenantId, kind: job.kind, enabled: job.enabled, nextRunAt: job.nextRunAt ?? null, lastRunAt: job.lastRunAt ?? null, spec: job.spec };
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]} (${n} bytes)`;
}
