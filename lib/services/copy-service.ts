import { createHash } from 'node:crypto';
import type { CodecPool } from '../agent/codec-pool.js';
import { commitWithGfsFlags } from './commit-point.js';
import { storePointModel } from './point-model.js';
import type { Catalog } from '../catalog/catalog.js';
import { ConflictError } from '../catalog/errors.js';
import type { RestorePoint, Run, RunState, VAppProgress } from '../catalog/types.js';
import { RUN_FINAL_STATES } from '../catalog/types.js';
import type { Clock } from '../domain/clock.js';
import { isInside, nextOpening, nextRetryAt, parseBackupJob, parseCopyJob, pendingImmediateCopies, selectPeriodicCopies, type CopyJobSpec } from '../domain/jobs/index.js';
import { applyRetention, parseRetentionPolicy, type RetentionFlag, type RetentionPolicy } from '../domain/retention/index.js';
import { BackupError, InvalidInputError } from '../errors.js';
import type { Log } from '../log.js';
import { MAX_BLOCKS_PER_COPY_BATCH, type CopyBlocksBatch, type RepositoryRef, type StartCopyRun } from '../queue/messages.js';
import { chunks, sendMessages, type Queue } from '../queue/queue.js';
import { copyBlocks, copyPoint, planCopy, type CopyBlocksResult, type CopyOptions } from '../repository/copy-point.js';
import { indexKey } from '../repository/format.js';
import type { Repository } from '../repository/repository.js';
import { copyBatchId, copyPointCatalogId, immediateCopyRunId, parseCopyBatchId, pointLeaseResource, repositoryPointId, sourcePointCatalogId } from './copy-ids.js';
import { repositoryLeaseResource } from './upkeep-service.js';

/** An open repository; `pool` (optional) is a codec pool in its settings that copies reuse. */
export interface OpenRepository {
  readonly repository: Repository;
  readonly ref: RepositoryRef;
  readonly pool?: CodecPool;
}

/** Opens the repositories the catalog knows, by catalog id (RepositoryRegistry in local mode and on AWS). */
export interface CopyRepositoryOpener {
  /** The repository bound to `tenantId` (its blocks are named and encrypted under that tenant's keys). */
  open(repositoryId: string, tenantId: string): Promise<OpenRepository>;
}

export interface CopyServiceDeps {
  readonly catalog: Catalog;
  readonly repositories: CopyRepositoryOpener;
  /** The copy-tasks queue (CopyBlocksBatch). */
  readonly copyTasks: Queue;
  /** The runs queue (StartCopyRun). */
  readonly runs: Queue;
  readonly clock: Clock;
  readonly log: Log;
  /** Recomputes a tenant's usage after its points change (commit, retention). */
  readonly usage?: { recomputeQuietly(tenantId: string): Promise<void> };
  /** vApps planned at once in a run. @default 4 */
  readonly vappConcurrency?: number;
  /** Blocks in flight per batch and per commit. @default 16 */
  readonly blockConcurrency?: number;
  /** How long a copy protects its source point from retention (renewed at each dispatch). @default 8 days */
  readonly leaseTtlMs?: number;
  /** Blocks per CopyBlocksBatch (≤ 64). @default 64 */
  readonly batchBlocks?: number;
}

/** A copy job or run the message names does not exist or does not fit: retrying will not help. */
export class CopyRunError extends BackupError {}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The catch-up run of a missed immediate copy: one per job, source point and UTC day. */
function catchUpRunId(jobId: string, sourcePointId: string, now: Date): string {
  const day = now.toISOString().slice(0, 10);
  return `run-${jobId}-catchup-${createHash('sha256').update(`${jobId}\n${sourcePointId}\n${day}`).digest('hex').slice(0, 16)}`;
}
/** The shared lease a copy holds on its target repository (GC waits for it); longer than any vApp's copy. */
const TARGET_LEASE_TTL_MS = 2 * DAY_MS;
const targetLeaseHolder = (runId: string, vappId: string) => `copy:${runId}:${vappId}`;
const REQUEST_TTL_MS = 30 * DAY_MS;
/** Queued or running runs of a copy job the tick looks at (newest first). */
const TICK_RUNS = 500;

/** Failures that another attempt cannot fix. */
const PERMANENT_CODES = new Set(['POINT_NOT_FOUND', 'BLOCK_CORRUPT', 'BLOCK_MISSING', 'REPOSITORY_KEY', 'REPOSITORY_NOT_FOUND', 'REPOSITORY_FORMAT', 'SOURCE_POINT_GONE', 'JOB_NOT_FOUND', 'JOB_KIND', 'INVALID_INPUT', 'JOB_INVALID', 'INVALID_JOB', 'ENCRYPTION_REQUIRED', 'REPOSITORY_TAMPERED']);

interface CopyJob {
  readonly id: string;
  readonly tenantId: string;
  readonly spec: CopyJobSpec;
  /** The source job's kind and the repository it writes to (where this job reads). */
  readonly sourceKind: 'backup' | 'copy';
  readonly sourceRepositoryId: string;
}

