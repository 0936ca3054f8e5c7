import { z } from 'zod';
import type { Catalog } from '../catalog/catalog.js';
import type { Clock } from '../domain/clock.js';
import { nextBackupRun, nextPeriodicCopyRun, parseBackupJob, parseCopyJob } from '../domain/jobs/index.js';
import type { Log } from '../log.js';
import { dueBackupRetries } from './backup-service.js';
import type { RunsMessage } from '../queue/messages.js';
import { sendMessages, type Queue } from '../queue/queue.js';
import { PROVIDER_TENANT_ID } from './upkeep-service.js';

/**
 * When the tick enqueues repository upkeep (UTC). Each repository gets a RetentionRun once a day and a GcRun
 * once a week; a slot missed (tick down, first deployment) is enqueued by the next tick that sees it.
 */
export const UpkeepScheduleSchema = z.object({
  /** Hour of the daily retention sweep. @default 3 */
  retentionHourUtc: z.number().int().min(0).max(23).default(3),
  /** Weekday of GC, 0 = Sunday. @default 0 */
  gcWeekdayUtc: z.number().int().min(0).max(6).default(0),
  /** Hour of GC on that weekday; after retention, so GC frees what retention deleted. @default 4 */
  gcHourUtc: z.number().int().min(0).max(23).default(4),
  /** GC's grace period; absent: the upkeep service's default (24 h). */
  gcGraceSeconds: z.number().int().nonnegative().optional(),
});
export type UpkeepSchedule = z.input<typeof UpkeepScheduleSchema>;

/** The run id of a repository's upkeep slot: every tick that sees the slot names the same run. */
export function upkeepRunId(kind: 'retention' | 'gc', repositoryId: string, slot: Date): string {
  return `run-upkeep-${kind}-${repositoryId}-${slot.toISOString().slice(0, 13).replace(/[-:]/g, '')}`;
}

const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;
/** A claim whose message was not confirmed sent after this long is from a crashed tick: send again. */
const CLAIM_STALE_MS = 5 * 60_000;
const slotClaimSchema = z.object({ runId: z.string(), claimedAt: z.string(), sent: z.boolean() });

/** The latest daily slot at `hour` UTC at or before `now`. */
function latestDailySlot(now: Date, hour: number): Date {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), hour);
  return new Date(today <= now.getTime() ? today : today - DAY_MS);
}

/** The latest weekly slot (weekday, hour UTC) at or before `now`. */
function latestWeeklySlot(now: Date, weekday: number, hour: number): Date {
  const daily = latestDailySlot(now, hour);
  const back = (daily.getUTCDay() - weekday + 7) % 7;
  return new Date(daily.getTime() - back * DAY_MS);
}

/** The run id of a scheduled slot: the same for every tick that sees the slot, so a run starts once. */
export function scheduledRunId(jobId: string, slot: string): string {
  return `run-${jobId}-${slot.replace(/[-:.]/g, '')}`;
}

/**
 * The scheduler tick (EventBridge, every minute): finds due jobs through the catalog's index, claims each
 * slot with a conditional update (of two ticks at once exactly one wins) and enqueues its run.
 */
export class SchedulerService {
  constructor(
    private readonly deps: {
      catalog: Catalog;
      runs: Queue;
      clock: Clock;
      log: Log;
      copies?: { dueImmediateCopies(now: Date): Promise<string[]> };
      /**
       * Removes this product's VM snapshots that a crash left behind (older than `snapshotMaxAgeMs`, longer
       * than any backup reads a disk), at most once per `sweepEveryMs`.
       */
      snapshots?: { sweep(olderThanMs: number): Promise<{ removed: number; failed: number }> };
      snapshotMaxAgeMs?: number;
      sweepEveryMs?: number;
      /** Scheduled repository upkeep (retention daily, GC weekly, per repository); absent: none. */
      upkeep?: UpkeepSchedule;
    },
  ) {}

  private lastSweep: number | undefined;

  async tick(): Promise<{ started: string[] }> {
    const { catalog, clock, log } = this.deps;
    const now = clock.now();
    const started: string[] = [];
    for (const job of await catalog.listDueJobs(now.toISOString())) {
      if (!job.nextRunAt) continue;
      let next: { startAt: Date } | undefined;
      let message: RunsMessage;
      const runId = scheduledRunId(job.id, job.nextRunAt);
      const requestedAt = now.toISOString();
      try {
        if (job.kind === 'backup') {
          const spec = parseBackupJob({ ...(job.spec as object), id: job.id });
          next = nextBackupRun(spec, now);
          message = { type: 'StartBackupRun', version: 1, runId, jobId: job.id, tenantId: job.tenantId, trigger: 'schedule', requestedAt };
        } else {
          const spec = parseCopyJob({ ...(job.spec as object), id: job.id });
          next = nextPeriodicCopyRun(spec, now);
          message = { type: 'StartCopyRun', version: 1, runId, jobId: job.id, tenantId: job.tenantId, trigger: 'schedule', requestedAt };
        }
      } catch (err) {
        // A job that no longer validates must not block the others; it stays due and is reported each tick.
        log.error('scheduled job is invalid; not started', { jobId: job.id, error: (err as Error).message });
        continue;
      }
      if (!(await catalog.claimDueJob(job.id, job.nextRunAt, next?.startAt.toISOString()))) continue;
      await sendMessages(this.deps.runs, 'runs', [message]);
      started.push(runId);
      log.info('scheduled run enqueued', { jobId: job.id, runId, nextRunAt: next?.startAt.toISOString() ?? null });
    }
    // Copy runs that waited for their window, paused vApps and copy retries (CopyService).
    if (this.deps.copies) started.push(...(await this.deps.copies.dueImmediateCopies(now)));
    for (const retry of await dueBackupRetries(catalog, now)) {
      await sendMessages(this.deps.runs, 'runs', [{ type: 'StartBackupRun', version: 1, runId: retry.runId, jobId: retry.jobId, tenantId: retry.tenantId, trigger: 'retry', requestedAt: now.toISOString(), vappIds: retry.vappIds }]);
      started.push(retry.runId);
      log.info('retry of failed vApps enqueued', { runId: retry.runId, vapps: retry.vappIds.length });
    }
    await this.sweepSnapshots(now);
    started.push(...(await this.scheduleUpkeep(now)));
    return { started };
  }

