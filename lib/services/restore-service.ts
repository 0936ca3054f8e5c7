/**
 * Restores (DESIGN §1, §6): `plan` checks a restore point against the target vCD and returns the plan or
 * every non-conforming attribute; `start` creates the restore run and queues StartRestoreRun. The run is a
 * state machine driven by events, like a backup run: `runRestore` does the steps before the disks (`new`:
 * create the vApp shell so its disks exist; `overwrite`: enter maintenance mode), stores the run's state and
 * sends one DiskRestoreTask per disk, then returns; `onTaskResult` counts each disk once and, with the last,
 * re-applies sections and metadata, leaves maintenance mode (always, also after a failure), finishes, and
 * marks the run. No call waits for another, so a disk may take as long as it takes. Each step looks before
 * it acts, so running a failed restore again resumes it; the run records what was done and what not.
 */
import type { RestoreService as ApiRestoreService } from '../api/service.js';
import { createHash } from 'node:crypto';
import type { Catalog } from '../catalog/catalog.js';
import { ConflictError } from '../catalog/errors.js';
import { RUN_FINAL_STATES, type RestorePoint, type Run, type RunState } from '../catalog/types.js';
import type { Clock } from '../domain/clock.js';
import {
  describeProblems,
  parseRestoreOptions,
  parseRestorePlan,
  parseRestoreRunState,
  planRestore,
  RestoreReport,
  type PlanResult,
  type RestorePlan,
  type RestoreProblem,
  type RestoreRunState,
  type StepOutcome,
} from '../domain/restore/index.js';
import { repositoryPointId } from './copy-ids.js';
import { BackupError, InvalidInputError, describeIssues } from '../errors.js';
import type { Log } from '../log.js';
import type { DiskRestoreTask, StartRestoreRun, TaskResult } from '../queue/messages.js';
import { sendMessages, type Queue } from '../queue/queue.js';
import { indexKey } from '../repository/format.js';
import type { Repository } from '../repository/repository.js';
import { vappModelSchema, type VAppModel } from '../vcd/model.js';
import type { RepositoryOpener, TenantBinding } from './ports.js';
import { sendsTasks, type DiskWriter, type RestoreDisks, type RestoreTarget } from './restore-ports.js';

