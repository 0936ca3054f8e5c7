import { InvalidInputError } from '../../errors.js';
import { applyRetention, type RetentionPoint } from './apply.js';
import { assignFlags, type GivenPeriods } from './flags.js';
import { toIso, toMillis, type Instant } from './periods.js';
import type { RetentionFlag, RetentionPolicy } from './policy.js';

export interface SimulatedPoint {
  readonly createdAt: string;
  /** Flags given at commit, whether or not still active. */
  readonly flags: readonly RetentionFlag[];
  readonly activeFlags: readonly RetentionFlag[];
  readonly reasons: readonly string[];
}

/** One replayed commit: the flags it gave and what retention deleted right after it. */
export interface SimulationStep {
  readonly at: string;
  readonly flags: readonly RetentionFlag[];
  readonly deleted: readonly string[];
}

export interface Simulation {
  /** The instant of the final apply. */
  readonly now: string | undefined;
  /** The points that survive at `now`, oldest first. */
  readonly points: readonly SimulatedPoint[];
  /** Creation times of every point deleted along the way, oldest first. */
  readonly deleted: readonly string[];
  readonly steps: readonly SimulationStep[];
  /** The chain's given periods at the end (sorted), as the repository would persist them. */
  readonly givenPeriods: readonly string[];
}

interface SimPoint extends RetentionPoint {
  readonly id: string;
  readonly flags: readonly RetentionFlag[];
}

/**
 * Replays a chain's life as the service lives it: for each creation time, commit a point (assignFlags with
 * the chain's given periods) and apply retention at that same instant, as the orchestrator does after every
 * commit; finally apply retention at `now` (default: the last time), as the retention task would. Deleting
 * along the way matters: a point deleted at an early commit cannot come back, and its period stays given.
 *
 * Times must be strictly ascending (points are committed in creation order and each is named by its
 * time); `now` must not be before the last time. Both violations are InvalidInputError.
 */
export function simulateRetention(policy: RetentionPolicy, times: readonly Instant[], now?: Instant): Simulation {
  const ms = times.map((t, i) => {
    try {
      return toMillis(t);
    } catch {
      throw new InvalidInputError(`times[${i}] "${String(t)}" is not a valid time: use ISO-8601 UTC such as 2026-03-01T04:00:00Z`);
    }
  });
  for (let i = 1; i < ms.length; i++) {
    if ((ms[i] as number) <= (ms[i - 1] as number)) {
      throw new InvalidInputError(
        `times[${i}] (${toIso(ms[i] as number)}) is not after times[${i - 1}] (${toIso(ms[i - 1] as number)}): give creation times in strictly ascending order, each once`,
      );
    }
  }
  const last = ms.length > 0 ? (ms[ms.length - 1] as number) : undefined;
  const finalNow = now === undefined ? last : toMillis(now);
  if (finalNow !== undefined && last !== undefined && finalNow < last) {
    throw new InvalidInputError(`--now (${toIso(finalNow)}) is before the last creation time (${toIso(last)}): give a --now at or after it, or leave it out`);
  }

  let given: GivenPeriods = new Set<string>();
  let live: SimPoint[] = [];
  const deleted: number[] = [];
  const steps: SimulationStep[] = [];
  for (const at of ms) {
    const commit = assignFlags(policy, given, at);
    given = commit.given;
    live.push({ id: toIso(at), createdAt: at, flags: commit.flags });
    const plan = applyRetention(policy, live, at);
    if (plan.delete.length > 0) {
      live = plan.keep.map((k) => k.point);
      for (const d of plan.delete) deleted.push(d.createdAt);
    }
    steps.push({ at: toIso(at), flags: commit.flags, deleted: plan.delete.map((d) => d.point.id) });
  }

  const points: SimulatedPoint[] = [];
  if (finalNow !== undefined) {
    const plan = applyRetention(policy, live, finalNow);
    for (const d of plan.delete) deleted.push(d.createdAt);
    if (plan.delete.length > 0 && steps.length > 0) {
      // The final apply is not a commit: it is recorded as a step without flags, only when it deletes something.
      steps.push({ at: toIso(finalNow), flags: [], deleted: plan.delete.map((d) => d.point.id) });
    }
    for (const k of plan.keep) {
      points.push({ createdAt: k.point.id, flags: k.point.flags, activeFlags: k.activeFlags, reasons: k.reasons });
    }
  }
  deleted.sort((a, b) => a - b);
  return {
    now: finalNow === undefined ? undefined : toIso(finalNow),
    points,
    deleted: deleted.map(toIso),
    steps,
    givenPeriods: [...given].sort(),
  };
}
