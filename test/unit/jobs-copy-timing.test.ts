import { describe, expect, it } from 'vitest';
import {
  immediateCopyAt,
  nextPeriodicCopyRun,
  parseCopyJob,
  pendingImmediateCopies,
  selectPeriodicCopies,
  windowSchema,
} from '../../lib/domain/jobs/index.js';
import type { SourcePoint } from '../../lib/domain/jobs/index.js';

// 2024-01-01 is a Monday. The copy window: every night 22:00-06:00 UTC.
const nightly = windowSchema.parse({ everyDay: '22:00-06:00' });
const at = (iso: string) => new Date(iso);
const point = (vappId: string, pointId: string, committedAt: string): SourcePoint => ({ vappId, pointId, committedAt: at(committedAt) });

describe('immediate mode', () => {
  it.each([
    ['committed inside the window: copied at once', '2024-01-01T23:00:00Z', '2024-01-01T23:00:00Z', '2024-01-01T23:00:00.000Z'],
    ['committed outside: waits for the window to open', '2024-01-01T10:00:00Z', '2024-01-01T10:00:05Z', '2024-01-01T22:00:00.000Z'],
    ['seen later, still inside: now', '2024-01-01T23:00:00Z', '2024-01-02T01:00:00Z', '2024-01-02T01:00:00.000Z'],
    ['committed at 05:59 but seen at 06:00: waits for the evening', '2024-01-02T05:59:00Z', '2024-01-02T06:00:00Z', '2024-01-02T22:00:00.000Z'],
  ])('%s', (_name, committedAt, now, expected) => {
    expect(immediateCopyAt(at(committedAt), at(now), nightly)?.toISOString()).toBe(expected);
  });

  it('without a window, copies as soon as the point commits', () => {
    expect(immediateCopyAt(at('2024-01-01T10:00:00Z'), at('2024-01-01T10:00:00Z'), undefined)?.toISOString()).toBe('2024-01-01T10:00:00.000Z');
  });

  it('lists every point not yet copied, oldest first, each with its start time', () => {
    const pending = pendingImmediateCopies({
      now: at('2024-01-01T12:30:00Z'),
      window: nightly,
      sourcePoints: [
        point('vapp-a', 'a-3', '2024-01-01T12:00:00Z'),
        point('vapp-a', 'a-1', '2024-01-01T01:00:00Z'),
        point('vapp-a', 'a-2', '2024-01-01T10:00:00Z'),
        point('vapp-b', 'b-1', '2024-01-01T11:00:00Z'),
      ],
      targetPoints: [{ vappId: 'vapp-a', sourcePointId: 'a-1' }],
    });
    // Intermediate points are copied too (unlike periodic mode), in commit order, once the window opens.
    expect(pending.map((p) => [p.point.pointId, p.copyAt.toISOString()])).toEqual([
      ['a-2', '2024-01-01T22:00:00.000Z'],
      ['b-1', '2024-01-01T22:00:00.000Z'],
      ['a-3', '2024-01-01T22:00:00.000Z'],
    ]);
  });
});

describe('periodic mode', () => {
  const sourcePoints = [
    point('vapp-a', 'a-1', '2024-01-01T01:00:00Z'),
    point('vapp-a', 'a-2', '2024-01-01T02:00:00Z'),
    point('vapp-a', 'a-3', '2024-01-01T04:00:00Z'), // after the tick
    point('vapp-b', 'b-1', '2024-01-01T00:30:00Z'),
    point('vapp-b', 'b-2', '2024-01-01T02:30:00Z'),
    point('vapp-c', 'c-1', '2024-01-01T05:00:00Z'), // only after the tick
    point('vapp-d', 'd-1', '2024-01-01T01:00:00Z'),
    point('vapp-d', 'd-2', '2024-01-01T03:00:00Z'), // exactly at the tick: included
  ];

  it('copies the latest point per vApp as of the tick and skips vApps already on the target', () => {
    const selection = selectPeriodicCopies({
      tick: at('2024-01-01T03:00:00Z'),
      sourcePoints,
      targetPoints: [
        { vappId: 'vapp-a', sourcePointId: 'a-1' },
        { vappId: 'vapp-b', sourcePointId: 'b-1' },
        { vappId: 'vapp-b', sourcePointId: 'b-2' },
      ],
    });
    expect(selection.copy.map((p) => p.pointId)).toEqual(['a-2', 'd-2']);
    expect(selection.skipped).toEqual([{ vappId: 'vapp-b', pointId: 'b-2', reason: 'already-on-target' }]);
  });

  it('does not move a target chain backwards', () => {
    const selection = selectPeriodicCopies({
      tick: at('2024-01-01T03:00:00Z'),
      sourcePoints,
      targetPoints: [{ vappId: 'vapp-a', sourcePointId: 'a-3' }],
    });
    expect(selection.skipped).toContainEqual({ vappId: 'vapp-a', pointId: 'a-2', reason: 'target-has-newer', targetSourcePointId: 'a-3' });
    expect(selection.copy.map((p) => p.pointId)).not.toContain('a-2');
  });

  it('breaks commit-time ties by point id, so reruns decide the same', () => {
    const tie = [point('vapp-a', 'p-2', '2024-01-01T01:00:00Z'), point('vapp-a', 'p-1', '2024-01-01T01:00:00Z')];
    expect(selectPeriodicCopies({ tick: at('2024-01-01T02:00:00Z'), sourcePoints: tie, targetPoints: [] }).copy.map((p) => p.pointId)).toEqual(['p-2']);
    expect(selectPeriodicCopies({ tick: at('2024-01-01T02:00:00Z'), sourcePoints: [...tie].reverse(), targetPoints: [] }).copy.map((p) => p.pointId)).toEqual(['p-2']);
  });

  it('finds the next run: the tick fixes the points, the window delays the start', () => {
    const job = parseCopyJob({
      name: 'offsite',
      tenantId: 't',
      source: { kind: 'backup', jobId: 'b' },
      targetRepositoryId: 'cloud',
      mode: 'periodic',
      schedule: { kind: 'daily', times: ['12:00'] },
      window: { everyDay: '22:00-06:00' },
    });
    const run = nextPeriodicCopyRun(job, at('2024-01-01T00:00:00Z'));
    expect(run?.tick.toISOString()).toBe('2024-01-01T12:00:00.000Z');
    expect(run?.startAt.toISOString()).toBe('2024-01-01T22:00:00.000Z');
    expect(nextPeriodicCopyRun({ ...job, enabled: false }, at('2024-01-01T00:00:00Z'))).toBeUndefined();
    expect(nextPeriodicCopyRun({ ...job, mode: 'immediate', schedule: undefined }, at('2024-01-01T00:00:00Z'))).toBeUndefined();
  });
});
