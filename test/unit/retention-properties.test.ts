import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyRetention,
  assignFlags,
  flagExpiry,
  MONTH_WEEKS,
  MONTHS,
  parseRetentionPolicy,
  RETENTION_FLAGS,
  simulateRetention,
  WEEKDAYS,
  type GivenPeriods,
  type RetentionFlag,
  type RetentionPoint,
  type RetentionPolicy,
} from '../../lib/domain/retention/index.js';

const DAY = 86_400_000;
const FROM = Date.UTC(2020, 0, 1);
const TO = Date.UTC(2032, 0, 1);

const policyArb: fc.Arbitrary<RetentionPolicy> = fc
  .record(
    {
      shortTerm: fc.oneof(fc.record({ restorePoints: fc.integer({ min: 1, max: 10 }) }), fc.record({ days: fc.integer({ min: 1, max: 30 }) })),
      gfs: fc.record(
        {
          weekly: fc.record({ keep: fc.integer({ min: 1, max: 8 }), weekday: fc.constantFrom(...WEEKDAYS) }),
          monthly: fc.record({ keep: fc.integer({ min: 1, max: 24 }), week: fc.constantFrom(...MONTH_WEEKS) }),
          yearly: fc.record({ keep: fc.integer({ min: 1, max: 5 }), month: fc.constantFrom(...MONTHS) }),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['shortTerm'] },
  )
  .map((doc) => parseRetentionPolicy(doc));

/** Strictly ascending creation times: a start and gaps from one minute to three weeks. */
const timesArb = fc
  .tuple(fc.integer({ min: FROM, max: TO }), fc.array(fc.integer({ min: 60_000, max: 21 * DAY }), { minLength: 0, maxLength: 120 }))
  .map(([start, gaps]) => {
    const out = [start];
    for (const g of gaps) out.push((out.at(-1) as number) + g);
    return out;
  });

/** Arbitrary chains, flags included, as a plan might receive them (ties and any flags allowed). */
const pointsArb = fc
  .uniqueArray(
    fc.record({
      id: fc.string({ minLength: 1, maxLength: 6 }),
      createdAt: fc.integer({ min: FROM, max: FROM + 3 * 365 * DAY }),
      flags: fc.subarray([...RETENTION_FLAGS]),
    }),
    { selector: (p) => p.id, minLength: 0, maxLength: 60 },
  )
  .map((ps) => ps.map((p): RetentionPoint => ({ ...p, createdAt: new Date(p.createdAt) })));

const nowArb = fc.integer({ min: FROM, max: FROM + 4 * 365 * DAY });

const ms = (p: RetentionPoint) => (p.createdAt as Date).getTime();

function newestOf(points: readonly RetentionPoint[]): RetentionPoint | undefined {
  let best: RetentionPoint | undefined;
  for (const p of points) {
    if (!best || ms(p) > ms(best) || (ms(p) === ms(best) && p.id > best.id)) best = p;
  }
  return best;
}

function isActive(policy: RetentionPolicy, flag: RetentionFlag, createdAt: number, now: number): boolean {
  const expiry = flagExpiry(policy, flag, createdAt);
  return expiry !== undefined && now < expiry;
}

describe('retention properties', () => {
  it('the newest point always survives', () => {
    fc.assert(
      fc.property(policyArb, pointsArb, nowArb, (policy, points, now) => {
        const plan = applyRetention(policy, points, now);
        const newest = newestOf(points);
        if (!newest) return plan.keep.length === 0;
        const kept = plan.keep.find((k) => k.point === newest);
        expect(kept?.reasons).toContain('newest point');
        return plan.keep.filter((k) => k.reasons.includes('newest point')).length === 1;
      }),
    );
  });

  it('a point with an active flag always survives, and shows the flag among its reasons', () => {
    fc.assert(
      fc.property(policyArb, pointsArb, nowArb, (policy, points, now) => {
        const plan = applyRetention(policy, points, now);
        const keptIds = new Map(plan.keep.map((k) => [k.point.id, k]));
        for (const p of points) {
          const active = p.flags.filter((f) => isActive(policy, f, ms(p), now));
          if (active.length === 0) continue;
          const kept = keptIds.get(p.id);
          expect(kept, `${p.id} has active ${active.join(',')}`).toBeDefined();
          expect(kept?.activeFlags).toEqual(RETENTION_FLAGS.filter((f) => active.includes(f)));
          for (const f of active) expect(kept?.reasons.some((r) => r.startsWith(`${f} (until `))).toBe(true);
        }
      }),
    );
  });

  it('partitions the chain: every point is kept (with a reason) or deleted, never both', () => {
    fc.assert(
      fc.property(policyArb, pointsArb, nowArb, (policy, points, now) => {
        const plan = applyRetention(policy, points, now);
        const ids = [...plan.keep.map((k) => k.point.id), ...plan.delete.map((d) => d.point.id)];
        expect(ids.sort()).toEqual(points.map((p) => p.id).sort());
        for (const k of plan.keep) expect(k.reasons.length).toBeGreaterThan(0);
        if (policy.shortTerm.kind === 'restorePoints') {
          const unflagged = points.filter((p) => !p.flags.some((f) => isActive(policy, f, ms(p), now)));
          const keptUnflagged = plan.keep.filter((k) => k.activeFlags.length === 0);
          expect(keptUnflagged.length).toBe(Math.min(policy.shortTerm.count, unflagged.length));
        } else {
          const cutoff = now - policy.shortTerm.count * DAY;
          for (const p of points) if (ms(p) >= cutoff) expect(plan.keep.some((k) => k.point === p)).toBe(true);
        }
      }),
    );
  });

  it('applying a plan twice changes nothing', () => {
    fc.assert(
      fc.property(policyArb, pointsArb, nowArb, (policy, points, now) => {
        const first = applyRetention(policy, points, now);
        const second = applyRetention(policy, first.keep.map((k) => k.point), now);
        expect(second.delete).toEqual([]);
        expect(second.keep.map((k) => [k.point.id, k.reasons])).toEqual(first.keep.map((k) => [k.point.id, k.reasons]));
      }),
    );
  });

  it('simulate is deterministic, keeps the last point, and accounts for every time exactly once', () => {
    fc.assert(
      fc.property(policyArb, timesArb, fc.integer({ min: 0, max: 400 * DAY }), (policy, times, after) => {
        const now = (times.at(-1) as number) + after;
        const a = simulateRetention(policy, times, now);
        const b = simulateRetention(policy, times.map((t) => new Date(t).toISOString()), new Date(now));
        expect(b).toEqual(a);
        const all = [...a.points.map((p) => p.createdAt), ...a.deleted].sort();
        expect(all).toEqual(times.map((t) => new Date(t).toISOString()));
        expect(a.points.at(-1)?.createdAt).toBe(new Date(times.at(-1) as number).toISOString());
        // A period gives its flag at most once: as many flags given as periods remembered.
        const given = a.steps.reduce((n, s) => n + s.flags.length, 0);
        expect(a.givenPeriods.length).toBe(given);
      }),
      { numRuns: 60 },
    );
  });

  it('weekly flags match an independent oracle: first point of each 7-day period from the chosen weekday', () => {
    fc.assert(
      fc.property(fc.constantFrom(...WEEKDAYS), timesArb, (weekday, times) => {
        const policy = parseRetentionPolicy({ shortTerm: { restorePoints: 1 }, gfs: { weekly: { keep: 1, weekday } } });
        const wanted = WEEKDAYS.indexOf(weekday);
        const periodStart = (t: number) => {
          let d = Math.floor(t / DAY) * DAY;
          while (new Date(d).getUTCDay() !== wanted) d -= DAY;
          return d;
        };
        let given: GivenPeriods = new Set();
        times.forEach((t, i) => {
          const c = assignFlags(policy, given, t);
          given = c.given;
          const first = i === 0 || periodStart(times[i - 1] as number) !== periodStart(t);
          expect(c.flags).toEqual(first ? ['weekly'] : []);
        });
      }),
    );
  });

  it('monthly flags go only to weekly points when weekly is enabled, and yearly only to monthly points', () => {
    fc.assert(
      fc.property(policyArb, timesArb, (policy, times) => {
        let given: GivenPeriods = new Set();
        for (const t of times) {
          const c = assignFlags(policy, given, t);
          given = c.given;
          if (c.flags.includes('monthly') && policy.weekly) expect(c.flags).toContain('weekly');
          if (c.flags.includes('yearly') && policy.monthly) expect(c.flags).toContain('monthly');
          if (c.flags.includes('yearly') && !policy.monthly && policy.weekly) expect(c.flags).toContain('weekly');
          for (const f of c.flags) expect(policy[f]).toBeDefined();
        }
      }),
    );
  });
});