export interface RestoreServiceDeps {
  readonly catalog: Catalog;
  readonly repositories: RepositoryOpener;
  readonly target: RestoreTarget;
  /** Through the agent (DiskTaskSender, the service) or in process (DiskWriter, CLI and tests). */
  readonly disks: RestoreDisks;
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
  /** `running` while the agent writes the disks; a final state once the last disk result came. */
  readonly state: RunState;
  readonly ok: boolean;
  readonly finished: boolean;
  /** null when the plan itself was refused. */
  readonly mode: RestorePlan['mode'] | null;
  /** The restored vApp (null when it could not be created). */
  readonly vappId: string | null;
  /** The disks of the current attempt and their tasks. */
  readonly disks: ReadonlyArray<{ diskId: string; taskId: string }>;
  readonly bytesWritten: number;
  readonly steps: readonly StepOutcome[];
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
   * Starts (or resumes) a StartRestoreRun and returns without waiting for its disks: creates the vApp shell
   * (`new`) or enters maintenance mode (`overwrite`), keeps the run's state in the catalog, records the
   * attempt and sends one DiskRestoreTask per disk; the last disk result (`onTaskResult`) finishes the run.
   * With an in-process DiskWriter (CLI, tests) the disks are written here and fed to the same `onTaskResult`,
   * so the run is finished when this returns. Idempotent: a redelivery of a finished run does nothing, of a
   * running one sends the same tasks again (same task ids), and a failed run is resumed as a new attempt.
   * Restore failures mark the run failed and return; infrastructure errors (catalog down) throw, so the
   * message is delivered again.
   */
  async runRestore(msg: StartRestoreRun): Promise<RestoreRunResult> {
    const { catalog, clock, log } = this.deps;
    const found = await catalog.getRestorePoint(msg.pointId);
    // A point of another tenant is treated as unknown: its repository is then never opened for this run.
    const point = found?.tenantId === msg.tenantId ? found : undefined;
    const { run } = await catalog.createRun({ id: msg.runId, jobId: point?.jobId ?? 'restore', tenantId: msg.tenantId, kind: 'restore', state: 'queued', startedAt: clock.now().toISOString() });
    if (run.state === 'succeeded' || run.state === 'canceled') return this.resultOf(run.id);

    let plan: RestorePlan;
    try {
      plan = parseRestorePlan(msg.plan, `StartRestoreRun of run ${msg.runId}`);
    } catch (err) {
      // Retrying cannot fix a malformed plan: fail the run with the reason, visibly, and acknowledge.
      if (!(err instanceof InvalidInputError)) throw err;
      const now = clock.now().toISOString();
      log.error('restore refused', { runId: run.id, code: err.code, error: err.message });
      await catalog.appendRunError(run.id, { at: now, code: err.code, message: err.message });
      await catalog.updateRunState(run.id, 'failed', { endedAt: now }).catch(ignoreConflict);
      return { runId: run.id, state: 'failed', ok: false, finished: true, mode: null, vappId: null, disks: [], bytesWritten: 0, steps: [], error: { code: err.code, message: err.message } };
    }

    const sourceVappId = point?.vappId ?? plan.source.vappId;
    const previous = await this.loadState(run.id);
    const progress = run.vapps[sourceVappId];
    // A running run whose attempt is already under way is a redelivery: same attempt, same task ids.
    const redelivered = run.state === 'running' && progress !== undefined;
    const attempt = redelivered ? progress.attempts : (progress?.attempts ?? 0) + 1;
    if (run.state !== 'running') {
      try {
        await catalog.updateRunState(run.id, 'running', { expectedStates: ['queued', 'failed', 'partial'] });
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        return this.resultOf(run.id); // another delivery of this message got there first
      }
    }

    const report = new RestoreReport();
    const ctx: RunContext = { runId: run.id, plan, sourceVappId, vappId: plan.target.vappId, enteredMaintenance: previous?.enteredMaintenance === true };
    try {
      const repositoryId = plan.source.repositoryId ?? point?.repositoryId;
      if (repositoryId === undefined) throw new BackupError('RESTORE_POINT_UNKNOWN', `restore point ${msg.pointId} is not in the catalog and the plan names no repository; plan the restore again`);
      const { repository, ref } = await this.deps.repositories.open(repositoryId, msg.tenantId);
      const model = await readPointModel(repository, plan.source.vappId, repositoryPointId(msg.pointId));
      const descriptor = await repository.readPoint(sourceVappId, repositoryPointId(msg.pointId));
      const indexes = new Map(descriptor.disks.map((d) => [d.diskId, indexKey(descriptor.vappId, descriptor.pointId, d.diskId)]));

      let vappId: string;
      if (plan.mode === 'new') {
        vappId = await this.deps.target.createVApp({ plan, model, report });
      } else {
        if (plan.target.vappId === null) throw new BackupError('RESTORE_PLAN_INVALID', 'an overwrite plan must name the vApp to overwrite; plan the restore again');
        vappId = plan.target.vappId;
        // Written down before entering: if the enter succeeds and the state write after it does not, the
        // next attempt still knows the vApp may be ours to take out of maintenance mode.
        await report.step('enterMaintenance', vappId, async () => {
          const entered = await this.deps.target.enterMaintenance(vappId);
          ctx.enteredMaintenance ||= entered;
          return entered;
        });
      }
      ctx.vappId = vappId;

      const targets = await this.deps.target.diskTargets({ plan, vappId });
      const tasks: DiskRestoreTask[] = targets.map((t) => {
        const key = indexes.get(t.diskId);
        if (key === undefined) throw new BackupError('RESTORE_DISK_NOT_IN_POINT', `point ${msg.pointId} has no disk ${t.diskId} (it has ${[...indexes.keys()].join(', ') || 'none'}); plan the restore again`);
        return {
          type: 'DiskRestoreTask',
          version: 2,
          taskId: restoreTaskId(run.id, attempt, t.diskId),
          runId: run.id,
          tenantId: msg.tenantId,
          vappId: descriptor.vappId,
          vmId: t.vmId,
          diskId: t.diskId,
          pointId: msg.pointId,
          repository: ref,
          indexKey: key,
          target: t.target,
        };
      });
      const state: RestoreRunState = {
        version: 1,
        plan,
        pointId: msg.pointId,
        repositoryId,
        sourceVappId,
        vappId,
        attempt,
        enteredMaintenance: ctx.enteredMaintenance,
        tasks: Object.fromEntries(tasks.map((t) => [t.diskId, t.taskId])),
        steps: report.toJSON(),
      };
      // The state first: a result can arrive as soon as its task is sent, and it needs the state to count.
      await this.saveState(run.id, state);
      await catalog.startVAppAttempt(run.id, sourceVappId, { attempt, disksTotal: tasks.length, pointId: msg.pointId });
      if (tasks.length === 0) {
        await this.finishRun(run.id);
      } else if (sendsTasks(this.deps.disks)) {
        await this.deps.disks.sendDiskTasks(tasks);
        log.info('restore disks sent to the agent', { runId: run.id, mode: plan.mode, vappId, disks: tasks.length, attempt });
      } else {
        await this.writeInProcess(this.deps.disks, tasks, repository);
      }
      return this.resultOf(run.id);
    } catch (err) {
      await this.failRun(ctx, err, report, await this.loadState(run.id));
      return this.resultOf(run.id);
    }
  }

