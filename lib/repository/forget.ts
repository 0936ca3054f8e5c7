import type { Clock } from '../domain/clock.js';
import { InvalidInputError } from '../errors.js';
import { applyRetention, toIso, type RetentionFlag, type RetentionPolicy } from '../domain/retention/index.js';
import { systemClock } from '../system-clock.js';
import { readChainState, resolveChainFlags, writeChainState } from './chain-state.js';
import { pointDescriptorSchema, type PointDescriptor } from './format.js';
import { ObjectStoreLock, type HeldLease, type RepositoryLock } from './lock.js';
import type { Repository } from './repository.js';

export interface ForgetOptions {
  /** Plan only: take no lease, write and delete nothing. */
  readonly dryRun?: boolean;
  /** Only this vApp's chain. */
  readonly vappId?: string;
  /** The lease provider. @default an ObjectStoreLock on the repository (lock objects under `locks/`) */
  readonly lock?: RepositoryLock;
  /** Clock of the default lock and of chain.json's `updatedAt` (not the retention instant). @default system */
  readonly clock?: Clock;
  readonly onDeleted?: (vappId: string, pointId: string) => void;
}

export interface ForgetKept {
  readonly pointId: string;
  readonly createdAt: string;
  readonly flags: readonly RetentionFlag[];
  readonly activeFlags: readonly RetentionFlag[];
  readonly reasons: readonly string[];
}

export interface ForgetDeleted {
  readonly pointId: string;
  readonly createdAt: string;
  readonly flags: readonly RetentionFlag[];
  readonly notes: readonly string[];
}

export interface ForgetVAppReport {
  readonly vappId: string;
  /** Kept points, oldest first, with every reason. */
  readonly keep: ForgetKept[];
  /** Points the policy deletes (deleted unless dry-run), oldest first. */
  readonly delete: ForgetDeleted[];
  /** Points whose flags were not recorded in chain.json and were assigned by replay. */
  readonly replayedFlags: string[];
}

export interface ForgetReport {
  readonly dryRun: boolean;
  /** The instant retention was applied at. */
  readonly now: string;
  readonly vapps: ForgetVAppReport[];
  readonly kept: number;
  readonly deleted: number;
}

/**
 * `repo forget`: applies a retention policy to every chain (vApp) of a repository, or one, at `now`, and
 * deletes the points no rule keeps, each with `Repository.deletePoint` (`point.json` first, so a point is
 * either whole or gone; then its indexes and vapp.json). Blocks stay: GC removes them later.
 *
 * Runs under a SHARED lease: deleting points is safe beside backups (a backup never needs another point's
 * objects except blocks, which only GC removes), but must not overlap GC, whose mark phase has to see a
 * stable set of points. Flags come from `points/{vappId}/chain.json` (chain-state.ts); points without
 * recorded flags get them by replay, and those flags are recorded before anything is deleted so the next run
 * judges the chain the same way. Interrupting it is harmless: rerunning plans again and deletes the rest.
 */
export async function forgetPoints(repository: Repository, policy: RetentionPolicy, now: Date, options: ForgetOptions = {}): Promise<ForgetReport> {
  const dryRun = options.dryRun ?? false;
  const clock = options.clock ?? systemClock;
  let lease: HeldLease | undefined;
  if (!dryRun) lease = await (options.lock ?? new ObjectStoreLock(repository.store, { clock })).acquire('shared');
  try {
    const chains = await committedPointsByVApp(repository, options.vappId);
    const vapps: ForgetVAppReport[] = [];
    let kept = 0;
    let deleted = 0;
    for (const vappId of [...chains.keys()].sort()) {
      const points = chains.get(vappId)!;
      const state = await readChainState(repository, vappId);
      const resolved = resolveChainFlags(policy, state, points);
      const byId = new Map(points.map((p) => [p.pointId, p]));
      const plan = applyRetention(
        policy,
        resolved.points.map((p) => ({ id: p.pointId, createdAt: p.createdAt, flags: p.flags })),
        now,
      );
      const report: ForgetVAppReport = {
        vappId,
        keep: plan.keep.map((k) => ({ pointId: k.point.id, createdAt: toIso(k.createdAt), flags: k.point.flags, activeFlags: k.activeFlags, reasons: k.reasons })),
        delete: plan.delete.map((d) => ({ pointId: d.point.id, createdAt: toIso(d.createdAt), flags: d.point.flags, notes: d.notes })),
        replayedFlags: resolved.points.filter((p) => p.replayed).map((p) => p.pointId),
      };
      vapps.push(report);
      kept += report.keep.length;
      deleted += report.delete.length;
      if (dryRun) continue;

      // Record replayed flags first: once a point is gone, replay could no longer tell which point held a flag.
      if (resolved.replayed > 0) await writeChainState(repository, vappId, resolved.state, clock);
      for (const d of report.delete) {
        lease?.assertHeld();
        const point = byId.get(d.pointId)!;
        await repository.deletePoint(point.vappId, point.pointId);
        options.onDeleted?.(point.vappId, point.pointId);
      }
      if (report.delete.length > 0) {
        const flags = { ...resolved.state.flags };
        for (const d of report.delete) delete flags[d.pointId];
        await writeChainState(repository, vappId, { ...resolved.state, flags }, clock);
      }
    }
    return { dryRun, now: now.toISOString(), vapps, kept, deleted };
  } finally {
    await lease?.release();
  }
}

/** Committed points grouped by vApp (only `vappId`'s when given). */
async function committedPointsByVApp(repository: Repository, vappId?: string): Promise<Map<string, PointDescriptor[]>> {
  const chains = new Map<string, PointDescriptor[]>();
  const add = (p: PointDescriptor) => {
    const list = chains.get(p.vappId);
    if (list) list.push(p);
    else chains.set(p.vappId, [p]);
  };
  if (vappId === undefined) {
    for await (const p of repository.listPoints()) add(p);
    return chains;
  }
  if (!pointDescriptorSchema.shape.vappId.safeParse(vappId).success) {
    throw new InvalidInputError(`--vapp "${vappId}" is not a vApp id: ids use letters, digits, ".", "_", ":" and "-" only`);
  }
  // Only the points this view sees: a tenant's retention never reaches another tenant's points of the vApp.
  for await (const entry of repository.scanPoints(`points/${vappId}/`)) {
    if (entry.error) throw entry.error;
    if (entry.key.split('/').length === 4) add(entry.point);
  }
  return chains;
}