/** What a run was asked to do, kept with the run so it can start later (window) and restart after a crash. */
interface CopyRequest {
  readonly requestedAt: string;
  readonly trigger: StartCopyRun['trigger'];
  readonly sourcePointIds?: string[];
  readonly vappIds?: string[];
}

const requestKey = (runId: string) => `copy-request:${runId}`;
const dispatchKey = (runId: string, vappId: string, attempt: number) => `copy-dispatch:${runId}/${vappId}/${attempt}`;
const leaseHolder = (runId: string) => `copy-run:${runId}`;

/**
 * Copy runs (DESIGN §1 "copy run", issue 7), in the style of the backup service:
 *
 * - `onSourcePointCommitted` (the backup service's `onPointCommitted`, and this service's own commits for
 *   copies of copies) requests an immediate-mode run per copy job watching the point's job: at once inside
 *   the copy window, otherwise the run waits `queued` and `dueImmediateCopies` (the scheduler tick) starts it
 *   when the window opens.
 * - `startRun` chooses one source point per vApp (immediate: the given points; periodic and manual: the
 *   latest point of each vApp as of the request, skipping vApps whose latest is on the target), leases the
 *   source point against retention, plans the blocks the target lacks and fans them out as CopyBlocksBatch
 *   messages; the vApp's progress counts batches (`disksTotal` = batches, `recordDiskDone` per batch id).
 * - `onCopyBatch` (the copy worker) copies one batch, idempotently, inside the window only; outside it the
 *   vApp pauses at the batch boundary until the window reopens (a new attempt re-plans what is missing).
 *   The batch that completes the vApp commits: point.json in the target, the catalog row with GFS flags,
 *   the job's retention on the target chain, lease released, copies of copies notified.
 * - failed vApps retry after the job's wait (`dueImmediateCopies` sends the retry); when the retries are
 *   used up, or the failure cannot heal, the vApp fails for good with its reason.
 */
export class CopyService {
  constructor(private readonly deps: CopyServiceDeps) {}

  // ------------------------------------------------------------------ requests

  /** Requests an immediate copy of `point` for every enabled immediate-mode copy job whose source is its job. */
  async onSourcePointCommitted(point: RestorePoint): Promise<string[]> {
    const { catalog, clock, log } = this.deps;
    const requested: string[] = [];
    for (const job of await catalog.listJobs({ tenantId: point.tenantId })) {
      if (job.kind !== 'copy' || !job.enabled) continue;
      let spec: CopyJobSpec;
      try {
        spec = parseCopyJob({ ...(job.spec as object), id: job.id });
      } catch (err) {
        log.error('copy job is invalid; a committed point is not copied by it', { jobId: job.id, error: (err as Error).message });
        continue;
      }
      if (!spec.enabled || spec.mode !== 'immediate' || spec.source.jobId !== point.jobId || spec.targetRepositoryId === point.repositoryId) continue;
      const msg: StartCopyRun = {
        type: 'StartCopyRun',
        version: 1,
        runId: immediateCopyRunId(job.id, point.id),
        jobId: job.id,
        tenantId: job.tenantId,
        trigger: 'immediate',
        requestedAt: clock.now().toISOString(),
        sourcePointIds: [point.id],
      };
      if (await this.request(msg, spec)) requested.push(msg.runId);
    }
    return requested;
  }

  /** Creates the run (queued) with its request, and sends it when the window is open. False: already finished. */
  private async request(msg: StartCopyRun, spec: CopyJobSpec): Promise<boolean> {
    const { catalog, clock, log } = this.deps;
    const { run } = await catalog.createRun({ id: msg.runId, jobId: msg.jobId, tenantId: msg.tenantId, kind: 'copy', state: 'queued', startedAt: clock.now().toISOString() });
    if (RUN_FINAL_STATES.includes(run.state)) return false;
    await this.saveRequest(msg);
    const now = clock.now();
    if (isInside(spec.window, now)) {
      await sendMessages(this.deps.runs, 'runs', [msg]);
      log.info('copy run requested', { runId: msg.runId, jobId: msg.jobId, trigger: msg.trigger });
    } else {
      log.info('copy run waits for the copy window', { runId: msg.runId, jobId: msg.jobId, opensAt: nextOpening(spec.window, now)?.toISOString() ?? null });
    }
    return true;
  }

  /** Keeps the first request of a run (its time fixes what a periodic run copies). */
  private async saveRequest(msg: StartCopyRun): Promise<CopyRequest> {
    const request: CopyRequest = {
      requestedAt: msg.requestedAt,
      trigger: msg.trigger,
      ...(msg.sourcePointIds ? { sourcePointIds: msg.sourcePointIds } : {}),
      ...(msg.vappIds && msg.trigger !== 'retry' ? { vappIds: msg.vappIds } : {}),
    };
    const expiresAt = new Date(this.deps.clock.now().getTime() + REQUEST_TTL_MS).toISOString();
    const { record } = await this.deps.catalog.putIdempotencyRecord(requestKey(msg.runId), expiresAt, request);
    return (record.result as CopyRequest | undefined) ?? request;
  }

