/**
 * When copy jobs copy what (issue 7, item 2). Pure decisions; the orchestrator supplies the points and the
 * time, and acts on the answer.
 *
 * Immediate mode: every newly committed source point is copied, as soon as it commits if the copy window is
 * open, otherwise when the window next opens. Points that waited are copied oldest first, per vApp in commit
 * order, because each copy builds on the target's previous point of that vApp (forever-incremental chain).
 *
 * Periodic mode: at each schedule tick, for each vApp, the latest source point committed at or before the
 * tick (points committed after the tick wait for the next tick; intermediate points are never copied). A vApp
 * is skipped when that point is already on the target, or when the target already holds a copy of a newer
 * source point (copying an older point over it would move the chain backwards). If the tick falls outside
 * the copy window, the run starts when the window opens, still copying the points chosen as of the tick.
 */
import type { CopyJobSpec } from './copy-job.js';
import { nextRunAfter } from './schedule.js';
import { nextOpening } from './window.js';
import type { Window } from './window.js';

/** A committed restore point in the source repository. */
export interface SourcePoint {
  vappId: string;
  pointId: string;
  committedAt: Date;
}

/** A committed restore point on the target, with the source point it is a copy of. */
export interface TargetPoint {
  vappId: string;
  sourcePointId: string;
}

/** Orders points by commit time, ties broken by point id, so every decision is deterministic. */
function byCommit(a: SourcePoint, b: SourcePoint): number {
  return a.committedAt.getTime() - b.committedAt.getTime() || (a.pointId < b.pointId ? -1 : a.pointId > b.pointId ? 1 : 0);
}

/**
 * When an immediate-mode copy of a point committed at `committedAt` may start, seen at `now`: the later of
 * the two if the window is open then, else the window's next opening. Undefined only for a window that never
 * opens (which the job schema refuses).
 */
export function immediateCopyAt(committedAt: Date, now: Date, window: Window | undefined): Date | undefined {
  const earliest = committedAt.getTime() > now.getTime() ? committedAt : now;
  return nextOpening(window, earliest);
}

export interface PendingCopy {
  point: SourcePoint;
  /** When the copy may start. */
  copyAt: Date;
}

/**
 * Immediate mode: the source points not yet on the target, oldest first, each with when it may be copied.
 * Used on every commit and on every scheduler tick (to pick up points that waited for the window).
 */
export function pendingImmediateCopies(input: {
  now: Date;
  window: Window | undefined;
  sourcePoints: ReadonlyArray<SourcePoint>;
  targetPoints: ReadonlyArray<TargetPoint>;
}): PendingCopy[] {
  const copied = new Set(input.targetPoints.map((p) => p.sourcePointId));
  const pending: PendingCopy[] = [];
  for (const point of [...input.sourcePoints].sort(byCommit)) {
    if (copied.has(point.pointId)) continue;
    const copyAt = immediateCopyAt(point.committedAt, input.now, input.window);
    if (copyAt !== undefined) pending.push({ point, copyAt });
  }
  return pending;
}

export type PeriodicSkip =
  | { vappId: string; pointId: string; reason: 'already-on-target' }
  | { vappId: string; pointId: string; reason: 'target-has-newer'; targetSourcePointId: string };

export interface PeriodicSelection {
  /** One point per vApp: the latest committed at or before the tick, ordered by vApp id. */
  copy: SourcePoint[];
  skipped: PeriodicSkip[];
}

/** Periodic mode: which source points the run for the schedule tick `tick` copies. */
export function selectPeriodicCopies(input: {
  tick: Date;
  sourcePoints: ReadonlyArray<SourcePoint>;
  targetPoints: ReadonlyArray<TargetPoint>;
}): PeriodicSelection {
  const tick = input.tick.getTime();
  const sourceById = new Map(input.sourcePoints.map((p) => [p.pointId, p]));

  const latest = new Map<string, SourcePoint>();
  for (const point of input.sourcePoints) {
    if (point.committedAt.getTime() > tick) continue;
    const current = latest.get(point.vappId);
    if (current === undefined || byCommit(current, point) < 0) latest.set(point.vappId, point);
  }

  // Per vApp, the newest source point the target already has a copy of.
  const newestOnTarget = new Map<string, SourcePoint>();
  const onTarget = new Set<string>();
  for (const t of input.targetPoints) {
    onTarget.add(t.sourcePointId);
    const source = sourceById.get(t.sourcePointId);
    if (source === undefined) continue; // its source expired; it cannot be newer than a point still present
    const current = newestOnTarget.get(t.vappId);
    if (current === undefined || byCommit(current, source) < 0) newestOnTarget.set(t.vappId, source);
  }

  const selection: PeriodicSelection = { copy: [], skipped: [] };
  for (const vappId of [...latest.keys()].sort()) {
    const point = latest.get(vappId);
    if (point === undefined) continue;
    const newest = newestOnTarget.get(vappId);
    if (onTarget.has(point.pointId)) {
      selection.skipped.push({ vappId, pointId: point.pointId, reason: 'already-on-target' });
    } else if (newest !== undefined && byCommit(point, newest) < 0) {
      selection.skipped.push({ vappId, pointId: point.pointId, reason: 'target-has-newer', targetSourcePointId: newest.pointId });
    } else {
      selection.copy.push(point);
    }
  }
  return selection;
}

/**
 * The next periodic copy run after `after`: the schedule tick (which fixes the points to copy) and when the
 * run may start (the tick, or the window's next opening). Undefined for immediate jobs, disabled jobs, and
 * schedules that never fire on the clock.
 */
export function nextPeriodicCopyRun(job: Pick<CopyJobSpec, 'mode' | 'schedule' | 'window' | 'enabled'>, after: Date): { tick: Date; startAt: Date } | undefined {
  if (job.mode !== 'periodic' || !job.enabled || job.schedule === undefined) return undefined;
  const tick = nextRunAfter(job.schedule, after);
  if (tick === undefined) return undefined;
  const startAt = nextOpening(job.window, tick);
  return startAt === undefined ? undefined : { tick, startAt };
}
