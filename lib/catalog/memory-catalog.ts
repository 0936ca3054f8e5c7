import type { Clock } from '../domain/clock.js';
import { systemClock } from '../system-clock.js';
import type { Catalog, DiskOutcome, PointFilter } from './catalog.js';
import { CatalogInputError, ConflictError, CONFLICT, NotFoundError } from './errors.js';
import { decideAcquire, decideRenew, liveLeases } from './leases.js';
import { chainKey, outcomeOf, periodConflict, pointMatcher, validateAttempt, validatePatch } from './shared.js';
import {
  addCounters,
  ChainPeriodSchema,
  Id,
  IdempotencyRecordSchema,
  IsoTime,
  JobSchema,
  LeaseSchema,
  NewRunSchema,
  RepositorySchema,
  RestorePointSchema,
  RunErrorSchema,
  RunSchema,
  TenantSchema,
  TenantUsageSchema,
  PointModelSchema,
  MAX_POINT_MODEL_BYTES,
  VAppProgressSchema,
  parseStored,
  validateDelta,
  validateInput,
  zeroCounters,
  type ChainPeriod,
  type CounterDelta,
  type IdempotencyRecord,
  type Job,
  type Lease,
  type LeaseMode,
  type NewRun,
  type Repository,
  type RestorePoint,
  type Run,
  type RunCounters,
  type RunError,
  type RunState,
  type Tenant,
  type TenantUsage,
  type PointModel,
  type VAppProgress,
  type VAppState,
} from './types.js';
import type { z } from 'zod';

interface StoredRun {
  run: NewRun;
  counters: RunCounters;
  errors: RunError[];
  vapps: Map<string, StoredVApp>;
}

interface StoredVApp {
  progress: VAppProgress;
  done: Set<string>;
  failed: Set<string>;
}

const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * The catalog in memory, with the same semantics as the DynamoDB adapter (same contract suite). Every
 * method does its read-decide-write without awaiting in between, which makes it atomic in one process.
 */
export class MemoryCatalog implements Catalog {
  private readonly tenants = new Map<string, Tenant>();
  private readonly usage = new Map<string, TenantUsage>();
  private readonly models = new Map<string, PointModel>();
  private readonly repositories = new Map<string, Repository>();
  private readonly jobs = new Map<string, Job>();
  private readonly runs = new Map<string, StoredRun>();
  private readonly points = new Map<string, RestorePoint>();
  private readonly periods = new Map<string, Map<string, ChainPeriod>>();
  private readonly leases = new Map<string, Lease[]>();
  private readonly idempotency = new Map<string, IdempotencyRecord>();

  constructor(private readonly clock: Clock = systemClock) {}

  // ------------------------------------------------------------------ tenants and repositories

  async putTenant(tenant: Tenant): Promise<void> {
    const t = validateInput(TenantSchema, tenant, 'tenant');
    this.tenants.set(t.id, clone(t));
  }

  async getTenant(id: string): Promise<Tenant | undefined> {
    return this.read(TenantSchema, this.tenants.get(id), `tenant ${id}`);
  }

  async listTenants(): Promise<Tenant[]> {
    return [...this.tenants.values()].sort(byId).map((t) => this.read(TenantSchema, t, `tenant ${t.id}`)!);
  }

  async putTenantUsage(usage: TenantUsage): Promise<void> {
    const u = validateInput(TenantUsageSchema, usage, 'tenant usage');
    this.usage.set(u.tenantId, structuredClone(u));
  }

  async getTenantUsage(tenantId: string): Promise<TenantUsage | undefined> {
    const u = this.usage.get(tenantId);
    return u === undefined ? undefined : this.read(TenantUsageSchema, u, `usage of tenant ${tenantId}`);
  }

  async putRepository(repository: Repository): Promise<void> {
    const r = validateInput(RepositorySchema, repository, 'repository');
    this.repositories.set(r.id, clone(r));
  }

  async getRepository(id: string): Promise<Repository | undefined> {
    return this.read(RepositorySchema, this.repositories.get(id), `repository ${id}`);
  }

  async listRepositories(filter: { tenantId?: string } = {}): Promise<Repository[]> {
    return [...this.repositories.values()]
      .filter((r) => filter.tenantId === undefined || r.tenantId === filter.tenantId)
      .sort(byId)
      .map((r) => this.read(RepositorySchema, r, `repository ${r.id}`)!);
  }

  // ------------------------------------------------------------------ jobs

  async putJob(job: Job): Promise<void> {
    const j = validateInput(JobSchema, job, 'job');
    this.jobs.set(j.id, clone(j));
  }

  async getJob(id: string): Promise<Job | undefined> {
    return this.read(JobSchema, this.jobs.get(id), `job ${id}`);
  }

