/**
 * Restores (DESIGN §1, §6): `plan` checks a restore point against the target vCD and returns the plan or
 * every non-conforming attribute; `start` creates the restore run and queues StartRestoreRun; `runRestore`
 * carries it out through ports — for `new`: create the vApp shell (so its disks exist), write the disks,
 * re-apply sections and metadata; for `overwrite`: all of that inside maintenance mode. Each step looks
 * before it acts, so running a failed restore again resumes it; the run records what was done and what not.
 */
import type { RestoreService as ApiRestoreService } from '../api/service.js';
import type { Catalog } from '../catalog/catalog.js';
import { RUN_FINAL_STATES, type RestorePoint, type Run } from '../catalog/types.js';
import type { Clock } from '../domain/clock.js';
import {
  describeProblems,
  parseRestoreOptions,
  planRestore,
  RESTORE_PLAN_VERSION,
  RestoreReport,
  type PlanResult,
  type RestorePlan,
  type RestoreProblem,
} from '../domain/restore/index.js';
import { repositoryPointId } from './copy-ids.js';
import { BackupError, InvalidInputError, describeIssues } from '../errors.js';
import type { Log } from '../log.js';
import type { StartRestoreRun } from '../queue/messages.js';
import { sendMessages, type Queue } from '../queue/queue.js';
import { indexKey } from '../repository/format.js';
import type { Repository } from '../repository/repository.js';
import { vappModelSchema, type VAppModel } from '../vcd/model.js';
import type { RepositoryOpener, TenantBinding } from './ports.js';
import type { DiskWriter, RestoreTarget } from './restore-ports.js';

export interface RestoreServiceDeps {
  readonly catalog: Catalog;
  readonly repositories: RepositoryOpener;
  readonly target: RestoreTarget;
  readonly disks: DiskWriter;
  readonly runsQueue: Queue;
  readonly clock: Clock;
  readonly log: Log;
  /** Disks written at once. @default 4 */
  readonly diskConcurrency?: number;
}

/** The plan does not conform: `problems` lists every attribute with the option that fixes it. */
export class RestorePlanError extends InvalidInputError {
  constructor(readonly problems: readonly RestoreProblem[]) {
    super(`the restore does not fit the target; nothing was changed. Fix these and plan again:\n${describeProblems(problems)}`, { code: 'RESTORE_PLAN_NONCONFORMING' });
  }
}

export type PlanView = { ok: true; plan: RestorePlan } | { ok: false; problems: readonly RestoreProblem[]; message: string };

export interface RestoreRunResult {
  readonly runId: string;
  readonly ok: boolean;
  readonly mode: RestorePlan['mode'];
  /** The restored vApp (null when it could not be created). */
  readonly vappId: string | null;
  readonly disks: ReadonlyArray<{ diskId: string; bytesWritten: number }>;
  readonly steps: ReturnType<RestoreReport['toJSON']>;
  readonly error?: { code: string; message: string };
}

