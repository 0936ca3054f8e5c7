import { MONTHS, WEEKDAYS, type Month, type MonthWeek, type RetentionFlag, type RetentionPolicy, type Weekday } from './policy.js';

/**
 * UTC calendar arithmetic for GFS periods. Everything works on epoch milliseconds so that the hot path of
 * retention (100 000 points) allocates no Date objects, and everything is UTC because a restore point's
 * flags must not change with the time zone of whoever evaluates the policy.
 */

export const MS_PER_DAY = 86_400_000;

/** An instant accepted from callers: a Date, an ISO-8601 string or epoch milliseconds. */
export type Instant = Date | string | number;

/** Epoch milliseconds of an instant; throws on anything that is not a valid time. */
export function toMillis(at: Instant): number {
  const ms = typeof at === 'number' ? at : typeof at === 'string' ? Date.parse(at) : at.getTime();
  if (!Number.isFinite(ms)) throw new RangeError(`not a valid time: ${String(at)}`);
  return ms;
}

export function toIso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * A compact, human-readable instant for reasons: the date alone at midnight (`2026-03-01`), otherwise the
 * ISO time without milliseconds unless there are some (`2026-03-01T04:00:00Z`).
 */
export function formatInstant(ms: number): string {
  const iso = toIso(ms);
  if (ms % MS_PER_DAY === 0) return iso.slice(0, 10);
  return iso.endsWith('.000Z') ? `${iso.slice(0, 19)}Z` : iso;
}

export function weekdayIndex(day: Weekday): number {
  return WEEKDAYS.indexOf(day);
}

export function monthIndex(month: Month): number {
  return MONTHS.indexOf(month);
}

/** Days in a month; `month` is 0-based and may be outside 0..11 (it rolls into neighbouring years). */
export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

export function startOfUtcDay(ms: number): number {
  return Math.floor(ms / MS_PER_DAY) * MS_PER_DAY;
}

/**
 * Adds calendar months, keeping the time of day and clamping the day to the target month's last day:
 * Jan 31 + 1 month = Feb 28 (Feb 29 in a leap year), Feb 29 + 12 months = Feb 28. Clamping instead of
 * rolling over (JavaScript's Date would give Mar 3) keeps "N months later" inside the Nth month.
 */
export function addMonthsClamped(ms: number, months: number): number {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  const month = d.getUTCMonth() + months;
  const day = Math.min(d.getUTCDate(), daysInMonth(year, month));
  return Date.UTC(year, month, day, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
}

/** A GFS period: `[start, end)` in epoch ms, and the key under which the chain remembers it gave its flag. */
export interface Period {
  readonly flag: RetentionFlag;
  readonly start: number;
  readonly end: number;
  readonly key: string;
}

/**
 * The weekly period containing `at`: it starts at 00:00 UTC of the most recent chosen weekday (the same day
 * counts) and lasts 7 days. Key: `weekly:YYYY-MM-DD` (its first day).
 */
export function weeklyPeriod(at: number, weekday: Weekday): Period {
  const day = startOfUtcDay(at);
  const dow = new Date(day).getUTCDay();
  const start = day - ((dow - weekdayIndex(weekday) + 7) % 7) * MS_PER_DAY;
  return { flag: 'weekly', start, end: start + 7 * MS_PER_DAY, key: `weekly:${toIso(start).slice(0, 10)}` };
}

/**
 * First day (00:00 UTC) of a month's due week: days 1, 8, 15, 22, or for `last` the first of the month's
 * last 7 days (Feb 22 in a common year, Feb 23 in a leap year, the 25th of a 31-day month).
 */
export function dueWeekStart(year: number, month: number, week: MonthWeek): number {
  const day = week === 'first' ? 1 : week === 'second' ? 8 : week === 'third' ? 15 : week === 'fourth' ? 22 : daysInMonth(year, month) - 6;
  return Date.UTC(year, month, day);
}

/**
 * The monthly period containing `at`: from the start of a month's due week to the start of the next month's
 * due week, so the periods tile time without gaps even though `last` weeks start on different days. The
 * period is named after the month whose due week opens it (`monthly:YYYY-MM`): a point on Mar 3 with
 * `week: "last"` lies in February's period (Feb 22 – Mar 25).
 */
export function monthlyPeriod(at: number, week: MonthWeek): Period {
  const d = new Date(at);
  let year = d.getUTCFullYear();
  let month = d.getUTCMonth();
  if (at < dueWeekStart(year, month, week)) {
    month -= 1;
    if (month < 0) {
      month = 11;
      year -= 1;
    }
  }
  const start = dueWeekStart(year, month, week);
  const end = dueWeekStart(month === 11 ? year + 1 : year, (month + 1) % 12, week);
  return { flag: 'monthly', start, end, key: `monthly:${year}-${String(month + 1).padStart(2, '0')}` };
}

/**
 * The yearly period containing `at`: from 00:00 UTC on the 1st of the chosen month to the same day a year
 * later, named after the year it starts in (`yearly:YYYY`).
 */
export function yearlyPeriod(at: number, month: Month): Period {
  const m = monthIndex(month);
  let year = new Date(at).getUTCFullYear();
  if (at < Date.UTC(year, m, 1)) year -= 1;
  return { flag: 'yearly', start: Date.UTC(year, m, 1), end: Date.UTC(year + 1, m, 1), key: `yearly:${year}` };
}

/** The period of `flag` containing `at` under the policy, or undefined when that GFS part is not enabled. */
export function periodFor(policy: RetentionPolicy, flag: RetentionFlag, at: number): Period | undefined {
  switch (flag) {
    case 'weekly':
      return policy.weekly ? weeklyPeriod(at, policy.weekly.weekday) : undefined;
    case 'monthly':
      return policy.monthly ? monthlyPeriod(at, policy.monthly.week) : undefined;
    case 'yearly':
      return policy.yearly ? yearlyPeriod(at, policy.yearly.month) : undefined;
  }
}

/**
 * When a flag stops protecting a point created at `createdAt`, or undefined when the policy no longer has
 * that GFS part (a flag the policy does not ask for protects nothing):
 * - weekly: `createdAt + keep × 7 days`, so with one weekly point a week exactly `keep` of them are active;
 * - monthly: `createdAt + keep months + 1 day`, months clamped (Jan 31 + 1 month = Feb 28/29); the extra
 *   day absorbs late assignment and months of different lengths so the `keep`-th monthly is not lost a
 *   few hours before its successor arrives;
 * - yearly: `createdAt + keep years + 1 day`, clamped the same way (Feb 29 + 1 year = Feb 28, + 1 day).
 * The flag is active while `now < expiry`.
 */
export function flagExpiry(policy: RetentionPolicy, flag: RetentionFlag, createdAt: number): number | undefined {
  switch (flag) {
    case 'weekly':
      return policy.weekly ? createdAt + policy.weekly.keep * 7 * MS_PER_DAY : undefined;
    case 'monthly':
      return policy.monthly ? addMonthsClamped(createdAt, policy.monthly.keep) + MS_PER_DAY : undefined;
    case 'yearly':
      return policy.yearly ? addMonthsClamped(createdAt, policy.yearly.keep * 12) + MS_PER_DAY : undefined;
  }
}
