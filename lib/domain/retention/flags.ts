import { periodFor, toMillis, type Instant, type Period } from './periods.js';
import { RETENTION_FLAGS, type RetentionFlag, type RetentionPolicy } from './policy.js';

/**
 * The periods of a chain (one vApp in one repository) that have already given their flag, by key
 * (`weekly:2026-03-01`, `monthly:2026-03`, `yearly:2026`). It is persisted with the chain, not derived from
 * the surviving points, because a period gives its flag at most once: if the weekly point of a week is
 * deleted (by hand, or because it expired), a later point of that same week must not become weekly in its
 * place and silently extend how far back the chain reaches.
 */
export type GivenPeriods = ReadonlySet<string>;

export interface CommitFlags {
  /** The flags the new point carries, in cascade order (weekly, monthly, yearly). */
  readonly flags: readonly RetentionFlag[];
  /** The period behind each flag given, e.g. `{ weekly: { key: 'weekly:2026-03-01', ... } }`. */
  readonly periods: Partial<Record<RetentionFlag, Period>>;
  /**
   * The chain's given periods after this commit. The same object as the input when no flag was given,
   * otherwise a new set: the input is never mutated, so a failed commit leaves the caller's state intact.
   */
  readonly given: GivenPeriods;
  /** The keys added by this commit (empty when no flag was given), for an append-only store. */
  readonly newlyGiven: readonly string[];
}

/**
 * Assigns GFS flags to a point being committed at `createdAt`, given the periods the chain has already
 * used. A flag goes to the first point created in its period that is a candidate:
 * - weekly: every point is a candidate, so the point on the chosen weekday gets it or, if no point was made
 *   that day, the first one after it in the same 7-day period (late assignment);
 * - monthly: the points that just got the weekly flag when weekly is enabled (a monthly point is then
 *   also a weekly one, as in classic GFS), otherwise every point;
 * - yearly: the points that got the monthly flag if monthly is enabled, else the weekly-flagged ones if
 *   weekly is enabled, else every point.
 * Points must be committed in creation order; "first in the period" is then simply "the period has not
 * given its flag yet", which is why the given periods are the only state needed.
 */
export function assignFlags(policy: RetentionPolicy, given: GivenPeriods | readonly string[], createdAt: Instant): CommitFlags {
  const at = toMillis(createdAt);
  const before: GivenPeriods = given instanceof Set ? given : new Set(given as readonly string[]);
  const flags: RetentionFlag[] = [];
  const periods: Partial<Record<RetentionFlag, Period>> = {};
  const newlyGiven: string[] = [];
  // Whether the point is still a candidate for the next flag in the cascade. It starts true; an enabled
  // level the point did not win makes it false for every level above.
  let candidate = true;
  for (const flag of RETENTION_FLAGS) {
    const period = periodFor(policy, flag, at);
    if (!period) continue; // a disabled level passes candidacy through unchanged
    if (candidate && !before.has(period.key)) {
      flags.push(flag);
      periods[flag] = period;
      newlyGiven.push(period.key);
    } else {
      candidate = false;
    }
  }
  if (newlyGiven.length === 0) return { flags, periods, given: before, newlyGiven };
  const after = new Set(before);
  for (const key of newlyGiven) after.add(key);
  return { flags, periods, given: after, newlyGiven };
}
