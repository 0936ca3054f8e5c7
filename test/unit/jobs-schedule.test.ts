import { describe, expect, it } from 'vitest';
import { nextRunAfter, runsBetween, scheduleSchema, isTriggeredBy, localDateOf } from '../../lib/domain/jobs/index.js';

const next = (input: unknown, after: string): string | undefined =>
  nextRunAfter(scheduleSchema.parse(input), new Date(after))?.toISOString();

describe('nextRunAfter: daily', () => {
  it.each([
    ['just before the time', { kind: 'daily', times: ['02:00'] }, '2024-01-01T01:59:59.999Z', '2024-01-01T02:00:00.000Z'],
    ['exactly at the time is not "after"', { kind: 'daily', times: ['02:00'] }, '2024-01-01T02:00:00.000Z', '2024-01-02T02:00:00.000Z'],
    ['one millisecond after', { kind: 'daily', times: ['02:00'] }, '2024-01-01T02:00:00.001Z', '2024-01-02T02:00:00.000Z'],
    ['several times, unsorted input', { kind: 'daily', times: ['18:00', '06:30'] }, '2024-01-01T07:00:00Z', '2024-01-01T18:00:00.000Z'],
    ['across the year end', { kind: 'daily', times: ['23:30', '01:00'] }, '2024-12-31T23:45:00Z', '2025-01-01T01:00:00.000Z'],
    ['weekdays: Friday run done, next is Monday', { kind: 'daily', times: ['22:00'], weekdays: ['monday', 'friday'] }, '2024-01-05T22:00:00Z', '2024-01-08T22:00:00.000Z'],
    ['weekdays: Saturday only, through a leap day', { kind: 'daily', times: ['09:15'], weekdays: ['saturday'] }, '2024-02-28T12:00:00Z', '2024-03-02T09:15:00.000Z'],
    ['weekdays: Sunday after Sunday is a week later', { kind: 'daily', times: ['00:00'], weekdays: ['sunday'] }, '2024-01-07T00:00:00Z', '2024-01-14T00:00:00.000Z'],
  ] as const)('%s', (_name, schedule, after, expected) => {
    expect(next(schedule, after)).toBe(expected);
  });
});

