import { z } from 'zod';
import type { Catalog } from '../catalog/catalog.js';
import { ConflictError } from '../catalog/errors.js';
import type { RestorePoint, Run, RunState, Tenant, VAppProgress } from '../catalog/types.js';
import { RUN_FINAL_STATES } from '../catalog/types.js';
import type { Clock } from '../domain/clock.js';
import { nextRetryAt, parseBackupJob, type BackupJobSpec } from '../domain/jobs/index.js';
import { uuidIn } from '../domain/restore/planner.js';
import { applyRetention, parseRetentionPolicy, type RetentionFlag, type RetentionPolicy } from '../domain/retention/index.js';
import { BackupError, InvalidInputError } from '../errors.js';
import type { Log } from '../log.js';
import type { DiskBackupTask, StartBackupRun, TaskResult } from '../queue/messages.js';
import { sendMessages, type Queue } from '../queue/queue.js';
import { FORMAT_VERSION, indexKey, type PointDescriptor, type PointDisk } from '../repository/format.js';
import type { Repository } from '../repository/repository.js';
import { pointLeaseResource } from './copy-ids.js';
import { diskTaskId, pointIdFor } from './point-ids.js';
import { commitWithGfsFlags } from './commit-point.js';
import { storePointModel } from './point-model.js';
import type { CapturedDisk, RepositoryOpener, VAppCapture, VAppRef, VcdGateway, VSphereGateway } from './ports.js';
import { repositoryLeaseResource } from './upkeep-service.js';

/** Longer than any vApp's disks take to back up: a lease left by a crash only delays GC this long. */
const BACKUP_LEASE_TTL_MS = 2 * 24 * 3600_000;
const backupLeaseHolder = (runId: string, vappId: string) => `backup:${runId}:${vappId}`;

export interface BackupServiceDeps {
  readonly catalog: Catalog;
  readonly vcd: VcdGateway;
  readonly repositories: RepositoryOpener;
  readonly agentTasks: Queue;
  readonly clock: Clock;
  readonly log: Log;
  /** Called after a point commits, e.g. to start immediate-mode copy jobs watching the job. */
  readonly onPointCommitted?: (point: RestorePoint) => Promise<void>;
  /** vApps captured at once. @default 4 */
  readonly vappConcurrency?: number;
  /** Recomputes a tenant's usage after its points change (commit, retention). */
  readonly usage?: { recomputeQuietly(tenantId: string): Promise<void> };
  /** vSphere: changed areas (CBT) for incrementals and removal of the snapshots once the disks are in. */
  readonly vsphere?: Pick<VSphereGateway, 'changedAreas' | 'removeSnapshot'>;
  /** Told once per run when it ends (exactly one caller wins the final state), e.g. to publish a metric. */
  readonly onRunFinished?: (runId: string, state: RunState) => void;
}

/** A job or run the message names does not exist, or is not a backup: retrying will not help. */
export class BackupRunError extends BackupError {}

/**
 * Backup runs (DESIGN §1): `startRun` resolves the job's scope and, per vApp, captures it under maintenance
 * mode, stores vapp.json and fans out one DiskBackupTask per disk; `onTaskResult` records each disk exactly
 * once and, with the vApp's last disk, commits the restore point, assigns its GFS flags and applies the
 * job's retention to the chain. Every step is idempotent under redelivery.
 */
export class BackupService {
  constructor(private readonly deps: BackupServiceDeps) {}

