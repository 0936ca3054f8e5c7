import { describe, expect, it } from 'vitest';
import { closesAt, isInside, nextOpening, parseHourRanges, windowFromGrid, windowGrid, windowSchema } from '../../lib/domain/jobs/index.js';
import type { WindowInput } from '../../lib/domain/jobs/index.js';

const w = (input: WindowInput) => windowSchema.parse(input);
const at = (iso: string) => new Date(iso);

// 2024-01-01 is a Monday; 2024-01-07 a Sunday.
const mondayNight = w({ monday: '22:00-06:00' });
const sundayNight = w({ sunday: '22:00-02:00' });

describe('isInside', () => {
  it.each([
    ['Monday 21:59 is before the opening', mondayNight, '2024-01-01T21:59:59Z', false],
    ['Monday 22:00 opens', mondayNight, '2024-01-01T22:00:00Z', true],
    ['wraps past midnight into Tuesday', mondayNight, '2024-01-02T05:59:59Z', true],
    ['Tuesday 06:00 is closed (half-open range)', mondayNight, '2024-01-02T06:00:00Z', false],
    ['Tuesday 22:00 is not part of Monday\'s window', mondayNight, '2024-01-02T22:00:00Z', false],
    ['Sunday 23:00 open', sundayNight, '2024-01-07T23:00:00Z', true],
    ['Sunday night wraps into Monday', sundayNight, '2024-01-08T01:30:00Z', true],
    ['and into the Monday at the start of the year', sundayNight, '2024-01-01T01:30:00Z', true],
    ['Monday 02:00 closes', sundayNight, '2024-01-08T02:00:00Z', false],
    ['Sunday morning closed', sundayNight, '2024-01-07T01:30:00Z', false],
    ['everyDay applies to Wednesday', w({ everyDay: '01:00-02:00', saturday: '00:00-24:00' }), '2024-01-03T01:30:00Z', true],
    ['everyDay plus a per-day entry is a union', w({ everyDay: '01:00-02:00', saturday: '00:00-24:00' }), '2024-01-06T15:00:00Z', true],
    ['outside both', w({ everyDay: '01:00-02:00', saturday: '00:00-24:00' }), '2024-01-03T15:00:00Z', false],
    ['Berlin 22:30 CEST is 20:30Z in summer', w({ timezone: 'Europe/Berlin', everyDay: '22:00-06:00' }), '2024-07-01T20:30:00Z', true],
    ['Berlin 21:30 CET is 20:30Z in winter', w({ timezone: 'Europe/Berlin', everyDay: '22:00-06:00' }), '2024-01-01T20:30:00Z', false],
  ])('%s', (_name, window, when, expected) => {
    expect(isInside(window, at(when))).toBe(expected);
  });

  it('a missing window is always open', () => {
    expect(isInside(undefined, at('2024-01-03T15:00:00Z'))).toBe(true);
  });
});

describe('nextOpening', () => {
  it.each([
    ['inside: now', mondayNight, '2024-01-01T23:10:00Z', '2024-01-01T23:10:00.000Z'],
    ['later the same day', mondayNight, '2024-01-01T10:15:00Z', '2024-01-01T22:00:00.000Z'],
    ['just closed: a week later', mondayNight, '2024-01-02T06:00:00Z', '2024-01-08T22:00:00.000Z'],
    ['Sunday window from Monday afternoon', sundayNight, '2024-01-08T12:00:00Z', '2024-01-14T22:00:00.000Z'],
    ['Berlin winter 22:00 is 21:00Z', w({ timezone: 'Europe/Berlin', everyDay: '22:00-06:00' }), '2024-01-01T12:00:00Z', '2024-01-01T21:00:00.000Z'],
    ['Kolkata (+05:30) opens on the half hour UTC', w({ timezone: 'Asia/Kolkata', monday: '09:00-10:00' }), '2024-01-01T00:00:00Z', '2024-01-01T03:30:00.000Z'],
    // 02:00-03:00 does not exist in Berlin on 2024-03-31 (spring forward): the next opening is a week later.
    ['a skipped DST hour never opens', w({ timezone: 'Europe/Berlin', sunday: '02:00-03:00' }), '2024-03-30T12:00:00Z', '2024-04-07T00:00:00.000Z'],
  ])('%s', (_name, window, when, expected) => {
    expect(nextOpening(window, at(when))?.toISOString()).toBe(expected);
  });

  it('a missing window is open now', () => {
    expect(nextOpening(undefined, at('2024-01-03T15:00:00Z'))?.toISOString()).toBe('2024-01-03T15:00:00.000Z');
  });

  it('an empty grid (never valid through the schema) has no opening', () => {
    expect(nextOpening(windowFromGrid(Array.from({ length: 7 }, () => Array.from({ length: 24 }, () => false))), at('2024-01-01T00:00:00Z'))).toBeUndefined();
  });
});

