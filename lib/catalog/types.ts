import { z } from 'zod';
import { describeIssues } from '../errors.js';
import { CatalogDataError, CatalogInputError } from './errors.js';

/**
 * Catalog entities (DESIGN §4). Each has a zod schema: adapters parse every item they read back, and
 * validate every entity they are asked to write. Times are ISO-8601 UTC strings exactly as
 * `Date.prototype.toISOString()` prints them (`2026-01-31T02:00:00.000Z`): one fixed width, so they sort
 * as strings, which the DynamoDB sort keys rely on.
 */

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const IsoTime = z
  .string()
  .regex(ISO_UTC, { message: 'expected a UTC time as Date.toISOString() prints it, e.g. 2026-01-31T02:00:00.000Z' })
  .refine((s) => !Number.isNaN(Date.parse(s)), { message: 'not a valid date' });

/** Ids end up inside keys such as `RUN#<id>`; `#` and control characters are refused so keys never collide. */
export const Id = z
  .string()
  .min(1, { message: 'must not be empty' })
  .max(256, { message: 'must be at most 256 characters' })
  .refine((s) => !/[#]/.test(s) && ![...s].some((c) => c.charCodeAt(0) < 0x20), { message: 'must not contain "#" or control characters' });

const Count = z.number().int().nonnegative();

// ---------------------------------------------------------------------------------------------- Tenant

/** A tenant is a vCD organization; `id` is the org name or id as vCD knows it. */
export const TenantSchema = z.object({
  id: Id,
  name: z.string().min(1),
  /** Storage quota over all of the tenant's restore points, in bytes; absent means unlimited. */
  quotaBytes: Count.optional(),
  /**
   * The vCD organization this tenant is (name, URN or uuid); absent: the organization named like the tenant
   * id. Every vApp, VDC, network or user the tenant names is looked up inside it only.
   */
  vcdOrg: z.string().min(1).max(256).optional(),
});
export type Tenant = z.infer<typeof TenantSchema>;

/**
 * What a tenant stores: the bytes its live restore points reference, as stored (compressed and encrypted),
 * each block counted once per tenant however many points share it. Recomputed from the repositories after
 * every commit and deletion (lib/services/usage-service.ts); quota checks read it.
 */
export const TenantUsageSchema = z.object({
  tenantId: Id,
  usedBytes: Count,
  blocks: Count,
  restorePoints: Count,
  repositories: z.array(z.object({ repositoryId: Id, usedBytes: Count, blocks: Count, restorePoints: Count })),
  computedAt: IsoTime,
});
export type TenantUsage = z.infer<typeof TenantUsageSchema>;

// ---------------------------------------------------------------------------------------------- Repository

export const RepositoryRole = z.enum(['primary', 'cloud']);
export type RepositoryRole = z.infer<typeof RepositoryRole>;

export const RepositorySchema = z.object({
  id: Id,
  /** Absent for a provider-wide repository shared by tenants. */
  tenantId: Id.optional(),
  /** The repository URL (`s3://bucket/prefix`, `file:///dir`), as `vcd-backup repo --repo` takes it. */
  url: z.string().min(1),
  role: RepositoryRole,
  /** S3 endpoint for S3-compatible storage outside AWS. */
  endpoint: z.string().min(1).optional(),
  bucket: z.string().min(1),
  prefix: z.string(),
  /**
   * Whether the repository encrypts, as the provider declares it; jobs that require encryption are refused
   * against `false`, and the orchestrator checks the repository's own config.json before writing anything.
   */
  encrypted: z.boolean().optional(),
});
export type Repository = z.infer<typeof RepositorySchema>;

// ---------------------------------------------------------------------------------------------- Job

export const JobKind = z.enum(['backup', 'copy']);
export type JobKind = z.infer<typeof JobKind>;

/** Any JSON value: the job's configuration is owned by the job model, the catalog stores it opaquely. */
const JsonValue: z.ZodType<unknown> = z.unknown().refine(
  (v) => {
    if (v === undefined) return false;
    try {
      return JSON.stringify(v) !== undefined;
    } catch {
      return false;
    }
  },
  { message: 'must be a JSON value (the job configuration)' },
);

export const JobSchema = z.object({
  id: Id,
  tenantId: Id,
  kind: JobKind,
  enabled: z.boolean(),
  /** When the scheduler should start the job next; absent when it only runs on demand. */
  nextRunAt: IsoTime.optional(),
  /** The schedule slot the scheduler last claimed (see Catalog.claimDueJob). */
  lastRunAt: IsoTime.optional(),
  /** The job's configuration (scope, schedule, window, retention, target...), validated by the job model. */
  spec: JsonValue,
});
export type Job = z.infer<typeof JobSchema>;

// ---------------------------------------------------------------------------------------------- Run

export const RunKind = z.enum(['backup', 'copy', 'restore', 'retention', 'gc']);
export type RunKind = z.infer<typeof RunKind>;
export const RunState = z.enum(['queued', 'running', 'succeeded', 'partial', 'failed', 'canceled']);
export type RunState = z.infer<typeof RunState>;
export const RUN_FINAL_STATES: readonly RunState[] = ['succeeded', 'partial', 'failed', 'canceled'];

/** Counters a run accumulates; every one is added atomically, so concurrent results never lose updates. */
export const COUNTER_NAMES = ['bytesRead', 'bytesUploaded', 'bytesWritten', 'blocksNew', 'blocksReused', 'blocksZero', 'disksDone', 'disksFailed'] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
export const RunCountersSchema = z.object(Object.fromEntries(COUNTER_NAMES.map((n) => [n, Count])) as Record<CounterName, typeof Count>);
export type RunCounters = z.infer<typeof RunCountersSchema>;
export type CounterDelta = Partial<RunCounters>;

export function zeroCounters(): RunCounters {
  return Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as RunCounters;
}

export const VAppState = z.enum(['pending', 'running', 'succeeded', 'failed', 'canceled']);
export type VAppState = z.infer<typeof VAppState>;

export const VAppProgressSchema = z.object({
  vappId: Id,
  state: VAppState,
  /** Disks the current attempt backs up (or restores). */
  disksTotal: Count,
  /** Disks of the current attempt reported done; each disk counts once, however often its result arrives. */
  disksDone: Count,
  /** Disks of the current attempt reported failed (each once). */
  disksFailed: Count,
  /** Attempts started so far (1 for the first try). */
  attempts: Count,
  /** When a failed vApp is retried next. */
  retryAt: IsoTime.optional(),
  error: z.string().optional(),
  /** The restore point this attempt writes. */
  pointId: Id.optional(),
  /** Counters of this vApp (also included in the run's totals). */
  counters: RunCountersSchema,
});
export type VAppProgress = z.infer<typeof VAppProgressSchema>;

export const RunErrorSchema = z.object({
  at: IsoTime,
  code: z.string().min(1),
  message: z.string(),
  vappId: Id.optional(),
  diskId: z.string().optional(),
});
export type RunError = z.infer<typeof RunErrorSchema>;

export const RunSchema = z.object({
  id: Id,
  jobId: Id,
  tenantId: Id,
  kind: RunKind,
  state: RunState,
  startedAt: IsoTime,
  endedAt: IsoTime.optional(),
  /** Totals: the run's own counters plus those of every vApp. */
  counters: RunCountersSchema,
  vapps: z.record(z.string(), VAppProgressSchema),
  errors: z.array(RunErrorSchema),
});
export type Run = z.infer<typeof RunSchema>;

/** What `createRun` takes: counters, vApp progress and errors start empty. */
export const NewRunSchema = RunSchema.omit({ counters: true, vapps: true, errors: true });
export type NewRun = z.infer<typeof NewRunSchema>;

// ---------------------------------------------------------------------------------------------- Restore point

export const PointDiskSchema = z.object({
  diskId: z.string().min(1),
  vmId: z.string().min(1),
  sizeBytes: Count,
  /** Key of the disk index in the repository (`points/{vappId}/{pointId}/disks/{diskId}.idx`). */
  indexKey: z.string().min(1),
  bytesUploaded: Count.optional(),
});
export type PointDisk = z.infer<typeof PointDiskSchema>;

export const RestorePointSchema = z.object({
  id: Id,
  vappId: Id,
  vappName: z.string(),
  tenantId: Id,
  jobId: Id,
  repositoryId: Id,
  createdAt: IsoTime,
  sizeBytes: Count,
  /** GFS and other flags (`weekly`, `monthly`, `yearly`, `full`...). */
  flags: z.array(z.string().min(1)),
  /** For a copied point: the point it was copied from. */
  sourcePointId: Id.optional(),
  disks: z.array(PointDiskSchema),
});
export type RestorePoint = z.infer<typeof RestorePointSchema>;

/**
 * The captured vApp model of a restore point (the content of its vapp.json), kept in the catalog so restores
 * are planned without opening the repository: the internet-facing API function holds no repository key.
 * At most MAX_POINT_MODEL_BYTES of JSON (DynamoDB items end at 400 KB); larger models are read from the
 * repository by the orchestrator.
 */
export const MAX_POINT_MODEL_BYTES = 300_000;
export const PointModelSchema = z.object({
  pointId: Id,
  tenantId: Id,
  model: JsonValue,
});
export type PointModel = z.infer<typeof PointModelSchema>;

/**
 * A GFS period given to a point of a chain (one repository, one vApp), e.g. `weekly:2026-W05`. A period is
 * given once: later points of the same period do not get the flag, and it stays given when its point expires.
 */
export const ChainPeriodSchema = z.object({
  repositoryId: Id,
  vappId: Id,
  period: z.string().min(1).regex(/^[^#]+$/, { message: 'must not contain "#"' }),
  pointId: Id,
  givenAt: IsoTime,
});
export type ChainPeriod = z.infer<typeof ChainPeriodSchema>;

// ---------------------------------------------------------------------------------------------- Lease

export const LeaseMode = z.enum(['exclusive', 'shared']);
export type LeaseMode = z.infer<typeof LeaseMode>;

export const LeaseSchema = z.object({
  /** What is leased, e.g. `repository:<id>`. */
  resource: z.string().min(1),
  holder: z.string().min(1),
  mode: LeaseMode,
  expiresAt: IsoTime,
});
export type Lease = z.infer<typeof LeaseSchema>;

// ---------------------------------------------------------------------------------------------- Idempotency

export const IdempotencyRecordSchema = z.object({
  key: z.string().min(1),
  /** What the first execution produced; absent while it is still in progress. */
  result: JsonValue.optional(),
  expiresAt: IsoTime,
});
export type IdempotencyRecord = z.infer<typeof IdempotencyRecordSchema>;

// ---------------------------------------------------------------------------------------------- helpers

/** Parses an entity given to a catalog method; throws CatalogInputError naming the field. */
export function validateInput<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new CatalogInputError(`invalid ${what}: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

/** Parses an item read back from storage; throws CatalogDataError naming the item and the field. */
export function parseStored<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new CatalogDataError(
      `catalog item ${where} does not match its schema (${describeIssues(parsed.error.issues)}); it was written by another version or edited by hand: rebuild the catalog from the repository`,
    );
  }
  return parsed.data;
}

/** Adds `delta` into `target` (only the known counters, only non-negative integers). */
export function addCounters(target: RunCounters, delta: CounterDelta): RunCounters {
  const out = { ...target };
  for (const name of COUNTER_NAMES) out[name] += delta[name] ?? 0;
  return out;
}

export function validateDelta(delta: CounterDelta): CounterDelta {
  for (const [name, value] of Object.entries(delta)) {
    if (!(COUNTER_NAMES as readonly string[]).includes(name)) throw new CatalogInputError(`invalid counters: ${name}: unknown counter (known: ${COUNTER_NAMES.join(', ')})`);
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) throw new CatalogInputError(`invalid counters: ${name}: must be a non-negative integer, got ${String(value)}`);
  }
  return delta;
}
