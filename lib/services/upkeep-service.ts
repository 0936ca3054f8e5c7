import { z } from 'zod';
import type { Catalog } from '../catalog/catalog.js';
import { ConflictError } from '../catalog/errors.js';
import type { Job, RestorePoint, Run, RunState } from '../catalog/types.js';
import { RUN_FINAL_STATES } from '../catalog/types.js';
import type { Clock } from '../domain/clock.js';
import { parseBackupJob, parseCopyJob } from '../domain/jobs/index.js';
import { applyRetention, parseRetentionPolicy, type RetentionFlag, type RetentionPolicy } from '../domain/retention/index.js';
import { BackupError } from '../errors.js';
import type { Log } from '../log.js';
import type { GcRun, RetentionRun } from '../queue/messages.js';
import { collectGarbage, DEFAULT_GC_GRACE_MS, type GcReport } from '../repository/gc.js';
import { RepositoryLockedError, RepositoryLockLostError, type HeldLease, type LockMode, type RepositoryLock } from '../repository/lock.js';
import { pointLeaseResource, repositoryPointId } from './copy-ids.js';
import type { UpkeepRepositoryOpener } from './ports.js';

/** The catalog lease every writer of a repository shares and GC takes exclusively (DESIGN §3). */
export function repositoryLeaseResource(repositoryId: string): string {
  return `repository:${repositoryId}`;
}

/** Runs of upkeep belong to no job: they are filed under a pseudo job per kind and repository. */
export function upkeepJobId(kind: 'retention' | 'gc', repositoryId: string): string {
  return `upkeep-${kind}-${repositoryId}`;
}

/** The tenant a provider-wide upkeep run is filed under (a repository shared by tenants has no owner). */
export const PROVIDER_TENANT_ID = 'provider';

/** A message names a repository or job the catalog does not have, or one that is not its own: retrying will not help. */
export class UpkeepError extends BackupError {}

const FINDINGS_TTL_MS = 400 * 24 * 3600_000;
const findingsKey = (runId: string) => `upkeep-findings:${runId}`;

export const RetentionFindingsSchema = z.object({
  kind: z.literal('retention'),
  repositoryId: z.string(),
  jobs: z.number().int().nonnegative(),
  chains: z.number().int().nonnegative(),
  pointsDeleted: z.array(z.string()),
  /** Points the policy expired but a copy is reading (point lease): they go on a later run. */
  pointsKeptLeased: z.array(z.string()),
  jobsSkipped: z.array(z.object({ jobId: z.string(), reason: z.string() })),
  tenantsAffected: z.array(z.string()),
});
export type RetentionFindings = z.infer<typeof RetentionFindingsSchema>;

export const GcFindingsSchema = z.object({
  kind: z.literal('gc'),
  repositoryId: z.string(),
  graceMs: z.number().int().nonnegative(),
  dryRun: z.boolean(),
  blocksDeleted: z.number().int().nonnegative(),
  bytesFreed: z.number().int().nonnegative(),
  blocksKeptYoung: z.number().int().nonnegative(),
  bytesKeptYoung: z.number().int().nonnegative(),
  blocksReferenced: z.number().int().nonnegative(),
  blocksMissing: z.number().int().nonnegative(),
  orphanObjectsDeleted: z.number().int().nonnegative(),
  points: z.number().int().nonnegative(),
});
export type GcFindings = z.infer<typeof GcFindingsSchema>;

export const UpkeepFindingsSchema = z.discriminatedUnion('kind', [RetentionFindingsSchema, GcFindingsSchema]);
export type UpkeepFindings = z.infer<typeof UpkeepFindingsSchema>;

export interface UpkeepServiceDeps {
  readonly catalog: Catalog;
  readonly repositories: UpkeepRepositoryOpener;
  readonly clock: Clock;
  readonly log: Log;
  readonly usage?: { recomputeQuietly(tenantId: string): Promise<void> };
  /** GC grace when the message names none. @default DEFAULT_GC_GRACE_MS (24 h) */
  readonly gcGraceMs?: number;
  /** How long GC's exclusive lease lasts between renewals. @default 30 min */
  readonly gcLeaseTtlMs?: number;
}

