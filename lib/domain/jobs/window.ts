/**
 * Backup and copy windows (DESIGN §6): a weekday × hour grid of when work may run.
 *
 * JSON shape (chosen to be readable and unambiguous): per weekday, a comma-separated list of half-open
 * ranges `HH:00-HH:00` in the window's `timezone` (IANA, default UTC):
 *
 *   { "timezone": "Europe/Berlin", "everyDay": "22:00-06:00", "saturday": "00:00-24:00", "sunday": "00:00-24:00" }
 *
 * - Ranges are half-open: "22:00-24:00" is open from 22:00 up to (not including) midnight.
 * - A range whose end is not after its start wraps past midnight into the next day: "22:00-06:00" on Monday
 *   opens Monday 22:00 and closes Tuesday 06:00; on Sunday it runs into Monday.
 * - The grid is hourly, so minutes must be 00. "00:00-24:00" is the whole day.
 * - `everyDay` applies to all seven days, in addition to any per-day entries (the union is open).
 * - Days not listed (or listed as "") are closed. A window with no open hour at all is refused: a job with
 *   it could never run. To have no limit, leave the window out: a missing window is always open.
 *
 * The parsed value keeps this shape (so it round-trips through the catalog and the API); the 7×24 grid is
 * compiled on use and cached per window object. Time zones: local hours are evaluated with Intl; in a DST
 * change the skipped hour has no cell and the repeated hour counts twice, as a wall clock would.
 */
import { z } from 'zod';
import { MS_PER_HOUR, MS_PER_MINUTE, WEEKDAYS, localDayAndHour, timeZoneSchema, weekdayIndexOf } from './calendar.js';
import type { Weekday } from './calendar.js';

/** Parses "22:00-06:00, 12:00-13:00" into [startHour, endHour] pairs; throws a message on bad syntax. */
export function parseHourRanges(text: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  if (text.trim() === '') return ranges;
  for (const raw of text.split(',')) {
    const item = raw.trim();
    const match = /^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$/.exec(item);
    if (match === null) {
      throw new Error(`${JSON.stringify(item)} is not a range; write "HH:00-HH:00", e.g. "22:00-06:00", ranges separated by commas`);
    }
    const [, sh = '', sm = '', eh = '', em = ''] = match;
    const start = Number(sh);
    const end = Number(eh);
    if (sm !== '00' || em !== '00') {
      throw new Error(`${JSON.stringify(item)}: windows are an hourly grid, use whole hours (minutes "00")`);
    }
    if (start > 23 || end > 24) {
      throw new Error(`${JSON.stringify(item)}: a range starts at 00:00-23:00 and ends at 01:00-24:00`);
    }
    if (start === end || (start === 0 && end === 0)) {
      throw new Error(`${JSON.stringify(item)}: is empty; for the whole day write "00:00-24:00"`);
    }
    ranges.push([start, end]);
  }
  return ranges;
}

