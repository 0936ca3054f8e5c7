import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { z } from 'zod';
import type { Clock } from '../../domain/clock.js';
import {
  applyRetention,
  daysInMonth,
  EXAMPLE_POLICY,
  parseRetentionPolicy,
  RETENTION_FLAGS,
  simulateRetention,
  toIso,
  type RetentionFlag,
  type RetentionPlan,
  type RetentionPoint,
  type RetentionPolicy,
} from '../../domain/retention/index.js';
import { InvalidInputError } from '../../errors.js';
import { systemClock } from '../../system-clock.js';
import { printJson, type CliIo } from '../support.js';

/**
 * `vcd-backup retention simulate|plan`: what a policy keeps, and why (issue 5). Both commands are thin: they
 * read and validate the files, call the pure functions of lib/domain/retention and render the result, as
 * JSON for scripts (shapes fixed by the issue) or as a table plus a day-by-day timeline for people.
 */

interface SimulateOptions {
  policy: string;
  times: string;
  now?: string;
  json?: boolean;
}

interface PlanOptions {
  policy: string;
  points: string;
  now?: string;
  json?: boolean;
}

export function registerRetention(program: Command, io: CliIo, clock: Clock = systemClock): void {
  const retention = program
    .command('retention')
    .description('see what a retention policy keeps and why, before using it');

  retention
    .command('simulate')
    .description('replay creation times under a policy: commit each point, apply retention, report the survivors')
    .requiredOption('--policy <file>', `retention policy JSON, e.g. ${EXAMPLE_POLICY}`)
    .requiredOption('--times <file>', 'JSON array of ISO-8601 UTC creation times, ascending')
    .option('--now <iso>', 'apply retention a last time at this instant (default: the last creation time)')
    .option('--json', 'print JSON on stdout')
    .action(async (opts: SimulateOptions) => {
      const policy = await readPolicy(opts.policy);
      const times = parseTimes(await readJson(opts.times, '--times'), opts.times);
      const now = opts.now === undefined ? undefined : parseNow(opts.now);
      const sim = simulateRetention(policy, times, now);
      if (opts.json) {
        printJson(io, {
          points: sim.points.map((p) => ({ createdAt: p.createdAt, flags: p.flags, activeFlags: p.activeFlags, reasons: p.reasons })),
          deleted: sim.deleted,
        });
        return;
      }
      const out: string[] = [];
      out.push(`retention simulate: ${times.length} points replayed, ${sim.points.length} kept, ${sim.deleted.length} deleted, final apply at ${sim.now === undefined ? '(no points)' : shortIso(sim.now)}`);
      out.push(`policy: ${describePolicy(policy)}`, '');
      out.push(
        ...table(
          ['CREATED', 'FLAGS', 'ACTIVE', 'REASONS'],
          sim.points.map((p) => [shortIso(p.createdAt), p.flags.join(',') || '-', p.activeFlags.join(',') || '-', p.reasons.join('; ')]),
        ),
      );
      out.push('', ...timeline([
        ...sim.points.map((p) => ({ createdAt: Date.parse(p.createdAt), kept: true, activeFlags: p.activeFlags })),
        ...sim.deleted.map((d) => ({ createdAt: Date.parse(d), kept: false, activeFlags: [] })),
      ]));
      io.stdout(out.join('\n') + '\n');
    });

  retention
    .command('plan')
    .description('decide which of a chain\'s restore points a policy keeps at a given time, with every reason')
    .requiredOption('--policy <file>', `retention policy JSON, e.g. ${EXAMPLE_POLICY}`)
    .requiredOption('--points <file>', 'JSON array of {"id", "createdAt", "flags": ["weekly"|"monthly"|"yearly"]}')
    .option('--now <iso>', 'evaluate at this instant (default: the current time)')
    .option('--json', 'print JSON on stdout')
    .action(async (opts: PlanOptions) => {
      const policy = await readPolicy(opts.policy);
      const points = parsePoints(await readJson(opts.points, '--points'), opts.points);
      const now = opts.now === undefined ? clock.now().getTime() : parseNow(opts.now);
      const plan = applyRetention(policy, points, now);
      if (opts.json) {
        printJson(io, {
          keep: plan.keep.map((k) => ({ id: k.point.id, reasons: k.reasons })),
          delete: plan.delete.map((d) => d.point.id),
        });
        return;
      }
      io.stdout(renderPlan(policy, plan).join('\n') + '\n');
    });
}