/**
 * Repository upkeep (DESIGN §1, §3): retention sweeps over every job's chains in a repository, and GC
 * under the repository's exclusive catalog lease. Each is a Run (kind `retention` | `gc`) with its findings
 * kept in an idempotency record under the run id, so a redelivered message finds the finished run and does
 * nothing again.
 */
export class UpkeepService {
  constructor(private readonly deps: UpkeepServiceDeps) {}

  /** The findings of a finished upkeep run; undefined before it finished or for another kind of run. */
  async findings(runId: string): Promise<UpkeepFindings | undefined> {
    const parsed = UpkeepFindingsSchema.safeParse((await this.deps.catalog.getIdempotencyRecord(findingsKey(runId)))?.result);
    return parsed.success ? parsed.data : undefined;
  }

  // ------------------------------------------------------------------ retention

  async runRetention(msg: RetentionRun): Promise<Run> {
    const { catalog, clock, log } = this.deps;
    const { run, fresh } = await this.openRun(msg.runId, msg.jobId ?? upkeepJobId('retention', msg.repositoryId), msg.tenantId, 'retention');
    if (!fresh) return run;
    try {
      const repo = await catalog.getRepository(msg.repositoryId);
      if (!repo) throw new UpkeepError('REPOSITORY_UNKNOWN', `repository ${msg.repositoryId} is not in the catalog; nothing was deleted. Register it or drop the schedule that names it`);
      const findings: RetentionFindings = { kind: 'retention', repositoryId: repo.id, jobs: 0, chains: 0, pointsDeleted: [], pointsKeptLeased: [], jobsSkipped: [], tenantsAffected: [] };
      const affected = new Set<string>();
      for (const job of await this.jobsOf(msg)) {
        let target: { repositoryId: string; policy: RetentionPolicy | undefined };
        try {
          target = jobTarget(job);
        } catch (err) {
          // One job that no longer validates must not stop the sweep of the others; the run says which.
          findings.jobsSkipped.push({ jobId: job.id, reason: (err as Error).message });
          continue;
        }
        if (target.repositoryId !== repo.id || !target.policy) continue;
        findings.jobs++;
        const { repository } = await this.deps.repositories.open(repo.id, job.tenantId);
        // A job's chain is its own tenant's and job's points: a policy never reaches another's.
        const points = (await catalog.listRestorePoints({ repositoryId: repo.id })).filter((p) => p.jobId === job.id && p.tenantId === job.tenantId && (msg.vappId === undefined || p.vappId === msg.vappId));
        const chains = new Map<string, RestorePoint[]>();
        for (const p of points) chains.set(p.vappId, [...(chains.get(p.vappId) ?? []), p]);
        for (const [vappId, chain] of chains) {
          findings.chains++;
          const plan = applyRetention(
            target.policy,
            chain.map((p) => ({ id: p.id, createdAt: p.createdAt, flags: p.flags.filter((f): f is RetentionFlag => f === 'weekly' || f === 'monthly' || f === 'yearly') })),
            clock.now(),
          );
          for (const d of plan.delete) {
            if ((await catalog.listLeases(pointLeaseResource(d.point.id))).length > 0) {
              findings.pointsKeptLeased.push(d.point.id);
              continue;
            }
            if (msg.dryRun) {
              findings.pointsDeleted.push(d.point.id);
              continue;
            }
            // Repository first: a crash in between leaves a catalog row the next sweep deletes again.
            await repository.deletePoint(vappId, repositoryPointId(d.point.id));
            await catalog.deleteRestorePoint(d.point.id);
            findings.pointsDeleted.push(d.point.id);
            affected.add(job.tenantId);
            log.info('retention sweep deleted a restore point', { runId: run.id, jobId: job.id, vappId, pointId: d.point.id, why: d.notes.join('; ') });
          }
        }
      }
      findings.tenantsAffected = [...affected].sort();
      for (const tenantId of findings.tenantsAffected) await this.deps.usage?.recomputeQuietly(tenantId);
      return await this.finish(run.id, findings.jobsSkipped.length > 0 ? 'partial' : 'succeeded', findings);
    } catch (err) {
      return this.failRun(run.id, err);
    }
  }

