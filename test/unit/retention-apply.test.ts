import { describe, expect, it } from 'vitest';
import { applyRetention, parseRetentionPolicy, type RetentionFlag, type RetentionPoint } from '../../lib/domain/retention/index.js';
import { InvalidInputError } from '../../lib/errors.js';

const pt = (id: string, createdAt: string, flags: RetentionFlag[] = []): RetentionPoint => ({ id, createdAt, flags });

/** id → reasons for kept points, 'delete' for deleted ones. */
function outcome(policyDoc: unknown, points: RetentionPoint[], now: string): Record<string, string[] | 'delete'> {
  const plan = applyRetention(parseRetentionPolicy(policyDoc), points, now);
  const out: Record<string, string[] | 'delete'> = {};
  for (const k of plan.keep) out[k.point.id] = [...k.reasons];
  for (const d of plan.delete) out[d.point.id] = 'delete';
  return out;
}

const WEEKLY = { weekly: { keep: 4, weekday: 'sunday' } };

const cases: Array<{ name: string; policy: unknown; now: string; points: RetentionPoint[]; expect: Record<string, string[] | 'delete'> }> = [
  {
    name: 'restorePoints keeps the N newest, ranked from the newest',
    policy: { shortTerm: { restorePoints: 3 } },
    now: '2026-03-05T00:00:00Z',
    points: [pt('p1', '2026-03-01T00:00:00Z'), pt('p2', '2026-03-02T00:00:00Z'), pt('p3', '2026-03-03T00:00:00Z'), pt('p4', '2026-03-04T00:00:00Z'), pt('p5', '2026-03-05T00:00:00Z')],
    expect: {
      p1: 'delete', p2: 'delete',
      p3: ['short-term: 3 of 3 newest'], p4: ['short-term: 2 of 3 newest'], p5: ['short-term: 1 of 3 newest', 'newest point'],
    },
  },
  {
    name: 'points with an active flag do not use up short-term slots',
    policy: { shortTerm: { restorePoints: 2 }, gfs: WEEKLY },
    now: '2026-03-03T00:00:00Z',
    points: [pt('p0', '2026-02-28T00:00:00Z'), pt('p1', '2026-03-01T00:00:00Z', ['weekly']), pt('p2', '2026-03-02T00:00:00Z'), pt('p3', '2026-03-03T00:00:00Z')],
    expect: { p0: 'delete', p1: ['weekly (until 2026-03-29)'], p2: ['short-term: 2 of 2 newest'], p3: ['short-term: 1 of 2 newest', 'newest point'] },
  },
  {
    name: 'a flag is active until just before its expiry',
    policy: { shortTerm: { restorePoints: 1 }, gfs: { weekly: { keep: 1, weekday: 'sunday' } } },
    now: '2026-03-07T23:59:59.999Z',
    points: [pt('p1', '2026-03-01T00:00:00Z', ['weekly']), pt('p2', '2026-03-07T00:00:00Z')],
    expect: { p1: ['weekly (until 2026-03-08)'], p2: ['short-term: 1 of 1 newest', 'newest point'] },
  },
  {
    name: 'an expired flag protects nothing, and the point then competes for short-term slots',
    policy: { shortTerm: { restorePoints: 1 }, gfs: { weekly: { keep: 1, weekday: 'sunday' } } },
    now: '2026-03-08T00:00:00Z',
    points: [pt('p1', '2026-03-01T00:00:00Z', ['weekly']), pt('p2', '2026-03-07T00:00:00Z')],
    expect: { p1: 'delete', p2: ['short-term: 1 of 1 newest', 'newest point'] },
  },
  {
    name: 'a flag whose GFS part left the policy protects nothing',
    policy: { shortTerm: { restorePoints: 1 }, gfs: WEEKLY },
    now: '2026-03-03T00:00:00Z',
    points: [pt('p1', '2026-03-01T00:00:00Z', ['monthly']), pt('p2', '2026-03-02T00:00:00Z', ['yearly']), pt('p3', '2026-03-03T00:00:00Z')],
    expect: { p1: 'delete', p2: 'delete', p3: ['short-term: 1 of 1 newest', 'newest point'] },
  },
  {
    name: 'days keeps every point at or after now − N days',
    policy: { shortTerm: { days: 7 } },
    now: '2026-03-10T12:00:00Z',
    points: [pt('old', '2026-03-03T11:59:59.999Z'), pt('edge', '2026-03-03T12:00:00Z'), pt('a', '2026-03-09T00:00:00Z'), pt('b', '2026-03-10T12:00:00Z')],
    expect: { old: 'delete', edge: ['short-term: within 7 days'], a: ['short-term: within 7 days'], b: ['short-term: within 7 days', 'newest point'] },
  },
  {
    name: 'days keeps points with flags inside the window and lists both reasons',
    policy: { shortTerm: { days: 7 }, gfs: WEEKLY },
    now: '2026-03-02T00:00:00Z',
    points: [pt('w', '2026-03-01T00:00:00Z', ['weekly'])],
    expect: { w: ['weekly (until 2026-03-29)', 'short-term: within 7 days', 'newest point'] },
  },
  {
    name: 'the newest point survives even when no rule wants it (a job that stopped)',
    policy: { shortTerm: { days: 1 } },
    now: '2026-03-01T00:00:00Z',
    points: [pt('p1', '2026-01-01T00:00:00Z'), pt('p2', '2026-01-02T00:00:00Z')],
    expect: { p1: 'delete', p2: ['newest point'] },
  },
  {
    name: 'several points on one day count one by one',
    policy: { shortTerm: { restorePoints: 2 } },
    now: '2026-03-01T23:00:00Z',
    points: [pt('m', '2026-03-01T00:00:00Z'), pt('n', '2026-03-01T08:00:00Z'), pt('e', '2026-03-01T16:00:00Z')],
    expect: { m: 'delete', n: ['short-term: 2 of 2 newest'], e: ['short-term: 1 of 2 newest', 'newest point'] },
  },
  {
    name: 'points created at the same instant are ordered by id',
    policy: { shortTerm: { restorePoints: 1 } },
    now: '2026-03-01T00:00:00Z',
    points: [pt('b', '2026-03-01T00:00:00Z'), pt('a', '2026-03-01T00:00:00Z')],
    expect: { a: 'delete', b: ['short-term: 1 of 1 newest', 'newest point'] },
  },
  {
    name: 'monthly expiry clamps Jan 31 + 1 month to Feb 28, plus a day',
    policy: { shortTerm: { restorePoints: 1 }, gfs: { monthly: { keep: 1, week: 'last' } } },
    now: '2026-02-28T23:59:59Z',
    points: [pt('jan', '2026-01-31T00:00:00Z', ['monthly']), pt('last', '2026-02-28T00:00:00Z')],
    expect: { jan: ['monthly (until 2026-03-01)'], last: ['short-term: 1 of 1 newest', 'newest point'] },
  },
  {
    name: 'monthly after its clamped expiry is gone',
    policy: { shortTerm: { restorePoints: 1 }, gfs: { monthly: { keep: 1, week: 'last' } } },
    now: '2026-03-01T00:00:00Z',
    points: [pt('jan', '2026-01-31T00:00:00Z', ['monthly']), pt('last', '2026-02-28T00:00:00Z')],
    expect: { jan: 'delete', last: ['short-term: 1 of 1 newest', 'newest point'] },
  },
  {
    name: 'yearly from Feb 29 lasts until Mar 1 of the next year (Feb 28 + 1 day)',
    policy: { shortTerm: { restorePoints: 1 }, gfs: { yearly: { keep: 1, month: 'february' } } },
    now: '2025-02-28T23:59:59Z',
    points: [pt('leap', '2024-02-29T00:00:00Z', ['yearly']), pt('x', '2025-02-28T00:00:00Z')],
    expect: { leap: ['yearly (until 2025-03-01)'], x: ['short-term: 1 of 1 newest', 'newest point'] },
  },
  {
    name: 'yearly from Feb 29 is gone on Mar 1 of the next year',
    policy: { shortTerm: { restorePoints: 1 }, gfs: { yearly: { keep: 1, month: 'february' } } },
    now: '2025-03-01T00:00:00Z',
    points: [pt('leap', '2024-02-29T00:00:00Z', ['yearly']), pt('x', '2025-02-28T00:00:00Z')],
    expect: { leap: 'delete', x: ['short-term: 1 of 1 newest', 'newest point'] },
  },
  {
    name: 'every active flag is a reason, with the time of day when the point has one',
    policy: { shortTerm: { restorePoints: 1 }, gfs: { weekly: { keep: 2, weekday: 'sunday' }, monthly: { keep: 3, week: 'first' }, yearly: { keep: 1, month: 'march' } } },
    now: '2026-03-02T00:00:00Z',
    points: [pt('all', '2026-03-01T04:30:00Z', ['weekly', 'monthly', 'yearly']), pt('n', '2026-03-02T00:00:00Z')],
    expect: {
      all: ['weekly (until 2026-03-15T04:30:00Z)', 'monthly (until 2026-06-02T04:30:00Z)', 'yearly (until 2027-03-02T04:30:00Z)'],
      n: ['short-term: 1 of 1 newest', 'newest point'],
    },
  },
  {
    name: 'a flagged newest point is kept for its flags and for being newest, not for short-term',
    policy: { shortTerm: { restorePoints: 2 }, gfs: WEEKLY },
    now: '2026-03-01T00:00:00Z',
    points: [pt('a', '2026-02-27T00:00:00Z'), pt('b', '2026-02-28T00:00:00Z'), pt('c', '2026-02-28T12:00:00Z'), pt('w', '2026-03-01T00:00:00Z', ['weekly'])],
    expect: { a: 'delete', b: ['short-term: 2 of 2 newest'], c: ['short-term: 1 of 2 newest'], w: ['weekly (until 2026-03-29)', 'newest point'] },
  },
];