  /**
   * Enqueues each repository's upkeep once per slot. The slot is claimed with an idempotency record (of
   * racing ticks one sends); a claim left unsent by a crash is sent again later, and the run id drawn from
   * the slot makes any duplicate a no-op in the upkeep service.
   */
  private async scheduleUpkeep(now: Date): Promise<string[]> {
    const { catalog, log } = this.deps;
    if (!this.deps.upkeep) return [];
    const schedule = UpkeepScheduleSchema.parse(this.deps.upkeep);
    const sent: string[] = [];
    for (const repo of await catalog.listRepositories()) {
      const retentionSlot = latestDailySlot(now, schedule.retentionHourUtc);
      const gcSlot = latestWeeklySlot(now, schedule.gcWeekdayUtc, schedule.gcHourUtc);
      const wanted: Array<{ slot: Date; message: RunsMessage }> = [
        {
          slot: retentionSlot,
          message: { type: 'RetentionRun', version: 1, runId: upkeepRunId('retention', repo.id, retentionSlot), tenantId: repo.tenantId ?? PROVIDER_TENANT_ID, repositoryId: repo.id, trigger: 'schedule', requestedAt: now.toISOString() },
        },
        {
          slot: gcSlot,
          message: { type: 'GcRun', version: 1, runId: upkeepRunId('gc', repo.id, gcSlot), repositoryId: repo.id, ...(repo.tenantId !== undefined ? { tenantId: repo.tenantId } : {}), requestedAt: now.toISOString(), ...(schedule.gcGraceSeconds !== undefined ? { graceSeconds: schedule.gcGraceSeconds } : {}) },
        },
      ];
      for (const { slot, message } of wanted) {
        try {
          if (await this.claimUpkeepSlot(message.runId, slot, now)) {
            await sendMessages(this.deps.runs, 'runs', [message]);
            await catalog.completeIdempotencyRecord(`upkeep-slot:${message.runId}`, { runId: message.runId, claimedAt: now.toISOString(), sent: true });
            sent.push(message.runId);
            log.info('scheduled upkeep enqueued', { kind: message.type, repositoryId: repo.id, runId: message.runId });
          }
        } catch (err) {
          // One repository's failure must not stop the tick; the claim stays unsent and is retried.
          log.error('scheduled upkeep could not be enqueued', { repositoryId: repo.id, runId: message.runId, error: (err as Error).message });
        }
      }
    }
    return sent;
  }

  /** True when this tick should send the slot's message: it claimed the slot, or the claim is stale and unsent. */
  private async claimUpkeepSlot(runId: string, slot: Date, now: Date): Promise<boolean> {
    const key = `upkeep-slot:${runId}`;
    const claim = { runId, claimedAt: now.toISOString(), sent: false };
    // Kept past the next weekly slot, so a slot is never claimed twice.
    const expiresAt = new Date(slot.getTime() + 15 * DAY_MS).toISOString();
    const { created, record } = await this.deps.catalog.putIdempotencyRecord(key, expiresAt, claim);
    if (created) return true;
    const stored = slotClaimSchema.safeParse(record.result);
    if (!stored.success || stored.data.sent) return false;
    if (now.getTime() - Date.parse(stored.data.claimedAt) < CLAIM_STALE_MS) return false;
    await this.deps.catalog.completeIdempotencyRecord(key, claim);
    return true;
  }

  private async sweepSnapshots(now: Date): Promise<void> {
    const { snapshots, log } = this.deps;
    if (!snapshots) return;
    if (this.lastSweep !== undefined && now.getTime() - this.lastSweep < (this.deps.sweepEveryMs ?? 3600_000)) return;
    this.lastSweep = now.getTime();
    try {
      const report = await snapshots.sweep(this.deps.snapshotMaxAgeMs ?? 24 * 3600_000);
      if (report.removed > 0 || report.failed > 0) log.warn('stale snapshots of crashed backups swept', report);
    } catch (err) {
      // vCenter down must not stop the scheduler; the next sweep tries again.
      log.error('snapshot sweep failed', { error: (err as Error).message });
    }
  }
}