  /** The jobs a retention run sweeps: the one it names, else every job of its tenant (or all, for the provider). */
  private async jobsOf(msg: RetentionRun): Promise<Job[]> {
    if (msg.jobId) {
      const job = await this.deps.catalog.getJob(msg.jobId);
      if (!job || job.tenantId !== msg.tenantId) throw new UpkeepError('JOB_NOT_FOUND', `job ${msg.jobId} does not exist for tenant ${msg.tenantId}; nothing was deleted`);
      return [job];
    }
    return this.deps.catalog.listJobs(msg.tenantId === PROVIDER_TENANT_ID ? undefined : { tenantId: msg.tenantId });
  }

  // ------------------------------------------------------------------ GC

  async runGc(msg: GcRun): Promise<Run> {
    const { catalog, clock, log } = this.deps;
    const repoRow = await catalog.getRepository(msg.repositoryId);
    const tenantId = msg.tenantId ?? repoRow?.tenantId ?? PROVIDER_TENANT_ID;
    const { run, fresh } = await this.openRun(msg.runId, upkeepJobId('gc', msg.repositoryId), tenantId, 'gc');
    if (!fresh) return run;
    try {
      if (!repoRow) throw new UpkeepError('REPOSITORY_UNKNOWN', `repository ${msg.repositoryId} is not in the catalog; nothing was collected. Register it or drop the schedule that names it`);
      // Unbound view: GC marks every tenant namespace's points, whatever tenant the run is filed under.
      const { repository } = await this.deps.repositories.open(repoRow.id);
      const graceMs = msg.graceSeconds !== undefined ? msg.graceSeconds * 1000 : (this.deps.gcGraceMs ?? DEFAULT_GC_GRACE_MS);
      const lock = new CatalogRepositoryLock(catalog, clock, repositoryLeaseResource(repoRow.id), `gc:${run.id}`, this.deps.gcLeaseTtlMs ?? 30 * 60_000);
      let report: GcReport;
      try {
        report = await collectGarbage(repository, { graceMs, clock, lock, dryRun: msg.dryRun ?? false });
      } catch (err) {
        if (err instanceof RepositoryLockedError) {
          // A backup or copy holds the repository: GC waits for the next slot rather than racing it.
          const at = clock.now().toISOString();
          await catalog.appendRunError(run.id, { at, code: err.code, message: `GC skipped: ${err.message}` });
          await this.end(run.id, 'failed');
          log.warn('GC skipped: the repository is in use', { runId: run.id, repositoryId: repoRow.id, holders: err.holders.map((h) => h.holder) });
          return (await catalog.getRun(run.id))!;
        }
        throw err;
      }
      const findings: GcFindings = {
        kind: 'gc',
        repositoryId: repoRow.id,
        graceMs,
        dryRun: report.dryRun,
        blocksDeleted: report.blocksDeleted,
        bytesFreed: report.bytesFreed,
        blocksKeptYoung: report.blocksKeptYoung,
        bytesKeptYoung: report.bytesKeptYoung,
        blocksReferenced: report.blocksReferenced,
        blocksMissing: report.blocksMissing,
        orphanObjectsDeleted: report.orphanObjectsDeleted,
        points: report.points,
      };
      if (report.blocksMissing > 0) {
        await catalog.appendRunError(run.id, { at: clock.now().toISOString(), code: 'BLOCKS_MISSING', message: `${report.blocksMissing} block(s) that committed points reference are missing from repository ${repoRow.id}: run \`vcd-backup repo verify\` on it to see which points are damaged` });
      }
      log.info('GC finished', { runId: run.id, ...findings });
      return await this.finish(run.id, report.blocksMissing > 0 ? 'partial' : 'succeeded', findings);
    } catch (err) {
      return this.failRun(run.id, err);
    }
  }

  // ------------------------------------------------------------------ runs

  /** Creates the run (idempotent by id); `fresh` is false for a redelivery of a run that already ended. */
  private async openRun(runId: string, jobId: string, tenantId: string, kind: 'retention' | 'gc'): Promise<{ run: Run; fresh: boolean }> {
    const { catalog, clock } = this.deps;
    const { run } = await catalog.createRun({ id: runId, jobId, tenantId, kind, state: 'queued', startedAt: clock.now().toISOString() });
    if (RUN_FINAL_STATES.includes(run.state)) return { run, fresh: false };
    // A redelivery of a run that died midway runs again: both kinds only delete, and decide afresh.
    await catalog.updateRunState(run.id, 'running', { expectedStates: ['queued', 'running'] });
    return { run, fresh: true };
  }

