import { InvalidInputError } from '../../errors.js';
import { flagExpiry, formatInstant, MS_PER_DAY, toMillis, type Instant } from './periods.js';
import { RETENTION_FLAGS, type RetentionFlag, type RetentionPolicy } from './policy.js';

/** What retention needs to know about a restore point; callers may pass richer objects and get them back. */
export interface RetentionPoint {
  readonly id: string;
  readonly createdAt: Instant;
  /** The GFS flags given at commit (assignFlags), persisted with the point. */
  readonly flags: readonly RetentionFlag[];
}

export interface KeptPoint<P extends RetentionPoint = RetentionPoint> {
  readonly point: P;
  readonly createdAt: number;
  /** The point's flags that still protect it at `now`, in cascade order. */
  readonly activeFlags: readonly RetentionFlag[];
  /** Every reason that keeps the point, never empty; see applyRetention for the wording. */
  readonly reasons: readonly string[];
}

export interface DeletedPoint<P extends RetentionPoint = RetentionPoint> {
  readonly point: P;
  readonly createdAt: number;
  /** Why no rule keeps it, e.g. `weekly expired 2026-02-01`, `short-term: not among 7 newest`. */
  readonly notes: readonly string[];
}

export interface RetentionPlan<P extends RetentionPoint = RetentionPoint> {
  readonly now: number;
  /** Kept points, oldest first. */
  readonly keep: readonly KeptPoint<P>[];
  /** Points no rule keeps, oldest first. */
  readonly delete: readonly DeletedPoint<P>[];
}

/**
 * Decides which points of one chain survive at `now`. A point is kept when any rule keeps it, and lists
 * every such rule, in this order:
 * 1. each active GFS flag: `weekly (until 2026-03-29)`, `monthly (until ...)`, `yearly (until ...)`. A flag
 *    is active while `now` is before its expiry (flagExpiry); a flag whose GFS part is no longer in the
 *    policy protects nothing.
 * 2. short-term:
 *    - `restorePoints: N`: the N newest points that carry no active flag, `short-term: 2 of 7 newest`.
 *      Flagged points do not use up short-term slots, so GFS never shrinks the short-term window.
 *    - `days: N`: every point created at or after `now − N days`, `short-term: within 7 days`.
 * 3. `newest point`: the newest point is always kept, so a chain never becomes empty by retention alone
 *    (think of a job that stopped running: its last point must outlive any `days` window).
 * "Newest" orders by creation time, then by id for points created at the same instant, so the outcome does
 * not depend on the order of the input. Points created after `now` are judged like any other (they are the
 * newest, so short-term keeps them first).
 *
 * Applying a plan is idempotent: running it again on the kept points at the same `now` deletes nothing.
 * Cost: one sort, O(n log n); no Date objects are created for points that are deleted.
 */
const NO_FLAGS: RetentionFlag[] = [];
Object.freeze(NO_FLAGS);
const NO_NOTES: readonly string[] = Object.freeze([]);

export function applyRetention<P extends RetentionPoint>(policy: RetentionPolicy, points: readonly P[], now: Instant): RetentionPlan<P> {
  const nowMs = toMillis(now);
  const n = points.length;
  const created = new Float64Array(n);
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const p = points[i] as P;
    if (seen.has(p.id)) throw new InvalidInputError(`restore point id "${p.id}" appears twice: give each point a unique id`);
    seen.add(p.id);
    try {
      created[i] = toMillis(p.createdAt);
    } catch {
      throw new InvalidInputError(`restore point "${p.id}" has an invalid createdAt "${String(p.createdAt)}": use an ISO-8601 UTC time such as 2026-03-01T04:00:00Z`);
    }
  }

  // Newest first: by creation time, then by id (descending) so ties are broken the same way every time.
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => {
    const d = (created[b] as number) - (created[a] as number);
    if (d !== 0) return d;
    const ia = (points[a] as P).id;
    const ib = (points[b] as P).id;
    return ia < ib ? 1 : ia > ib ? -1 : 0;
  });

  const shortTerm = policy.shortTerm;
  const daysCutoff = shortTerm.kind === 'days' ? nowMs - shortTerm.count * MS_PER_DAY : Number.NaN;
  const keepAt: Array<KeptPoint<P> | undefined> = new Array<KeptPoint<P> | undefined>(n);
  const deleteAt: Array<DeletedPoint<P> | undefined> = new Array<DeletedPoint<P> | undefined>(n);
  let unflaggedRank = 0;
  // Notes and reasons that do not depend on the point are built once: a 100 000-point plan deletes almost
  // every point, and one string per deleted point would dominate its memory.
  const beyondCount = Object.freeze([`short-term: not among ${shortTerm.count} newest`]);
  const withinDays = `short-term: within ${shortTerm.count} days`;
  const olderThanDays = Object.freeze([`short-term: older than ${shortTerm.count} days`]);

  for (let k = 0; k < n; k++) {
    const i = order[k] as number;
    const point = points[i] as P;
    const createdAt = created[i] as number;
    // The common case of a long chain is an unflagged point beyond short-term: it allocates nothing but its
    // DeletedPoint (the shared, frozen notes below), which keeps a 100 000-point plan small.
    const reasons: string[] = [];
    let notes: string[] | undefined;
    let activeFlags: RetentionFlag[] = NO_FLAGS;

    if (point.flags.length > 0) {
      for (const flag of RETENTION_FLAGS) {
        if (!point.flags.includes(flag)) continue;
        const expiry = flagExpiry(policy, flag, createdAt);
        if (expiry === undefined) (notes ??= []).push(`${flag} not in policy`);
        else if (nowMs < expiry) {
          if (activeFlags === NO_FLAGS) activeFlags = [];
          activeFlags.push(flag);
          reasons.push(`${flag} (until ${formatInstant(expiry)})`);
        } else (notes ??= []).push(`${flag} expired ${formatInstant(expiry)}`);
      }
    }

    let shortTermNote: readonly string[] | undefined;
    if (shortTerm.kind === 'restorePoints') {
      if (activeFlags.length === 0) {
        unflaggedRank += 1;
        if (unflaggedRank <= shortTerm.count) reasons.push(`short-term: ${unflaggedRank} of ${shortTerm.count} newest`);
        else shortTermNote = beyondCount;
      }
    } else if (createdAt >= daysCutoff) reasons.push(withinDays);
    else shortTermNote = olderThanDays;

    if (k === 0) reasons.push('newest point');

    if (reasons.length > 0) keepAt[i] = { point, createdAt, activeFlags, reasons };
    else {
      const all: readonly string[] = notes ? (shortTermNote ? [...notes, ...shortTermNote] : notes) : (shortTermNote ?? NO_NOTES);
      deleteAt[i] = { point, createdAt, notes: all };
    }
  }

  const keep: KeptPoint<P>[] = [];
  const del: DeletedPoint<P>[] = [];
  for (let k = n - 1; k >= 0; k--) {
    const i = order[k] as number;
    const kept = keepAt[i];
    if (kept) keep.push(kept);
    else del.push(deleteAt[i] as DeletedPoint<P>);
  }
  return { now: nowMs, keep, delete: del };
}
