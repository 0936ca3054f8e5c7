/**
 * The backup job spec (issue 6, DESIGN §4/§6): what to protect, when, where, and how blocks are written.
 *
 * The schema is strict: an unknown field (a typo such as `blocksize`) is an error, not silently ignored,
 * because an ignored setting is a setting the user believes in but does not get. Defaults are filled in, and
 * the parsed spec keeps the JSON shape, so what the catalog stores re-parses to the same value.
 */
import { z } from 'zod';
import { encryptionSchema, idSchema, jobNameSchema, retentionFieldSchema } from './common.js';
import { retriesSchema } from './retry.js';
import { nextRunAfter, scheduleSchema } from './schedule.js';
import { scopeSchema } from './scope.js';
import { parseOrThrow } from './validation.js';
import { nextOpening, windowSchema } from './window.js';

export const MIN_BLOCK_SIZE = 256 * 1024;
export const MAX_BLOCK_SIZE = 8 * 1024 * 1024;
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;

/** Block size in bytes: a power of two from 256 KiB to 8 MiB (DESIGN §3), default 1 MiB. */
export const blockSizeSchema = z
  .number()
  .superRefine((value, ctx) => {
    const ok = Number.isInteger(value) && value >= MIN_BLOCK_SIZE && value <= MAX_BLOCK_SIZE && (value & (value - 1)) === 0;
    if (!ok) {
      ctx.addIssue({ code: 'custom', message: `must be a power of two between ${MIN_BLOCK_SIZE} and ${MAX_BLOCK_SIZE}, got ${value}` });
    }
  })
  .default(DEFAULT_BLOCK_SIZE);

export const DEFAULT_COMPRESSION_LEVEL = 3;

/** zstd level: 0 stores blocks uncompressed, 1-22 trade CPU for size (3 is zstd's own default). */
export const compressionSchema = z
  .strictObject({ level: z.number().int().min(0).max(22) })
  .default({ level: DEFAULT_COMPRESSION_LEVEL });

export const backupJobSchema = z
  .strictObject({
    type: z.literal('backup').default('backup'),
    /** Assigned by the catalog; present on stored jobs, absent on a create request. */
    id: idSchema.optional(),
    name: jobNameSchema,
    description: z.string().max(1024).optional(),
    /** The vCD organization that owns the job (and its restore points). */
    tenantId: idSchema,
    /** A disabled job keeps its points and settings but is not scheduled. */
    enabled: z.boolean().default(true),
    scope: scopeSchema,
    /** Default: manual only. */
    schedule: scheduleSchema.default({ kind: 'manual' }),
    /** Backup window; omitted = any time. */
    window: windowSchema.optional(),
    retries: retriesSchema,
    /** Short-term + GFS policy; validated by lib/domain/retention (see common.ts). */
    retention: retentionFieldSchema,
    targetRepositoryId: idSchema,
    blockSize: blockSizeSchema,
    compression: compressionSchema,
    encryption: encryptionSchema.default({ enabled: false }),
  })
  .superRefine((job, ctx) => {
    if (job.schedule.kind === 'afterJob' && job.id !== undefined && job.schedule.jobId === job.id) {
      ctx.addIssue({
        code: 'custom',
        path: ['schedule', 'jobId'],
        message: 'a job cannot run after itself; name another job, or use a daily, monthly or everyHours schedule',
      });
    }
  });

export type BackupJobSpec = z.output<typeof backupJobSchema>;
export type BackupJobInput = z.input<typeof backupJobSchema>;

/** Validates a backup job spec; throws JobValidationError (an InvalidInputError) naming every bad field. */
export function parseBackupJob(input: unknown): BackupJobSpec {
  return parseOrThrow(backupJobSchema, input, 'backup job');
}

/**
 * The next scheduled backup after `after`: the schedule tick, and when the run may start (the tick, or the
 * backup window's next opening when the tick falls outside it). Undefined for disabled jobs and for schedules
 * that do not fire on the clock (manual, afterJob).
 */
export function nextBackupRun(job: Pick<BackupJobSpec, 'schedule' | 'window' | 'enabled'>, after: Date): { tick: Date; startAt: Date } | undefined {
  if (!job.enabled) return undefined;
  const tick = nextRunAfter(job.schedule, after);
  if (tick === undefined) return undefined;
  const startAt = nextOpening(job.window, tick);
  return startAt === undefined ? undefined : { tick, startAt };
}
