import { z } from 'zod';
import { Id, IsoTime, JobKind, RepositoryRole, RepositorySchema, RestorePointSchema, RunKind, RunSchema, TenantSchema } from '../catalog/types.js';
import { backupJobSchema, copyJobSchema } from '../domain/jobs/index.js';

/**
 * Request and response schemas of the API. Requests are validated with them; the OpenAPI document is
 * generated from the same objects (openapi.ts), so the contract cannot drift from what is enforced.
 */

// ---------------------------------------------------------------------------------------------- common

export const MAX_PAGE_SIZE = 200;
export const DEFAULT_PAGE_SIZE = 50;

const Limit = z
  .string()
  .regex(/^[0-9]{1,6}$/, { message: 'must be a whole number' })
  .transform(Number)
  .pipe(z.number().int().min(1, { error: 'must be at least 1' }).max(MAX_PAGE_SIZE, { error: `must be at most ${MAX_PAGE_SIZE}` }))
  .describe(`page size, 1-${MAX_PAGE_SIZE} (default ${DEFAULT_PAGE_SIZE})`);
const Cursor = z.string().min(1).max(2048).describe('opaque cursor from the previous page\'s nextCursor');

export const PageQuery = z.strictObject({ limit: Limit.optional(), cursor: Cursor.optional() });
export type PageQuery = z.infer<typeof PageQuery>;

export const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable().describe('pass as ?cursor= for the next page; null on the last page') });

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().describe('stable, for scripts: VALIDATION_FAILED, NOT_FOUND, QUOTA_EXCEEDED, ...'),
      message: z.string().describe('what went wrong and how to fix it'),
      details: z.unknown().describe('structured details (field issues, quota figures), or null'),
    }),
  })
  .meta({ id: 'Error' });

/** `Idempotency-Key`: any visible ASCII, 1-255 characters (a UUID is a good choice). */
export const IdempotencyKey = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, { message: 'must be 1-255 visible ASCII characters (a UUID is a good choice)' });

export const params = <K extends string>(...names: K[]) => z.strictObject(Object.fromEntries(names.map((n) => [n, Id])) as Record<K, typeof Id>);

// ---------------------------------------------------------------------------------------------- tenants and repositories

export const TenantView = TenantSchema.meta({ id: 'Tenant' });
export const CreateTenantBody = z.strictObject({
  id: Id.describe('the vCD organization name or id'),
  name: z.string().min(1).max(256),
  quotaBytes: z.number().int().nonnegative().optional().describe('storage quota over all restore points; absent = unlimited'),
  vcdOrg: z.string().min(1).max(256).optional().describe('the vCD organization (name, URN or uuid) this tenant is; absent = the organization named like id'),
});
export const UpdateTenantBody = z
  .strictObject({
    name: z.string().min(1).max(256).optional(),
    quotaBytes: z.number().int().nonnegative().nullable().optional().describe('null removes the quota'),
  })
  .refine((b) => b.name !== undefined || b.quotaBytes !== undefined, { message: 'give name and/or quotaBytes' });

export const RepositoryView = RepositorySchema.meta({ id: 'Repository' });
export const RepositoryBody = z.strictObject({
  tenantId: Id.optional().describe('absent: a provider-wide repository every tenant may target'),
  url: z.string().min(1).max(2048),
  role: RepositoryRole,
  endpoint: z.url().optional(),
  bucket: z.string().min(1).max(255),
  prefix: z.string().max(1024).default(''),
  encrypted: z.boolean().optional().describe('whether the repository encrypts; jobs requiring encryption are refused against false'),
});
export const CreateRepositoryBody = RepositoryBody.extend({ id: Id });
export const RepositoryListQuery = PageQuery.extend({ tenantId: Id.optional() });

// ---------------------------------------------------------------------------------------------- jobs

