import { describe, expect, it } from 'vitest';
import {
  addMonthsClamped,
  dueWeekStart,
  flagExpiry,
  formatInstant,
  monthlyPeriod,
  parseRetentionPolicy,
  weeklyPeriod,
  yearlyPeriod,
  type MonthWeek,
  type Month,
  type RetentionFlag,
  type Weekday,
} from '../../lib/domain/retention/index.js';

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString();

describe('weekly periods start at 00:00 UTC of the chosen weekday and last 7 days', () => {
  const cases: Array<[at: string, weekday: Weekday, start: string, key: string]> = [
    ['2026-03-01T00:00:00Z', 'sunday', '2026-03-01T00:00:00.000Z', 'weekly:2026-03-01'], // the weekday itself, at midnight
    ['2026-03-01T23:59:59Z', 'sunday', '2026-03-01T00:00:00.000Z', 'weekly:2026-03-01'],
    ['2026-02-28T23:59:59Z', 'sunday', '2026-02-22T00:00:00.000Z', 'weekly:2026-02-22'], // Saturday: last day of the previous period
    ['2026-03-04T12:00:00Z', 'sunday', '2026-03-01T00:00:00.000Z', 'weekly:2026-03-01'],
    ['2026-03-01T12:00:00Z', 'wednesday', '2026-02-25T00:00:00.000Z', 'weekly:2026-02-25'],
    ['2026-03-04T00:00:00Z', 'wednesday', '2026-03-04T00:00:00.000Z', 'weekly:2026-03-04'],
    ['2026-01-01T08:00:00Z', 'sunday', '2025-12-28T00:00:00.000Z', 'weekly:2025-12-28'], // across a year boundary
    ['2024-02-29T08:00:00Z', 'saturday', '2024-02-24T00:00:00.000Z', 'weekly:2024-02-24'],
  ];
  it.each(cases)('%s (%s) lies in the period from %s', (at, weekday, start, key) => {
    const p = weeklyPeriod(ms(at), weekday);
    expect(iso(p.start)).toBe(start);
    expect(p.end - p.start).toBe(7 * 86_400_000);
    expect(p.key).toBe(key);
    expect(p.start <= ms(at) && ms(at) < p.end).toBe(true);
  });
});

describe('monthly due weeks', () => {
  const cases: Array<[year: number, month: number, week: MonthWeek, start: string]> = [
    [2026, 0, 'first', '2026-01-01'],
    [2026, 0, 'second', '2026-01-08'],
    [2026, 0, 'third', '2026-01-15'],
    [2026, 0, 'fourth', '2026-01-22'],
    [2026, 0, 'last', '2026-01-25'], // 31-day month: 25..31
    [2026, 3, 'last', '2026-04-24'], // 30-day month: 24..30
    [2025, 1, 'last', '2025-02-22'], // common February: 22..28, the same as the fourth week
    [2025, 1, 'fourth', '2025-02-22'],
    [2024, 1, 'last', '2024-02-23'], // leap February: 23..29
    [2024, 1, 'fourth', '2024-02-22'],
  ];
  it.each(cases)('%i-%i %s week starts on %s', (year, month, week, start) => {
    expect(iso(dueWeekStart(year, month, week)).slice(0, 10)).toBe(start);
  });
});

describe('monthly periods run from one due week to the next', () => {
  const cases: Array<[at: string, week: MonthWeek, key: string, start: string, end: string]> = [
    ['2026-03-03T10:00:00Z', 'last', 'monthly:2026-02', '2026-02-22', '2026-03-25'], // before March's last week: February's period
    ['2026-03-25T00:00:00Z', 'last', 'monthly:2026-03', '2026-03-25', '2026-04-24'],
    ['2026-03-24T23:59:59Z', 'last', 'monthly:2026-02', '2026-02-22', '2026-03-25'],
    ['2026-01-05T00:00:00Z', 'first', 'monthly:2026-01', '2026-01-01', '2026-02-01'],
    ['2026-01-07T23:59:59Z', 'second', 'monthly:2025-12', '2025-12-08', '2026-01-08'], // across a year boundary
    ['2026-01-10T00:00:00Z', 'second', 'monthly:2026-01', '2026-01-08', '2026-02-08'],
    ['2024-02-23T00:00:00Z', 'last', 'monthly:2024-02', '2024-02-23', '2024-03-25'], // leap February's last week
    ['2024-02-22T23:59:59Z', 'last', 'monthly:2024-01', '2024-01-25', '2024-02-23'],
    ['2025-02-22T00:00:00Z', 'last', 'monthly:2025-02', '2025-02-22', '2025-03-25'], // common February's last week
    ['2025-12-31T23:00:00Z', 'last', 'monthly:2025-12', '2025-12-25', '2026-01-25'],
  ];
  it.each(cases)('%s (%s week) is in %s', (at, week, key, start, end) => {
    const p = monthlyPeriod(ms(at), week);
    expect(p.key).toBe(key);
    expect(iso(p.start).slice(0, 10)).toBe(start);
    expect(iso(p.end).slice(0, 10)).toBe(end);
  });
});

