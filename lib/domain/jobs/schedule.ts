/**
 * When a job runs on its own (DESIGN §6 "Schedules").
 *
 * Kinds:
 * - `daily`: at one or more wall-clock times, optionally only on chosen weekdays.
 * - `monthly`: at times on day N of the month, or on the first/second/third/fourth/last given weekday.
 *   Day N in a month that is shorter (31 in April, 29-31 in February) follows `ifDayMissing`:
 *   `"last-day"` (default) runs on the month's last day instead; `"skip"` runs not at all that month.
 * - `everyHours`: every N hours of elapsed time from an anchor instant (the anchor is the first run). Elapsed
 *   time, not wall-clock time, so the interval is always exactly N hours, also across DST changes.
 * - `afterJob`: when another job finishes (event-driven; no time of its own).
 * - `manual`: only when started by hand. A manual start ("run now") is possible for every kind.
 *
 * Times are `HH:MM` (24-hour) in `timezone`, an IANA zone, default UTC. DST: a time that does not exist
 * (spring forward) runs shifted forward by the gap (02:30 → 03:30); a time that occurs twice (fall back)
 * runs once, at its first occurrence. The schema keeps the JSON shape users wrote (normalized: times sorted
 * and de-duplicated, defaults filled), so a stored schedule round-trips unchanged.
 *
 * `nextRunAfter` is the single rule the scheduler uses: strictly after the given instant, exact to the
 * millisecond, no wall-clock reads.
 */
import { z } from 'zod';
import {
  MS_PER_HOUR,
  WEEKDAYS,
  civilDate,
  dayNumberOf,
  daysInMonth,
  localTimeAt,
  timeZoneSchema,
  weekdayIndex,
  weekdayIndexOf,
  weekdaySchema,
  zonedTimeToInstant,
} from './calendar.js';
import { idSchema } from './common.js';

/** `HH:MM`, 00:00-23:59. */
export const timeOfDaySchema = z.string().superRefine((value, ctx) => {
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(value)) {
    ctx.addIssue({ code: 'custom', message: `must be a 24-hour time "HH:MM" between "00:00" and "23:59", got ${JSON.stringify(value)}` });
  }
});

const timesSchema = z
  .array(timeOfDaySchema)
  .min(1)
  .max(48)
  .transform((times) => [...new Set(times)].sort());

export const dailyScheduleSchema = z.strictObject({
  kind: z.literal('daily'),
  times: timesSchema,
  /** Omitted = every day. */
  weekdays: z
    .array(weekdaySchema)
    .min(1)
    .transform((days) => WEEKDAYS.filter((d) => days.includes(d)))
    .optional(),
  timezone: timeZoneSchema,
});

export const MONTH_WEEKS = ['first', 'second', 'third', 'fourth', 'last'] as const;
export type MonthWeek = (typeof MONTH_WEEKS)[number];

export const monthlyScheduleSchema = z
  .strictObject({
    kind: z.literal('monthly'),
    /** Day of the month, 1-31. Exclusive with `weekday`. */
    day: z.number().int().min(1).max(31).optional(),
    /** What day N does in shorter months; only with `day`. */
    ifDayMissing: z.enum(['last-day', 'skip']).optional(),
    /** With `week`: the first…fourth or last such weekday of the month. Exclusive with `day`. */
    weekday: weekdaySchema.optional(),
    week: z.enum(MONTH_WEEKS).optional(),
    times: timesSchema,
    timezone: timeZoneSchema,
  })
  .superRefine((s, ctx) => {
    if (s.day === undefined && s.weekday === undefined) {
      ctx.addIssue({ code: 'custom', path: ['day'], message: 'is required: set day (1-31), or weekday and week (e.g. "friday", "last")' });
    }
    if (s.day !== undefined && s.weekday !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['weekday'], message: 'cannot be combined with day; keep either day, or weekday and week' });
    }
    if (s.weekday !== undefined && s.week === undefined) {
      ctx.addIssue({ code: 'custom', path: ['week'], message: `is required with weekday: one of ${MONTH_WEEKS.map((w) => JSON.stringify(w)).join(', ')}` });
    }
    if (s.week !== undefined && s.weekday === undefined) {
      ctx.addIssue({ code: 'custom', path: ['week'], message: 'only applies with weekday; add weekday or remove week' });
    }
    if (s.ifDayMissing !== undefined && s.day === undefined) {
      ctx.addIssue({ code: 'custom', path: ['ifDayMissing'], message: 'only applies with day; remove it' });
    }
  });

export const DEFAULT_ANCHOR = '1970-01-01T00:00:00Z';

export const everyHoursScheduleSchema = z.strictObject({
  kind: z.literal('everyHours'),
  hours: z.number().int().min(1).max(168),
  /** First run; later runs every `hours` after it. Default: the Unix epoch, so "every 6 hours" is 00/06/12/18 UTC. */
  anchor: z.iso.datetime({ offset: true }).default(DEFAULT_ANCHOR),
});

export const afterJobScheduleSchema = z.strictObject({
  kind: z.literal('afterJob'),
  jobId: idSchema,
});

export const manualScheduleSchema = z.strictObject({ kind: z.literal('manual') });

export const scheduleSchema = z.discriminatedUnion('kind', [
  dailyScheduleSchema,
  monthlyScheduleSchema,
  everyHoursScheduleSchema,
  afterJobScheduleSchema,
  manualScheduleSchema,
]);