  async startRun(msg: StartBackupRun): Promise<Run> {
    const { catalog, clock, log } = this.deps;
    let { run } = await catalog.createRun({ id: msg.runId, jobId: msg.jobId, tenantId: msg.tenantId, kind: 'backup', state: 'queued', startedAt: clock.now().toISOString() });
    if (RUN_FINAL_STATES.includes(run.state)) {
      // A retry reopens its run for the failed vApps (attempts count on across tries); anything else is a
      // redelivery of a finished run. Of two racing retries, the conditional reopen lets one through.
      if (msg.trigger !== 'retry' || !msg.vappIds || !(run.state === 'partial' || run.state === 'failed')) return run;
      try {
        await catalog.updateRunState(run.id, 'queued', { expectedStates: ['partial', 'failed'] });
      } catch (err) {
        if (err instanceof ConflictError) return run;
        throw err;
      }
      run = (await catalog.getRun(run.id))!;
    }
    let spec: BackupJobSpec;
    let vapps: VAppRef[];
    try {
      ({ spec } = await this.loadJob(msg.jobId));
      if (spec.tenantId !== msg.tenantId) {
        throw new BackupRunError('JOB_NOT_FOUND', `backup job ${msg.jobId} does not exist for tenant ${msg.tenantId}`);
      }
      vapps = await this.vappsOfRun(run, spec, msg);
    } catch (err) {
      // Retrying cannot fix a missing or invalid job: fail the run with the reason, visibly, and ack.
      if (!(err instanceof BackupRunError) && !(err instanceof InvalidInputError)) throw err;
      const now = clock.now().toISOString();
      await catalog.appendRunError(run.id, { at: now, code: err.code, message: err.message });
      await catalog.updateRunState(run.id, 'failed', { endedAt: now, expectedStates: ['queued', 'running'] }).catch(() => undefined);
      log.error('backup run failed before it started', { runId: run.id, code: err.code, error: err.message });
      return (await catalog.getRun(run.id))!;
    }
    log.info('backup run started', { runId: run.id, jobId: msg.jobId, vapps: vapps.length, trigger: msg.trigger });
    const limit = this.deps.vappConcurrency ?? 4;
    let next = 0;
    const worker = async () => {
      while (next < vapps.length) {
        const vapp = vapps[next++]!;
        await this.dispatchVApp(run, spec, vapp, msg.trigger === 'retry');
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, vapps.length) }, worker));
    await catalog.updateRunState(run.id, 'running', { expectedStates: ['queued'] }).catch((err: unknown) => {
      if (!(err instanceof ConflictError)) throw err;
    });
    await this.tryFinishRun(run.id);
    return (await catalog.getRun(run.id))!;
  }

  /**
   * The vApps this run backs up: the job's scope resolved inside the tenant's vCD organization. Run-now and
   * retry ids must be a subset of it; any other id (another tenant's vApp, a deleted one, a malformed id)
   * is reported and never touched, so no message can point the orchestrator at a vApp the job does not own.
   */
  private async vappsOfRun(run: Run, spec: BackupJobSpec, msg: StartBackupRun): Promise<VAppRef[]> {
    const { catalog, clock } = this.deps;
    const tenant = await catalog.getTenant(spec.tenantId);
    if (!tenant) throw new BackupRunError('TENANT_NOT_FOUND', `tenant ${spec.tenantId} of job ${spec.id} does not exist`);
    await this.checkQuota(tenant);
    if (spec.encryption.enabled) {
      // Checked on the repository's own config.json, before any vApp is touched: the catalog row may lie.
      const { repository } = await this.deps.repositories.open(spec.targetRepositoryId, tenant.id);
      if (!repository.encrypted) {
        throw new BackupRunError('ENCRYPTION_REQUIRED', `job ${spec.id} requires encryption but repository ${spec.targetRepositoryId} stores plaintext; nothing was backed up. Target an encrypted repository or turn the job's encryption off`);
      }
    }
    const resolution = await this.deps.vcd.resolveScope({ tenantId: tenant.id, ...(tenant.vcdOrg !== undefined ? { vcdOrg: tenant.vcdOrg } : {}) }, spec.scope);
    const at = clock.now().toISOString();
    if (resolution.outside.length > 0 && run.state === 'queued' && msg.trigger !== 'retry') {
      await catalog.appendRunError(run.id, { at, code: 'SCOPE_NOT_FOUND', message: `not found in tenant ${tenant.id}'s organization (deleted or never there), skipped: ${resolution.outside.join(', ')}` });
    }
    if (!msg.vappIds) return [...resolution.vapps];
    const inScope = new Map(resolution.vapps.map((v) => [vappKey(v.id), v]));
    const chosen: VAppRef[] = [];
    const refused: string[] = [];
    for (const id of msg.vappIds) {
      const vapp = inScope.get(vappKey(id));
      if (vapp) chosen.push(vapp);
      else refused.push(id);
    }
    if (refused.length > 0) {
      const message = `not in job ${spec.id}'s scope inside tenant ${tenant.id}'s organization, nothing done for: ${refused.join(', ')}`;
      if (chosen.length === 0) throw new BackupRunError('VAPP_NOT_IN_SCOPE', message);
      await catalog.appendRunError(run.id, { at, code: 'VAPP_NOT_IN_SCOPE', message });
    }
    return chosen;
  }

  /** Scheduled runs obey the quota as the API's run-now does: a tenant at or over it starts nothing. */
  private async checkQuota(tenant: Tenant): Promise<void> {
    if (tenant.quotaBytes === undefined) return;
    const usage = await this.deps.catalog.getTenantUsage(tenant.id);
    if (usage && usage.usedBytes >= tenant.quotaBytes) {
      throw new BackupRunError('QUOTA_EXCEEDED', `tenant ${tenant.id} stores ${usage.usedBytes} bytes of its ${tenant.quotaBytes}-byte quota; nothing was backed up. Free space or ask the provider to raise the quota`);
    }
  }

  private async loadJob(jobId: string): Promise<{ spec: BackupJobSpec }> {
    const job = await this.deps.catalog.getJob(jobId);
    if (!job) throw new BackupRunError('JOB_NOT_FOUND', `backup job ${jobId} does not exist`);
    if (job.kind !== 'backup') throw new BackupRunError('JOB_KIND', `job ${jobId} is a ${job.kind} job, not a backup job`);
    return { spec: parseBackupJob({ ...(job.spec as object), id: job.id, tenantId: job.tenantId }) };
  }

  /** Captures one vApp and fans out its disk tasks; a failure marks the vApp failed with its retry time. */
  private async dispatchVApp(run: Run, spec: BackupJobSpec, vapp: VAppRef, isRetry: boolean): Promise<void> {
    const { catalog, log } = this.deps;
    const current = run.vapps[vapp.id];
    if (current && !isRetry && current.state !== 'pending') return; // dispatched before this redelivery
    if (current && isRetry && current.state !== 'failed') return;
    const attempt = (current?.attempts ?? 0) + 1;
    const pointId = pointIdFor(new Date(run.startedAt), run.id, vapp.id, attempt);
    const { repository, ref } = await this.deps.repositories.open(spec.targetRepositoryId, spec.tenantId);
    let dispatched = false;
    try {
      // The shared repository lease keeps service GC away until this vApp commits or fails: the agent's
      // uploads deduplicate against blocks that only the lease protects (DESIGN §3). Taken before the
      // capture, so GC holding it fails the vApp (retried later) without a needless maintenance mode.
      await catalog.acquireLease(repositoryLeaseResource(spec.targetRepositoryId), backupLeaseHolder(run.id, vapp.id), 'shared', BACKUP_LEASE_TTL_MS);
      await this.deps.vcd.withCapture(
        vapp.id,
        async (capture) => {
          await repository.putVAppMetadata(vapp.id, pointId, capture.model);
          const parent = await this.parentPoint(spec.targetRepositoryId, vapp.id, repository, spec.tenantId);
          const tasks: DiskBackupTask[] = [];
          for (const disk of capture.disks) {
            const parentDisk = parent?.disks.get(disk.diskId);
            tasks.push({
              type: 'DiskBackupTask',
              version: 2,
              taskId: diskTaskId(run.id, vapp.id, disk.diskId, attempt),
              runId: run.id,
              jobId: run.jobId,
              tenantId: run.tenantId,
              vappId: vapp.id,
              vmId: disk.vmId,
              diskId: disk.diskId,
              pointId,
              repository: ref,
              blockSize: parentDisk?.blockSize ?? spec.blockSize,
              parentIndexKey: parentDisk ? indexKey(vapp.id, parent!.pointId, disk.diskId) : undefined,
              diskLocator: disk.locator,
              ...(await this.changedAreasOf(run, vapp.id, disk, parentDisk)),
              attempt,
            });
          }
          if (capture.snapshots.length > 0) await this.recordSnapshots(run.id, vapp.id, attempt, capture);
          // Tasks first, then the attempt: a crash in between leaves no attempt, so the redelivered StartBackupRun
          // captures again and resends the same tasks (same ids, same point). A result that beats the attempt
          // record fails its delivery and is simply handled on the next one.
          if (tasks.length > 0) await sendMessages(this.deps.agentTasks, 'agentTasks', tasks);
          await catalog.startVAppAttempt(run.id, vapp.id, { attempt, disksTotal: capture.disks.length, pointId });
          dispatched = true;
          log.info('vApp captured, disk tasks sent', { runId: run.id, vappId: vapp.id, disks: tasks.length, incremental: parent !== undefined, snapshots: capture.snapshots.length });
        },
        { name: `${SNAPSHOT_NAME_PREFIX}${run.id}`, description: `vcd-backup point ${pointId} of vApp ${vapp.id} (run ${run.id}, attempt ${attempt})` },
      );
      const progress = (await catalog.getRun(run.id))?.vapps[vapp.id];
      if (progress && progress.disksTotal === 0 && progress.state === 'running') await this.commitVApp(run.id, vapp.id, vapp.name);
    } catch (err) {
      if (!dispatched) {
        await this.failVApp(run, spec, vapp.id, attempt, err);
        return;
      }
      // The disks are already on their way: their results decide the vApp. Record what went wrong after that
      // (typically leaving maintenance mode, which is alerted separately) without failing the backup.
      const message = err instanceof Error ? err.message : String(err);
      log.error('vApp dispatched, but a later step failed', { runId: run.id, vappId: vapp.id, error: message });
      await catalog.appendRunError(run.id, { at: this.deps.clock.now().toISOString(), code: err instanceof BackupError ? err.code : 'VAPP_DISPATCH', message, vappId: vapp.id });
    }
  }

  /**
   * CBT: the areas of a snapshot disk changed since the parent point read the same disk, so the agent reads
   * only those. Anything that makes the parent's changeId unusable (no CBT then, another device, a resize, a
   * CBT reset that vSphere reports as a fault) means a full read, and the run says why.
   */
  private async changedAreasOf(run: Run, vappId: string, disk: CapturedDisk, parentDisk: PointDisk | undefined): Promise<{ changedAreas?: Array<{ offset: number; length: number }> }> {
    const vsphere = this.deps.vsphere;
    if (!vsphere || !disk.snapshot || !parentDisk) return {};
    const { of, disk: current } = disk.snapshot;
    let why: string;
    if (!parentDisk.changeId) why = 'the previous point has no CBT changeId (CBT was off, or it was not read from a snapshot)';
    else if (parentDisk.deviceKey !== current.deviceKey) why = `the disk is another device now (key ${current.deviceKey}, was ${parentDisk.deviceKey ?? 'unknown'})`;
    else if (parentDisk.sizeBytes !== current.sizeBytes) why = `the disk was resized (${parentDisk.sizeBytes} → ${current.sizeBytes} bytes)`;
    else {
      const answer = await vsphere.changedAreas(of, current, parentDisk.changeId);
      if ('areas' in answer) return { changedAreas: answer.areas };
      why = answer.fullRead;
    }
    await this.deps.catalog.appendRunError(run.id, { at: this.deps.clock.now().toISOString(), code: 'CBT_FULL_READ', message: `disk ${disk.diskId} is read in full: ${why}`, vappId, diskId: disk.diskId });
    return {};
  }

  /** What commit needs of the snapshots: which to remove, and each disk's changeId for the next incremental. */
  private async recordSnapshots(runId: string, vappId: string, attempt: number, capture: VAppCapture): Promise<void> {
    const value: SnapshotRecord = {
      snapshots: capture.snapshots.map((s) => ({ vcenter: s.vcenter, vm: s.vm, snapshot: s.snapshot })),
      disks: Object.fromEntries(capture.disks.flatMap((d) => (d.snapshot ? [[d.diskId, { deviceKey: d.snapshot.disk.deviceKey, changeId: d.snapshot.disk.changeId }]] : []))),
    };
    const expiresAt = new Date(this.deps.clock.now().getTime() + 8 * 24 * 3600_000).toISOString();
    const { created } = await this.deps.catalog.putIdempotencyRecord(snapshotRecordKey(runId, vappId, attempt), expiresAt, value);
    if (!created) await this.deps.catalog.completeIdempotencyRecord(snapshotRecordKey(runId, vappId, attempt), value);
  }

  private async snapshotRecord(runId: string, vappId: string, attempt: number): Promise<SnapshotRecord | undefined> {
    const parsed = snapshotRecordSchema.safeParse((await this.deps.catalog.getIdempotencyRecord(snapshotRecordKey(runId, vappId, attempt)))?.result);
    return parsed.success ? parsed.data : undefined;
  }

  /** Removes an attempt's snapshots (best effort: the sweeper removes what fails here). */
  private async removeSnapshots(runId: string, vappId: string, attempt: number): Promise<void> {
    const record = await this.snapshotRecord(runId, vappId, attempt);
    for (const s of record?.snapshots ?? []) {
      await this.deps.vsphere?.removeSnapshot(s).catch((err: unknown) => {
        this.deps.log.warn('a snapshot could not be removed; the sweeper will', { runId, vappId, vm: s.vm, snapshot: s.snapshot, error: (err as Error).message });
      });
    }
  }

  /**
   * The newest committed point of the tenant's chain, with its disks (from the repository, the truth). Only
   * the tenant's own points qualify: another tenant's are under other keys and none of its business.
   */
  private async parentPoint(repositoryId: string, vappId: string, repository: Repository, tenantId: string) {
    const points = (await this.deps.catalog.listRestorePoints({ repositoryId, vappId })).filter((p) => p.tenantId === tenantId);
    for (const candidate of [...points].reverse()) {
      try {
        const point = await repository.readPoint(vappId, candidate.id);
        return { pointId: point.pointId, disks: new Map(point.disks.map((d) => [d.diskId, d])) };
      } catch (err) {
        this.deps.log.warn('catalog point missing from the repository; trying an older parent', { pointId: candidate.id, error: (err as Error).message });
      }
    }
    return undefined;
  }

  private async failVApp(run: Run, spec: BackupJobSpec, vappId: string, attempt: number, err: unknown): Promise<void> {
    const { catalog, clock, log } = this.deps;
    const now = clock.now();
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof BackupError ? err.code : 'VAPP_BACKUP_FAILED';
    log.error('vApp backup failed', { runId: run.id, vappId, attempt, code, error: message });
    await catalog.startVAppAttempt(run.id, vappId, { attempt, disksTotal: 0 });
    const retryAt = nextRetryAt(spec.retries, attempt, now);
    await catalog.updateVApp(run.id, vappId, { state: 'failed', error: `${code}: ${message}`, retryAt: retryAt?.toISOString() ?? null });
    await catalog.appendRunError(run.id, { at: now.toISOString(), code, message, vappId });
    await catalog.releaseLease(repositoryLeaseResource(spec.targetRepositoryId), backupLeaseHolder(run.id, vappId));
  }

  async onTaskResult(msg: TaskResult): Promise<void> {
    const { catalog, clock } = this.deps;
    // A late result of an earlier attempt (its point id differs) must not count for the current one.
    const current = (await catalog.getRun(msg.runId))?.vapps[msg.vappId];
    if (current?.pointId !== undefined && current.pointId !== msg.pointId) {
      this.deps.log.warn('result of an earlier attempt ignored', { runId: msg.runId, vappId: msg.vappId, diskId: msg.diskId, pointId: msg.pointId });
      return;
    }
    if (!msg.ok) {
      const outcome = await catalog.recordDiskFailed(msg.runId, msg.vappId, msg.diskId);
      if (!outcome.duplicate) {
        await catalog.appendRunError(msg.runId, { at: clock.now().toISOString(), code: msg.error!.code, message: msg.error!.message, vappId: msg.vappId, diskId: msg.diskId });
      }
      if (outcome.settledVApp) await this.settleFailedDisks(msg.runId, msg.vappId, outcome.progress);
      return;
    }
    const stats = msg.stats;
    const outcome = await catalog.recordDiskDone(msg.runId, msg.vappId, msg.diskId, {
      bytesRead: stats?.bytesRead ?? 0,
      bytesUploaded: stats?.bytesUploaded ?? 0,
      blocksNew: stats?.blocksNew ?? 0,
      blocksReused: stats?.blocksReused ?? 0,
      blocksZero: stats?.blocksZero ?? 0,
      disksDone: 1,
    });
    const p = outcome.progress;
    // The completing call commits; a redelivery after a crash between the two finds the vApp still running.
    const stillToCommit = outcome.duplicate && p.state === 'running' && p.disksDone === p.disksTotal;
    if (outcome.completedVApp || stillToCommit) await this.commitVApp(msg.runId, msg.vappId);
    else if (outcome.settledVApp) await this.settleFailedDisks(msg.runId, msg.vappId, p);
  }

  private async settleFailedDisks(runId: string, vappId: string, progress: VAppProgress): Promise<void> {
    const run = await this.deps.catalog.getRun(runId);
    if (!run) return;
    const { spec } = await this.loadJob(run.jobId);
    const retryAt = nextRetryAt(spec.retries, progress.attempts, this.deps.clock.now());
    await this.deps.catalog.updateVApp(runId, vappId, { state: 'failed', error: `${progress.disksFailed} disk(s) failed`, retryAt: retryAt?.toISOString() ?? null });
    await this.deps.catalog.releaseLease(repositoryLeaseResource(spec.targetRepositoryId), backupLeaseHolder(runId, vappId));
    await this.removeSnapshots(runId, vappId, progress.attempts);
    await this.tryFinishRun(runId);
  }

  /**
   * Commits a vApp's point: point.json in the repository (its presence commits the point), then the catalog
   * row with the GFS flags, then retention of the chain. Idempotent: each write is by the point's id.
   */
  private async commitVApp(runId: string, vappId: string, vappName?: string): Promise<void> {
    const { catalog, clock, log } = this.deps;
    const run = await catalog.getRun(runId);
    const progress = run?.vapps[vappId];
    if (!run || !progress?.pointId) throw new BackupRunError('RUN_STATE', `run ${runId} has no point for vApp ${vappId}`);
    const pointId = progress.pointId;
    const { spec } = await this.loadJob(run.jobId);
    const { repository } = await this.deps.repositories.open(spec.targetRepositoryId, run.tenantId);
    const descriptors = await repository.readDiskDescriptors(vappId, pointId);
    if (descriptors.size !== progress.disksTotal) {
      throw new BackupRunError('POINT_INCOMPLETE', `point ${pointId} has ${descriptors.size} of ${progress.disksTotal} disks in the repository; the agent's results are ahead of its writes`);
    }
    const now = clock.now();
    const existing = await catalog.getRestorePoint(pointId);
    const createdAt = existing?.createdAt ?? now.toISOString();
    const parent = await this.parentPoint(spec.targetRepositoryId, vappId, repository, run.tenantId);
    // The changeId each disk had in its snapshot: the next incremental asks vSphere what changed since.
    const snapshots = await this.snapshotRecord(runId, vappId, progress.attempts);
    const disks = [...descriptors.values()]
      .map((d) => {
        const cbt = snapshots?.disks[d.diskId];
        return cbt ? { ...d, deviceKey: cbt.deviceKey, ...(cbt.changeId !== null ? { changeId: cbt.changeId } : {}) } : d;
      })
      .sort((a, b) => a.diskId.localeCompare(b.diskId));
    const point: PointDescriptor = {
      format: FORMAT_VERSION,
      pointId,
      vappId,
      createdAt,
      parentPointId: parent && parent.pointId !== pointId ? parent.pointId : null,
      sourcePointId: null,
      hasVAppMetadata: true,
      disks,
    };
    await repository.commitPoint(point);
    // point.json references every block now: GC may run again as far as this vApp is concerned.
    await catalog.releaseLease(repositoryLeaseResource(spec.targetRepositoryId), backupLeaseHolder(runId, vappId));
    const policy = spec.retention ? parseRetentionPolicy(spec.retention, `retention of job ${run.jobId}`) : undefined;
    if (!existing) {
      const model = (await repository.getVAppMetadata(vappId, pointId).catch(() => undefined)) as { name?: string } | undefined;
      await storePointModel(catalog, log, { pointId, tenantId: run.tenantId }, model);
      await commitWithGfsFlags(
        this.deps.catalog,
        {
          id: pointId,
          vappId,
          vappName: model?.name ?? vappName ?? vappId,
          tenantId: run.tenantId,
          jobId: run.jobId,
          repositoryId: spec.targetRepositoryId,
          createdAt,
          sizeBytes: disks.reduce((n, d) => n + d.bytesUploaded, 0),
          flags: [],
          disks: disks.map((d) => ({ diskId: d.diskId, vmId: d.vmId ?? 'unknown', sizeBytes: d.sizeBytes, indexKey: indexKey(vappId, pointId, d.diskId), bytesUploaded: d.bytesUploaded })),
        },
        policy,
      );
    }
    await catalog.updateVApp(runId, vappId, { state: 'succeeded', pointId, error: null, retryAt: null });
    await this.removeSnapshots(runId, vappId, progress.attempts);
    log.info('restore point committed', { runId, vappId, pointId, disks: disks.length });
    if (policy) await this.applyChainRetention(repository, { repositoryId: spec.targetRepositoryId, vappId, jobId: run.jobId, tenantId: run.tenantId }, policy);
    await this.deps.usage?.recomputeQuietly(run.tenantId);
    const committed = await catalog.getRestorePoint(pointId);
    if (committed && this.deps.onPointCommitted) await this.deps.onPointCommitted(committed);
    await this.tryFinishRun(runId);
  }


  /**
   * Applies the job's policy to its chain at commit time: expired points leave the repository, then the
   * catalog. The chain is this job's points only: a policy never deletes points another job (or another
   * tenant sharing the repository) wrote of the same vApp.
   */
  async applyChainRetention(repository: Repository, chain: { repositoryId: string; vappId: string; jobId: string; tenantId: string }, policy: RetentionPolicy): Promise<string[]> {
    const { catalog, clock, log } = this.deps;
    const { repositoryId, vappId } = chain;
    const points = (await catalog.listRestorePoints({ repositoryId, vappId })).filter((p) => p.jobId === chain.jobId && p.tenantId === chain.tenantId);
    const plan = applyRetention(
      policy,
      points.map((p) => ({ id: p.id, createdAt: p.createdAt, flags: p.flags.filter((f): f is RetentionFlag => f === 'weekly' || f === 'monthly' || f === 'yearly') })),
      clock.now(),
    );
    const deleted: string[] = [];
    for (const d of plan.delete) {
      // A point a copy job is reading stays until its copy commits (the next commit's retention takes it).
      if ((await catalog.listLeases(pointLeaseResource(d.point.id))).length > 0) continue;
      await repository.deletePoint(vappId, d.point.id);
      await catalog.deleteRestorePoint(d.point.id);
      deleted.push(d.point.id);
      log.info('retention deleted a restore point', { vappId, pointId: d.point.id, why: d.notes.join('; ') });
    }
    return deleted;
  }

  /** Ends the run once it has been fully dispatched (state running) and every vApp has settled. */
  async tryFinishRun(runId: string): Promise<RunState | undefined> {
    const { catalog, clock } = this.deps;
    const run = await catalog.getRun(runId);
    if (!run || run.state !== 'running') return undefined;
    const vapps = Object.values(run.vapps);
    if (vapps.some((v) => v.state === 'running' || v.state === 'pending')) return undefined;
    const failed = vapps.filter((v) => v.state === 'failed').length;
    const state: RunState = failed === 0 ? 'succeeded' : failed === vapps.length ? 'failed' : 'partial';
    try {
      await catalog.updateRunState(runId, state, { endedAt: clock.now().toISOString(), expectedStates: ['running'] });
      this.deps.log.info('backup run finished', { runId, state, vapps: vapps.length, failed });
      this.deps.onRunFinished?.(runId, state);
      return state;
    } catch (err) {
      if (err instanceof ConflictError) return undefined; // another result finished it first
      throw err;
    }
  }
}