describe('yearly periods run from the 1st of the chosen month for a year', () => {
  const cases: Array<[at: string, month: Month, key: string, start: string, end: string]> = [
    ['2026-03-15T00:00:00Z', 'january', 'yearly:2026', '2026-01-01', '2027-01-01'],
    ['2026-03-15T00:00:00Z', 'july', 'yearly:2025', '2025-07-01', '2026-07-01'],
    ['2026-07-01T00:00:00Z', 'july', 'yearly:2026', '2026-07-01', '2027-07-01'],
    ['2026-06-30T23:59:59Z', 'july', 'yearly:2025', '2025-07-01', '2026-07-01'],
    ['2024-02-29T12:00:00Z', 'february', 'yearly:2024', '2024-02-01', '2025-02-01'],
  ];
  it.each(cases)('%s (%s) is in %s', (at, month, key, start, end) => {
    const p = yearlyPeriod(ms(at), month);
    expect(p.key).toBe(key);
    expect(iso(p.start).slice(0, 10)).toBe(start);
    expect(iso(p.end).slice(0, 10)).toBe(end);
  });
});

describe('adding months clamps to the last day of the month', () => {
  const cases: Array<[from: string, months: number, to: string]> = [
    ['2026-01-31T10:00:00.000Z', 1, '2026-02-28T10:00:00.000Z'],
    ['2024-01-31T10:00:00.000Z', 1, '2024-02-29T10:00:00.000Z'], // leap year
    ['2024-02-29T00:00:00.000Z', 12, '2025-02-28T00:00:00.000Z'],
    ['2024-02-29T00:00:00.000Z', 48, '2028-02-29T00:00:00.000Z'],
    ['2026-03-31T23:59:59.999Z', 1, '2026-04-30T23:59:59.999Z'],
    ['2026-12-15T06:00:00.000Z', 1, '2027-01-15T06:00:00.000Z'],
    ['2026-08-31T00:00:00.000Z', 6, '2027-02-28T00:00:00.000Z'],
    ['2026-05-15T00:00:00.000Z', 0, '2026-05-15T00:00:00.000Z'],
  ];
  it.each(cases)('%s + %i months = %s', (from, months, to) => {
    expect(iso(addMonthsClamped(ms(from), months))).toBe(to);
  });
});

describe('flag expiry', () => {
  const policy = parseRetentionPolicy({
    shortTerm: { restorePoints: 1 },
    gfs: { weekly: { keep: 4, weekday: 'sunday' }, monthly: { keep: 1, week: 'last' }, yearly: { keep: 1, month: 'january' } },
  });
  const fourYears = parseRetentionPolicy({ shortTerm: { restorePoints: 1 }, gfs: { yearly: { keep: 4, month: 'january' } } });
  const cases: Array<[label: string, flag: RetentionFlag, createdAt: string, expiry: string]> = [
    ['weekly: keep × 7 days, same time of day', 'weekly', '2026-03-01T04:00:00Z', '2026-03-29T04:00:00.000Z'],
    ['monthly: Jan 31 + 1 month = Feb 28, + 1 day', 'monthly', '2026-01-31T00:00:00Z', '2026-03-01T00:00:00.000Z'],
    ['monthly in a leap year: Jan 31 + 1 month = Feb 29, + 1 day', 'monthly', '2024-01-31T00:00:00Z', '2024-03-01T00:00:00.000Z'],
    ['monthly across the year', 'monthly', '2025-12-28T05:00:00Z', '2026-01-29T05:00:00.000Z'],
    ['yearly: Feb 29 + 1 year = Feb 28, + 1 day', 'yearly', '2024-02-29T00:00:00Z', '2025-03-01T00:00:00.000Z'],
  ];
  it.each(cases)('%s', (_label, flag, createdAt, expiry) => {
    expect(iso(flagExpiry(policy, flag, ms(createdAt)) as number)).toBe(expiry);
  });

  it('yearly over 4 years lands on Feb 29 again, + 1 day', () => {
    expect(iso(flagExpiry(fourYears, 'yearly', ms('2024-02-29T00:00:00Z')) as number)).toBe('2028-03-01T00:00:00.000Z');
  });

  it('is undefined for a flag the policy does not ask for', () => {
    expect(flagExpiry(fourYears, 'weekly', ms('2026-03-01T00:00:00Z'))).toBeUndefined();
    expect(flagExpiry(fourYears, 'monthly', ms('2026-03-01T00:00:00Z'))).toBeUndefined();
  });
});

describe('formatInstant', () => {
  it('shows the date alone at midnight and the time otherwise', () => {
    expect(formatInstant(ms('2026-03-01T00:00:00Z'))).toBe('2026-03-01');
    expect(formatInstant(ms('2026-03-01T04:30:00Z'))).toBe('2026-03-01T04:30:00Z');
    expect(formatInstant(ms('2026-03-01T04:30:00.250Z'))).toBe('2026-03-01T04:30:00.250Z');
  });
});
