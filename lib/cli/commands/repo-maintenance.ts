import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import type { Clock } from '../../domain/clock.js';
import { EXAMPLE_POLICY, parseRetentionPolicy, type RetentionPolicy } from '../../domain/retention/index.js';
import { InvalidInputError } from '../../errors.js';
import { forgetPoints, type ForgetReport } from '../../repository/forget.js';
import { collectGarbage, DEFAULT_GC_GRACE_MS, type GcReport } from '../../repository/gc.js';
import { defaultLockHolder, ObjectStoreLock } from '../../repository/lock.js';
import { systemClock } from '../../system-clock.js';
import { formatBytes, table } from '../progress.js';
import { openRepository, withRepoOptions, type RepoOptions } from '../repo-options.js';
import { printJson, type CliIo } from '../support.js';
import { parseIsoInstant } from './retention.js';

/**
 * `vcd-backup repo forget|gc` (issue 5): carry a retention policy out in a repository, then free the blocks
 * nothing needs any more. Registered on the existing `repo` command by `registerRepoMaintenance(repo, io)`.
 */

interface ForgetCliOptions extends RepoOptions {
  policy: string;
  vapp?: string;
  now?: string;
  dryRun?: boolean;
  json?: boolean;
}

interface GcCliOptions extends RepoOptions {
  dryRun?: boolean;
  grace?: number;
  json?: boolean;
}

function parseGraceHours(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`--grace must be a number of hours, zero or more (e.g. 24 or 0.5), got "${value}"`);
  return n;
}

export function registerRepoMaintenance(repo: Command, io: CliIo, clock: Clock = systemClock): void {
  withRepoOptions(repo.command('forget').description('apply a retention policy: delete the restore points no rule keeps (blocks are freed by `repo gc`)'))
    .requiredOption('--policy <file>', `retention policy JSON, e.g. ${EXAMPLE_POLICY}`)
    .option('--vapp <id>', 'only this vApp\'s chain')
    .option('--now <iso>', 'apply retention as of this instant (default: the current time)')
    .option('--dry-run', 'show what would be deleted, change nothing')
    .option('--json', 'print the report as JSON on stdout')
    .action(async (opts: ForgetCliOptions) => {
      const policy = await readPolicy(opts.policy);
      let now = clock.now();
      if (opts.now !== undefined) {
        const ms = parseIsoInstant(opts.now);
        if (ms === undefined) throw new InvalidInputError(`--now "${opts.now}" is not an ISO-8601 time with a zone: use e.g. 2026-03-01T04:00:00Z or 2026-03-01`);
        now = new Date(ms);
      }
      const repository = await openRepository(opts, io);
      const lock = new ObjectStoreLock(repository.store, { clock, holder: defaultLockHolder('vcd-backup repo forget') });
      const report = await forgetPoints(repository, policy, now, { dryRun: opts.dryRun, vappId: opts.vapp, lock, clock });
      if (opts.json) printJson(io, report);
      else io.stdout(renderForget(report));
    });

  withRepoOptions(repo.command('gc').description('delete blocks no committed restore point references (under an exclusive repository lease)'))
    .option('--dry-run', 'count what would be freed, delete nothing')
    .option('--grace <hours>', `keep unreferenced blocks younger than this (default ${DEFAULT_GC_GRACE_MS / 3_600_000})`, parseGraceHours)
    .option('--json', 'print the report as JSON on stdout')
    .action(async (opts: GcCliOptions) => {
      const repository = await openRepository(opts, io);
      const lock = new ObjectStoreLock(repository.store, { clock, holder: defaultLockHolder('vcd-backup repo gc') });
      const graceMs = opts.grace === undefined ? DEFAULT_GC_GRACE_MS : Math.round(opts.grace * 3_600_000);
      let last = 0;
      const report = await collectGarbage(repository, {
        dryRun: opts.dryRun,
        graceMs,
        clock,
        lock,
        onProgress: (p) => {
          if (!io.interactive) return;
          const t = Date.now();
          if (t - last < 500) return;
          last = t;
          io.stderr(`\rgc ${p.phase}: ${p.points} points, ${p.indexesRead} indexes, ${p.blocksListed} blocks listed, ${p.blocksDeleted} to delete`);
        },
      });
      if (io.interactive) io.stderr('\n');
      if (opts.json) printJson(io, report);
      else io.stdout(renderGc(report));
    });
}

async function readPolicy(file: string): Promise<RetentionPolicy> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new InvalidInputError(`cannot read --policy file "${file}" (${reason}): give the path to a JSON file`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`--policy file "${file}" is not valid JSON (${(err as Error).message}): fix the syntax and run again`, { cause: err });
  }
  return parseRetentionPolicy(value, `--policy file "${file}"`);
}

function renderForget(report: ForgetReport): string {
  const out: string[] = [];
  const verb = report.dryRun ? 'would delete' : 'deleted';
  out.push(`repo forget at ${report.now}${report.dryRun ? ' (dry run: nothing changed)' : ''}: ${report.vapps.length} vApp(s), keep ${report.kept}, ${verb} ${report.deleted}`);
  for (const v of report.vapps) {
    out.push('', `vApp ${v.vappId}: keep ${v.keep.length}, ${verb} ${v.delete.length}${v.replayedFlags.length > 0 ? ` (flags of ${v.replayedFlags.length} point(s) not recorded: assigned by replay)` : ''}`);
    const rows = [
      ...v.keep.map((k) => ({ id: k.pointId, createdAt: k.createdAt, flags: k.flags, action: 'keep', why: k.reasons })),
      ...v.delete.map((d) => ({ id: d.pointId, createdAt: d.createdAt, flags: d.flags, action: report.dryRun ? 'DELETE?' : 'DELETED', why: d.notes })),
    ].sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1));
    out.push(table([['POINT', 'CREATED', 'FLAGS', 'ACTION', 'WHY'], ...rows.map((r) => [r.id, r.createdAt, r.flags.join(',') || '-', r.action, r.why.join('; ') || '-'])]).trimEnd());
  }
  if (!report.dryRun && report.deleted > 0) out.push('', 'blocks of deleted points are freed by `vcd-backup repo gc`');
  return out.join('\n') + '\n';
}

function renderGc(r: GcReport): string {
  const lead = r.dryRun ? 'repo gc (dry run: nothing deleted)' : 'repo gc';
  const rows = [
    ['points marked', String(r.points)],
    ['indexes read', String(r.indexesRead)],
    ['blocks referenced', String(r.blocksReferenced)],
    ['blocks listed', String(r.blocksListed)],
    [r.dryRun ? 'blocks to delete' : 'blocks deleted', `${r.blocksDeleted} (${formatBytes(r.bytesFreed)})`],
    [`kept: younger than ${r.graceMs / 3_600_000} h`, `${r.blocksKeptYoung} (${formatBytes(r.bytesKeptYoung)})`],
    [r.dryRun ? 'orphan objects to delete' : 'orphan objects deleted', `${r.orphanObjectsDeleted} (${formatBytes(r.orphanBytesFreed)})`],
    ['uncommitted points kept (young)', String(r.uncommittedPointsKept)],
  ];
  if (r.blocksMissing > 0) rows.push(['referenced blocks MISSING', `${r.blocksMissing}: run \`vcd-backup repo verify\``]);
  if (r.unknownObjects > 0) rows.push(['unknown objects under blocks/ (left alone)', String(r.unknownObjects)]);
  return `${lead}: ${r.dryRun ? 'would free' : 'freed'} ${formatBytes(r.bytesFreed + r.orphanBytesFreed)} in ${r.seconds.toFixed(1)} s\n${table(rows)}`;
}
