import { describe, expect, it } from 'vitest';
import { parseRetentionPolicy, simulateRetention } from '../../lib/domain/retention/index.js';
import { InvalidInputError } from '../../lib/errors.js';

const DAY = 86_400_000;
const every = (from: string, stepMs: number, count: number) =>
  Array.from({ length: count }, (_, i) => new Date(Date.parse(from) + i * stepMs).toISOString());

describe('retention simulate', () => {
  it('replays 60 daily points under short-term 3 + weekly 2 + monthly 2 (last week)', () => {
    const policy = parseRetentionPolicy({ shortTerm: { restorePoints: 3 }, gfs: { weekly: { keep: 2, weekday: 'sunday' }, monthly: { keep: 2, week: 'last' } } });
    const sim = simulateRetention(policy, every('2026-01-01T00:00:00Z', DAY, 60));
    expect(sim.now).toBe('2026-03-01T00:00:00.000Z');
    expect(sim.points).toEqual([
      // Jan 1 (Thu) is the first point of the week of Dec 28 and of December's period (from Dec 25): late flags.
      { createdAt: '2026-01-01T00:00:00.000Z', flags: ['weekly', 'monthly'], activeFlags: ['monthly'], reasons: ['monthly (until 2026-03-02)'] },
      { createdAt: '2026-01-25T00:00:00.000Z', flags: ['weekly', 'monthly'], activeFlags: ['monthly'], reasons: ['monthly (until 2026-03-26)'] },
      { createdAt: '2026-02-22T00:00:00.000Z', flags: ['weekly', 'monthly'], activeFlags: ['weekly', 'monthly'], reasons: ['weekly (until 2026-03-08)', 'monthly (until 2026-04-23)'] },
      { createdAt: '2026-02-26T00:00:00.000Z', flags: [], activeFlags: [], reasons: ['short-term: 3 of 3 newest'] },
      { createdAt: '2026-02-27T00:00:00.000Z', flags: [], activeFlags: [], reasons: ['short-term: 2 of 3 newest'] },
      { createdAt: '2026-02-28T00:00:00.000Z', flags: [], activeFlags: [], reasons: ['short-term: 1 of 3 newest'] },
      { createdAt: '2026-03-01T00:00:00.000Z', flags: ['weekly'], activeFlags: ['weekly'], reasons: ['weekly (until 2026-03-15)', 'newest point'] },
    ]);
    expect(sim.deleted).toHaveLength(53);
    expect(sim.deleted[0]).toBe('2026-01-02T00:00:00.000Z');
    // The weekly point of Feb 15 expired exactly at now (Feb 15 + 14 days).
    expect(sim.deleted).toContain('2026-02-15T00:00:00.000Z');
    expect(sim.givenPeriods).toContain('weekly:2026-02-15');
  });

  it('deletes along the way: a point deleted at an early commit does not come back, and its period stays given', () => {
    const policy = parseRetentionPolicy({ shortTerm: { restorePoints: 1 }, gfs: { weekly: { keep: 1, weekday: 'sunday' } } });
    const times = ['2026-03-01T00:00:00Z', '2026-03-02T00:00:00Z', '2026-03-03T00:00:00Z', '2026-03-09T00:00:00Z', '2026-03-10T00:00:00Z'];
    const sim = simulateRetention(policy, times);
    expect(sim.steps.map((s) => [s.at.slice(0, 10), s.flags, s.deleted.map((d) => d.slice(0, 10))])).toEqual([
      ['2026-03-01', ['weekly'], []],
      ['2026-03-02', [], []],
      ['2026-03-03', [], ['2026-03-02']],
      // Mar 9 (Mon) is late for the week of Mar 8; Mar 1's weekly expired on Mar 8. Mar 3 stays: the flagged
      // Mar 9 does not use up the short-term slot.
      ['2026-03-09', ['weekly'], ['2026-03-01']],
      ['2026-03-10', [], ['2026-03-03']],
    ]);
    expect(sim.points.map((p) => [p.createdAt.slice(0, 10), p.reasons])).toEqual([
      ['2026-03-09', ['weekly (until 2026-03-16)']],
      ['2026-03-10', ['short-term: 1 of 1 newest', 'newest point']],
    ]);
    expect(sim.givenPeriods).toEqual(['weekly:2026-03-01', 'weekly:2026-03-08']);
  });

  it('days-based short-term: points every 6 hours for 3 days, 1 day kept', () => {
    const policy = parseRetentionPolicy({ shortTerm: { days: 1 } });
    const sim = simulateRetention(policy, every('2026-03-01T00:00:00Z', 6 * 3_600_000, 13));
    expect(sim.points.map((p) => p.createdAt)).toEqual([
      '2026-03-03T00:00:00.000Z', // exactly now − 1 day: kept
      '2026-03-03T06:00:00.000Z',
      '2026-03-03T12:00:00.000Z',
      '2026-03-03T18:00:00.000Z',
      '2026-03-04T00:00:00.000Z',
    ]);
    expect(sim.points.at(-1)?.reasons).toEqual(['short-term: within 1 days', 'newest point']);
    expect(sim.deleted).toHaveLength(8);
  });

  it('applies a last time at --now, keeping the newest point even when everything expired', () => {
    const policy = parseRetentionPolicy({ shortTerm: { days: 7 }, gfs: { yearly: { keep: 1, month: 'february' } } });
    const sim = simulateRetention(policy, ['2024-02-29T00:00:00Z', '2024-03-01T00:00:00Z', '2024-03-02T00:00:00Z'], '2025-03-01T00:00:00Z');
    expect(sim.points).toEqual([{ createdAt: '2024-03-02T00:00:00.000Z', flags: [], activeFlags: [], reasons: ['newest point'] }]);
    expect(sim.deleted).toEqual(['2024-02-29T00:00:00.000Z', '2024-03-01T00:00:00.000Z']);
    expect(sim.steps.at(-1)).toEqual({ at: '2025-03-01T00:00:00.000Z', flags: [], deleted: ['2024-02-29T00:00:00.000Z', '2024-03-01T00:00:00.000Z'] });
    // One second earlier, the leap-day yearly point is still protected (Feb 28, 2025 + 1 day).
    const before = simulateRetention(policy, ['2024-02-29T00:00:00Z', '2024-03-01T00:00:00Z', '2024-03-02T00:00:00Z'], '2025-02-28T23:59:59Z');
    expect(before.points.map((p) => p.reasons)).toEqual([['yearly (until 2025-03-01)'], ['newest point']]);
  });

  it('accepts Date objects and strings alike', () => {
    const policy = parseRetentionPolicy({ shortTerm: { restorePoints: 2 } });
    const times = every('2026-03-01T00:00:00Z', DAY, 5);
    expect(simulateRetention(policy, times.map((t) => new Date(t)))).toEqual(simulateRetention(policy, times));
  });

  it('returns nothing for no times', () => {
    const sim = simulateRetention(parseRetentionPolicy({ shortTerm: { restorePoints: 2 } }), []);
    expect(sim).toEqual({ now: undefined, points: [], deleted: [], steps: [], givenPeriods: [] });
  });

  it('refuses times out of order, repeated times and a --now before the last time', () => {
    const policy = parseRetentionPolicy({ shortTerm: { restorePoints: 2 } });
    expect(() => simulateRetention(policy, ['2026-03-02T00:00:00Z', '2026-03-01T00:00:00Z'])).toThrow(InvalidInputError);
    expect(() => simulateRetention(policy, ['2026-03-02T00:00:00Z', '2026-03-01T00:00:00Z'])).toThrow(/times\[1\] \(2026-03-01T00:00:00\.000Z\) is not after times\[0\]/);
    expect(() => simulateRetention(policy, ['2026-03-01T00:00:00Z', '2026-03-01T00:00:00Z'])).toThrow(/strictly ascending/);
    expect(() => simulateRetention(policy, ['2026-03-01T00:00:00Z', 'soon'])).toThrow(/times\[1\] "soon" is not a valid time/);
    expect(() => simulateRetention(policy, ['2026-03-01T00:00:00Z'], '2026-02-01T00:00:00Z')).toThrow(/--now .* is before the last creation time/);
  });
});
