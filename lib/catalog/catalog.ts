import type {
  ChainPeriod,
  CounterDelta,
  IdempotencyRecord,
  Job,
  Lease,
  LeaseMode,
  NewRun,
  Repository,
  RestorePoint,
  Run,
  RunError,
  RunState,
  Tenant,
  TenantUsage,
  PointModel,
  VAppProgress,
  VAppState,
} from './types.js';

/**
 * The catalog port (DESIGN §4): an index of tenants, repositories, jobs, runs, restore points, leases and
 * idempotency records, for speed and for the API. The repository stays the truth.
 *
 * Contract, checked by test/contracts/catalog.contract.ts for every adapter:
 * - every entity given is validated (CatalogInputError names the field), every item read back is parsed
 *   (CatalogDataError names the item and the field); returned objects are copies the caller may mutate;
 * - `get*` return `undefined` for a missing id; methods that change an existing item throw NotFoundError;
 * - writes that can race are decided by the store (condition expressions, transactions), never by a read
 *   followed by a write: the methods below say what exactly one of several racing callers gets;
 * - times are ISO strings as `Date.toISOString()` prints them; "now" comes from the adapter's Clock.
 */
export interface Catalog {
  // ------------------------------------------------------------------ tenants and repositories
  /** Creates or replaces a tenant. */
  putTenant(tenant: Tenant): Promise<void>;
  getTenant(id: string): Promise<Tenant | undefined>;
  /** All tenants, ordered by id. */
  listTenants(): Promise<Tenant[]>;
  /** The captured model of a point (deleted with the point by deleteRestorePoint). */
  putPointModel(model: PointModel): Promise<void>;
  getPointModel(pointId: string): Promise<PointModel | undefined>;
  /** The tenant's last computed usage (replaced whole); undefined before the first computation. */
  putTenantUsage(usage: TenantUsage): Promise<void>;
  getTenantUsage(tenantId: string): Promise<TenantUsage | undefined>;

  /** Creates or replaces a repository. */
  putRepository(repository: Repository): Promise<void>;
  getRepository(id: string): Promise<Repository | undefined>;
  /** All repositories ordered by id; with `tenantId`, only that tenant's. */
  listRepositories(filter?: { tenantId?: string }): Promise<Repository[]>;

  // ------------------------------------------------------------------ jobs
  /** Creates or replaces a job (its schedule position included). */
  putJob(job: Job): Promise<void>;
  getJob(id: string): Promise<Job | undefined>;
  /** Jobs ordered by id; with `tenantId`, only that tenant's. */
  listJobs(filter?: { tenantId?: string }): Promise<Job[]>;
  /** Deletes a job; deleting a missing job succeeds. Runs and points stay. */
  deleteJob(id: string): Promise<void>;
  /** Enabled jobs whose `nextRunAt` is at or before `now`, earliest first (through an index, not a scan). */
  listDueJobs(now: string, limit?: number): Promise<Job[]>;
  /**
   * Claims the schedule slot `expectedNextRunAt` of an enabled job: moves `nextRunAt` to `newNextRunAt`
   * (absent: no next run) and sets `lastRunAt` to the claimed slot, only if `nextRunAt` still equals
   * `expectedNextRunAt`. Of any number of racing callers with the same slot, exactly one gets `true`.
   * `false` also for a missing or disabled job.
   */
  claimDueJob(jobId: string, expectedNextRunAt: string, newNextRunAt: string | undefined): Promise<boolean>;

  // ------------------------------------------------------------------ runs
  /**
   * Creates a run (state as given, no vApps, zero counters, no errors). Idempotent by id: when the run
   * already exists nothing changes and the stored run comes back with `created: false`.
   */
  createRun(run: NewRun): Promise<{ created: boolean; run: Run }>;
  /** The run with its per-vApp progress, totals (own counters plus every vApp's) and errors. */
  getRun(id: string): Promise<Run | undefined>;
  /** Runs of a job or of a tenant, newest first (`startedAt`), at most `limit` (default 50). */
  listRuns(filter: { jobId: string } | { tenantId: string }, limit?: number): Promise<Run[]>;
  /**
   * Sets the run's state (and `endedAt` when given). With `expectedStates`, only if the current state is one
   * of them; otherwise ConflictError (code RUN_STATE_CONFLICT). NotFoundError for a missing run.
   */
  updateRunState(id: string, state: RunState, options?: { endedAt?: string; expectedStates?: readonly RunState[] }): Promise<void>;
  /** Appends an error to the run (concurrent appends all land). */
  appendRunError(id: string, error: RunError): Promise<void>;
  /**
   * Adds to the counters of the run, or of one of its vApps (atomic ADD: concurrent calls never lose an
   * update). Not idempotent: use `recordDiskDone`'s `stats` for per-disk results that may be redelivered.
   */
  addCounters(runId: string, delta: CounterDelta, vappId?: string): Promise<void>;
  /**
   * Starts attempt number `attempt` of a vApp in a run: state `running`, `disksTotal`, zero disks done or
   * failed, no error, no `retryAt`. Idempotent under redelivery: returns `false` and changes nothing when
   * this attempt (or a later one) was already started. Counters are kept across attempts.
   * NotFoundError when the run does not exist.
   */
  startVAppAttempt(runId: string, vappId: string, attempt: { attempt: number; disksTotal: number; pointId?: string }): Promise<boolean>;
  /** Sets state, error, retry time or point of a vApp's progress (`null` clears a field). NotFoundError if missing. */
  updateVApp(runId: string, vappId: string, patch: { state?: VAppState; error?: string | null; retryAt?: string | null; pointId?: string | null }): Promise<VAppProgress>;
  /**
   * Records that a disk of the vApp's current attempt is done, adding `stats` to the vApp's counters in the
   * same atomic write. Exactly once per disk and attempt: a redelivered result changes nothing and returns
   * `duplicate: true`. `completedVApp` is true for exactly the one call that made every disk done.
   * NotFoundError when the vApp has no started attempt.
   */
  recordDiskDone(runId: string, vappId: string, diskId: string, stats?: CounterDelta): Promise<DiskOutcome>;
  /** Like `recordDiskDone` for a failed disk; `settledVApp` is true for the one call that made every disk reported. */
  recordDiskFailed(runId: string, vappId: string, diskId: string): Promise<DiskOutcome>;

