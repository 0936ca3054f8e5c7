import { describe, expect, it } from 'vitest';
import { assignFlags, parseRetentionPolicy, type GivenPeriods, type RetentionFlag } from '../../lib/domain/retention/index.js';

type Gfs = Record<string, unknown>;
const policyWith = (gfs: Gfs) => parseRetentionPolicy({ shortTerm: { restorePoints: 3 }, gfs });

/** Commits the times in order on a chain that starts with `given`, and returns each time's flags. */
function commitAll(gfs: Gfs, times: readonly string[], given: readonly string[] = []): Record<string, RetentionFlag[]> {
  const policy = policyWith(gfs);
  let state: GivenPeriods = new Set(given);
  const out: Record<string, RetentionFlag[]> = {};
  for (const t of times) {
    const c = assignFlags(policy, state, t);
    state = c.given;
    out[t] = [...c.flags];
  }
  return out;
}

const daily = (from: string, days: number, time = 'T00:00:00Z') =>
  Array.from({ length: days }, (_, i) => new Date(Date.parse(`${from}${time}`) + i * 86_400_000).toISOString().replace('.000Z', 'Z'));

const WEEKLY_SUN = { weekly: { keep: 4, weekday: 'sunday' } };

describe('flag assignment on commit', () => {
  const cases: Array<{ name: string; gfs: Gfs; given?: string[]; times: string[]; expect: Record<string, RetentionFlag[]> }> = [
    {
      name: 'weekly goes to the point on the weekday (2026-03-01 and 03-08 are Sundays)',
      gfs: WEEKLY_SUN,
      given: ['weekly:2026-02-22'],
      times: daily('2026-02-28', 10),
      expect: {
        '2026-02-28T00:00:00Z': [], '2026-03-01T00:00:00Z': ['weekly'], '2026-03-02T00:00:00Z': [], '2026-03-07T00:00:00Z': [],
        '2026-03-08T00:00:00Z': ['weekly'], '2026-03-09T00:00:00Z': [],
      },
    },
    {
      name: 'a chain that starts mid-week gives that week\'s flag to its first point',
      gfs: WEEKLY_SUN,
      times: ['2026-02-27T22:00:00Z', '2026-02-28T22:00:00Z', '2026-03-01T22:00:00Z'],
      expect: { '2026-02-27T22:00:00Z': ['weekly'], '2026-02-28T22:00:00Z': [], '2026-03-01T22:00:00Z': ['weekly'] },
    },
    {
      name: 'late assignment: Sunday missed, the flag goes to the first point after it (Monday)',
      gfs: WEEKLY_SUN,
      given: ['weekly:2026-02-22'],
      times: ['2026-02-27T10:00:00Z', '2026-03-02T10:00:00Z', '2026-03-03T10:00:00Z', '2026-03-08T10:00:00Z'],
      expect: { '2026-02-27T10:00:00Z': [], '2026-03-02T10:00:00Z': ['weekly'], '2026-03-03T10:00:00Z': [], '2026-03-08T10:00:00Z': ['weekly'] },
    },
    {
      name: 'several points on the weekday: only the first of them',
      gfs: WEEKLY_SUN,
      given: ['weekly:2026-02-22'],
      times: ['2026-02-28T23:59:59Z', '2026-03-01T00:00:00Z', '2026-03-01T06:00:00Z', '2026-03-01T12:00:00Z'],
      expect: { '2026-02-28T23:59:59Z': [], '2026-03-01T00:00:00Z': ['weekly'], '2026-03-01T06:00:00Z': [], '2026-03-01T12:00:00Z': [] },
    },
    {
      name: 'a period that already gave its flag gives nothing more, even if its point is gone',
      gfs: WEEKLY_SUN,
      given: ['weekly:2026-03-01'],
      times: ['2026-03-03T00:00:00Z', '2026-03-07T23:59:59Z', '2026-03-08T00:00:00Z'],
      expect: { '2026-03-03T00:00:00Z': [], '2026-03-07T23:59:59Z': [], '2026-03-08T00:00:00Z': ['weekly'] },
    },
    {
      name: 'monthly candidates are weekly points: Apr 1 (Wed) is in April\'s first week but not weekly; Apr 5 (Sun) is',
      gfs: { ...WEEKLY_SUN, monthly: { keep: 12, week: 'first' } },
      times: daily('2026-03-29', 9),
      expect: {
        '2026-03-29T00:00:00Z': ['weekly', 'monthly'], // first weekly point of March's period (Mar 1 - Apr 1)
        '2026-04-01T00:00:00Z': [], '2026-04-04T00:00:00Z': [], '2026-04-05T00:00:00Z': ['weekly', 'monthly'], '2026-04-06T00:00:00Z': [],
      },
    },
    {
      name: 'monthly without weekly: every point is a candidate',
      gfs: { monthly: { keep: 12, week: 'first' } },
      given: ['monthly:2026-03'],
      times: daily('2026-03-30', 4),
      expect: { '2026-03-30T00:00:00Z': [], '2026-03-31T00:00:00Z': [], '2026-04-01T00:00:00Z': ['monthly'], '2026-04-02T00:00:00Z': [] },
    },
    {
      name: 'monthly `last` week in a common February starts on the 22nd',
      gfs: { monthly: { keep: 12, week: 'last' } },
      given: ['monthly:2025-01'],
      times: daily('2025-02-20', 5),
      expect: { '2025-02-20T00:00:00Z': [], '2025-02-21T00:00:00Z': [], '2025-02-22T00:00:00Z': ['monthly'], '2025-02-23T00:00:00Z': [] },
    },
    {
      name: 'monthly `last` week in a leap February starts on the 23rd',
      gfs: { monthly: { keep: 12, week: 'last' } },
      given: ['monthly:2024-01'],
      times: daily('2024-02-21', 5),
      expect: { '2024-02-21T00:00:00Z': [], '2024-02-22T00:00:00Z': [], '2024-02-23T00:00:00Z': ['monthly'], '2024-02-24T00:00:00Z': [] },
    },
    {
      name: 'monthly `last` in a 31-day month: the due week starts on the 25th; the month after starts on its own last week',
      gfs: { monthly: { keep: 12, week: 'last' } },
      given: ['monthly:2025-12'],
      times: ['2026-01-24T23:00:00Z', '2026-01-25T01:00:00Z', '2026-02-21T00:00:00Z', '2026-02-22T00:00:00Z'],
      expect: { '2026-01-24T23:00:00Z': [], '2026-01-25T01:00:00Z': ['monthly'], '2026-02-21T00:00:00Z': [], '2026-02-22T00:00:00Z': ['monthly'] },
    },
    {
      name: 'yearly cascades through monthly and weekly (2025-12-28 and 2026-01-04 are Sundays)',
      gfs: { ...WEEKLY_SUN, monthly: { keep: 12, week: 'first' }, yearly: { keep: 3, month: 'january' } },
      times: daily('2025-12-28', 9),
      expect: {
        '2025-12-28T00:00:00Z': ['weekly', 'monthly', 'yearly'],
        '2026-01-01T00:00:00Z': [], // January's first day, but the week's flag is already given: not a candidate
        '2026-01-04T00:00:00Z': ['weekly', 'monthly', 'yearly'],
        '2026-01-05T00:00:00Z': [],
      },
    },
    {
      name: 'yearly without monthly takes weekly points as candidates',
      gfs: { ...WEEKLY_SUN, yearly: { keep: 3, month: 'january' } },
      given: ['yearly:2025', 'weekly:2025-12-28'],
      times: ['2026-01-01T00:00:00Z', '2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z'],
      expect: { '2026-01-01T00:00:00Z': [], '2026-01-04T00:00:00Z': ['weekly', 'yearly'], '2026-01-11T00:00:00Z': ['weekly'] },
    },
    {
      name: 'yearly alone: the first point from the 1st of the chosen month',
      gfs: { yearly: { keep: 3, month: 'july' } },
      given: ['yearly:2025'],
      times: ['2026-06-30T23:59:59Z', '2026-07-01T00:00:00Z', '2026-07-01T01:00:00Z'],
      expect: { '2026-06-30T23:59:59Z': [], '2026-07-01T00:00:00Z': ['yearly'], '2026-07-01T01:00:00Z': [] },
    },
    {
      name: 'a monthly period that already gave its flag blocks yearly for its weekly points too',
      gfs: { ...WEEKLY_SUN, monthly: { keep: 12, week: 'first' }, yearly: { keep: 3, month: 'january' } },
      given: ['monthly:2026-01', 'yearly:2025'],
      times: ['2026-01-04T00:00:00Z', '2026-02-01T00:00:00Z'],
      expect: { '2026-01-04T00:00:00Z': ['weekly'], '2026-02-01T00:00:00Z': ['weekly', 'monthly', 'yearly'] },
    },
  ];

  it.each(cases)('$name', ({ gfs, given, times, expect: expected }) => {
    const got = commitAll(gfs, times, given);
    for (const [t, flags] of Object.entries(expected)) expect({ [t]: got[t] }).toEqual({ [t]: flags });
  });

  it('gives no flag without GFS', () => {
    const policy = parseRetentionPolicy({ shortTerm: { days: 7 } });
    const c = assignFlags(policy, [], '2026-03-01T00:00:00Z');
    expect(c.flags).toEqual([]);
    expect(c.newlyGiven).toEqual([]);
  });

  it('returns the updated given periods and never mutates the input', () => {
    const policy = policyWith({ ...WEEKLY_SUN, monthly: { keep: 1, week: 'first' } });
    const before = new Set(['weekly:2026-02-22']);
    const c = assignFlags(policy, before, '2026-03-01T05:00:00Z');
    expect(c.flags).toEqual(['weekly', 'monthly']);
    expect(c.newlyGiven).toEqual(['weekly:2026-03-01', 'monthly:2026-03']);
    expect([...c.given].sort()).toEqual(['monthly:2026-03', 'weekly:2026-02-22', 'weekly:2026-03-01']);
    expect([...before]).toEqual(['weekly:2026-02-22']);
    expect(c.periods.weekly?.key).toBe('weekly:2026-03-01');
    const again = assignFlags(policy, c.given, '2026-03-02T05:00:00Z');
    expect(again.flags).toEqual([]);
    expect(again.given).toBe(c.given);
  });

  it('accepts the given periods as a persisted array', () => {
    const policy = policyWith(WEEKLY_SUN);
    expect(assignFlags(policy, ['weekly:2026-03-01'], new Date('2026-03-02T00:00:00Z')).flags).toEqual([]);
    expect(assignFlags(policy, ['weekly:2026-02-22'], new Date('2026-03-02T00:00:00Z')).flags).toEqual(['weekly']);
  });
});