  /**
   * The scheduler tick's part of copies (call it every minute): inside each copy job's window, starts the
   * runs that waited for it, resumes vApps paused when the window closed, retries failed vApps whose wait
   * is over, and finishes runs left unfinished by a crash. Returns the run ids it sent.
   */
  async dueImmediateCopies(now: Date = this.deps.clock.now()): Promise<string[]> {
    const { catalog, log } = this.deps;
    const sent: string[] = [];
    for (const job of await catalog.listJobs()) {
      if (job.kind !== 'copy' || !job.enabled) continue;
      let spec: CopyJobSpec;
      try {
        spec = parseCopyJob({ ...(job.spec as object), id: job.id });
      } catch {
        continue; // the scheduler reports invalid jobs
      }
      if (!spec.enabled || !isInside(spec.window, now)) continue;
      const runs = (await catalog.listRuns({ jobId: job.id }, TICK_RUNS)).filter((r) => r.kind === 'copy' && !RUN_FINAL_STATES.includes(r.state)).reverse();
      const messages: StartCopyRun[] = [];
      for (const run of runs) {
        if (run.state === 'queued') {
          const record = await catalog.getIdempotencyRecord(requestKey(run.id));
          const request = record?.result as CopyRequest | undefined;
          if (!request) {
            log.warn('queued copy run has no request (expired); it is failed', { runId: run.id });
            await this.failRun(run.id, 'REQUEST_EXPIRED', 'the run waited longer than its request is kept; the next commit or schedule requests a new one');
            continue;
          }
          messages.push({ type: 'StartCopyRun', version: 1, runId: run.id, jobId: run.jobId, tenantId: run.tenantId, trigger: request.trigger, requestedAt: request.requestedAt, ...(request.sourcePointIds ? { sourcePointIds: request.sourcePointIds } : {}), ...(request.vappIds ? { vappIds: request.vappIds } : {}) });
          continue;
        }
        const due = Object.values(run.vapps).filter((v) => (v.state === 'pending' || v.state === 'failed') && v.retryAt !== undefined && v.retryAt <= now.toISOString());
        if (due.length > 0) {
          messages.push({ type: 'StartCopyRun', version: 1, runId: run.id, jobId: run.jobId, tenantId: run.tenantId, trigger: 'retry', requestedAt: now.toISOString(), vappIds: due.map((v) => v.vappId) });
        } else await this.tryFinishRun(run.id);
      }
      if (messages.length > 0) {
        await sendMessages(this.deps.runs, 'runs', messages);
        sent.push(...messages.map((m) => m.runId));
        log.info('copy runs sent by the tick', { jobId: job.id, runs: messages.length });
      }
      // Catch-up waits for the job's runs in flight: they may be copying the very points that look missed.
      if (spec.mode === 'immediate' && runs.length === 0) {
        try {
          sent.push(...(await this.catchUpImmediateCopies(job.id, spec, now)));
        } catch (err) {
          // One job's catch-up failing (its source job deleted, a catalog error) must not stop the tick.
          log.error('missed immediate copies could not be caught up', { jobId: job.id, error: (err as Error).message });
        }
      }
    }
    return sent;
  }

  /**
   * Immediate mode copies every source point; points it missed (committed while the job was disabled, a
   * copy that failed for good, points older than the job) are requested here. Per vApp only the oldest
   * missed point, one per tick, so the target's chain grows in commit order. Each catch-up is a run of its
   * own, named by job, point and day: a point whose copy keeps failing is tried again once a day, not
   * every minute. A point whose own immediate run is still open is left to it.
   */
  private async catchUpImmediateCopies(jobId: string, spec: CopyJobSpec, now: Date): Promise<string[]> {
    const { catalog, log } = this.deps;
    const job = await this.loadJob(jobId);
    const sourcePoints = (await catalog.listRestorePoints({ jobId: spec.source.jobId })).filter((p) => p.repositoryId === job.sourceRepositoryId && p.tenantId === job.tenantId);
    if (sourcePoints.length === 0) return [];
    const targetPoints = (await catalog.listRestorePoints({ jobId: job.id })).filter((p) => p.repositoryId === spec.targetRepositoryId && p.sourcePointId);
    const pending = pendingImmediateCopies({
      now,
      window: spec.window,
      sourcePoints: sourcePoints.map((p) => ({ vappId: p.vappId, pointId: p.id, committedAt: new Date(p.createdAt) })),
      targetPoints: targetPoints.map((p) => ({ vappId: p.vappId, sourcePointId: p.sourcePointId! })),
    });
    const requested: string[] = [];
    const vappsDone = new Set<string>();
    for (const { point, copyAt } of pending) {
      if (vappsDone.has(point.vappId) || copyAt.getTime() > now.getTime()) continue;
      vappsDone.add(point.vappId);
      const own = await catalog.getRun(immediateCopyRunId(job.id, point.pointId));
      if (own && !RUN_FINAL_STATES.includes(own.state)) continue;
      const msg: StartCopyRun = {
        type: 'StartCopyRun',
        version: 1,
        runId: catchUpRunId(job.id, point.pointId, now),
        jobId: job.id,
        tenantId: job.tenantId,
        trigger: 'immediate',
        requestedAt: now.toISOString(),
        sourcePointIds: [point.pointId],
      };
      if (await this.request(msg, spec)) {
        requested.push(msg.runId);
        log.info('missed immediate copy requested', { jobId: job.id, runId: msg.runId, vappId: point.vappId, sourcePointId: point.pointId });
      }
    }
    return requested;
  }