describe('retention at a time', () => {
  it.each(cases)('$name', ({ policy, points, now, expect: expected }) => {
    expect(outcome(policy, points, now)).toEqual(expected);
  });

  it('does not depend on the order of the input, and lists keep and delete oldest first', () => {
    const policy = parseRetentionPolicy({ shortTerm: { restorePoints: 2 }, gfs: WEEKLY });
    const points = [pt('p3', '2026-03-03T00:00:00Z'), pt('p1', '2026-03-01T00:00:00Z', ['weekly']), pt('p4', '2026-03-04T00:00:00Z'), pt('p0', '2026-02-20T00:00:00Z'), pt('p2', '2026-03-02T00:00:00Z')];
    const plan = applyRetention(policy, points, '2026-03-04T00:00:00Z');
    expect(plan.keep.map((k) => k.point.id)).toEqual(['p1', 'p3', 'p4']);
    expect(plan.delete.map((d) => d.point.id)).toEqual(['p0', 'p2']);
    expect(plan.keep[0]?.activeFlags).toEqual(['weekly']);
    const reversed = applyRetention(policy, [...points].reverse(), '2026-03-04T00:00:00Z');
    expect(reversed.keep.map((k) => [k.point.id, k.reasons])).toEqual(plan.keep.map((k) => [k.point.id, k.reasons]));
  });

  it('explains deletions', () => {
    const policy = parseRetentionPolicy({ shortTerm: { restorePoints: 1 }, gfs: { weekly: { keep: 1, weekday: 'sunday' } } });
    const plan = applyRetention(policy, [pt('w', '2026-03-01T00:00:00Z', ['weekly', 'monthly']), pt('x', '2026-03-10T00:00:00Z')], new Date('2026-03-10T00:00:00Z'));
    expect(plan.delete.map((d) => [d.point.id, d.notes])).toEqual([
      ['w', ['weekly expired 2026-03-08', 'monthly not in policy', 'short-term: not among 1 newest']],
    ]);
    const days = applyRetention(parseRetentionPolicy({ shortTerm: { days: 3 } }), [pt('a', '2026-03-01T00:00:00Z'), pt('b', '2026-03-10T00:00:00Z')], '2026-03-10T00:00:00Z');
    expect(days.delete[0]?.notes).toEqual(['short-term: older than 3 days']);
  });

  it('returns the caller\'s own objects', () => {
    const rich = { id: 'p', createdAt: new Date('2026-03-01T00:00:00Z'), flags: [] as RetentionFlag[], sizeBytes: 42 };
    const plan = applyRetention(parseRetentionPolicy({ shortTerm: { restorePoints: 1 } }), [rich], '2026-03-01T00:00:00Z');
    expect(plan.keep[0]?.point).toBe(rich);
    expect(plan.keep[0]?.point.sizeBytes).toBe(42);
  });

  it('keeps nothing and deletes nothing for an empty chain', () => {
    const plan = applyRetention(parseRetentionPolicy({ shortTerm: { restorePoints: 1 } }), [], '2026-03-01T00:00:00Z');
    expect(plan.keep).toEqual([]);
    expect(plan.delete).toEqual([]);
  });

  it('refuses duplicate ids and invalid times', () => {
    const policy = parseRetentionPolicy({ shortTerm: { restorePoints: 1 } });
    expect(() => applyRetention(policy, [pt('a', '2026-03-01T00:00:00Z'), pt('a', '2026-03-02T00:00:00Z')], '2026-03-02T00:00:00Z')).toThrow(InvalidInputError);
    expect(() => applyRetention(policy, [pt('a', '2026-03-01T00:00:00Z'), pt('a', '2026-03-02T00:00:00Z')], '2026-03-02T00:00:00Z')).toThrow(/"a" appears twice/);
    expect(() => applyRetention(policy, [pt('a', 'yesterday')], '2026-03-02T00:00:00Z')).toThrow(/invalid createdAt "yesterday"/);
  });
});