/**
 * Failed vApps whose retry time has come, per run: the scheduler tick sends a StartBackupRun with trigger
 * `retry` for each, which reopens the run for those vApps. Only the newest runs of enabled backup jobs count.
 */
export async function dueBackupRetries(catalog: Catalog, now: Date): Promise<Array<{ runId: string; jobId: string; tenantId: string; vappIds: string[] }>> {
  const out: Array<{ runId: string; jobId: string; tenantId: string; vappIds: string[] }> = [];
  const at = now.toISOString();
  for (const job of await catalog.listJobs()) {
    if (job.kind !== 'backup' || !job.enabled) continue;
    for (const run of await catalog.listRuns({ jobId: job.id }, 3)) {
      if (run.state !== 'partial' && run.state !== 'failed') continue;
      const vappIds = Object.values(run.vapps)
        .filter((v) => v.state === 'failed' && v.retryAt !== undefined && v.retryAt <= at)
        .map((v) => v.vappId);
      if (vappIds.length > 0) out.push({ runId: run.id, jobId: run.jobId, tenantId: run.tenantId, vappIds });
    }
  }
  return out;
}

/** vApp ids compare by uuid: a URN, `vapp-<uuid>` and an href name the same vApp. */
function vappKey(id: string): string {
  return uuidIn(id) ?? `invalid:${id}`;
}

/** Snapshots of this product are recognised by this prefix (the sweeper removes stale ones). */
export const SNAPSHOT_NAME_PREFIX = 'vcd-backup:';

const snapshotRecordSchema = z.object({
  snapshots: z.array(z.object({ vcenter: z.string(), vm: z.string(), snapshot: z.string() })),
  disks: z.record(z.string(), z.object({ deviceKey: z.number().int(), changeId: z.string().nullable() })),
});
type SnapshotRecord = z.infer<typeof snapshotRecordSchema>;

function snapshotRecordKey(runId: string, vappId: string, attempt: number): string {
  return `snapshots:${runId}:${vappId}:${attempt}`;
}