export type DailySchedule = z.output<typeof dailyScheduleSchema>;
export type MonthlySchedule = z.output<typeof monthlyScheduleSchema>;
export type EveryHoursSchedule = z.output<typeof everyHoursScheduleSchema>;
export type AfterJobSchedule = z.output<typeof afterJobScheduleSchema>;
export type ManualSchedule = z.output<typeof manualScheduleSchema>;
export type Schedule = z.output<typeof scheduleSchema>;
export type ScheduleInput = z.input<typeof scheduleSchema>;

/** Schedules that fire on the clock (the scheduler tick evaluates them). */
export type TimedSchedule = DailySchedule | MonthlySchedule | EveryHoursSchedule;

export function isTimed(schedule: Schedule): schedule is TimedSchedule {
  return schedule.kind === 'daily' || schedule.kind === 'monthly' || schedule.kind === 'everyHours';
}

/** True when `schedule` starts its job once `finishedJobId` finishes. */
export function isTriggeredBy(schedule: Schedule, finishedJobId: string): boolean {
  return schedule.kind === 'afterJob' && schedule.jobId === finishedJobId;
}

function parseTime(time: string): { hour: number; minute: number } {
  return { hour: Number(time.slice(0, 2)), minute: Number(time.slice(3, 5)) };
}

/** The earliest instant of the given times on civil day `dayNumber` that is > afterMs. */
function firstOnDay(dayNumber: number, times: readonly string[], timeZone: string, afterMs: number): number | undefined {
  let best: number | undefined;
  for (const time of times) {
    const { hour, minute } = parseTime(time);
    const at = zonedTimeToInstant(dayNumber, hour, minute, timeZone);
    // In a DST gap a shifted time can overtake a later one, so compare all rather than stop at the first.
    if (at > afterMs && (best === undefined || at < best)) best = at;
  }
  return best;
}

/** The day of month a monthly schedule runs in (year, month), or undefined when it skips that month. */
export function monthlyRunDay(schedule: MonthlySchedule, year: number, month: number): number | undefined {
  const lastDay = daysInMonth(year, month);
  if (schedule.day !== undefined) {
    if (schedule.day <= lastDay) return schedule.day;
    return schedule.ifDayMissing === 'skip' ? undefined : lastDay;
  }
  if (schedule.weekday === undefined || schedule.week === undefined) return undefined;
  const target = weekdayIndex(schedule.weekday);
  if (schedule.week === 'last') {
    const lastWeekday = weekdayIndexOf(dayNumberOf(year, month, lastDay));
    return lastDay - ((lastWeekday - target + 7) % 7);
  }
  const firstWeekday = weekdayIndexOf(dayNumberOf(year, month, 1));
  const first = 1 + ((target - firstWeekday + 7) % 7);
  return first + 7 * MONTH_WEEKS.indexOf(schedule.week);
}

/**
 * The first run strictly after `after`, or undefined for schedules that never fire on the clock
 * (`afterJob`, `manual`). Pure and exact to the millisecond.
 */
export function nextRunAfter(schedule: Schedule, after: Date): Date | undefined {
  const afterMs = after.getTime();
  if (Number.isNaN(afterMs)) throw new RangeError('nextRunAfter: invalid date');
  switch (schedule.kind) {
    case 'manual':
    case 'afterJob':
      return undefined;
    case 'everyHours': {
      const anchor = Date.parse(schedule.anchor);
      if (afterMs < anchor) return new Date(anchor);
      const step = schedule.hours * MS_PER_HOUR;
      return new Date(anchor + (Math.floor((afterMs - anchor) / step) + 1) * step);
    }
    case 'daily': {
      const local = localTimeAt(afterMs, schedule.timezone);
      // Start a day early: with a DST gap or a zone east of UTC, yesterday's local date can still hold a
      // run after `after`. Eight more days always reach an allowed weekday.
      const today = dayNumberOf(local.year, local.month, local.day);
      for (let day = today - 1; day <= today + 8; day++) {
        const weekday = WEEKDAYS[weekdayIndexOf(day)];
        if (schedule.weekdays !== undefined && (weekday === undefined || !schedule.weekdays.includes(weekday))) continue;
        const at = firstOnDay(day, schedule.times, schedule.timezone, afterMs);
        if (at !== undefined) return new Date(at);
      }
      return undefined;
    }
    case 'monthly': {
      const local = localTimeAt(afterMs, schedule.timezone);
      // Month before (for the same reason as daily) through 14 months ahead: day 31 with "skip" runs at
      // least every other month, and every other rule runs every month.
      for (let i = -1; i <= 14; i++) {
        const index = local.year * 12 + (local.month - 1) + i;
        const year = Math.floor(index / 12);
        const month = (index % 12) + 1;
        const day = monthlyRunDay(schedule, year, month);
        if (day === undefined) continue;
        const at = firstOnDay(dayNumberOf(year, month, day), schedule.times, schedule.timezone, afterMs);
        if (at !== undefined) return new Date(at);
      }
      return undefined;
    }
  }
}

/** The runs in (from, to], in order; for previews ("next 5 runs") and for catching up after downtime. */
export function runsBetween(schedule: Schedule, from: Date, to: Date, limit = 1000): Date[] {
  const runs: Date[] = [];
  let cursor: Date | undefined = from;
  while (runs.length < limit) {
    cursor = nextRunAfter(schedule, cursor);
    if (cursor === undefined || cursor.getTime() > to.getTime()) break;
    runs.push(cursor);
  }
  return runs;
}

/** The civil date (YYYY-MM-DD) an instant falls on in a zone: for naming runs and for reports. */
export function localDateOf(at: Date, timeZone: string): string {
  const local = localTimeAt(at.getTime(), timeZone);
  const { year, month, day } = civilDate(dayNumberOf(local.year, local.month, local.day));
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}
