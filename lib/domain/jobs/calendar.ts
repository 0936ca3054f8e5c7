/**
 * Calendar arithmetic shared by schedules and windows: weekdays, civil dates and time-zone conversion.
 *
 * Why not a date library: the rules we need are few and must be exact (month ends, leap years, DST gaps and
 * overlaps), and `Intl.DateTimeFormat` already carries the IANA time-zone database that Node ships. Everything
 * here is pure: instants come in as arguments, never from the wall clock.
 *
 * Conventions:
 * - A *civil date* is a day number: days since 1970-01-01 in the proleptic Gregorian calendar. Adding days is
 *   integer addition, and the weekday is a modulo, so no local-time Date object is ever built.
 * - Weekday indexes follow ISO 8601: 0 = Monday … 6 = Sunday (the order users read in a window grid).
 * - Time zones are IANA names ('UTC', 'Europe/Berlin'). 'UTC' takes a fast path without Intl.
 */
import { z } from 'zod';

export const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export const weekdaySchema = z.enum(WEEKDAYS);

export const MS_PER_MINUTE = 60_000;
export const MS_PER_HOUR = 3_600_000;
export const MS_PER_DAY = 86_400_000;

/** Fields of a wall-clock reading in some time zone. Months are 1-12. */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    // hourCycle h23 so midnight reads 0, not 24 (some ICU versions print "24" with hour12: false).
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** True when the runtime knows the IANA zone. */
export function isValidTimeZone(timeZone: string): boolean {
  if (timeZone.length === 0) return false;
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

/**
 * An IANA time-zone name, defaulting to UTC. Validated against the runtime's zone database so a typo
 * ('Europe/Berln') fails when the job is saved, not when the scheduler first fires.
 */
export const timeZoneSchema = z
  .string()
  .superRefine((value, ctx) => {
    if (!isValidTimeZone(value)) {
      ctx.addIssue({
        code: 'custom',
        message: `must be an IANA time zone such as "UTC" or "Europe/Berlin", got ${JSON.stringify(value)}`,
      });
    }
  })
  .default('UTC');

/** The wall-clock reading of `instantMs` in `timeZone` (seconds precision). */
export function localTimeAt(instantMs: number, timeZone: string): LocalTime {
  if (timeZone === 'UTC') {
    const d = new Date(instantMs);
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(),
    };
  }
  const fields: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(new Date(instantMs))) {
    if (part.type !== 'literal') fields[part.type] = Number(part.value);
  }
  return {
    year: fields['year'] ?? 1970,
    month: fields['month'] ?? 1,
    day: fields['day'] ?? 1,
    hour: fields['hour'] ?? 0,
    minute: fields['minute'] ?? 0,
    second: fields['second'] ?? 0,
  };
}

/** Offset of `timeZone` from UTC at `instantMs`, in milliseconds (positive east of Greenwich). */
export function offsetAt(instantMs: number, timeZone: string): number {
  if (timeZone === 'UTC') return 0;
  const local = localTimeAt(instantMs, timeZone);
  const asUtc = Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute, local.second);
  const wholeSeconds = Math.floor(instantMs / 1000) * 1000;
  return asUtc - wholeSeconds;
}

/**
 * The instant at which the wall clock in `timeZone` reads the given civil day and time.
 *
 * DST rules (documented in docs/jobs.md, relied on by schedules):
 * - Gap (spring forward, the time does not exist, e.g. 02:30 in Europe/Berlin on the last Sunday of March):
 *   the run moves forward by the length of the gap (02:30 → 03:30 CEST), so a scheduled run is never lost.
 * - Overlap (fall back, the time happens twice): the first occurrence, so the run happens once.
 *
 * How: try the offsets in force a day before and a day after (no real zone changes offset twice within two
 * days); keep the mappings that round-trip; in a gap none does, and the offset from before the gap gives the
 * shifted-forward instant.
 */
export function zonedTimeToInstant(dayNumber: number, hour: number, minute: number, timeZone: string): number {
  const wall = dayNumber * MS_PER_DAY + hour * MS_PER_HOUR + minute * MS_PER_MINUTE;
  if (timeZone === 'UTC') return wall;
  const before = offsetAt(wall - MS_PER_DAY, timeZone);
  const after = offsetAt(wall + MS_PER_DAY, timeZone);
  const valid: number[] = [];
  for (const offset of before === after ? [before] : [before, after]) {
    const candidate = wall - offset;
    if (offsetAt(candidate, timeZone) === offset) valid.push(candidate);
  }
  if (valid.length > 0) return Math.min(...valid);
  return wall - before;
}

/** Day number (days since 1970-01-01) of a civil date. Month is 1-12. */
export function dayNumberOf(year: number, month: number, day: number): number {
  return Math.floor(Date.UTC(year, month - 1, day) / MS_PER_DAY);
}

/** The civil date of a day number. */
export function civilDate(dayNumber: number): { year: number; month: number; day: number } {
  const d = new Date(dayNumber * MS_PER_DAY);
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** ISO weekday index of a day number: 0 = Monday … 6 = Sunday. (1970-01-01 was a Thursday.) */
export function weekdayIndexOf(dayNumber: number): number {
  return (((dayNumber + 3) % 7) + 7) % 7;
}

export function weekdayIndex(weekday: Weekday): number {
  return WEEKDAYS.indexOf(weekday);
}

/** Days in a month, leap years included (Date.UTC does the Gregorian rule: 2000 leap, 2100 not). */
export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Day number of the civil date of `instantMs` in `timeZone`, with the hour and minute there. */
export function localDayAndHour(instantMs: number, timeZone: string): { dayNumber: number; hour: number } {
  const local = localTimeAt(instantMs, timeZone);
  return { dayNumber: dayNumberOf(local.year, local.month, local.day), hour: local.hour };
}
