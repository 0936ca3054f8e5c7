import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerRetention } from '../../lib/cli/commands/retention.js';
import { describeError, exitCodeFor, type CliIo } from '../../lib/cli/support.js';
import { ManualClock } from '../../lib/domain/clock.js';

const FIXTURES = path.resolve('test/fixtures/retention');
const fx = (name: string) => path.join(FIXTURES, name);

/** Runs `vcd-backup retention ...` in process, the way bin/cli.ts maps errors to exit codes. */
async function run(args: string[], clock = new ManualClock('2026-03-02T22:00:00Z')): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: {}, interactive: false };
  const program = new Command('vcd-backup').exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  registerRetention(program, io, clock);
  try {
    await program.parseAsync(args, { from: 'user' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    if (!(err instanceof Error && 'exitCode' in err)) stderr += `vcd-backup: ${describeError(err)}\n`;
    return { code: exitCodeFor(err), stdout, stderr };
  }
}

function tempFile(name: string, content: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'retention-cli-'));
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

describe('vcd-backup retention simulate', () => {
  it('prints the survivors and the deleted times as JSON', async () => {
    const r = await run(['retention', 'simulate', '--policy', fx('policy-small.json'), '--times', fx('times-daily-60.json'), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { points: Array<Record<string, unknown>>; deleted: string[] };
    expect(Object.keys(out)).toEqual(['points', 'deleted']);
    for (const p of out.points) expect(Object.keys(p)).toEqual(['createdAt', 'flags', 'activeFlags', 'reasons']);
    expect(out.points.map((p) => p.createdAt)).toEqual([
      '2026-01-01T00:00:00.000Z', '2026-01-25T00:00:00.000Z', '2026-02-22T00:00:00.000Z',
      '2026-02-26T00:00:00.000Z', '2026-02-27T00:00:00.000Z', '2026-02-28T00:00:00.000Z', '2026-03-01T00:00:00.000Z',
    ]);
    expect(out.points[2]).toEqual({
      createdAt: '2026-02-22T00:00:00.000Z',
      flags: ['weekly', 'monthly'],
      activeFlags: ['weekly', 'monthly'],
      reasons: ['weekly (until 2026-03-08)', 'monthly (until 2026-04-23)'],
    });
    expect(out.points[6]?.reasons).toEqual(['weekly (until 2026-03-15)', 'newest point']);
    expect(out.deleted).toHaveLength(53);
    expect(out.deleted[0]).toBe('2026-01-02T00:00:00.000Z');
  });

  it('applies retention a last time at --now', async () => {
    const r = await run(['retention', 'simulate', '--policy', fx('policy-small.json'), '--times', fx('times-daily-60.json'), '--now', '2026-03-03T00:00:00Z', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { points: Array<{ createdAt: string; reasons: string[] }>; deleted: string[] };
    // Jan 1's monthly expired on Mar 2; the three newest unflagged points are now Feb 26-28 still (nothing new was made).
    expect(out.points.map((p) => p.createdAt.slice(0, 10))).toEqual(['2026-01-25', '2026-02-22', '2026-02-26', '2026-02-27', '2026-02-28', '2026-03-01']);
    expect(out.deleted).toContain('2026-01-01T00:00:00.000Z');
  });

  it('prints a table and a timeline for people', async () => {
    const r = await run(['retention', 'simulate', '--policy', fx('policy-small.json'), '--times', fx('times-daily-60.json')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('60 points replayed, 7 kept, 53 deleted, final apply at 2026-03-01T00:00:00Z');
    expect(r.stdout).toContain('policy: short-term 3 newest points · weekly: keep 2, sunday · monthly: keep 2, last week');
    expect(r.stdout).toMatch(/^CREATED\s+FLAGS\s+ACTIVE\s+REASONS$/m);
    expect(r.stdout).toMatch(/^2026-02-22T00:00:00Z\s+weekly,monthly\s+weekly,monthly\s+weekly \(until 2026-03-08\); monthly \(until 2026-04-23\)$/m);
    expect(r.stdout).toContain('2026-01  |M.......................M......|');
    expect(r.stdout).toContain('2026-02  |.....................M...sss|');
    expect(r.stdout).toContain('2026-03  |W                              |');
  });

  it('replays a year of daily points under the documented policy', async () => {
    const r = await run(['retention', 'simulate', '--policy', fx('policy-gfs.json'), '--times', fx('times-daily-400.json'), '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { points: Array<{ createdAt: string; activeFlags: string[] }>; deleted: string[] };
    expect(out.points.length + out.deleted.length).toBe(400);
    expect(out.points.filter((p) => p.activeFlags.includes('yearly')).map((p) => p.createdAt)).toEqual(['2025-01-01T22:00:00.000Z', '2026-01-25T22:00:00.000Z']);
    expect(out.points.filter((p) => p.activeFlags.includes('weekly'))).toHaveLength(4);
    expect(out.points.filter((p) => p.activeFlags.length === 0)).toHaveLength(7);
  });

  it('exits 2 on a bad policy, naming the field and the allowed values', async () => {
    const r = await run(['retention', 'simulate', '--policy', fx('policy-bad-weekday.json'), '--times', fx('times-daily-60.json'), '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('gfs.weekly.weekday: must be one of sunday, monday, tuesday, wednesday, thursday, friday, saturday');
    expect(r.stderr).toContain('policy-bad-weekday.json');
    expect(r.stderr).toContain('[RETENTION_POLICY_INVALID]');
  });

  const badInputs: Array<[name: string, file: () => string, extra: string[], message: RegExp]> = [
    ['a missing times file', () => '/nonexistent/times.json', [], /cannot read --times file "\/nonexistent\/times.json" \(no such file\)/],
    ['times that are not JSON', () => tempFile('t.json', '["2026-03-01T00:00:00Z",'), [], /--times file ".*t\.json" is not valid JSON/],
    ['times that are not an array', () => tempFile('t.json', '{"a": 1}'), [], /must hold a JSON array of ISO-8601 times/],
    ['a time without a zone', () => tempFile('t.json', '["2026-03-01T00:00:00"]'), [], /times\[0\] "2026-03-01T00:00:00" is not an ISO-8601 time with a zone/],
    ['an impossible date', () => tempFile('t.json', '["2026-02-30T00:00:00Z"]'), [], /times\[0\] "2026-02-30T00:00:00Z"/],
    ['times out of order', () => tempFile('t.json', '["2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z"]'), [], /times\[1\] .* is not after times\[0\]/],
    ['--now before the last time', () => fx('times-daily-60.json'), ['--now', '2026-01-01T00:00:00Z'], /--now \(2026-01-01T00:00:00.000Z\) is before the last creation time/],
    ['--now without a zone', () => fx('times-daily-60.json'), ['--now', '2026-03-01 10:00'], /--now "2026-03-01 10:00" is not an ISO-8601 time with a zone/],
  ];
  it.each(badInputs)('exits 2 on %s, saying how to fix it', async (_name, file, extra, message) => {
    const r = await run(['retention', 'simulate', '--policy', fx('policy-small.json'), '--times', file(), ...extra, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('exits 2 when --policy is missing', async () => {
    const r = await run(['retention', 'simulate', '--times', fx('times-daily-60.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("required option '--policy <file>' not specified");
  });
});

describe('vcd-backup retention plan', () => {
  const expectedKeep = [
    { id: 'p-2026-01-25', reasons: ['monthly (until 2026-03-26T22:00:00Z)'] },
    { id: 'p-2026-02-22', reasons: ['weekly (until 2026-03-08T22:00:00Z)', 'monthly (until 2026-04-23T22:00:00Z)'] },
    { id: 'p-2026-02-27', reasons: ['short-term: 3 of 3 newest'] },
    { id: 'p-2026-02-28', reasons: ['short-term: 2 of 3 newest'] },
    { id: 'p-2026-03-01', reasons: ['weekly (until 2026-03-15T22:00:00Z)'] },
    { id: 'p-2026-03-02', reasons: ['short-term: 1 of 3 newest', 'newest point'] },
  ];

  it('prints keep with reasons and delete ids as JSON', async () => {
    const r = await run(['retention', 'plan', '--policy', fx('policy-small.json'), '--points', fx('points.json'), '--now', '2026-03-02T22:00:00Z', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ keep: expectedKeep, delete: ['p-2026-02-15', 'p-2026-02-26'] });
  });

  it('evaluates at the current time without --now', async () => {
    const r = await run(['retention', 'plan', '--policy', fx('policy-small.json'), '--points', fx('points.json'), '--json']);
    expect(JSON.parse(r.stdout)).toEqual({ keep: expectedKeep, delete: ['p-2026-02-15', 'p-2026-02-26'] });
    const later = await run(['retention', 'plan', '--policy', fx('policy-small.json'), '--points', fx('points.json'), '--json'], new ManualClock('2026-03-27T00:00:00Z'));
    const out = JSON.parse(later.stdout) as { keep: Array<{ id: string }>; delete: string[] };
    expect(out.delete).toContain('p-2026-01-25');
  });

  it('explains every point in a table, deletions included', async () => {
    const r = await run(['retention', 'plan', '--policy', fx('policy-small.json'), '--points', fx('points.json'), '--now', '2026-03-02T22:00:00Z']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('retention plan at 2026-03-02T22:00:00Z: 8 points, keep 6, delete 2');
    expect(r.stdout).toMatch(/^ID\s+CREATED\s+ACTION\s+WHY$/m);
    expect(r.stdout).toMatch(/^p-2026-02-15\s+2026-02-15T22:00:00Z\s+DELETE\s+weekly expired 2026-03-01T22:00:00Z; short-term: not among 3 newest$/m);
    expect(r.stdout).toMatch(/^p-2026-03-02\s+2026-03-02T22:00:00Z\s+keep\s+short-term: 1 of 3 newest; newest point$/m);
    expect(r.stdout).toContain('2026-02  |              .      M   .ss|');
    expect(r.stdout).toContain('2026-03  |Ws                             |');
  });

  const badPoints: Array<[name: string, content: string, message: RegExp]> = [
    ['an unknown flag', '[{"id": "a", "createdAt": "2026-03-01T00:00:00Z", "flags": ["daily"]}]', /points\[0\]\.flags\[0\]: must be one of weekly, monthly, yearly/],
    ['a missing flags array', '[{"id": "a", "createdAt": "2026-03-01T00:00:00Z"}]', /points\[0\]\.flags: must be an array of flags .* use \[\] for a point without GFS flags/],
    ['a bad createdAt', '[{"id": "a", "createdAt": "March 1st", "flags": []}]', /points\[0\]\.createdAt: must be an ISO-8601 time with a zone/],
    ['an empty id', '[{"id": "", "createdAt": "2026-03-01T00:00:00Z", "flags": []}]', /points\[0\]\.id: must be a non-empty string/],
    ['not an array', '{"points": []}', /points: must be a JSON array of \{"id", "createdAt", "flags"\}/],
    ['duplicate ids', '[{"id": "a", "createdAt": "2026-03-01T00:00:00Z", "flags": []}, {"id": "a", "createdAt": "2026-03-02T00:00:00Z", "flags": []}]', /"a" appears twice/],
  ];
  it.each(badPoints)('exits 2 on %s', async (_name, content, message) => {
    const r = await run(['retention', 'plan', '--policy', fx('policy-small.json'), '--points', tempFile('points.json', content), '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('exits 2 on a bad policy, naming the field', async () => {
    const policy = tempFile('policy.json', '{"shortTerm": {"restorePoints": 3}, "gfs": {"monthly": {"keep": 2, "week": "final"}}}');
    const r = await run(['retention', 'plan', '--policy', policy, '--points', fx('points.json'), '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('gfs.monthly.week: must be one of first, second, third, fourth, last');
  });

  it('exits 2 on a policy that is not JSON', async () => {
    const r = await run(['retention', 'plan', '--policy', tempFile('policy.json', "{shortTerm: {days: 3}}"), '--points', fx('points.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--policy file ".*policy\.json" is not valid JSON .*: fix the syntax/);
  });
});