  async listJobs(filter: { tenantId?: string } = {}): Promise<Job[]> {
    return [...this.jobs.values()]
      .filter((j) => filter.tenantId === undefined || j.tenantId === filter.tenantId)
      .sort(byId)
      .map((j) => this.read(JobSchema, j, `job ${j.id}`)!);
  }

  async deleteJob(id: string): Promise<void> {
    this.jobs.delete(id);
  }

  async listDueJobs(now: string, limit = 100): Promise<Job[]> {
    validateInput(IsoTime, now, 'due-jobs query: now');
    return [...this.jobs.values()]
      .filter((j) => j.enabled && j.nextRunAt !== undefined && j.nextRunAt <= now)
      .sort((a, b) => (a.nextRunAt! < b.nextRunAt! ? -1 : a.nextRunAt! > b.nextRunAt! ? 1 : byId(a, b)))
      .slice(0, limit)
      .map((j) => this.read(JobSchema, j, `job ${j.id}`)!);
  }

  async claimDueJob(jobId: string, expectedNextRunAt: string, newNextRunAt: string | undefined): Promise<boolean> {
    validateInput(IsoTime, expectedNextRunAt, 'claim: expectedNextRunAt');
    if (newNextRunAt !== undefined) validateInput(IsoTime, newNextRunAt, 'claim: newNextRunAt');
    const job = this.jobs.get(jobId);
    if (!job || !job.enabled || job.nextRunAt !== expectedNextRunAt) return false;
    const next: Job = { ...job, lastRunAt: expectedNextRunAt };
    if (newNextRunAt === undefined) delete next.nextRunAt;
    else next.nextRunAt = newNextRunAt;
    this.jobs.set(jobId, next);
    return true;
  }

  // ------------------------------------------------------------------ runs

  async createRun(run: NewRun): Promise<{ created: boolean; run: Run }> {
    const r = validateInput(NewRunSchema, run, 'run');
    const existing = this.runs.get(r.id);
    if (existing) return { created: false, run: this.assemble(existing) };
    const stored: StoredRun = { run: clone(r), counters: zeroCounters(), errors: [], vapps: new Map() };
    this.runs.set(r.id, stored);
    return { created: true, run: this.assemble(stored) };
  }

  async getRun(id: string): Promise<Run | undefined> {
    const stored = this.runs.get(id);
    return stored ? this.assemble(stored) : undefined;
  }

  async listRuns(filter: { jobId: string } | { tenantId: string }, limit = 50): Promise<Run[]> {
    const match = (r: NewRun) => ('jobId' in filter ? r.jobId === filter.jobId : r.tenantId === filter.tenantId);
    return [...this.runs.values()]
      .filter((s) => match(s.run))
      .sort((a, b) => {
        const ka = `${a.run.startedAt}#${a.run.id}`;
        const kb = `${b.run.startedAt}#${b.run.id}`;
        return ka < kb ? 1 : ka > kb ? -1 : 0;
      })
      .slice(0, limit)
      .map((s) => this.assemble(s));
  }

  async updateRunState(id: string, state: RunState, options: { endedAt?: string; expectedStates?: readonly RunState[] } = {}): Promise<void> {
    if (options.endedAt !== undefined) validateInput(IsoTime, options.endedAt, 'run: endedAt');
    const stored = this.mustRun(id);
    if (options.expectedStates && !options.expectedStates.includes(stored.run.state)) {
      throw new ConflictError(`run ${id} is ${stored.run.state}, not ${options.expectedStates.join(' or ')}; it cannot become ${state}`, { code: CONFLICT.state });
    }
    stored.run = { ...stored.run, state, ...(options.endedAt !== undefined ? { endedAt: options.endedAt } : {}) };
  }

  async appendRunError(id: string, error: RunError): Promise<void> {
    const e = validateInput(RunErrorSchema, error, 'run error');
    this.mustRun(id).errors.push(clone(e));
  }

  async addCounters(runId: string, delta: CounterDelta, vappId?: string): Promise<void> {
    validateDelta(delta);
    const stored = this.mustRun(runId);
    if (vappId === undefined) {
      stored.counters = addCounters(stored.counters, delta);
      return;
    }
    const vapp = this.mustVApp(stored, runId, vappId);
    vapp.progress.counters = addCounters(vapp.progress.counters, delta);
  }

