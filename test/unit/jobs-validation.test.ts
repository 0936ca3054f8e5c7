import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../lib/errors.js';
import { JobValidationError, checkCopySource, parseBackupJob, parseCopyJob } from '../../lib/domain/jobs/index.js';
import type { JobRef } from '../../lib/domain/jobs/index.js';

const backup = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'nightly web tier',
  tenantId: 'urn:vcloud:org:acme',
  scope: { include: [{ kind: 'orgVdc', vdcId: 'urn:vcloud:vdc:1' }] },
  targetRepositoryId: 'repo-primary',
  ...overrides,
});

const copy = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'offsite copy',
  tenantId: 'urn:vcloud:org:acme',
  source: { kind: 'backup', jobId: 'job-backup' },
  targetRepositoryId: 'repo-cloud',
  mode: 'immediate',
  ...overrides,
});

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return (err as Error).message;
  }
  throw new Error('expected a validation error');
}

describe('parseBackupJob', () => {
  it('fills the defaults', () => {
    const job = parseBackupJob(backup());
    expect(job).toMatchObject({
      type: 'backup',
      enabled: true,
      blockSize: 1048576,
      compression: { level: 3 },
      encryption: { enabled: false },
      retries: { count: 3, waitMinutes: 10 },
      schedule: { kind: 'manual' },
      scope: { exclude: [] },
    });
    expect(job.window).toBeUndefined();
  });

  it('keeps a full spec, and the parsed value round-trips through JSON', () => {
    const input = backup({
      id: 'job-1',
      scope: {
        include: [{ kind: 'vapp', vappId: 'urn:vcloud:vapp:a' }, { kind: 'vm', vmId: 'urn:vcloud:vm:b' }, { kind: 'org', orgId: 'urn:vcloud:org:acme' }],
        exclude: [{ kind: 'name', pattern: 'test-*' }, { kind: 'vm', vmId: 'urn:vcloud:vm:c' }],
      },
      schedule: { kind: 'daily', times: ['22:00'], weekdays: ['monday', 'wednesday'], timezone: 'Europe/Berlin' },
      window: { timezone: 'Europe/Berlin', everyDay: '20:00-06:00' },
      retries: { count: 2, waitMinutes: 30 },
      retention: { shortTerm: { restorePoints: 14 } },
      blockSize: 4194304,
      compression: { level: 9 },
      encryption: { enabled: true, keyRef: 'alias/vcd-backup' },
    });
    const job = parseBackupJob(input);
    expect(job.blockSize).toBe(4194304);
    expect(job.retention).toEqual({ shortTerm: { restorePoints: 14 } });
    expect(parseBackupJob(JSON.parse(JSON.stringify(job)))).toEqual(job);
  });

  it.each([
    ['blockSize not a power of two', { blockSize: 1000000 }, 'blockSize: must be a power of two between 262144 and 8388608, got 1000000'],
    ['blockSize too large', { blockSize: 16777216 }, 'blockSize: must be a power of two between 262144 and 8388608, got 16777216'],
    ['blockSize too small', { blockSize: 131072 }, 'blockSize: must be a power of two between 262144 and 8388608, got 131072'],
    ['blockSize as text', { blockSize: '1MiB' }, 'blockSize: must be a number, got "1MiB"'],
    ['missing name', { name: undefined }, 'name: is required (a string)'],
    ['empty name', { name: '  ' }, 'name: must not be empty'],
    ['misspelled field', { blocksize: 1048576 }, 'blocksize: is not a known field; remove it or check its spelling'],
    ['empty include list', { scope: { include: [] } }, 'scope.include: must list at least 1 entry'],
    ['unknown scope kind', { scope: { include: [{ kind: 'cluster', id: 'x' }] } }, 'scope.include.0.kind: must be one of "vm", "vapp", "orgVdc", "org", "instance", got "cluster"'],
    ['VM URN where a vApp id belongs', { scope: { include: [{ kind: 'vapp', vappId: 'urn:vcloud:vm:1' }] } }, 'scope.include.0.vappId: is a vm URN, but a vapp id (urn:vcloud:vapp:...) belongs here'],
    ['instance with other items', { scope: { include: [{ kind: 'instance' }, { kind: 'vapp', vappId: 'a' }] } }, 'scope.include: the whole instance already includes everything'],
    ['duplicate include', { scope: { include: [{ kind: 'vapp', vappId: 'a' }, { kind: 'vapp', vappId: 'a' }] } }, 'scope.include.1: repeats include.0; remove one of them'],
    ['empty exclusion pattern', { scope: { include: [{ kind: 'instance' }], exclude: [{ kind: 'name', pattern: '' }] } }, 'scope.exclude.0.pattern: must not be empty'],
    ['encryption without a key', { encryption: { enabled: true } }, 'encryption.keyRef: is required when encryption is enabled'],
    ['key without encryption', { encryption: { enabled: false, keyRef: 'k' } }, 'encryption.keyRef: is set but encryption is disabled'],
    ['bad time', { schedule: { kind: 'daily', times: ['25:00'] } }, 'schedule.times.0: must be a 24-hour time "HH:MM" between "00:00" and "23:59", got "25:00"'],
    ['bad weekday', { schedule: { kind: 'daily', times: ['01:00'], weekdays: ['mon'] } }, 'schedule.weekdays.0: must be one of "monday"'],
    ['bad time zone', { schedule: { kind: 'daily', times: ['01:00'], timezone: 'Europe/Berln' } }, 'schedule.timezone: must be an IANA time zone such as "UTC" or "Europe/Berlin", got "Europe/Berln"'],
    ['unknown schedule kind', { schedule: { kind: 'weekly' } }, 'schedule.kind: must be one of "daily", "monthly", "everyHours", "afterJob", "manual", got "weekly"'],
    ['monthly with day and weekday', { schedule: { kind: 'monthly', day: 1, weekday: 'friday', week: 'last', times: ['01:00'] } }, 'schedule.weekday: cannot be combined with day'],
    ['monthly weekday without week', { schedule: { kind: 'monthly', weekday: 'friday', times: ['01:00'] } }, 'schedule.week: is required with weekday'],
    ['monthly without a day', { schedule: { kind: 'monthly', times: ['01:00'] } }, 'schedule.day: is required: set day (1-31), or weekday and week'],
    ['monthly day 32', { schedule: { kind: 'monthly', day: 32, times: ['01:00'] } }, 'schedule.day: must be at most 31, got 32'],
    ['every 0 hours', { schedule: { kind: 'everyHours', hours: 0 } }, 'schedule.hours: must be at least 1, got 0'],
    ['bad anchor', { schedule: { kind: 'everyHours', hours: 4, anchor: 'yesterday' } }, 'schedule.anchor: must be an ISO 8601 date-time with a zone'],
    ['runs after itself', { id: 'job-1', schedule: { kind: 'afterJob', jobId: 'job-1' } }, 'schedule.jobId: a job cannot run after itself'],
    ['negative retries', { retries: { count: -1, waitMinutes: 5 } }, 'retries.count: must be at least 0, got -1'],
    ['retries without wait', { retries: { count: 2 } }, 'retries.waitMinutes: is required (a number)'],
    ['compression level out of range', { compression: { level: 30 } }, 'compression.level: must be at most 22, got 30'],
    ['window that never opens', { window: { monday: '' } }, 'window: opens at no hour'],
    ['window with minutes', { window: { monday: '22:30-06:00' } }, 'window.monday: "22:30-06:00": windows are an hourly grid'],
    ['not an object', undefined, '(root): is required'],
  ])('%s', (_name, overrides, expected) => {
    const input = overrides === undefined ? undefined : backup(overrides);
    expect(messageOf(() => parseBackupJob(input))).toContain(expected);
  });

  it('reports every bad field at once, as a structured list too', () => {
    let error: unknown;
    try {
      parseBackupJob(backup({ name: '', blockSize: 3, targetRepositoryId: undefined }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(JobValidationError);
    const e = error as JobValidationError;
    expect(e.code).toBe('INVALID_JOB');
    expect(e.message).toMatch(/^invalid backup job: /);
    expect(e.issues.map((i) => i.field).sort()).toEqual(['blockSize', 'name', 'targetRepositoryId']);
  });
});

describe('parseCopyJob', () => {
  it('accepts an immediate job and a periodic job with a schedule', () => {
    expect(parseCopyJob(copy())).toMatchObject({ type: 'copy', mode: 'immediate', retries: { count: 3, waitMinutes: 10 }, encryption: { enabled: false } });
    const periodic = parseCopyJob(copy({ mode: 'periodic', schedule: { kind: 'everyHours', hours: 12 }, source: { kind: 'copy', jobId: 'job-copy-1' } }));
    expect(periodic.schedule).toEqual({ kind: 'everyHours', hours: 12, anchor: '1970-01-01T00:00:00Z' });
    expect(parseCopyJob(JSON.parse(JSON.stringify(periodic)))).toEqual(periodic);
  });

  it.each([
    ['copies itself', { id: 'job-x', source: { kind: 'copy', jobId: 'job-x' } }, 'source.jobId: a copy job cannot copy itself'],
    ['periodic without schedule', { mode: 'periodic' }, 'schedule: is required for mode "periodic": add a daily, monthly or everyHours schedule'],
    ['immediate with schedule', { schedule: { kind: 'daily', times: ['01:00'] } }, 'schedule: is not used in mode "immediate"'],
    ['periodic on a manual schedule', { mode: 'periodic', schedule: { kind: 'manual' } }, 'schedule.kind: must be "daily", "monthly" or "everyHours" for a periodic copy, got "manual"'],
    ['periodic after a job', { mode: 'periodic', schedule: { kind: 'afterJob', jobId: 'j' } }, 'schedule.kind: must be "daily", "monthly" or "everyHours" for a periodic copy, got "afterJob"'],
    ['unknown mode', { mode: 'hourly' }, 'mode: must be one of "immediate", "periodic", got "hourly"'],
    ['bad source kind', { source: { kind: 'replica', jobId: 'j' } }, 'source.kind: must be one of "backup", "copy", got "replica"'],
    ['missing source', { source: undefined }, 'source: is required (an object)'],
    ['target encryption without a key', { encryption: { enabled: true } }, 'encryption.keyRef: is required when encryption is enabled'],
    ['blockSize is not a copy job setting', { blockSize: 1048576 }, 'blockSize: is not a known field'],
  ])('%s', (_name, overrides, expected) => {
    const message = messageOf(() => parseCopyJob(copy(overrides)));
    expect(message).toMatch(/^invalid copy job: /);
    expect(message).toContain(expected);
  });
});

describe('checkCopySource', () => {
  const jobs: Record<string, JobRef> = {
    'job-backup': { id: 'job-backup', type: 'backup', tenantId: 'urn:vcloud:org:acme', targetRepositoryId: 'repo-primary' },
    'job-copy-1': { id: 'job-copy-1', type: 'copy', tenantId: 'urn:vcloud:org:acme', targetRepositoryId: 'repo-cloud', sourceJobId: 'job-backup' },
    'job-copy-2': { id: 'job-copy-2', type: 'copy', tenantId: 'urn:vcloud:org:acme', targetRepositoryId: 'repo-far', sourceJobId: 'job-copy-3' },
    'job-copy-3': { id: 'job-copy-3', type: 'copy', tenantId: 'urn:vcloud:org:acme', targetRepositoryId: 'repo-third', sourceJobId: 'job-copy-2' },
    'job-other': { id: 'job-other', type: 'backup', tenantId: 'urn:vcloud:org:other', targetRepositoryId: 'repo-x' },
  };
  const lookup = (id: string): JobRef | undefined => jobs[id];

  it('accepts a copy of a backup and a copy of a copy', () => {
    expect(() => checkCopySource(parseCopyJob(copy()), lookup)).not.toThrow();
    expect(() => checkCopySource(parseCopyJob(copy({ id: 'job-copy-9', source: { kind: 'copy', jobId: 'job-copy-1' }, targetRepositoryId: 'repo-third' })), lookup)).not.toThrow();
  });

  it.each([
    ['missing source', copy({ source: { kind: 'backup', jobId: 'nope' } }), 'source.jobId: no job "nope" exists'],
    ['wrong kind', copy({ source: { kind: 'copy', jobId: 'job-backup' } }), 'source.kind: job "job-backup" is a backup job; set kind to "backup"'],
    ['same repository as the source', copy({ targetRepositoryId: 'repo-primary' }), 'targetRepositoryId: is the repository the source already writes to ("repo-primary")'],
    ['another tenant', copy({ source: { kind: 'backup', jobId: 'job-other' } }), 'source.jobId: job "job-other" belongs to another tenant'],
    ['a cycle back to this job', copy({ id: 'job-copy-2', source: { kind: 'copy', jobId: 'job-copy-3' }, targetRepositoryId: 'repo-far' }), 'forms a cycle of copy jobs'],
    ['a cycle further up the chain', copy({ id: 'job-new', source: { kind: 'copy', jobId: 'job-copy-2' } }), 'forms a cycle of copy jobs'],
  ])('%s', (_name, input, expected) => {
    expect(messageOf(() => checkCopySource(parseCopyJob(input), lookup))).toContain(expected);
  });
});