/** Reads a point's captured model (vapp.json) from its repository. */
export async function readPointModel(repository: Repository, vappId: string, pointId: string): Promise<VAppModel> {
  const raw = await repository.getVAppMetadata(vappId, pointId);
  const parsed = vappModelSchema.safeParse(raw);
  if (!parsed.success) throw new BackupError('RESTORE_MODEL_INVALID', `vapp.json of point ${pointId} does not follow the vApp model: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

/** Plans a restore of `model` against `target` (no catalog): what `restore plan` does against a repository and vCD directly. */
export async function planFromModel(
  target: RestoreTarget,
  model: VAppModel,
  rawOptions: unknown,
  source: { pointId: string; repositoryId?: string | null },
  tenant?: TenantBinding,
): Promise<PlanResult> {
  const options = parseRestoreOptions(rawOptions);
  const state = await target.readTargetState({ model, options, pointId: source.pointId, ...(tenant ? { tenant } : {}) });
  return planRestore(model, state, options, source);
}

export class RestoreService implements ApiRestoreService {
  constructor(private readonly deps: RestoreServiceDeps) {}

  async plan(input: { tenantId: string; point: RestorePoint; options: Record<string, unknown> }): Promise<PlanView> {
    if (input.point.tenantId !== input.tenantId) throw new BackupError('RESTORE_POINT_UNKNOWN', `restore point ${input.point.id} not found`);
    const model = await this.modelOf(input.point);
    const result = await planFromModel(this.deps.target, model, input.options, { pointId: input.point.id, repositoryId: input.point.repositoryId }, await this.tenantBinding(input.point.tenantId));
    if (result.ok) return { ok: true, plan: result.plan };
    return { ok: false, problems: result.problems, message: new RestorePlanError(result.problems).message };
  }

  /**
   * The captured model of a point: from the catalog (so the API function plans without a repository key),
   * else from the repository's vapp.json.
   */
  private async modelOf(point: RestorePoint): Promise<VAppModel> {
    const stored = await this.deps.catalog.getPointModel(point.id);
    if (stored && stored.tenantId === point.tenantId) {
      const parsed = vappModelSchema.safeParse(stored.model);
      if (parsed.success) return parsed.data;
      this.deps.log.warn('the catalog copy of a point model does not parse; reading vapp.json', { pointId: point.id });
    }
    const { repository } = await this.deps.repositories.open(point.repositoryId, point.tenantId);
    // Copies carry `<pointId>@<repositoryId>` in the catalog; the repository knows the plain point id.
    return readPointModel(repository, point.vappId, repositoryPointId(point.id));
  }

  /** The tenant and its vCD organization: restores read and change vCD inside that organization only. */
  private async tenantBinding(tenantId: string): Promise<TenantBinding> {
    const tenant = await this.deps.catalog.getTenant(tenantId);
    if (!tenant) throw new BackupError('TENANT_NOT_FOUND', `tenant ${tenantId} does not exist`);
    return { tenantId: tenant.id, ...(tenant.vcdOrg !== undefined ? { vcdOrg: tenant.vcdOrg } : {}) };
  }

  async start(input: { tenantId: string; point: RestorePoint; runId: string; options: Record<string, unknown>; requestedBy: string }): Promise<{ runId: string } & Record<string, unknown>> {
    const { catalog, clock } = this.deps;
    const existing = await catalog.getRun(input.runId);
    if (existing !== undefined) return { runId: existing.id, state: existing.state };
    const view = await this.plan(input);
    if (!view.ok) throw new RestorePlanError(view.problems);
    const requestedAt = clock.now().toISOString();
    await catalog.createRun({ id: input.runId, jobId: input.point.jobId, tenantId: input.tenantId, kind: 'restore', state: 'queued', startedAt: requestedAt });
    const msg: StartRestoreRun = {
      type: 'StartRestoreRun',
      version: 1,
      runId: input.runId,
      tenantId: input.tenantId,
      pointId: input.point.id,
      requestedAt,
      requestedBy: input.requestedBy,
      plan: view.plan as unknown as Record<string, unknown>,
    };
    await sendMessages(this.deps.runsQueue, 'runs', [msg]);
    this.deps.log.info('restore queued', { runId: input.runId, pointId: input.point.id, mode: view.plan.mode, target: view.plan.target.name });
    return { runId: input.runId, state: 'queued', mode: view.plan.mode, target: view.plan.target, warnings: view.plan.warnings, steps: view.plan.steps };
  }

  /**
   * Carries out a StartRestoreRun. Idempotent: a redelivery of a finished run does nothing; a failed run is
   * resumed (every step checks the target first). Never throws for restore failures: the run is marked failed
   * with the report; infrastructure errors (catalog down) do throw, so the message is delivered again.
   */
  async runRestore(msg: StartRestoreRun): Promise<RestoreRunResult> {
    const { catalog, clock, log } = this.deps;
    const plan = parsePlan(msg.plan);
    const found = await catalog.getRestorePoint(msg.pointId);
    // A point of another tenant is treated as unknown: its repository is then never opened for this run.
    const point = found?.tenantId === msg.tenantId ? found : undefined;
    const repositoryId = plan.source.repositoryId ?? point?.repositoryId;
    const sourceVappId = point?.vappId ?? plan.source.vappId;
    const { run } = await catalog.createRun({ id: msg.runId, jobId: point?.jobId ?? 'restore', tenantId: msg.tenantId, kind: 'restore', state: 'queued', startedAt: clock.now().toISOString() });
    const report = new RestoreReport();
    if (run.state === 'succeeded' || run.state === 'canceled') {
      return { runId: run.id, ok: run.state === 'succeeded', mode: plan.mode, vappId: plan.target.vappId, disks: [], steps: [] };
    }
    if (run.state !== 'running') await catalog.updateRunState(run.id, 'running', { expectedStates: ['queued', 'failed', 'partial'] });
    const progressKey = sourceVappId;
    const attempt = (run.vapps[progressKey]?.attempts ?? 0) + 1;
    const diskCount = plan.vms.reduce((s, v) => s + v.disks.length, 0);
    await catalog.startVAppAttempt(run.id, progressKey, { attempt, disksTotal: diskCount, pointId: msg.pointId });
    const written: Array<{ diskId: string; bytesWritten: number }> = [];
    let vappId: string | null = plan.target.vappId;
    try {
      if (repositoryId === undefined) throw new BackupError('RESTORE_POINT_UNKNOWN', `restore point ${msg.pointId} is not in the catalog and the plan names no repository; plan the restore again`);
      const { repository, ref } = await this.deps.repositories.open(repositoryId, msg.tenantId);
      const model = await readPointModel(repository, plan.source.vappId, repositoryPointId(msg.pointId));
      const descriptor = await repository.readPoint(sourceVappIdOf(plan, point), repositoryPointId(msg.pointId));
      const indexes = new Map(descriptor.disks.map((d) => [d.diskId, indexKey(descriptor.vappId, descriptor.pointId, d.diskId)]));
      const writeDisks = async (target: string) => {
        const targets = await this.deps.target.diskTargets({ plan, vappId: target });
        const limit = this.deps.diskConcurrency ?? 4;
        let next = 0;
        const worker = async () => {
          while (next < targets.length) {
            const t = targets[next++]!;
            await report.step('writeDisk', t.diskId, async () => {
              const key = indexes.get(t.diskId);
              if (key === undefined) throw new BackupError('RESTORE_DISK_NOT_IN_POINT', `point ${msg.pointId} has no disk ${t.diskId} (it has ${[...indexes.keys()].join(', ') || 'none'})`);
              const stats = await this.deps.disks.writeDisk({
                repository,
                repositoryRef: ref,
                tenantId: msg.tenantId,
                runId: run.id,
                vappId: descriptor.vappId,
                pointId: msg.pointId,
                diskId: t.diskId,
                indexKey: key,
                vmId: t.vmId,
                target: t.target,
              });
              written.push({ diskId: t.diskId, bytesWritten: stats.bytesWritten });
              await catalog.recordDiskDone(run.id, progressKey, t.diskId, { bytesWritten: stats.bytesWritten });
              return true;
            });
          }
        };
        await Promise.all(Array.from({ length: Math.min(limit, targets.length) }, worker));
      };

      if (plan.mode === 'new') {
        vappId = await this.deps.target.createVApp({ plan, model, report });
        await writeDisks(vappId);
        await this.deps.target.applyConfiguration({ plan, model, vappId, report });
      } else {
        if (vappId === null) throw new BackupError('RESTORE_PLAN_INVALID', 'an overwrite plan must name the vApp to overwrite; plan the restore again');
        const target = vappId;
        await report.step('enterMaintenance', target, async () => true);
        await this.deps.target.withMaintenance(target, async () => {
          await writeDisks(target);
          await this.deps.target.applyConfiguration({ plan, model, vappId: target, report });
        });
        report.record('exitMaintenance', target, 'done');
      }
      await this.deps.target.finish({ plan, vappId, report });
      const now = clock.now().toISOString();
      await catalog.updateVApp(run.id, progressKey, { state: 'succeeded', error: null });
      await catalog.updateRunState(run.id, 'succeeded', { endedAt: now });
      log.info('restore finished', { runId: run.id, mode: plan.mode, vappId, disks: written.length });
      return { runId: run.id, ok: true, mode: plan.mode, vappId, disks: written, steps: report.toJSON() };
    } catch (err) {
      for (const s of plan.steps) if (!report.steps.some((r) => r.kind === s.kind)) report.record(s.kind, s.detail, 'not-run');
      if (plan.mode === 'overwrite' && report.steps.some((s) => s.kind === 'enterMaintenance' && s.status === 'done') && !report.steps.some((s) => s.kind === 'exitMaintenance' && s.status === 'done')) {
        const alert = err instanceof BackupError && err.code === 'VCD_MAINTENANCE_EXIT_FAILED';
        report.record('exitMaintenance', vappId ?? '', alert ? 'failed' : 'done', alert ? err.message : undefined);
      }
      const code = err instanceof BackupError ? err.code : 'RESTORE_FAILED';
      const message = `${err instanceof Error ? err.message : String(err)}. Run the restore again to resume. Steps: ${report.summary()}`;
      const now = clock.now().toISOString();
      log.error('restore failed', { runId: run.id, code, error: message });
      await catalog.appendRunError(run.id, { at: now, code, message, vappId: progressKey });
      await catalog.updateVApp(run.id, progressKey, { state: 'failed', error: `${code}: ${message}` });
      await catalog.updateRunState(run.id, 'failed', { endedAt: now });
      return { runId: run.id, ok: false, mode: plan.mode, vappId, disks: written, steps: report.toJSON(), error: { code, message } };
    }
  }

  /** The run of a restore, for callers that follow it. */
  async getRun(runId: string): Promise<Run | undefined> {
    const run = await this.deps.catalog.getRun(runId);
    return run?.kind === 'restore' ? run : undefined;
  }
}

function sourceVappIdOf(plan: RestorePlan, point: RestorePoint | undefined): string {
  return point?.vappId ?? plan.source.vappId;
}

function parsePlan(raw: Record<string, unknown>): RestorePlan {
  const plan = raw as unknown as RestorePlan;
  if (plan.version !== RESTORE_PLAN_VERSION || (plan.mode !== 'new' && plan.mode !== 'overwrite') || !Array.isArray(plan.vms) || typeof plan.source?.pointId !== 'string') {
    throw new InvalidInputError(`StartRestoreRun carries no restore plan of version ${RESTORE_PLAN_VERSION}; plan the restore again (POST /v1/restores/plan)`, { code: 'RESTORE_PLAN_INVALID' });
  }
  return plan;
}

/** For the final states a rerun leaves alone. */
export const RESTORE_DONE_STATES = RUN_FINAL_STATES.filter((s) => s === 'succeeded' || s === 'canceled');