  // ------------------------------------------------------------------ restore points and GFS periods
  /**
   * Commits a restore point and gives it the GFS `periods` of its chain (repository, vApp), all in one
   * transaction. Idempotent by point id: a point already committed returns `created: false` and changes
   * nothing. A period already given (to another point) fails the whole commit with ConflictError (code
   * GFS_PERIOD_GIVEN) and nothing is written.
   */
  commitRestorePoint(point: RestorePoint, periods?: readonly string[]): Promise<{ created: boolean }>;
  getRestorePoint(id: string): Promise<RestorePoint | undefined>;
  /**
   * Restore points, oldest first (`createdAt`). Exactly one filter:
   * `{ repositoryId, vappId }` the chain · `{ repositoryId }` · `{ vappId }` (any repository) ·
   * `{ tenantId }` · `{ jobId }`.
   */
  listRestorePoints(filter: PointFilter): Promise<RestorePoint[]>;
  /** Replaces a point's flags (retention assigns and clears them). NotFoundError when missing. */
  setRestorePointFlags(id: string, flags: readonly string[]): Promise<void>;
  /** Removes a point from the catalog; removing a missing point succeeds. Given periods stay given. */
  deleteRestorePoint(id: string): Promise<void>;
  /** The GFS periods given in a chain, ordered by period. */
  listChainPeriods(repositoryId: string, vappId: string): Promise<ChainPeriod[]>;

  // ------------------------------------------------------------------ leases
  /**
   * Acquires (or, for the same holder, renews) a lease for `ttlMs`. Exclusive: only when no other holder has
   * an unexpired lease. Shared: only when no other holder has an unexpired exclusive lease. Otherwise
   * ConflictError (code LEASE_HELD) naming the holders. Expired leases count as absent.
   */
  acquireLease(resource: string, holder: string, mode: LeaseMode, ttlMs: number): Promise<Lease>;
  /** Extends the holder's unexpired lease by `ttlMs` from now; ConflictError (code LEASE_LOST) when it expired or is gone. */
  renewLease(resource: string, holder: string, ttlMs: number): Promise<Lease>;
  /** Releases the holder's lease; releasing a lease not held succeeds. */
  releaseLease(resource: string, holder: string): Promise<void>;
  /** The unexpired leases of a resource. */
  listLeases(resource: string): Promise<Lease[]>;

  // ------------------------------------------------------------------ idempotency
  /**
   * Records `key` if no unexpired record exists (put-if-absent). `created: true` for exactly one of racing
   * callers; the others get the stored record (with its `result` once completed).
   */
  putIdempotencyRecord(key: string, expiresAt: string, result?: unknown): Promise<{ created: boolean; record: IdempotencyRecord }>;
  /** Stores the outcome of the work the key guards. NotFoundError when there is no unexpired record. */
  completeIdempotencyRecord(key: string, result: unknown): Promise<void>;
  /** The unexpired record for `key`. */
  getIdempotencyRecord(key: string): Promise<IdempotencyRecord | undefined>;
}

export interface DiskOutcome {
  /** The disk was already recorded for this attempt; nothing changed. */
  readonly duplicate: boolean;
  /** This call made every disk of the attempt done (true for exactly one call). */
  readonly completedVApp: boolean;
  /** This call made every disk of the attempt reported, done or failed (true for exactly one call). */
  readonly settledVApp: boolean;
  /** The vApp's progress after the call. */
  readonly progress: VAppProgress;
}

export type PointFilter =
  | { readonly repositoryId: string; readonly vappId: string }
  | { readonly repositoryId: string; readonly vappId?: undefined }
  | { readonly vappId: string; readonly repositoryId?: undefined }
  | { readonly tenantId: string }
  | { readonly jobId: string };