describe('closesAt', () => {
  it.each([
    ['Monday night closes Tuesday 06:00', mondayNight, '2024-01-01T23:10:00Z', '2024-01-02T06:00:00.000Z'],
    ['Sunday night closes Monday 02:00', sundayNight, '2024-01-07T22:00:00Z', '2024-01-08T02:00:00.000Z'],
    ['adjacent ranges are one opening', w({ monday: '20:00-22:00,22:00-24:00', tuesday: '00:00-03:00' }), '2024-01-01T20:00:00Z', '2024-01-02T03:00:00.000Z'],
    ['closed now: closes at once', mondayNight, '2024-01-01T12:00:00Z', '2024-01-01T12:00:00.000Z'],
    ['Berlin fall back: the window 00:00-03:00 lasts 4 h', w({ timezone: 'Europe/Berlin', sunday: '00:00-03:00' }), '2024-10-26T22:00:00Z', '2024-10-27T02:00:00.000Z'],
  ])('%s', (_name, window, when, expected) => {
    expect(closesAt(window, at(when))?.toISOString()).toBe(expected);
  });

  it('never closes when always open or missing', () => {
    expect(closesAt(w({ everyDay: '00:00-24:00' }), at('2024-01-01T00:00:00Z'))).toBeUndefined();
    expect(closesAt(undefined, at('2024-01-01T00:00:00Z'))).toBeUndefined();
  });
});

describe('window schema', () => {
  it('compiles to a 7×24 grid', () => {
    const grid = windowGrid(mondayNight);
    expect(grid[0]?.map((open, hour) => (open ? hour : -1)).filter((h) => h >= 0)).toEqual([22, 23]);
    expect(grid[1]?.map((open, hour) => (open ? hour : -1)).filter((h) => h >= 0)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(grid.slice(2).every((day) => day.every((open) => !open))).toBe(true);
  });

  it('round-trips through windowFromGrid', () => {
    const window = w({ everyDay: '22:00-06:00', saturday: '00:00-24:00' });
    expect(windowGrid(windowFromGrid(windowGrid(window)))).toEqual(windowGrid(window));
    expect(windowFromGrid(windowGrid(mondayNight))).toEqual({ timezone: 'UTC', monday: '22:00-24:00', tuesday: '00:00-06:00' });
  });

  it.each([
    ['22:30-06:00', 'use whole hours'],
    ['25:00-26:00', 'starts at 00:00-23:00'],
    ['nine to five', 'is not a range'],
    ['10:00-10:00', 'is empty; for the whole day write "00:00-24:00"'],
  ])('refuses %s', (text, message) => {
    expect(() => parseHourRanges(text)).toThrow(message);
    const result = windowSchema.safeParse({ monday: text });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['monday']);
  });

  it('refuses a window that never opens and unknown day names', () => {
    expect(windowSchema.safeParse({}).error?.issues[0]?.message).toMatch(/opens at no hour/);
    expect(windowSchema.safeParse({ monday: '' }).error?.issues[0]?.message).toMatch(/opens at no hour/);
    expect(windowSchema.safeParse({ mon: '01:00-02:00', tuesday: '01:00-02:00' }).error?.issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['mon'] });
    expect(windowSchema.safeParse({ timezone: 'Mars/Olympus', monday: '01:00-02:00' }).error?.issues[0]?.path).toEqual(['timezone']);
  });
});