function renderPlan(policy: RetentionPolicy, plan: RetentionPlan): string[] {
  const rows = [
    ...plan.keep.map((k) => ({ id: k.point.id, createdAt: k.createdAt, action: 'keep', why: k.reasons })),
    ...plan.delete.map((d) => ({ id: d.point.id, createdAt: d.createdAt, action: 'DELETE', why: d.notes })),
  ].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return [
    `retention plan at ${shortIso(toIso(plan.now))}: ${rows.length} points, keep ${plan.keep.length}, delete ${plan.delete.length}`,
    `policy: ${describePolicy(policy)}`,
    '',
    ...table(['ID', 'CREATED', 'ACTION', 'WHY'], rows.map((r) => [r.id, shortIso(toIso(r.createdAt)), r.action, r.why.join('; ') || '-'])),
    '',
    ...timeline([
      ...plan.keep.map((k) => ({ createdAt: k.createdAt, kept: true, activeFlags: k.activeFlags })),
      ...plan.delete.map((d) => ({ createdAt: d.createdAt, kept: false, activeFlags: [] })),
    ]),
  ];
}

export function describePolicy(policy: RetentionPolicy): string {
  const parts = [
    policy.shortTerm.kind === 'days' ? `short-term ${policy.shortTerm.count} days` : `short-term ${policy.shortTerm.count} newest points`,
  ];
  if (policy.weekly) parts.push(`weekly: keep ${policy.weekly.keep}, ${policy.weekly.weekday}`);
  if (policy.monthly) parts.push(`monthly: keep ${policy.monthly.keep}, ${policy.monthly.week} week`);
  if (policy.yearly) parts.push(`yearly: keep ${policy.yearly.keep}, ${policy.yearly.month}`);
  return parts.join(' · ');
}