export const JobView = z
  .object({
    id: Id,
    tenantId: Id,
    kind: JobKind,
    enabled: z.boolean(),
    nextRunAt: IsoTime.nullable().describe('when the scheduler starts it next; null when it runs on demand only or is disabled'),
    lastRunAt: IsoTime.nullable(),
    spec: z.unknown().describe('the job spec as validated (defaults filled in), see docs/jobs.md'),
  })
  .meta({ id: 'Job' });

/** Documentation shape of a job body; the service dispatches on `type` to parseBackupJob / parseCopyJob. */
export const JobBodyDoc = z
  .union([backupJobSchema.meta({ id: 'BackupJobSpec' }), copyJobSchema.meta({ id: 'CopyJobSpec' })])
  .describe('a backup or copy job spec (docs/jobs.md); `type` is required; `tenantId` defaults to the caller\'s tenant');
export const JobBody = z.looseObject({ type: z.enum(['backup', 'copy'], { error: 'is required: "backup" or "copy"' }) });

export const JobListQuery = PageQuery.extend({ tenantId: Id.optional(), kind: JobKind.optional() });

/** vCD vApp ids as the API takes them: ids end up in object keys, so nothing but a well-formed URN passes. */
export const VAPP_URN = /^urn:vcloud:vapp:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const RunNowBody = z
  .strictObject({
    vappIds: z
      .array(z.string().regex(VAPP_URN, { message: 'must be a vApp URN, urn:vcloud:vapp:<uuid>' }))
      .min(1)
      .max(1000)
      .optional()
      .describe('only these vApps of the job\'s scope, as URNs (default: the whole scope)'),
  })
  .default({});

export const RunAccepted = z
  .object({
    runId: Id,
    jobId: Id,
    tenantId: Id,
    kind: z.enum(['backup', 'copy']),
    state: z.literal('queued'),
    requestedAt: IsoTime,
    runUrl: z.string().describe('GET it to follow the run; 404 until the orchestrator picks the request up'),
  })
  .meta({ id: 'RunAccepted' });

// ---------------------------------------------------------------------------------------------- runs

export const RunView = RunSchema.meta({ id: 'Run' });
export const RunListQuery = PageQuery.extend({ jobId: Id.optional(), tenantId: Id.optional(), kind: RunKind.optional() });

// ---------------------------------------------------------------------------------------------- restore points

export const RetentionView = z
  .object({
    kept: z.boolean(),
    reasons: z.array(z.string()).describe('why retention keeps the point, e.g. "weekly (until 2026-03-29)", "short-term: 2 of 7 newest"'),
    notes: z.array(z.string()).describe('why no rule keeps it, for points the next retention run deletes'),
  })
  .nullable()
  .describe('null when the job has no retention policy (or no longer exists)');

export const RestorePointView = RestorePointSchema.extend({ retention: RetentionView }).meta({ id: 'RestorePoint' });
export const PointListQuery = PageQuery.extend({
  vappId: Id.optional(),
  jobId: Id.optional(),
  repositoryId: Id.optional(),
  tenantId: Id.optional(),
});

// ---------------------------------------------------------------------------------------------- usage

export const UsageView = z
  .object({
    tenantId: Id,
    quotaBytes: z.number().int().nullable().describe('null: unlimited'),
    usedBytes: z.number().int().describe('bytes stored for the tenant\'s live restore points (compressed, encrypted), each block counted once per tenant, in every repository'),
    availableBytes: z.number().int().nullable(),
    overQuota: z.boolean().describe('true: new backup and copy jobs, manual and scheduled runs are refused'),
    restorePoints: z.number().int(),
    computedAt: IsoTime.nullable().describe('when usedBytes was measured (after each commit and deletion); null: never'),
    repositories: z.array(z.object({ repositoryId: Id, usedBytes: z.number().int(), restorePoints: z.number().int() })),
  })
  .meta({ id: 'Usage' });

// ---------------------------------------------------------------------------------------------- restores

export const RestoreBody = z
  .looseObject({ pointId: Id.describe('the restore point to restore') })
  .describe('the restore point and the restore plan\'s options (target, name, network and storage mappings...), passed to the restore service');
