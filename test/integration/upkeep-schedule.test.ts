import { describe, expect, it } from 'vitest';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { createMemoryLogger } from '../../lib/log.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import { parseMessage, type RunsMessage } from '../../lib/queue/messages.js';
import type { Queue } from '../../lib/queue/queue.js';
import { SchedulerService } from '../../lib/services/scheduler.js';

/** The scheduler tick's upkeep slots, with the memory catalog and queue and a ManualClock. */
async function drain(queue: Queue): Promise<RunsMessage[]> {
  const out: RunsMessage[] = [];
  for (;;) {
    const got = await queue.receive({ maxMessages: 10, waitSeconds: 0 });
    if (got.length === 0) return out;
    out.push(...got.map((m) => parseMessage('runs', JSON.parse(m.body))));
    await queue.delete(got.map((m) => m.receiptHandle));
  }
}

async function world(start: string) {
  const clock = new ManualClock(start);
  const catalog = new MemoryCatalog(clock);
  const runs = new MemoryQueue({ name: 'runs', clock });
  await catalog.putRepository({ id: 'primary', tenantId: 'acme', url: 'file:///nowhere/primary', role: 'primary', bucket: '-', prefix: '' });
  await catalog.putRepository({ id: 'cloud', url: 'file:///nowhere/cloud', role: 'cloud', bucket: '-', prefix: '' });
  const scheduler = () => new SchedulerService({ catalog, runs, clock, log: createMemoryLogger(), upkeep: { retentionHourUtc: 3, gcWeekdayUtc: 0, gcHourUtc: 4, gcGraceSeconds: 3600 } });
  return { clock, catalog, runs, scheduler };
}

describe('scheduled upkeep', () => {
  it('enqueues retention daily and GC weekly per repository, each slot once, also with racing ticks', async () => {
    // Saturday 2026-11-07 02:30 UTC: the latest retention slot is Friday's 03:00, the latest GC slot Sunday 11-01 04:00.
    const w = await world('2026-11-07T02:30:00Z');
    const [a, b] = await Promise.all([w.scheduler().tick(), w.scheduler().tick()]);
    expect([...a.started, ...b.started].sort()).toEqual([
      'run-upkeep-gc-cloud-20261101T04',
      'run-upkeep-gc-primary-20261101T04',
      'run-upkeep-retention-cloud-20261106T03',
      'run-upkeep-retention-primary-20261106T03',
    ]);
    const first = await drain(w.runs);
    expect(first).toHaveLength(4);
    const retention = first.find((m) => m.type === 'RetentionRun' && m.repositoryId === 'primary');
    expect(retention).toMatchObject({ tenantId: 'acme', trigger: 'schedule' });
    expect(first.find((m) => m.type === 'RetentionRun' && m.repositoryId === 'cloud')).toMatchObject({ tenantId: 'provider' });
    expect(first.find((m) => m.type === 'GcRun' && m.repositoryId === 'cloud')).toMatchObject({ graceSeconds: 3600 });

    // Every minute until the next slot: nothing new.
    for (let i = 0; i < 29; i++) {
      w.clock.advance(60_000);
      expect((await w.scheduler().tick()).started).toEqual([]);
    }
    expect(await drain(w.runs)).toEqual([]);
    // 03:00: the day's retention slot, GC not yet.
    w.clock.advance(60_000);
    expect((await w.scheduler().tick()).started.sort()).toEqual(['run-upkeep-retention-cloud-20261107T03', 'run-upkeep-retention-primary-20261107T03']);
    expect((await w.scheduler().tick()).started).toEqual([]);
    // Sunday 04:00: the day's retention (since 03:00) and the week's GC.
    w.clock.set('2026-11-08T04:00:00Z');
    expect((await w.scheduler().tick()).started.sort()).toEqual([
      'run-upkeep-gc-cloud-20261108T04',
      'run-upkeep-gc-primary-20261108T04',
      'run-upkeep-retention-cloud-20261108T03',
      'run-upkeep-retention-primary-20261108T03',
    ]);
    expect((await w.scheduler().tick()).started).toEqual([]);
  });

  it('a slot claimed by a tick that crashed before sending is sent by a later tick', async () => {
    const w = await world('2026-11-07T03:00:00Z');
    // The crashed tick's claim: recorded, never sent.
    const runId = 'run-upkeep-retention-primary-20261107T03';
    await w.catalog.putIdempotencyRecord(`upkeep-slot:${runId}`, '2026-11-30T00:00:00.000Z', { runId, claimedAt: '2026-11-07T03:00:00.000Z', sent: false });
    expect((await w.scheduler().tick()).started).not.toContain(runId);
    w.clock.advance(6 * 60_000);
    expect((await w.scheduler().tick()).started).toEqual([runId]);
    expect((await w.scheduler().tick()).started).toEqual([]);
  });
});