  // ------------------------------------------------------------------ runs

  async startRun(msg: StartCopyRun): Promise<Run> {
    const { catalog, clock, log } = this.deps;
    const { run } = await catalog.createRun({ id: msg.runId, jobId: msg.jobId, tenantId: msg.tenantId, kind: 'copy', state: 'queued', startedAt: clock.now().toISOString() });
    if (RUN_FINAL_STATES.includes(run.state)) return run; // a redelivery of a finished run
    let job: CopyJob;
    try {
      if (run.kind !== 'copy') throw new CopyRunError('RUN_KIND', `run ${run.id} is a ${run.kind} run, not a copy run`);
      job = await this.loadJob(msg.jobId);
    } catch (err) {
      if (!(err instanceof CopyRunError) && !(err instanceof InvalidInputError)) throw err;
      await this.failRun(run.id, err.code, err.message);
      log.error('copy run failed before it started', { runId: run.id, code: err.code, error: err.message });
      return (await catalog.getRun(run.id))!;
    }
    const request = await this.saveRequest(msg);
    const now = clock.now();
    if (!isInside(job.spec.window, now)) {
      log.info('copy run waits for the copy window', { runId: run.id, opensAt: nextOpening(job.spec.window, now)?.toISOString() ?? null });
      return run;
    }
    await catalog.updateRunState(run.id, 'running', { expectedStates: ['queued'] }).catch((err: unknown) => {
      if (!(err instanceof ConflictError)) throw err;
    });
    const chosen = await this.choose(run, job, request, msg);
    log.info('copy run started', { runId: run.id, jobId: job.id, vapps: chosen.size, trigger: msg.trigger });
    const entries = [...chosen.entries()];
    let next = 0;
    const worker = async () => {
      while (next < entries.length) {
        const [vappId, pointId] = entries[next++]!;
        await this.dispatchVApp(run.id, job, vappId, pointId);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.deps.vappConcurrency ?? 4, entries.length) }, worker));
    await this.tryFinishRun(run.id);
    return (await catalog.getRun(run.id))!;
  }

  private async loadJob(jobId: string): Promise<CopyJob> {
    const { catalog } = this.deps;
    const job = await catalog.getJob(jobId);
    if (!job) throw new CopyRunError('JOB_NOT_FOUND', `copy job ${jobId} does not exist`);
    if (job.kind !== 'copy') throw new CopyRunError('JOB_KIND', `job ${jobId} is a ${job.kind} job, not a copy job`);
    const spec = parseCopyJob({ ...(job.spec as object), id: job.id, tenantId: job.tenantId });
    const found = await catalog.getJob(spec.source.jobId);
    // A job of another tenant is no source at all: a copy job reads its own tenant's points only.
    const source = found?.tenantId === job.tenantId ? found : undefined;
    if (!source) throw new CopyRunError('JOB_NOT_FOUND', `copy job ${jobId} copies job ${spec.source.jobId}, which does not exist`);
    const sourceRepositoryId = source.kind === 'backup' ? parseBackupJob({ ...(source.spec as object), id: source.id }).targetRepositoryId : parseCopyJob({ ...(source.spec as object), id: source.id }).targetRepositoryId;
    if (sourceRepositoryId === spec.targetRepositoryId) throw new CopyRunError('JOB_INVALID', `copy job ${jobId} copies into the repository it reads from (${sourceRepositoryId})`);
    return { id: job.id, tenantId: job.tenantId, spec, sourceKind: source.kind, sourceRepositoryId };
  }

  /**
   * vApp → repository point id of the source point to copy. vApps the run already chose keep their point;
   * the rest come from the request: the given points (immediate), or the latest point of each vApp as of
   * the request that the target does not have yet (periodic, manual).
   */
  private async choose(run: Run, job: CopyJob, request: CopyRequest, msg: StartCopyRun): Promise<Map<string, string>> {
    const { catalog, log } = this.deps;
    const current = (await catalog.getRun(run.id)) ?? run;
    const chosen = new Map<string, string>();
    if (msg.trigger === 'retry' && msg.vappIds) {
      for (const vappId of msg.vappIds) {
        const pointId = current.vapps[vappId]?.pointId;
        if (pointId) chosen.set(vappId, pointId);
      }
      return chosen;
    }
    const sourcePoints = (await catalog.listRestorePoints({ jobId: job.spec.source.jobId })).filter((p) => p.repositoryId === job.sourceRepositoryId && p.tenantId === job.tenantId);
    if (request.sourcePointIds) {
      const byId = new Map(sourcePoints.map((p) => [p.id, p]));
      for (const id of request.sourcePointIds) {
        const point = byId.get(id);
        if (!point) {
          if (!current.errors.some((e) => e.code === 'SOURCE_POINT_GONE' && e.message.includes(id))) {
            await catalog.appendRunError(run.id, { at: this.deps.clock.now().toISOString(), code: 'SOURCE_POINT_GONE', message: `source point ${id} is no longer in the catalog of job ${job.spec.source.jobId}; nothing to copy` });
          }
          continue;
        }
        const earlier = chosen.get(point.vappId);
        if (earlier) log.warn('two source points of one vApp in one copy run; the later is copied', { runId: run.id, vappId: point.vappId });
        chosen.set(point.vappId, repositoryPointId(point.id));
      }
    } else {
      const targetPoints = (await catalog.listRestorePoints({ jobId: job.id })).filter((p) => p.repositoryId === job.spec.targetRepositoryId && p.sourcePointId);
      const selection = selectPeriodicCopies({
        tick: new Date(request.requestedAt),
        sourcePoints: sourcePoints.map((p) => ({ vappId: p.vappId, pointId: p.id, committedAt: new Date(p.createdAt) })),
        targetPoints: targetPoints.map((p) => ({ vappId: p.vappId, sourcePointId: p.sourcePointId! })),
      });
      for (const s of selection.skipped) log.info('vApp skipped by the periodic copy', { runId: run.id, ...s });
      for (const p of selection.copy) {
        if (!request.vappIds || request.vappIds.includes(p.vappId)) chosen.set(p.vappId, repositoryPointId(p.pointId));
      }
    }
    // A run never changes its choice for a vApp it has started.
    for (const [vappId, progress] of Object.entries(current.vapps)) if (progress.pointId) chosen.set(vappId, progress.pointId);
    return chosen;
  }

  /**
   * Plans one vApp's copy and fans out its batches. Idempotent: a vApp done, failed for good, waiting for its
   * retry time, or whose current attempt finished its fan-out is left alone; an attempt whose fan-out did not
   * finish (a crash) is superseded by a new attempt that plans again what is still missing.
   */
  private async dispatchVApp(runId: string, job: CopyJob, vappId: string, pointId: string): Promise<void> {
    const { catalog, clock, log } = this.deps;
    const now = clock.now();
    const current = (await catalog.getRun(runId))?.vapps[vappId];
    if (current) {
      if (current.state === 'succeeded' || current.state === 'canceled') return;
      if (current.state === 'failed' && current.retryAt === undefined) return; // failed for good
      if ((current.state === 'failed' || current.state === 'pending') && current.retryAt !== undefined && current.retryAt > now.toISOString()) return;
      if (current.state === 'running' && (await catalog.getIdempotencyRecord(dispatchKey(runId, vappId, current.attempts)))) return; // in progress
    }
    const attempt = (current?.attempts ?? 0) + 1;
    const sourcePointId = sourcePointCatalogId(job.sourceKind, pointId, job.sourceRepositoryId);
    try {
      await catalog.acquireLease(pointLeaseResource(sourcePointId), leaseHolder(runId), 'shared', this.deps.leaseTtlMs ?? 8 * DAY_MS);
      // Batches deduplicate against blocks the target already has, which only this lease keeps from GC.
      await catalog.acquireLease(repositoryLeaseResource(job.spec.targetRepositoryId), targetLeaseHolder(runId, vappId), 'shared', TARGET_LEASE_TTL_MS);
      const [source, target] = await Promise.all([this.deps.repositories.open(job.sourceRepositoryId, job.tenantId), this.deps.repositories.open(job.spec.targetRepositoryId, job.tenantId)]);
      if (job.spec.encryption.enabled && !target.repository.encrypted) {
        throw new CopyRunError('ENCRYPTION_REQUIRED', `copy job ${job.id} requires encryption but repository ${job.spec.targetRepositoryId} stores plaintext; nothing was copied. Target an encrypted repository or turn the job's encryption off`);
      }
      const plan = await planCopy(source.repository, target.repository, pointId, { vappId, concurrency: this.deps.blockConcurrency ?? 16 });
      const batches = chunks(plan.blocks, Math.min(MAX_BLOCKS_PER_COPY_BATCH, this.deps.batchBlocks ?? MAX_BLOCKS_PER_COPY_BATCH));
      if (!(await catalog.startVAppAttempt(runId, vappId, { attempt, disksTotal: batches.length, pointId }))) return; // another delivery won
      const messages: CopyBlocksBatch[] = batches.map((blocks, index) => ({
        type: 'CopyBlocksBatch',
        version: 1,
        runId,
        batchId: copyBatchId(vappId, attempt, index),
        sourceRepository: source.ref,
        targetRepository: target.ref,
        blockKeys: blocks.map((b) => b.hash.toString('hex')),
      }));
      if (messages.length > 0) await sendMessages(this.deps.copyTasks, 'copyTasks', messages);
      const expiresAt = new Date(now.getTime() + REQUEST_TTL_MS).toISOString();
      await catalog.putIdempotencyRecord(dispatchKey(runId, vappId, attempt), expiresAt, { batches: messages.length });
      log.info('copy of a vApp planned, batches sent', { runId, vappId, pointId, attempt, batches: messages.length, blocks: plan.blocks.length, bytes: plan.bytes, blocksKnown: plan.blocksKnown, basis: plan.basisPointId, alreadyPresent: plan.alreadyPresent });
      if (messages.length === 0) await this.commitVApp(runId, vappId);
    } catch (err) {
      await this.failVApp(runId, job, vappId, attempt, pointId, err);
    }
  }

  /** Records a failed attempt: retried after the job's wait, or failed for good with its reason. */
  private async failVApp(runId: string, job: CopyJob, vappId: string, attempt: number, pointId: string | undefined, err: unknown): Promise<void> {
    const { catalog, clock, log } = this.deps;
    const now = clock.now();
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof BackupError ? err.code : 'VAPP_COPY_FAILED';
    const run = await catalog.getRun(runId);
    const failures = (run?.errors.filter((e) => e.vappId === vappId && e.diskId === undefined).length ?? 0) + 1;
    const retryAt = PERMANENT_CODES.has(code) ? undefined : nextRetryAt(job.spec.retries, failures, now);
    log.error('vApp copy failed', { runId, vappId, attempt, code, error: message, retryAt: retryAt?.toISOString() ?? null });
    const progress = run?.vapps[vappId];
    if (!progress || progress.attempts < attempt) await catalog.startVAppAttempt(runId, vappId, { attempt, disksTotal: 0, ...(pointId ? { pointId } : {}) });
    const reason = retryAt ? `${code}: ${message}` : `${code}: ${message} (failed for good after ${failures} attempt${failures === 1 ? '' : 's'})`;
    await catalog.updateVApp(runId, vappId, { state: 'failed', error: reason, retryAt: retryAt?.toISOString() ?? null });
    await catalog.appendRunError(runId, { at: now.toISOString(), code, message, vappId });
    // A retry takes the target lease again at its dispatch; meanwhile GC may run.
    await catalog.releaseLease(repositoryLeaseResource(job.spec.targetRepositoryId), targetLeaseHolder(runId, vappId));
    if (!retryAt && pointId) await catalog.releaseLease(pointLeaseResource(sourcePointCatalogId(job.sourceKind, pointId, job.sourceRepositoryId)), leaseHolder(runId));
    await this.tryFinishRun(runId);
  }

  // ------------------------------------------------------------------ the copy worker

  /**
   * Copies one batch (the copy worker). Idempotent: blocks the target has are not written again, and the
   * batch counts once for its vApp's attempt. Outside the copy window nothing is copied: the vApp pauses
   * (state pending, retryAt = the window's next opening) and resumes then with a new attempt.
   */
  async onCopyBatch(msg: CopyBlocksBatch): Promise<void> {
    const { catalog, clock, log } = this.deps;
    const id = parseCopyBatchId(msg.batchId);
    const hashes = msg.blockKeys.map((k) => Buffer.from(k, 'hex'));
    if (!id) {
      // Only runs of the service send batches, and a batch is bound to its run's tenant through the run:
      // one that names no run attempt has no owner whose keys could open the blocks.
      log.error('copy batch without a batch id of a service run; dropped', { runId: msg.runId });
      return;
    }
    const run = await catalog.getRun(msg.runId);
    const progress = run?.vapps[id.vappId];
    if (!run || RUN_FINAL_STATES.includes(run.state) || !progress || progress.attempts !== id.attempt || progress.state !== 'running') {
      log.debug('copy batch of a finished, paused or superseded attempt; skipped', { runId: msg.runId, batchId: msg.batchId });
      return;
    }
    const job = await this.loadJob(run.jobId);
    const now = clock.now();
    if (!isInside(job.spec.window, now)) {
      const opensAt = nextOpening(job.spec.window, now);
      log.info('copy window closed: the vApp pauses at this batch and resumes when it opens', { runId: run.id, vappId: id.vappId, batchId: msg.batchId, opensAt: opensAt?.toISOString() ?? null });
      await catalog.updateVApp(run.id, id.vappId, { state: 'pending', retryAt: (opensAt ?? now).toISOString() });
      // Paused until the window opens (hours): GC may run meanwhile; the resumed attempt plans afresh.
      await catalog.releaseLease(repositoryLeaseResource(job.spec.targetRepositoryId), targetLeaseHolder(run.id, id.vappId));
      return;
    }
    // The run's job decides repositories and tenant; the message only names them, so a batch can never make
    // the worker read or write under another tenant's keys or in a repository its job does not use.
    if (msg.sourceRepository.id !== job.sourceRepositoryId || msg.targetRepository.id !== job.spec.targetRepositoryId) {
      log.error('copy batch names repositories its job does not use; dropped', { runId: run.id, batchId: msg.batchId });
      return;
    }
    const [source, target] = await Promise.all([this.openRef(msg.sourceRepository, job.tenantId), this.openRef(msg.targetRepository, job.tenantId)]);
    let result: CopyBlocksResult;
    try {
      result = await copyBlocks(source.repository, target.repository, hashes, this.copyOptions(source, target));
    } catch (err) {
      const code = err instanceof BackupError ? err.code : 'COPY_BATCH_FAILED';
      const outcome = await catalog.recordDiskFailed(run.id, id.vappId, msg.batchId!);
      if (!outcome.duplicate) await catalog.appendRunError(run.id, { at: now.toISOString(), code, message: (err as Error).message, vappId: id.vappId, diskId: msg.batchId });
      log.error('copy batch failed', { runId: run.id, batchId: msg.batchId, code, error: (err as Error).message });
      if (outcome.settledVApp) await this.settleFailedBatches(run.id, job, id.vappId, outcome.progress, code, (err as Error).message);
      return;
    }
    const outcome = await catalog.recordDiskDone(run.id, id.vappId, msg.batchId!, { blocksNew: result.blocksCopied, bytesUploaded: result.bytesCopied, bytesWritten: result.bytesCopied, bytesRead: result.bytesRead });
    const p = outcome.progress;
    const stillToCommit = outcome.duplicate && p.state === 'running' && p.disksDone === p.disksTotal;
    if (outcome.completedVApp || stillToCommit) await this.commitVApp(run.id, id.vappId);
    else if (outcome.settledVApp) await this.settleFailedBatches(run.id, job, id.vappId, p, 'COPY_BATCH_FAILED', `${p.disksFailed} batch(es) failed`);
  }

  private async settleFailedBatches(runId: string, job: CopyJob, vappId: string, progress: VAppProgress, code: string, message: string): Promise<void> {
    await this.failVApp(runId, job, vappId, progress.attempts, progress.pointId, new BackupError(code, `${progress.disksFailed} of ${progress.disksTotal} batch(es) failed; last: ${message}`));
  }

  private async openRef(ref: RepositoryRef, tenantId: string): Promise<OpenRepository> {
    if (!ref.id) throw new CopyRunError('REPOSITORY_UNKNOWN', `copy batch names repository ${ref.url} without its catalog id`);
    return this.deps.repositories.open(ref.id, tenantId);
  }

  private copyOptions(source: OpenRepository, target: OpenRepository): CopyOptions {
    // Pools are created on first use only: under the same naming the target's is never needed.
    return {
      concurrency: this.deps.blockConcurrency ?? 16,
      pools: {
        get source() {
          return source.pool;
        },
        get target() {
          return target.pool;
        },
      },
    };
  }

  // ------------------------------------------------------------------ commit

  /**
   * Commits a vApp's copy: point.json in the target (copyPoint finds every block present and writes the
   * indexes, vapp.json and point.json), the catalog row with its GFS flags and `sourcePointId`, the job's
   * retention on the target chain, the lease released, and copies of this copy notified. Idempotent.
   */
  private async commitVApp(runId: string, vappId: string): Promise<void> {
    const { catalog, log } = this.deps;
    const run = await catalog.getRun(runId);
    const progress = run?.vapps[vappId];
    if (!run || !progress?.pointId) throw new CopyRunError('RUN_STATE', `run ${runId} has no point for vApp ${vappId}`);
    const pointId = progress.pointId;
    const job = await this.loadJob(run.jobId);
    const targetRepositoryId = job.spec.targetRepositoryId;
    const sourcePointId = sourcePointCatalogId(job.sourceKind, pointId, job.sourceRepositoryId);
    try {
      const [source, target] = await Promise.all([this.deps.repositories.open(job.sourceRepositoryId, job.tenantId), this.deps.repositories.open(targetRepositoryId, job.tenantId)]);
      const result = await copyPoint({ source: source.repository, target: target.repository, pointId, vappId, ...this.copyOptions(source, target) });
      if (!result.alreadyPresent && result.blocksCopied > 0) {
        // Blocks no batch brought (they vanished from the target between plan and commit): copied now.
        await catalog.addCounters(runId, { blocksNew: result.blocksCopied, bytesUploaded: result.bytesCopied, bytesWritten: result.bytesCopied }, vappId);
      }
      // point.json references every block now: GC may run again as far as this vApp is concerned.
      await catalog.releaseLease(repositoryLeaseResource(targetRepositoryId), targetLeaseHolder(runId, vappId));
      const descriptor = await target.repository.readPoint(vappId, pointId);
      const catalogId = copyPointCatalogId(pointId, targetRepositoryId);
      const policy = job.spec.retention ? parseRetentionPolicy(job.spec.retention, `retention of copy job ${job.id}`) : undefined;
      if (!(await catalog.getRestorePoint(catalogId))) {
        const sourcePoint = await catalog.getRestorePoint(sourcePointId);
        const model = descriptor.hasVAppMetadata ? await target.repository.getVAppMetadata(vappId, pointId).catch(() => undefined) : undefined;
        await storePointModel(catalog, log, { pointId: catalogId, tenantId: job.tenantId }, model);
        await commitWithGfsFlags(
        this.deps.catalog,
          {
            id: catalogId,
            vappId,
            vappName: sourcePoint?.vappName ?? vappId,
            tenantId: run.tenantId,
            jobId: job.id,
            repositoryId: targetRepositoryId,
            createdAt: new Date(descriptor.createdAt).toISOString(),
            sizeBytes: descriptor.disks.reduce((n, d) => n + d.bytesUploaded, 0),
            flags: [],
            sourcePointId,
            disks: descriptor.disks.map((d) => ({ diskId: d.diskId, vmId: d.vmId ?? sourcePoint?.disks.find((s) => s.diskId === d.diskId)?.vmId ?? 'unknown', sizeBytes: d.sizeBytes, indexKey: indexKey(vappId, pointId, d.diskId), bytesUploaded: d.bytesUploaded })),
          },
          policy,
        );
      }
      await catalog.updateVApp(runId, vappId, { state: 'succeeded', error: null, retryAt: null });
      log.info('copied restore point committed', { runId, vappId, pointId, targetRepositoryId, blocksCopiedAtCommit: result.blocksCopied });
      if (policy) await this.applyTargetRetention(target.repository, job, vappId, policy);
      await this.deps.usage?.recomputeQuietly(job.tenantId);
      await catalog.releaseLease(pointLeaseResource(sourcePointId), leaseHolder(runId));
      const committed = await catalog.getRestorePoint(catalogId);
      if (committed) await this.onSourcePointCommitted(committed);
    } catch (err) {
      if (err instanceof CopyRunError) throw err;
      await this.failVApp(runId, job, vappId, progress.attempts, pointId, err);
      return;
    }
    await this.tryFinishRun(runId);
  }


  /**
   * The copy job's policy on its chain in the target (this job's points of the vApp): expired points leave
   * the repository, then the catalog. A point another copy is reading (unexpired lease) is kept for now;
   * the next commit's retention deletes it once its copy has committed.
   */
  async applyTargetRetention(repository: Repository, job: Pick<CopyJob, 'id' | 'tenantId' | 'spec'>, vappId: string, policy: RetentionPolicy): Promise<string[]> {
    const { catalog, clock, log } = this.deps;
    const points = (await catalog.listRestorePoints({ repositoryId: job.spec.targetRepositoryId, vappId })).filter((p) => p.jobId === job.id && p.tenantId === job.tenantId);
    const plan = applyRetention(
      policy,
      points.map((p) => ({ id: p.id, createdAt: p.createdAt, flags: p.flags.filter((f): f is RetentionFlag => f === 'weekly' || f === 'monthly' || f === 'yearly') })),
      clock.now(),
    );
    const deleted: string[] = [];
    for (const d of plan.delete) {
      if ((await catalog.listLeases(pointLeaseResource(d.point.id))).length > 0) {
        log.info('retention keeps a point a copy is reading; it goes after that copy commits', { vappId, pointId: d.point.id });
        continue;
      }
      await repository.deletePoint(vappId, repositoryPointId(d.point.id));
      await catalog.deleteRestorePoint(d.point.id);
      deleted.push(d.point.id);
      log.info('retention deleted a copied restore point', { vappId, pointId: d.point.id, why: d.notes.join('; ') });
    }
    return deleted;
  }

  // ------------------------------------------------------------------ run end

  private async failRun(runId: string, code: string, message: string): Promise<void> {
    const { catalog, clock } = this.deps;
    const now = clock.now().toISOString();
    await catalog.appendRunError(runId, { at: now, code, message });
    await catalog.updateRunState(runId, 'failed', { endedAt: now, expectedStates: ['queued', 'running'] }).catch(() => undefined);
  }

  /**
   * Ends the run once it is running and every vApp has settled: succeeded, or failed for good. A vApp
   * paused by the window or waiting for a retry keeps the run open.
   */
  async tryFinishRun(runId: string): Promise<RunState | undefined> {
    const { catalog, clock } = this.deps;
    const run = await catalog.getRun(runId);
    if (!run || run.state !== 'running') return undefined;
    const vapps = Object.values(run.vapps);
    if (vapps.some((v) => v.state === 'running' || v.state === 'pending' || (v.state === 'failed' && v.retryAt !== undefined))) return undefined;
    const failed = vapps.filter((v) => v.state === 'failed').length;
    const sourceGone = run.errors.some((e) => e.code === 'SOURCE_POINT_GONE');
    const state: RunState = failed === 0 && !(sourceGone && vapps.length === 0) ? 'succeeded' : failed === vapps.length ? 'failed' : 'partial';
    try {
      await catalog.updateRunState(runId, state, { endedAt: clock.now().toISOString(), expectedStates: ['running'] });
      this.deps.log.info('copy run finished', { runId, state, vapps: vapps.length, failed, bytesCopied: run.counters.bytesUploaded, blocksCopied: run.counters.blocksNew });
      return state;
    } catch (err) {
      if (err instanceof ConflictError) return undefined;
      throw err;
    }
  }
}
