import { describe, expect, it } from 'vitest';
import { applyExclusions, decideRetries, matchesNamePattern, nextRetryAt, retriesSchema, scopeSchema } from '../../lib/domain/jobs/index.js';

describe('retries', () => {
  const retries = retriesSchema.parse({ count: 2, waitMinutes: 15 });
  const failedAt = new Date('2024-01-01T23:50:00Z');

  it.each([
    [1, '2024-01-02T00:05:00.000Z'],
    [2, '2024-01-02T00:05:00.000Z'],
    [3, undefined],
  ])('after attempt %i fails: %s', (attempt, expected) => {
    expect(nextRetryAt(retries, attempt, failedAt)?.toISOString()).toBe(expected);
  });

  it('count 0 never retries; attempts start at 1', () => {
    expect(nextRetryAt({ count: 0, waitMinutes: 5 }, 1, failedAt)).toBeUndefined();
    expect(() => nextRetryAt(retries, 0, failedAt)).toThrow(/attempt must be an integer/);
  });

  it('defaults to 3 retries 10 minutes apart', () => {
    expect(retriesSchema.parse(undefined)).toEqual({ count: 3, waitMinutes: 10 });
  });

  it('retries only failed vApps, and gives up when retrying cannot help or tries are used up', () => {
    const decisions = decideRetries(retries, [
      { vappId: 'ok', status: 'succeeded', attempt: 1, finishedAt: failedAt },
      { vappId: 'flaky', status: 'failed', attempt: 1, finishedAt: failedAt, reason: 'vCD task timed out' },
      { vappId: 'gone', status: 'failed', attempt: 1, finishedAt: failedAt, retryable: false, reason: 'vApp not found' },
      { vappId: 'stubborn', status: 'failed', attempt: 3, finishedAt: failedAt, reason: 'disk read error' },
    ]);
    expect(decisions).toEqual([
      { vappId: 'ok', action: 'done' },
      { vappId: 'flaky', action: 'retry', attempt: 2, at: new Date('2024-01-02T00:05:00Z') },
      { vappId: 'gone', action: 'give-up', attempts: 1, reason: 'vApp not found (not retryable)' },
      { vappId: 'stubborn', action: 'give-up', attempts: 3, reason: 'disk read error (after 3 attempts)' },
    ]);
  });
});

describe('scope exclusions', () => {
  it.each([
    ['test-*', 'Test-Web', true],
    ['test-*', 'prod-test-web', false],
    ['db-??', 'db-01', true],
    ['db-??', 'db-1', false],
    ['a.b', 'axb', false],
    ['(x)*', '(x) files', true],
  ])('pattern %s against %s', (pattern, name, expected) => {
    expect(matchesNamePattern(pattern, name)).toBe(expected);
  });

  it('drops excluded vApps and VMs, merges routes, and skips vApps left empty', () => {
    const scope = scopeSchema.parse({
      include: [{ kind: 'orgVdc', vdcId: 'vdc-1' }],
      exclude: [{ kind: 'vapp', vappId: 'v-excluded' }, { kind: 'vm', vmId: 'vm-2' }, { kind: 'name', pattern: 'scratch-*' }],
    });
    const result = applyExclusions(scope, [
      { vappId: 'v-1', name: 'web', vms: [{ vmId: 'vm-1', name: 'web-1' }, { vmId: 'vm-2', name: 'web-2' }, { vmId: 'vm-3', name: 'scratch-tmp' }] },
      { vappId: 'v-excluded', name: 'db', vms: [{ vmId: 'vm-4', name: 'db-1' }] },
      { vappId: 'v-scratch', name: 'Scratch-area', vms: [{ vmId: 'vm-5', name: 'x' }] },
      { vappId: 'v-only-excluded-vm', name: 'solo', vms: [{ vmId: 'vm-2b', name: 'scratch-solo' }] },
      // Reached through a `vm` include: only that VM, unless another route includes the whole vApp.
      { vappId: 'v-partial', name: 'app', vms: [{ vmId: 'vm-6', name: 'a' }, { vmId: 'vm-7', name: 'b' }], onlyVmIds: ['vm-7'] },
      { vappId: 'v-1', name: 'web', vms: [{ vmId: 'vm-1', name: 'web-1' }], onlyVmIds: ['vm-1'] },
    ]);
    expect(result).toEqual([
      { vappId: 'v-1', name: 'web', vmIds: ['vm-1'] },
      { vappId: 'v-partial', name: 'app', vmIds: ['vm-7'] },
    ]);
  });
});