  private async finish(runId: string, state: RunState, findings: UpkeepFindings): Promise<Run> {
    const { catalog, clock } = this.deps;
    const expiresAt = new Date(clock.now().getTime() + FINDINGS_TTL_MS).toISOString();
    const { created } = await catalog.putIdempotencyRecord(findingsKey(runId), expiresAt, findings);
    if (!created) await catalog.completeIdempotencyRecord(findingsKey(runId), findings);
    await this.end(runId, state);
    return (await catalog.getRun(runId))!;
  }

  private async end(runId: string, state: RunState): Promise<void> {
    await this.deps.catalog.updateRunState(runId, state, { endedAt: this.deps.clock.now().toISOString(), expectedStates: ['queued', 'running'] }).catch((err: unknown) => {
      if (!(err instanceof ConflictError)) throw err;
    });
  }

  /** Permanent failures end the run visibly; anything else is rethrown so the queue redelivers. */
  private async failRun(runId: string, err: unknown): Promise<Run> {
    if (!(err instanceof UpkeepError) && !(err instanceof RepositoryLockLostError)) throw err;
    const { catalog, clock, log } = this.deps;
    await catalog.appendRunError(runId, { at: clock.now().toISOString(), code: err.code, message: err.message });
    await this.end(runId, 'failed');
    log.error('upkeep run failed', { runId, code: err.code, error: err.message });
    return (await catalog.getRun(runId))!;
  }
}

/** A job's target repository and retention policy (both job kinds write to their target). */
function jobTarget(job: Job): { repositoryId: string; policy: RetentionPolicy | undefined } {
  const spec = job.kind === 'backup' ? parseBackupJob({ ...(job.spec as object), id: job.id, tenantId: job.tenantId }) : parseCopyJob({ ...(job.spec as object), id: job.id });
  return { repositoryId: spec.targetRepositoryId, policy: spec.retention ? parseRetentionPolicy(spec.retention, `retention of job ${job.id}`) : undefined };
}

/**
 * The repository lease of the service, in the catalog (DESIGN §3): backups and copies hold it shared for
 * as long as they write, GC takes it exclusively. Renewed only on explicit refresh: a Lambda has no timer
 * that outlives its invocation, and GC checks `assertHeld` before every delete batch.
 */
export class CatalogRepositoryLock implements RepositoryLock {
  constructor(
    private readonly catalog: Catalog,
    private readonly clock: Clock,
    private readonly resource: string,
    private readonly holder: string,
    private readonly ttlMs: number,
  ) {}

  async acquire(mode: LockMode): Promise<HeldLease> {
    const { catalog, clock, resource, holder, ttlMs } = this;
    try {
      await catalog.acquireLease(resource, holder, mode, ttlMs);
    } catch (err) {
      if (err instanceof ConflictError && err.code === 'LEASE_HELD') {
        const holders = (await catalog.listLeases(resource)).filter((l) => l.holder !== holder);
        throw new RepositoryLockedError(resource, mode, holders.map((l) => ({ holder: l.holder, mode: l.mode, expiresAt: l.expiresAt })));
      }
      throw err;
    }
    let expiresAt = new Date(clock.now().getTime() + ttlMs);
    let released = false;
    return {
      holder,
      mode,
      get expiresAt() {
        return expiresAt;
      },
      assertHeld() {
        if (released) throw new RepositoryLockLostError(holder, resource, 'it was released');
        if (clock.now().getTime() >= expiresAt.getTime()) throw new RepositoryLockLostError(holder, resource, 'it expired');
      },
      async refresh() {
        try {
          const lease = await catalog.renewLease(resource, holder, ttlMs);
          expiresAt = new Date(lease.expiresAt);
        } catch (err) {
          if (err instanceof ConflictError) throw new RepositoryLockLostError(holder, resource, err.message);
          throw err;
        }
      },
      async release() {
        if (released) return;
        released = true;
        await catalog.releaseLease(resource, holder);
      },
    };
  }
}