const hourRangesSchema = z.string().superRefine((value, ctx) => {
  try {
    parseHourRanges(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

export const windowSchema = z
  .strictObject({
    timezone: timeZoneSchema,
    everyDay: hourRangesSchema.optional(),
    monday: hourRangesSchema.optional(),
    tuesday: hourRangesSchema.optional(),
    wednesday: hourRangesSchema.optional(),
    thursday: hourRangesSchema.optional(),
    friday: hourRangesSchema.optional(),
    saturday: hourRangesSchema.optional(),
    sunday: hourRangesSchema.optional(),
  })
  .superRefine((window, ctx) => {
    let grid: boolean[][];
    try {
      grid = buildGrid(window);
    } catch {
      return; // the field-level check already reported the syntax error
    }
    if (!grid.some((day) => day.some(Boolean))) {
      ctx.addIssue({
        code: 'custom',
        message: 'opens at no hour, so the job could never run; allow at least one range (e.g. "everyDay": "22:00-06:00"), or remove the window to allow any time',
      });
    }
  });

export type Window = z.output<typeof windowSchema>;
export type WindowInput = z.input<typeof windowSchema>;
/** grid[weekday][hour], weekday 0 = Monday … 6 = Sunday, hour 0-23 local. */
export type WindowGrid = ReadonlyArray<ReadonlyArray<boolean>>;

function buildGrid(window: Partial<Record<Weekday | 'everyDay', string>>): boolean[][] {
  const grid = WEEKDAYS.map(() => Array.from({ length: 24 }, () => false));
  const open = (day: number, from: number, to: number): void => {
    const row = grid[day % 7];
    if (row === undefined) return;
    for (let h = from; h < to; h++) row[h] = true;
  };
  const apply = (day: number, text: string | undefined): void => {
    if (text === undefined) return;
    for (const [start, end] of parseHourRanges(text)) {
      if (end > start) {
        open(day, start, end);
      } else {
        open(day, start, 24);
        open(day + 1, 0, end);
      }
    }
  };
  WEEKDAYS.forEach((name, day) => {
    apply(day, window.everyDay);
    apply(day, window[name]);
  });
  return grid;
}

const compiled = new WeakMap<object, WindowGrid>();

/** The 7×24 grid of a window (cached per window object; windows are treated as immutable). */
export function windowGrid(window: Window): WindowGrid {
  let grid = compiled.get(window);
  if (grid === undefined) {
    grid = buildGrid(window);
    compiled.set(window, grid);
  }
  return grid;
}

/** The compact JSON form of a grid (for UIs that edit a grid): one "HH:00-HH:00" list per day, no wrapping. */
export function windowFromGrid(grid: WindowGrid, timezone = 'UTC'): Window {
  const window: Window = { timezone };
  WEEKDAYS.forEach((name, day) => {
    const row = grid[day] ?? [];
    const ranges: string[] = [];
    for (let h = 0; h < 24; ) {
      if (row[h] !== true) {
        h++;
        continue;
      }
      let end = h;
      while (end < 24 && row[end] === true) end++;
      ranges.push(`${String(h).padStart(2, '0')}:00-${String(end).padStart(2, '0')}:00`);
      h = end;
    }
    if (ranges.length > 0) window[name] = ranges.join(',');
  });
  return window;
}

/** True when work may run at `at`. A missing window is always open. */
export function isInside(window: Window | undefined, at: Date): boolean {
  if (window === undefined) return true;
  const { dayNumber, hour } = localDayAndHour(at.getTime(), window.timezone);
  return windowGrid(window)[weekdayIndexOf(dayNumber)]?.[hour] === true;
}

/**
 * The scan step for window searches. Local hours change only at instants that are multiples of 15 minutes
 * UTC (every current zone's offset is a multiple of 15 minutes, and so are its DST transitions); scanning
 * those instants is exact. UTC windows step by the hour.
 */
function stepFor(window: Window): number {
  return window.timezone === 'UTC' ? MS_PER_HOUR : 15 * MS_PER_MINUTE;
}

/** Scan horizon: a week of hours plus a day of slack for DST and offsets. */
const HORIZON_MS = 8 * 24 * MS_PER_HOUR;

function isEmpty(window: Window): boolean {
  return !windowGrid(window).some((day) => day.some(Boolean));
}

/**
 * The earliest instant ≥ `after` at which the window is open: `after` itself when it is open then, else the
 * start of the next open hour. Undefined only for a window that is never open (which the schema refuses).
 */
export function nextOpening(window: Window | undefined, after: Date): Date | undefined {
  if (window === undefined || isInside(window, after)) return after;
  if (isEmpty(window)) return undefined;
  const step = stepFor(window);
  const start = Math.ceil(after.getTime() / step) * step;
  for (let t = start; t <= after.getTime() + HORIZON_MS; t += step) {
    if (t > after.getTime() && isInside(window, new Date(t))) return new Date(t);
  }
  return undefined;
}

/**
 * When the opening that contains `at` ends: the first instant after `at` at which the window is closed.
 * Returns `at` itself when the window is closed at `at`, and undefined when it never closes (no window, or
 * every hour open). A copy run checks this to stop at a batch boundary before the window closes.
 */
export function closesAt(window: Window | undefined, at: Date): Date | undefined {
  if (window === undefined) return undefined;
  if (!isInside(window, at)) return at;
  const step = stepFor(window);
  const start = Math.floor(at.getTime() / step) * step + step;
  for (let t = start; t <= at.getTime() + HORIZON_MS; t += step) {
    if (!isInside(window, new Date(t))) return new Date(t);
  }
  return undefined;
}
