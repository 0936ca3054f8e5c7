/**
 * The backup copy job spec (issue 7): copy the restore points of a source job to another repository.
 *
 * - `source`: a backup job, or another copy job (copies of copies: the source's target repository is read).
 * - `mode`: `immediate` copies each newly committed source point as soon as it commits (inside the window);
 *   `periodic` copies, on its schedule, the latest point of each vApp as of the tick. A schedule is required
 *   for periodic and refused for immediate (where it would be silently meaningless).
 * - `window`: the copy window; omitted = any time.
 * - `retention`: applied on the target; `encryption`: of the target copy (re-encrypted when keys differ).
 *
 * Rules that need other jobs (the source exists, no cycle of copies, target differs from the source's
 * repository) are in `checkCopySource`, which takes a lookup instead of doing I/O.
 */
import { z } from 'zod';
import { encryptionSchema, idSchema, jobNameSchema, retentionFieldSchema } from './common.js';
import { retriesSchema } from './retry.js';
import { scheduleSchema } from './schedule.js';
import { JobValidationError, parseOrThrow } from './validation.js';
import type { FieldIssue } from './validation.js';
import { windowSchema } from './window.js';

export const copySourceSchema = z.strictObject({
  kind: z.enum(['backup', 'copy']),
  jobId: idSchema,
});

export const COPY_MODES = ['immediate', 'periodic'] as const;

export const copyJobSchema = z
  .strictObject({
    type: z.literal('copy').default('copy'),
    /** Assigned by the catalog; present on stored jobs, absent on a create request. */
    id: idSchema.optional(),
    name: jobNameSchema,
    description: z.string().max(1024).optional(),
    tenantId: idSchema,
    enabled: z.boolean().default(true),
    source: copySourceSchema,
    targetRepositoryId: idSchema,
    mode: z.enum(COPY_MODES),
    /** Periodic mode only: daily, monthly or everyHours. */
    schedule: scheduleSchema.optional(),
    /** Copy window; omitted = any time. */
    window: windowSchema.optional(),
    retries: retriesSchema,
    /** Retention on the target; validated by lib/domain/retention (see common.ts). */
    retention: retentionFieldSchema,
    /** Encryption of the target copy. */
    encryption: encryptionSchema.default({ enabled: false }),
  })
  .superRefine((job, ctx) => {
    if (job.id !== undefined && job.source.jobId === job.id) {
      ctx.addIssue({
        code: 'custom',
        path: ['source', 'jobId'],
        message: 'a copy job cannot copy itself; name the backup job (or another copy job) whose points to copy',
      });
    }
    if (job.mode === 'periodic') {
      if (job.schedule === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['schedule'],
          message: 'is required for mode "periodic": add a daily, monthly or everyHours schedule, or use mode "immediate"',
        });
      } else if (job.schedule.kind !== 'daily' && job.schedule.kind !== 'monthly' && job.schedule.kind !== 'everyHours') {
        ctx.addIssue({
          code: 'custom',
          path: ['schedule', 'kind'],
          message: `must be "daily", "monthly" or "everyHours" for a periodic copy, got ${JSON.stringify(job.schedule.kind)}; to copy each point as it commits use mode "immediate"`,
        });
      }
    } else if (job.schedule !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['schedule'],
        message: 'is not used in mode "immediate" (each point is copied as it commits); remove it, or use mode "periodic"',
      });
    }
  });

export type CopyJobSpec = z.output<typeof copyJobSchema>;
export type CopyJobInput = z.input<typeof copyJobSchema>;

/** Validates a copy job spec; throws JobValidationError (an InvalidInputError) naming every bad field. */
export function parseCopyJob(input: unknown): CopyJobSpec {
  return parseOrThrow(copyJobSchema, input, 'copy job');
}

/** What `checkCopySource` needs to know about a job the copy job refers to (directly or through a chain). */
export interface JobRef {
  id: string;
  type: 'backup' | 'copy';
  tenantId: string;
  targetRepositoryId: string;
  /** For copy jobs: the job they copy from. */
  sourceJobId?: string;
}

/**
 * Checks a copy job against the jobs it refers to: the source exists, is of the stated kind, belongs to the
 * same tenant, writes to a different repository than the copy's target, and following sources never comes
 * back to this job (a cycle would copy forever). Throws JobValidationError listing the problems.
 */
export function checkCopySource(job: CopyJobSpec, lookup: (jobId: string) => JobRef | undefined): void {
  const issues: FieldIssue[] = [];
  const source = lookup(job.source.jobId);
  if (source === undefined) {
    issues.push({ field: 'source.jobId', message: `no job ${JSON.stringify(job.source.jobId)} exists; name an existing backup or copy job` });
  } else {
    if (source.type !== job.source.kind) {
      issues.push({ field: 'source.kind', message: `job ${JSON.stringify(source.id)} is a ${source.type} job; set kind to ${JSON.stringify(source.type)}` });
    }
    if (source.tenantId !== job.tenantId) {
      issues.push({ field: 'source.jobId', message: `job ${JSON.stringify(source.id)} belongs to another tenant; a copy job copies its own tenant's jobs` });
    }
    if (source.targetRepositoryId === job.targetRepositoryId) {
      issues.push({
        field: 'targetRepositoryId',
        message: `is the repository the source already writes to (${JSON.stringify(source.targetRepositoryId)}); choose another repository`,
      });
    }
    const seen = new Set<string>(job.id === undefined ? [] : [job.id]);
    let cursor: JobRef | undefined = source;
    while (cursor !== undefined) {
      if (seen.has(cursor.id)) {
        issues.push({ field: 'source.jobId', message: `copying from ${JSON.stringify(job.source.jobId)} forms a cycle of copy jobs through ${JSON.stringify(cursor.id)}; copy from the backup job or a copy job outside the cycle` });
        break;
      }
      seen.add(cursor.id);
      cursor = cursor.type === 'copy' && cursor.sourceJobId !== undefined ? lookup(cursor.sourceJobId) : undefined;
    }
  }
  if (issues.length > 0) throw new JobValidationError('copy job', issues);
}