  async startVAppAttempt(runId: string, vappId: string, attempt: { attempt: number; disksTotal: number; pointId?: string }): Promise<boolean> {
    validateInput(Id, vappId, 'vApp id');
    validateAttempt(attempt);
    const stored = this.mustRun(runId);
    const existing = stored.vapps.get(vappId);
    if (existing && existing.progress.attempts >= attempt.attempt) return false;
    const progress: VAppProgress = {
      vappId,
      state: 'running',
      disksTotal: attempt.disksTotal,
      disksDone: 0,
      disksFailed: 0,
      attempts: attempt.attempt,
      counters: existing?.progress.counters ?? zeroCounters(),
      ...(attempt.pointId !== undefined ? { pointId: attempt.pointId } : {}),
    };
    stored.vapps.set(vappId, { progress, done: new Set(), failed: new Set() });
    return true;
  }

  async updateVApp(runId: string, vappId: string, patch: { state?: VAppState; error?: string | null; retryAt?: string | null; pointId?: string | null }): Promise<VAppProgress> {
    validatePatch(patch);
    const vapp = this.mustVApp(this.mustRun(runId), runId, vappId);
    const p: VAppProgress = { ...vapp.progress };
    if (patch.state !== undefined) p.state = patch.state;
    for (const field of ['error', 'retryAt', 'pointId'] as const) {
      const value = patch[field];
      if (value === null) delete p[field];
      else if (value !== undefined) p[field] = value;
    }
    vapp.progress = p;
    return this.read(VAppProgressSchema, p, `run ${runId} vApp ${vappId}`)!;
  }

  async recordDiskDone(runId: string, vappId: string, diskId: string, stats: CounterDelta = {}): Promise<DiskOutcome> {
    validateDelta(stats);
    return this.recordDisk(runId, vappId, diskId, 'done', stats);
  }

  async recordDiskFailed(runId: string, vappId: string, diskId: string): Promise<DiskOutcome> {
    return this.recordDisk(runId, vappId, diskId, 'failed', {});
  }

  private recordDisk(runId: string, vappId: string, diskId: string, outcome: 'done' | 'failed', stats: CounterDelta): DiskOutcome {
    validateInput(Id, diskId, 'disk id');
    const stored = this.runs.get(runId);
    const vapp = stored?.vapps.get(vappId);
    if (!vapp) throw new NotFoundError('vApp progress', `${runId}/${vappId}`);
    if (vapp.done.has(diskId) || vapp.failed.has(diskId)) {
      return { duplicate: true, completedVApp: false, settledVApp: false, progress: clone(vapp.progress) };
    }
    const p = { ...vapp.progress };
    if (outcome === 'done') {
      vapp.done.add(diskId);
      p.disksDone += 1;
      p.counters = addCounters(p.counters, stats);
    } else {
      vapp.failed.add(diskId);
      p.disksFailed += 1;
    }
    vapp.progress = p;
    return outcomeOf(p, outcome);
  }

  // ------------------------------------------------------------------ restore points

  async commitRestorePoint(point: RestorePoint, periods: readonly string[] = []): Promise<{ created: boolean }> {
    const p = validateInput(RestorePointSchema, point, 'restore point');
    const now = this.clock.now().toISOString();
    const given = [...new Set(periods)].map((period) => validateInput(ChainPeriodSchema, { repositoryId: p.repositoryId, vappId: p.vappId, period, pointId: p.id, givenAt: now }, 'GFS period'));
    if (this.points.has(p.id)) return { created: false };
    const chain = this.periods.get(chainKey(p.repositoryId, p.vappId)) ?? new Map<string, ChainPeriod>();
    for (const g of given) {
      const taken = chain.get(g.period);
      if (taken) throw periodConflict(p, g.period, taken.pointId);
    }
    this.points.set(p.id, clone(p));
    for (const g of given) chain.set(g.period, g);
    this.periods.set(chainKey(p.repositoryId, p.vappId), chain);
    return { created: true };
  }

  async getRestorePoint(id: string): Promise<RestorePoint | undefined> {
    return this.read(RestorePointSchema, this.points.get(id), `restore point ${id}`);
  }

  async listRestorePoints(filter: PointFilter): Promise<RestorePoint[]> {
    const match = pointMatcher(filter);
    return [...this.points.values()]
      .filter(match)
      .sort((a, b) => {
        const ka = `${a.createdAt}#${a.id}`;
        const kb = `${b.createdAt}#${b.id}`;
        return ka < kb ? -1 : ka > kb ? 1 : 0;
      })
      .map((p) => this.read(RestorePointSchema, p, `restore point ${p.id}`)!);
  }

  async setRestorePointFlags(id: string, flags: readonly string[]): Promise<void> {
    const p = this.points.get(id);
    if (!p) throw new NotFoundError('restore point', id);
    const next = validateInput(RestorePointSchema, { ...p, flags: [...flags] }, 'restore point flags');
    this.points.set(id, next);
  }