  /**
   * Writes the disks in this process and reports each as the agent would, so the in-process path finishes
   * the run through exactly the code the agent's results go through.
   */
  private async writeInProcess(writer: DiskWriter, tasks: readonly DiskRestoreTask[], repository: Repository): Promise<void> {
    const limit = this.deps.diskConcurrency ?? 4;
    let next = 0;
    const worker = async () => {
      while (next < tasks.length) {
        const task = tasks[next++]!;
        const base = { type: 'TaskResult', version: 1, taskId: task.taskId, runId: task.runId, vappId: task.vappId, diskId: task.diskId, pointId: task.pointId, kind: 'restore' } as const;
        let result: TaskResult;
        try {
          const { bytesWritten } = await writer.writeDisk({
            repository,
            repositoryRef: task.repository,
            tenantId: task.tenantId,
            runId: task.runId,
            vappId: task.vappId,
            pointId: task.pointId,
            diskId: task.diskId,
            indexKey: task.indexKey,
            vmId: task.vmId,
            target: task.target,
          });
          result = { ...base, ok: true, stats: { bytesRead: 0, bytesUploaded: 0, blocksNew: 0, blocksReused: 0, bytesWritten } };
        } catch (err) {
          result = { ...base, ok: false, error: { code: err instanceof BackupError ? err.code : 'DISK_RESTORE_FAILED', message: err instanceof Error ? err.message : String(err) } };
        }
        await this.onTaskResult(result);
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  }

  /**
   * One disk result of a restore (from the agent-results handler). Each disk counts once per attempt
   * (recordDiskDone/recordDiskFailed); the call that reports the last disk finishes the run: configuration,
   * leaving maintenance mode, power state, and the run's final state. Redelivered results, results of an
   * earlier attempt and results of a finished run change nothing.
   */
  async onTaskResult(msg: TaskResult): Promise<void> {
    const { catalog, clock, log } = this.deps;
    const state = await this.loadState(msg.runId);
    if (state === undefined) {
      log.warn('restore result of a run without stored state ignored', { runId: msg.runId, taskId: msg.taskId, diskId: msg.diskId });
      return;
    }
    if (state.tasks[msg.diskId] !== msg.taskId) {
      log.warn('restore result of an earlier attempt ignored', { runId: msg.runId, taskId: msg.taskId, diskId: msg.diskId });
      return;
    }
    const outcome = msg.ok
      ? await catalog.recordDiskDone(msg.runId, state.sourceVappId, msg.diskId, { bytesWritten: msg.stats?.bytesWritten ?? 0, disksDone: 1 })
      : await catalog.recordDiskFailed(msg.runId, state.sourceVappId, msg.diskId);
    if (!msg.ok && !outcome.duplicate) {
      const error = msg.error ?? { code: 'DISK_RESTORE_FAILED', message: 'unknown error' };
      await catalog.appendRunError(msg.runId, { at: clock.now().toISOString(), code: error.code, message: `the agent could not write disk ${msg.diskId} (task ${msg.taskId}): ${error.message}`, vappId: state.sourceVappId, diskId: msg.diskId });
    }
    const p = outcome.progress;
    // The settling call finishes; a redelivery after a crash between the two finds the vApp still running.
    const stillToFinish = outcome.duplicate && p.state === 'running' && p.disksDone + p.disksFailed === p.disksTotal;
    if (outcome.settledVApp || stillToFinish) await this.finishRun(msg.runId);
  }

  /** With every disk reported: configure, leave maintenance mode, finish, and mark the run (once). */
  private async finishRun(runId: string): Promise<void> {
    const { catalog, clock, log } = this.deps;
    const run = await catalog.getRun(runId);
    const state = await this.loadState(runId);
    if (run?.state !== 'running' || state === undefined) return;
    const { plan } = state;
    const report = RestoreReport.from(state.steps);
    const ctx: RunContext = { runId, plan, sourceVappId: state.sourceVappId, vappId: state.vappId, enteredMaintenance: state.enteredMaintenance };
    // Errors of earlier attempts stay on the run; this attempt's name its task ids.
    const failedDisks = new Map(run.errors.filter((e) => e.diskId !== undefined && state.tasks[e.diskId] !== undefined && e.message.includes(`(task ${state.tasks[e.diskId]})`)).map((e) => [e.diskId!, e.message]));
    for (const diskId of Object.keys(state.tasks)) report.record('writeDisk', diskId, failedDisks.has(diskId) ? 'failed' : 'done', failedDisks.get(diskId));
    try {
      if (failedDisks.size > 0 || (run.vapps[state.sourceVappId]?.disksFailed ?? 0) > 0) {
        const names = [...failedDisks.keys()].join(', ') || 'unknown';
        throw new BackupError('DISK_RESTORE_FAILED', `disk(s) ${names} could not be written: ${[...failedDisks.values()].join('; ')}`);
      }
      const { repository } = await this.deps.repositories.open(state.repositoryId, run.tenantId);
      const model = await readPointModel(repository, plan.source.vappId, repositoryPointId(state.pointId));
      await this.deps.target.applyConfiguration({ plan, model, vappId: state.vappId, report });
      if (plan.mode === 'overwrite') await this.leaveMaintenance(ctx, report);
      await this.deps.target.finish({ plan, vappId: state.vappId, report });
      const now = clock.now().toISOString();
      await this.saveState(runId, { ...state, enteredMaintenance: ctx.enteredMaintenance, steps: report.toJSON() });
      await catalog.updateVApp(runId, state.sourceVappId, { state: 'succeeded', error: null });
      try {
        await catalog.updateRunState(runId, 'succeeded', { endedAt: now, expectedStates: ['running'] });
      } catch (err) {
        ignoreConflict(err);
        return;
      }
      log.info('restore finished', { runId, mode: plan.mode, vappId: state.vappId, disks: Object.keys(state.tasks).length });
    } catch (err) {
      await this.failRun(ctx, err, report, state);
    }
  }

  /** Takes the vApp out of maintenance mode if this run put it in; a refusal is recorded, not thrown past. */
  private async leaveMaintenance(ctx: RunContext, report: RestoreReport): Promise<void> {
    if (!ctx.enteredMaintenance || ctx.vappId === null) return;
    const vappId = ctx.vappId;
    await report.step('exitMaintenance', vappId, async () => {
      await this.deps.target.exitMaintenance(vappId);
      ctx.enteredMaintenance = false;
      return true;
    });
  }

  /**
   * Marks the run failed with the reason and the report, after taking the vApp out of maintenance mode:
   * a failed restore must not leave tenants locked out of their vApp.
   */
  private async failRun(ctx: RunContext, err: unknown, report: RestoreReport, state: RestoreRunState | undefined): Promise<void> {
    const { catalog, clock, log } = this.deps;
    if (!(err instanceof BackupError) && !(err instanceof Error)) throw err;
    for (const s of ctx.plan.steps) if (!report.steps.some((r) => r.kind === s.kind)) report.record(s.kind, s.detail, 'not-run');
    if (ctx.plan.mode === 'overwrite' && !report.steps.some((s) => s.kind === 'exitMaintenance' && s.status === 'failed')) {
      await this.leaveMaintenance(ctx, report).catch(() => undefined); // the report carries the alert
    }
    const code = err instanceof BackupError ? err.code : 'RESTORE_FAILED';
    const message = `${err.message}. Run the restore again to resume. Steps: ${report.summary()}`;
    const now = clock.now().toISOString();
    log.error('restore failed', { runId: ctx.runId, code, error: message });
    if (state !== undefined) await this.saveState(ctx.runId, { ...state, enteredMaintenance: ctx.enteredMaintenance, steps: report.toJSON() });
    else this.unsaved.set(ctx.runId, report.toJSON());
    await catalog.appendRunError(ctx.runId, { at: now, code, message, vappId: ctx.sourceVappId });
    if ((await catalog.getRun(ctx.runId))?.vapps[ctx.sourceVappId] !== undefined) await catalog.updateVApp(ctx.runId, ctx.sourceVappId, { state: 'failed', error: `${code}: ${message}` });
    await catalog.updateRunState(ctx.runId, 'failed', { endedAt: now, expectedStates: ['running'] }).catch(ignoreConflict);
  }

  /** Steps of a run that failed before its state was stored, for the caller of runRestore in this process. */
  private readonly unsaved = new Map<string, StepOutcome[]>();

  /** Where a run is, from the catalog: what runRestore returns. */
  private async resultOf(runId: string): Promise<RestoreRunResult> {
    const run = await this.deps.catalog.getRun(runId);
    const state = await this.loadState(runId);
    const finished = run !== undefined && RUN_FINAL_STATES.includes(run.state);
    const lastError = run?.errors.filter((e) => e.diskId === undefined).at(-1) ?? run?.errors.at(-1);
    const progress = state ? run?.vapps[state.sourceVappId] : undefined;
    const steps = this.unsaved.get(runId) ?? state?.steps ?? [];
    this.unsaved.delete(runId);
    return {
      runId,
      state: run?.state ?? 'queued',
      ok: run?.state === 'succeeded',
      finished,
      mode: state?.plan.mode ?? null,
      vappId: state?.vappId ?? null,
      disks: state ? Object.entries(state.tasks).map(([diskId, taskId]) => ({ diskId, taskId })) : [],
      bytesWritten: progress?.counters.bytesWritten ?? 0,
      steps,
      ...(run?.state === 'failed' && lastError ? { error: { code: lastError.code, message: lastError.message } } : {}),
    };
  }

  private async loadState(runId: string): Promise<RestoreRunState | undefined> {
    const record = await this.deps.catalog.getIdempotencyRecord(restoreStateKey(runId));
    return record?.result === undefined ? undefined : parseRestoreRunState(record.result, runId);
  }

  private async saveState(runId: string, state: RestoreRunState): Promise<void> {
    const { catalog, clock } = this.deps;
    const key = restoreStateKey(runId);
    const expiresAt = new Date(clock.now().getTime() + RESTORE_STATE_TTL_MS).toISOString();
    const { created } = await catalog.putIdempotencyRecord(key, expiresAt, state);
    if (!created) await catalog.completeIdempotencyRecord(key, state);
  }

  /** The run of a restore, for callers that follow it. */
  async getRun(runId: string): Promise<Run | undefined> {
    const run = await this.deps.catalog.getRun(runId);
    return run?.kind === 'restore' ? run : undefined;
  }
}

interface RunContext {
  readonly runId: string;
  readonly plan: RestorePlan;
  readonly sourceVappId: string;
  vappId: string | null;
  /** This run put the vApp into maintenance mode and has not taken it out yet. */
  enteredMaintenance: boolean;
}

/** Restore runs keep their state this long; a run not finished by then cannot be resumed (plan it again). */
const RESTORE_STATE_TTL_MS = 30 * 24 * 3600_000;

/** The catalog record of a restore run's state between its events. */
export const restoreStateKey = (runId: string) => `restore-run:${runId}`;

/** Task id of a disk in one attempt: a redelivery resends the same ids, a new attempt gets new ones. */
export function restoreTaskId(runId: string, attempt: number, diskId: string): string {
  return createHash('sha256').update(`restore\n${runId}\n${attempt}\n${diskId}`).digest('hex').slice(0, 24);
}

function ignoreConflict(err: unknown): void {
  if (!(err instanceof ConflictError)) throw err;
}

/** For the final states a rerun leaves alone. */
export const RESTORE_DONE_STATES = RUN_FINAL_STATES.filter((s) => s === 'succeeded' || s === 'canceled');