function shortIso(iso: string): string {
  return iso.endsWith('.000Z') ? `${iso.slice(0, 19)}Z` : iso;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, c) => (c === cells.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

interface TimelineEntry {
  readonly createdAt: number;
  readonly kept: boolean;
  readonly activeFlags: readonly RetentionFlag[];
}

const TIMELINE_RANK = { ' ': 0, '.': 1, s: 2, W: 3, M: 4, Y: 5 } as const;
type TimelineMark = keyof typeof TIMELINE_RANK;

/**
 * One line per month, one column per day: the strongest reason any point of that day is kept for, so a
 * person sees at a glance how far back a policy reaches and how dense it is at each age.
 */
function timeline(entries: readonly TimelineEntry[]): string[] {
  if (entries.length === 0) return ['timeline: no points'];
  const months = new Map<string, TimelineMark[]>();
  for (const e of entries) {
    const iso = toIso(e.createdAt);
    const key = iso.slice(0, 7);
    const day = Number(iso.slice(8, 10));
    let marks = months.get(key);
    if (!marks) {
      marks = new Array<TimelineMark>(daysInMonth(Number(iso.slice(0, 4)), Number(iso.slice(5, 7)) - 1)).fill(' ');
      months.set(key, marks);
    }
    const mark: TimelineMark = !e.kept ? '.' : e.activeFlags.includes('yearly') ? 'Y' : e.activeFlags.includes('monthly') ? 'M' : e.activeFlags.includes('weekly') ? 'W' : 's';
    const current = marks[day - 1] ?? ' ';
    if (TIMELINE_RANK[mark] > TIMELINE_RANK[current]) marks[day - 1] = mark;
  }
  const lines = [
    'timeline (one column per day): Y yearly  M monthly  W weekly  s short-term or newest  . deleted  blank: no point',
    `          ${Array.from({ length: 31 }, (_, i) => (i + 1 >= 10 ? String(Math.floor((i + 1) / 10)) : ' ')).join('')}`,
    `          ${Array.from({ length: 31 }, (_, i) => String((i + 1) % 10)).join('')}`,
  ];
  for (const key of [...months.keys()].sort()) lines.push(`${key}  |${(months.get(key) ?? []).join('')}|`);
  return lines;
}

async function readJson(file: string, option: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new InvalidInputError(`cannot read ${option} file "${file}" (${reason}): give the path to a JSON file`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidInputError(`${option} file "${file}" is not valid JSON (${(err as Error).message}): fix the syntax and run again`, { cause: err });
  }
}

async function readPolicy(file: string): Promise<RetentionPolicy> {
  return parseRetentionPolicy(await readJson(file, '--policy'), `--policy file "${file}"`);
}

const ISO_UTC = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Parses an ISO-8601 instant, refusing what JavaScript would silently misread: a time without a zone (taken
 * as local time) and impossible days (Feb 30 rolls into March). A bare date is midnight UTC.
 */
export function parseIsoInstant(text: string): number | undefined {
  const m = ISO_UTC.exec(text);
  if (!m) return undefined;
  const [, y, mo, d] = m;
  const month = Number(mo) - 1;
  if (month < 0 || month > 11 || Number(d) < 1 || Number(d) > daysInMonth(Number(y), month)) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

function parseNow(text: string): number {
  const ms = parseIsoInstant(text);
  if (ms === undefined) throw new InvalidInputError(`--now "${text}" is not an ISO-8601 time with a zone: use e.g. 2026-03-01T04:00:00Z or 2026-03-01`);
  return ms;
}

function parseTimes(value: unknown, file: string): number[] {
  if (!Array.isArray(value)) {
    throw new InvalidInputError(`--times file "${file}" must hold a JSON array of ISO-8601 times, e.g. ["2026-03-01T04:00:00Z", "2026-03-02T04:00:00Z"]`);
  }
  return value.map((t: unknown, i) => {
    const ms = typeof t === 'string' ? parseIsoInstant(t) : undefined;
    if (ms === undefined) {
      throw new InvalidInputError(`--times file "${file}": times[${i}] ${JSON.stringify(t)} is not an ISO-8601 time with a zone: use e.g. "2026-03-01T04:00:00Z"`);
    }
    return ms;
  });
}

const PointSchema = z.object({
  id: z.string({ error: 'must be a non-empty string' }).min(1, { error: 'must be a non-empty string' }),
  createdAt: z.string({ error: 'must be an ISO-8601 time such as "2026-03-01T04:00:00Z"' }).refine((s) => parseIsoInstant(s) !== undefined, {
    error: 'must be an ISO-8601 time with a zone, such as "2026-03-01T04:00:00Z"',
  }),
  flags: z.array(z.enum(RETENTION_FLAGS, { error: `must be one of ${RETENTION_FLAGS.join(', ')}` }), {
    error: 'must be an array of flags (weekly, monthly, yearly); use [] for a point without GFS flags',
  }),
});

function parsePoints(value: unknown, file: string): RetentionPoint[] {
  const result = z.array(PointSchema).safeParse(value);
  if (!result.success) {
    const first = result.error.issues.slice(0, 5).map((issue) => {
      const path = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
      return `${path ? `points${path.startsWith('[') ? '' : '.'}${path}` : 'points'}: ${issue.path.length === 0 ? 'must be a JSON array of {"id", "createdAt", "flags"}' : issue.message}`;
    });
    throw new InvalidInputError(`--points file "${file}" is invalid: ${first.join('; ')}`);
  }
  return result.data.map((p) => ({ id: p.id, createdAt: parseIsoInstant(p.createdAt) as number, flags: p.flags }));
}
