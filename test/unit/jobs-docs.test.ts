/** The examples in docs/jobs.md must parse: the docs are the users' reference for the job JSON. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nextBackupRun, parseBackupJob, parseCopyJob, scheduleSchema, windowSchema } from '../../lib/domain/jobs/index.js';

const doc = readFileSync(new URL('../../docs/jobs.md', import.meta.url), 'utf8');
const blocks = [...doc.matchAll(/```json (backup-job|copy-job|schedule|window)\n([\s\S]*?)```/g)].map((m) => ({ kind: m[1] ?? '', json: m[2] ?? '' }));

describe('docs/jobs.md examples', () => {
  it('has examples of every kind', () => {
    expect(new Set(blocks.map((b) => b.kind))).toEqual(new Set(['backup-job', 'copy-job', 'schedule', 'window']));
  });

  it.each(blocks.map((b, i) => [`${b.kind} #${i}`, b] as const))('%s parses', (_name, block) => {
    const value: unknown = JSON.parse(block.json);
    const parse = { 'backup-job': parseBackupJob, 'copy-job': parseCopyJob, schedule: (v: unknown) => scheduleSchema.parse(v), window: (v: unknown) => windowSchema.parse(v) }[block.kind];
    expect(parse).toBeDefined();
    expect(() => parse?.(value)).not.toThrow();
  });
});

describe('nextBackupRun', () => {
  const job = parseBackupJob({
    name: 'n',
    tenantId: 't',
    scope: { include: [{ kind: 'instance' }] },
    targetRepositoryId: 'r',
    schedule: { kind: 'daily', times: ['12:00'] },
    window: { everyDay: '20:00-06:00' },
  });

  it('defers a tick outside the backup window to the opening', () => {
    const run = nextBackupRun(job, new Date('2024-01-01T00:00:00Z'));
    expect(run?.tick.toISOString()).toBe('2024-01-01T12:00:00.000Z');
    expect(run?.startAt.toISOString()).toBe('2024-01-01T20:00:00.000Z');
  });

  it('starts at the tick inside the window; nothing for disabled or manual jobs', () => {
    const inside = nextBackupRun({ ...job, schedule: scheduleSchema.parse({ kind: 'daily', times: ['23:00'] }) }, new Date('2024-01-01T00:00:00Z'));
    expect(inside?.startAt.toISOString()).toBe('2024-01-01T23:00:00.000Z');
    expect(nextBackupRun({ ...job, enabled: false }, new Date('2024-01-01T00:00:00Z'))).toBeUndefined();
    expect(nextBackupRun({ ...job, schedule: { kind: 'manual' } }, new Date('2024-01-01T00:00:00Z'))).toBeUndefined();
  });
});