  async putPointModel(model: PointModel): Promise<void> {
    const m = validateInput(PointModelSchema, model, 'point model');
    if (Buffer.byteLength(JSON.stringify(m.model)) > MAX_POINT_MODEL_BYTES) throw new CatalogInputError(`invalid point model: the model of point ${m.pointId} is larger than ${MAX_POINT_MODEL_BYTES} bytes`);
    this.models.set(m.pointId, clone(m));
  }

  async getPointModel(pointId: string): Promise<PointModel | undefined> {
    return this.read(PointModelSchema, this.models.get(pointId), `model of point ${pointId}`);
  }

  async deleteRestorePoint(id: string): Promise<void> {
    this.points.delete(id);
    this.models.delete(id);
  }

  async listChainPeriods(repositoryId: string, vappId: string): Promise<ChainPeriod[]> {
    const chain = this.periods.get(chainKey(repositoryId, vappId));
    if (!chain) return [];
    return [...chain.values()].sort((a, b) => (a.period < b.period ? -1 : a.period > b.period ? 1 : 0)).map((c) => clone(c));
  }

  // ------------------------------------------------------------------ leases

  async acquireLease(resource: string, holder: string, mode: LeaseMode, ttlMs: number): Promise<Lease> {
    validateInput(LeaseSchema, { resource, holder, mode, expiresAt: new Date(0).toISOString() }, 'lease');
    const next = decideAcquire(this.leases.get(resource) ?? [], resource, holder, mode, ttlMs, this.clock.now());
    this.leases.set(resource, next);
    return clone(next.find((l) => l.holder === holder)!);
  }

  async renewLease(resource: string, holder: string, ttlMs: number): Promise<Lease> {
    const { leases, lease } = decideRenew(this.leases.get(resource) ?? [], resource, holder, ttlMs, this.clock.now());
    this.leases.set(resource, leases);
    return clone(lease);
  }

  async releaseLease(resource: string, holder: string): Promise<void> {
    const current = this.leases.get(resource);
    if (!current) return;
    const left = current.filter((l) => l.holder !== holder);
    if (left.length === 0) this.leases.delete(resource);
    else this.leases.set(resource, left);
  }

  async listLeases(resource: string): Promise<Lease[]> {
    return liveLeases(this.leases.get(resource) ?? [], this.clock.now()).map((l) => clone(l));
  }

  // ------------------------------------------------------------------ idempotency

  async putIdempotencyRecord(key: string, expiresAt: string, result?: unknown): Promise<{ created: boolean; record: IdempotencyRecord }> {
    const record = validateInput(IdempotencyRecordSchema, { key, expiresAt, ...(result !== undefined ? { result } : {}) }, 'idempotency record');
    const existing = this.liveRecord(key);
    if (existing) return { created: false, record: clone(existing) };
    this.idempotency.set(key, clone(record));
    return { created: true, record };
  }

  async completeIdempotencyRecord(key: string, result: unknown): Promise<void> {
    const existing = this.liveRecord(key);
    if (!existing) throw new NotFoundError('idempotency record', key);
    this.idempotency.set(key, validateInput(IdempotencyRecordSchema, { ...existing, result: clone(result) }, 'idempotency record'));
  }

  async getIdempotencyRecord(key: string): Promise<IdempotencyRecord | undefined> {
    const existing = this.liveRecord(key);
    return existing ? clone(existing) : undefined;
  }

  // ------------------------------------------------------------------ helpers

  private liveRecord(key: string): IdempotencyRecord | undefined {
    const existing = this.idempotency.get(key);
    if (!existing) return undefined;
    if (Date.parse(existing.expiresAt) <= this.clock.now().getTime()) {
      this.idempotency.delete(key);
      return undefined;
    }
    return existing;
  }

  private read<T>(schema: z.ZodType<T>, value: T | undefined, where: string): T | undefined {
    return value === undefined ? undefined : parseStored(schema, clone(value), where);
  }

  private mustRun(id: string): StoredRun {
    const stored = this.runs.get(id);
    if (!stored) throw new NotFoundError('run', id);
    return stored;
  }

  private mustVApp(stored: StoredRun, runId: string, vappId: string): StoredVApp {
    const vapp = stored.vapps.get(vappId);
    if (!vapp) throw new NotFoundError('vApp progress', `${runId}/${vappId}`);
    return vapp;
  }

  private assemble(stored: StoredRun): Run {
    let counters = stored.counters;
    const vapps: Record<string, VAppProgress> = {};
    for (const [id, v] of stored.vapps) {
      vapps[id] = clone(v.progress);
      counters = addCounters(counters, v.progress.counters);
    }
    return parseStored(RunSchema, clone({ ...stored.run, counters, vapps, errors: stored.errors }), `run ${stored.run.id}`);
  }
}

function clone<T>(value: T): T {
  return structuredClone(value);
}
