import type { Catalog } from '../catalog/catalog.js';
import type { Clock } from '../domain/clock.js';
import { nextBackupRun, nextPeriodicCopyRun, parseBackupJob, parseCopyJob } from '../domain/jobs/index.js';
import type { Log } from '../log.js';
import { dueBackupRetries } from './backup-service.js';
import type { RunsMessage } from '../queue/messages.js';
import { sendMessages, type Queue } from '../queue/queue.js';

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
    return { started };
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