describe('nextRunAfter: monthly', () => {
  it.each([
    ['day 31 clamps to 29 Feb in a leap year', { kind: 'monthly', day: 31, times: ['03:00'] }, '2024-01-31T03:00:00Z', '2024-02-29T03:00:00.000Z'],
    ['day 31 clamps to 28 Feb otherwise', { kind: 'monthly', day: 31, times: ['03:00'] }, '2023-01-31T03:00:00Z', '2023-02-28T03:00:00.000Z'],
    ['day 31 clamps to 30 April', { kind: 'monthly', day: 31, ifDayMissing: 'last-day', times: ['03:00'] }, '2024-03-31T03:00:00Z', '2024-04-30T03:00:00.000Z'],
    ['day 31 with skip jumps February', { kind: 'monthly', day: 31, ifDayMissing: 'skip', times: ['03:00'] }, '2024-01-31T03:00:00Z', '2024-03-31T03:00:00.000Z'],
    ['day 29 with skip, leap year has it', { kind: 'monthly', day: 29, ifDayMissing: 'skip', times: ['00:00'] }, '2024-01-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
    ['day 29 with skip, common year', { kind: 'monthly', day: 29, ifDayMissing: 'skip', times: ['00:00'] }, '2023-01-29T00:00:00Z', '2023-03-29T00:00:00.000Z'],
    ['day 29 with skip, 2100 is not a leap year', { kind: 'monthly', day: 29, ifDayMissing: 'skip', times: ['00:00'] }, '2100-01-29T00:00:00Z', '2100-03-29T00:00:00.000Z'],
    ['day 29 with skip, 2000 is a leap year', { kind: 'monthly', day: 29, ifDayMissing: 'skip', times: ['00:00'] }, '2000-01-29T00:00:00Z', '2000-02-29T00:00:00.000Z'],
    ['December to January', { kind: 'monthly', day: 15, times: ['12:00'] }, '2024-12-20T00:00:00Z', '2025-01-15T12:00:00.000Z'],
    ['later the same day', { kind: 'monthly', day: 15, times: ['06:00', '18:00'] }, '2024-05-15T06:00:00Z', '2024-05-15T18:00:00.000Z'],
    ['last Friday of March 2024', { kind: 'monthly', weekday: 'friday', week: 'last', times: ['20:00'] }, '2024-03-01T00:00:00Z', '2024-03-29T20:00:00.000Z'],
    ['last Thursday of Feb 2024 is the leap day', { kind: 'monthly', weekday: 'thursday', week: 'last', times: ['20:00'] }, '2024-02-01T00:00:00Z', '2024-02-29T20:00:00.000Z'],
    ['last Sunday of Feb 2024', { kind: 'monthly', weekday: 'sunday', week: 'last', times: ['01:00'] }, '2024-02-01T00:00:00Z', '2024-02-25T01:00:00.000Z'],
    ['last Sunday once passed, next month', { kind: 'monthly', weekday: 'sunday', week: 'last', times: ['01:00'] }, '2024-02-25T01:00:00Z', '2024-03-31T01:00:00.000Z'],
    ['first Monday, done for March, so April 1st', { kind: 'monthly', weekday: 'monday', week: 'first', times: ['09:00'] }, '2024-03-04T09:00:00Z', '2024-04-01T09:00:00.000Z'],
    ['fourth Wednesday of January 2024', { kind: 'monthly', weekday: 'wednesday', week: 'fourth', times: ['09:00'] }, '2024-01-01T00:00:00Z', '2024-01-24T09:00:00.000Z'],
    ['second Tuesday (patch Tuesday)', { kind: 'monthly', weekday: 'tuesday', week: 'second', times: ['23:00'] }, '2024-10-01T00:00:00Z', '2024-10-08T23:00:00.000Z'],
  ] as const)('%s', (_name, schedule, after, expected) => {
    expect(next(schedule, after)).toBe(expected);
  });
});

describe('nextRunAfter: every N hours', () => {
  it.each([
    ['default anchor: every 6 h across midnight', { kind: 'everyHours', hours: 6 }, '2024-01-01T23:00:00Z', '2024-01-02T00:00:00.000Z'],
    ['anchored at 03:00, every 5 h', { kind: 'everyHours', hours: 5, anchor: '2024-01-01T03:00:00Z' }, '2024-01-01T22:00:00Z', '2024-01-01T23:00:00.000Z'],
    ['anchored at 03:00, every 5 h, past midnight', { kind: 'everyHours', hours: 5, anchor: '2024-01-01T03:00:00Z' }, '2024-01-01T23:00:00Z', '2024-01-02T04:00:00.000Z'],
    ['before the anchor: the anchor is the first run', { kind: 'everyHours', hours: 5, anchor: '2024-01-01T03:00:00Z' }, '2023-06-01T00:00:00Z', '2024-01-01T03:00:00.000Z'],
    ['anchor with an offset', { kind: 'everyHours', hours: 24, anchor: '2024-01-01T02:00:00+02:00' }, '2024-01-10T01:00:00Z', '2024-01-11T00:00:00.000Z'],
    // Elapsed time: across the Berlin spring-forward the interval stays 6 h, so the local hour shifts 06 → 07.
    ['every 6 h across DST is 6 h of elapsed time', { kind: 'everyHours', hours: 6, anchor: '2024-03-30T00:00:00+01:00' }, '2024-03-31T00:30:00Z', '2024-03-31T05:00:00.000Z'],
    ['every 168 h (weekly)', { kind: 'everyHours', hours: 168, anchor: '2024-01-01T00:00:00Z' }, '2024-01-01T00:00:00Z', '2024-01-08T00:00:00.000Z'],
  ] as const)('%s', (_name, schedule, after, expected) => {
    expect(next(schedule, after)).toBe(expected);
  });
});

describe('nextRunAfter: time zones and DST', () => {
  it.each([
    ['Berlin winter: 01:00 local is 00:00Z', { kind: 'daily', times: ['01:00'], timezone: 'Europe/Berlin' }, '2024-01-01T00:00:00Z', '2024-01-02T00:00:00.000Z'],
    ['Berlin summer: 01:00 local is 23:00Z the day before', { kind: 'daily', times: ['01:00'], timezone: 'Europe/Berlin' }, '2024-07-01T00:00:00Z', '2024-07-01T23:00:00.000Z'],
    ['spring forward: 02:30 does not exist, runs at 03:30 CEST', { kind: 'daily', times: ['02:30'], timezone: 'Europe/Berlin' }, '2024-03-30T12:00:00Z', '2024-03-31T01:30:00.000Z'],
    ['fall back: 02:30 happens twice, runs at the first', { kind: 'daily', times: ['02:30'], timezone: 'Europe/Berlin' }, '2024-10-26T12:00:00Z', '2024-10-27T00:30:00.000Z'],
    ['fall back: not again at the second 02:30', { kind: 'daily', times: ['02:30'], timezone: 'Europe/Berlin' }, '2024-10-27T00:30:00Z', '2024-10-28T01:30:00.000Z'],
    ['New York: Friday is a local Friday (Saturday in UTC)', { kind: 'daily', times: ['23:30'], weekdays: ['friday'], timezone: 'America/New_York' }, '2024-01-05T12:00:00Z', '2024-01-06T04:30:00.000Z'],
    ['New York spring forward, monthly 02:30 on the 10th', { kind: 'monthly', day: 10, times: ['02:30'], timezone: 'America/New_York' }, '2024-03-01T00:00:00Z', '2024-03-10T07:30:00.000Z'],
    ['Kolkata (+05:30): local midnight', { kind: 'daily', times: ['00:00'], timezone: 'Asia/Kolkata' }, '2024-01-01T00:00:00Z', '2024-01-01T18:30:00.000Z'],
    ['Berlin monthly day 1 is the evening before in UTC', { kind: 'monthly', day: 1, times: ['00:00'], timezone: 'Europe/Berlin' }, '2024-01-15T00:00:00Z', '2024-01-31T23:00:00.000Z'],
    ['Auckland (+13 in January): last day of month in local time', { kind: 'monthly', day: 31, times: ['10:00'], timezone: 'Pacific/Auckland' }, '2024-01-01T00:00:00Z', '2024-01-30T21:00:00.000Z'],
  ] as const)('%s', (_name, schedule, after, expected) => {
    expect(next(schedule, after)).toBe(expected);
  });
});

describe('event-driven schedules', () => {
  it('manual and afterJob never fire on the clock', () => {
    expect(next({ kind: 'manual' }, '2024-01-01T00:00:00Z')).toBeUndefined();
    expect(next({ kind: 'afterJob', jobId: 'job-a' }, '2024-01-01T00:00:00Z')).toBeUndefined();
  });

  it('afterJob is triggered by its job only', () => {
    const schedule = scheduleSchema.parse({ kind: 'afterJob', jobId: 'job-a' });
    expect(isTriggeredBy(schedule, 'job-a')).toBe(true);
    expect(isTriggeredBy(schedule, 'job-b')).toBe(false);
    expect(isTriggeredBy(scheduleSchema.parse({ kind: 'manual' }), 'job-a')).toBe(false);
  });
});

describe('runsBetween and helpers', () => {
  it('lists the runs in (from, to]', () => {
    const schedule = scheduleSchema.parse({ kind: 'daily', times: ['00:00', '12:00'] });
    const runs = runsBetween(schedule, new Date('2024-01-01T00:00:00Z'), new Date('2024-01-02T12:00:00Z')).map((d) => d.toISOString());
    expect(runs).toEqual(['2024-01-01T12:00:00.000Z', '2024-01-02T00:00:00.000Z', '2024-01-02T12:00:00.000Z']);
  });

  it('normalizes times (sorted, de-duplicated) and keeps a JSON round trip', () => {
    const parsed = scheduleSchema.parse({ kind: 'daily', times: ['18:00', '06:00', '18:00'], weekdays: ['friday', 'monday'] });
    expect(parsed).toEqual({ kind: 'daily', times: ['06:00', '18:00'], weekdays: ['monday', 'friday'], timezone: 'UTC' });
    expect(scheduleSchema.parse(JSON.parse(JSON.stringify(parsed)))).toEqual(parsed);
  });

  it('gives the local date of a run', () => {
    expect(localDateOf(new Date('2024-01-31T23:30:00Z'), 'Europe/Berlin')).toBe('2024-02-01');
    expect(localDateOf(new Date('2024-01-31T23:30:00Z'), 'UTC')).toBe('2024-01-31');
  });

  it('rejects an invalid date instead of looping', () => {
    expect(() => nextRunAfter(scheduleSchema.parse({ kind: 'daily', times: ['01:00'] }), new Date(Number.NaN))).toThrow(RangeError);
  });
});
