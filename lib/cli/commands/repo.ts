import type { Command } from 'commander';
import { BackupError, InvalidInputError } from '../../errors.js';
import { Repository } from '../../repository/repository.js';
import { repositoryStats } from '../../repository/stats.js';
import { verifyRepository } from '../../repository/verify.js';
import { systemClock } from '../../system-clock.js';
import { formatBytes, table } from '../progress.js';
import { keySourceFrom, openRepository, storeFrom, withRepoOptions, withTenantOption, type RepoOptions } from '../repo-options.js';
import { parsePercent, parsePositiveInt, printJson, type CliIo } from '../support.js';

interface InitOptions extends RepoOptions {
  encrypt?: boolean;
  blockSize?: number;
  compressionLevel?: number;
  json?: boolean;
}

function parseLevel(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < -7 || n > 22) throw new InvalidInputError(`--compression-level must be a whole number from -7 to 22, got "${value}"`);
  return n;
}

export function registerRepo(program: Command, io: CliIo): Command {
  const repo = program.command('repo').description('work on a repository directly, without the service or its catalog');

  withRepoOptions(repo.command('init').description('create a repository'))
    .option('--encrypt', 'encrypt blocks and metadata (AES-256-GCM); needs --passphrase-env or --key-file')
    .option('--block-size <bytes>', 'default block size: a power of two from 262144 to 8388608', parsePositiveInt('--block-size'))
    .option('--compression-level <n>', 'zstd level (-7 to 22)', parseLevel)
    .option('--json', 'print the result as JSON on stdout')
    .action(async (opts: InitOptions) => {
      const keySource = await keySourceFrom(opts, io);
      if (opts.encrypt && !keySource) throw new InvalidInputError('--encrypt needs a key: add --passphrase-env VAR (a variable holding the passphrase) or --key-file FILE');
      if (!opts.encrypt && keySource) throw new InvalidInputError('a passphrase or key file was given without --encrypt: add --encrypt to create an encrypted repository');
      const repository = await Repository.init(storeFrom(opts.repo, opts.endpoint, io), {
        clock: systemClock,
        keySource,
        blockSize: opts.blockSize,
        compressionLevel: opts.compressionLevel,
      });
      const out = { repositoryId: repository.config.repositoryId, url: opts.repo, encrypted: repository.encrypted, blockSize: repository.config.defaultBlockSize, compressionLevel: repository.config.compression.level };
      if (opts.json) printJson(io, out);
      else io.stderr(`created ${out.encrypted ? 'encrypted ' : ''}repository ${out.repositoryId} at ${opts.repo} (block size ${formatBytes(out.blockSize)})\n`);
    });

  withTenantOption(withRepoOptions(repo.command('points').description('list committed restore points')))
    .option('--vapp <id>', 'only this vApp')
    .option('--json', 'print the points as JSON on stdout')
    .action(async (opts: RepoOptions & { vapp?: string; json?: boolean }) => {
      const repository = await openRepository(opts, io);
      const points = [];
      for await (const p of repository.listPoints()) if (!opts.vapp || p.vappId === opts.vapp) points.push(p);
      points.sort((a, b) => (a.vappId === b.vappId ? a.createdAt.localeCompare(b.createdAt) : a.vappId.localeCompare(b.vappId)));
      if (opts.json) {
        printJson(io, { points });
        return;
      }
      // The tenant column only where tenants exist (format 2 points written for a tenant).
      const tenants = points.some((p) => p.tenantId);
      const rows = [[...(tenants ? ['TENANT'] : []), 'VAPP', 'POINT', 'CREATED', 'DISKS', 'SIZE', 'UPLOADED', 'PARENT']];
      for (const p of points) {
        rows.push([
          ...(tenants ? [p.tenantId ?? '-'] : []),
          p.vappId,
          p.pointId,
          p.createdAt,
          String(p.disks.length),
          formatBytes(p.disks.reduce((n, d) => n + d.sizeBytes, 0)),
          formatBytes(p.disks.reduce((n, d) => n + d.bytesUploaded, 0)),
          p.parentPointId ?? p.sourcePointId ?? '-',
        ]);
      }
      io.stdout(table(rows));
    });

  withTenantOption(withRepoOptions(repo.command('verify').description('re-read and re-hash every block the committed points need')))
    .option('--sample <percent>', 're-read only this share of the blocks (missing blocks are always found)', parsePercent)
    .option('--json', 'print the report as JSON on stdout')
    .action(async (opts: RepoOptions & { sample?: number; json?: boolean }) => {
      const repository = await openRepository(opts, io);
      const report = await verifyRepository(repository, { samplePercent: opts.sample });
      if (opts.json) printJson(io, report);
      else {
        io.stderr(`checked ${report.blocksChecked} of ${report.blocksReferenced} blocks (${formatBytes(report.bytesChecked)}) in ${report.indexes} indexes of ${report.points} points\n`);
        for (const p of report.problems) {
          if (p.problem === 'tampered') io.stderr(`tampered ${p.block}: ${p.reason}\n`);
          else io.stderr(`${p.problem} block ${p.block}: needed by ${p.points.join(', ')}\n`);
        }
        io.stderr(report.ok ? 'repository OK\n' : `${report.problems.length} problem(s); points that cannot be fully restored: ${report.damagedPoints.join(', ')}\n`);
      }
      if (!report.ok) throw new BackupError('VERIFY_FAILED', `${report.problems.length} problem(s) found; ${report.damagedPoints.length} point(s) cannot be fully restored`);
    });

  withRepoOptions(repo.command('stats').description('points, stored bytes and data reduction'))
    .option('--json', 'print the statistics as JSON on stdout')
    .action(async (opts: RepoOptions & { json?: boolean }) => {
      const repository = await openRepository(opts, io);
      const stats = await repositoryStats(repository);
      if (opts.json) printJson(io, stats);
      else
        io.stdout(
          table([
            ['repository', stats.repositoryId],
            ['encrypted', String(stats.encrypted)],
            ['vApps', String(stats.vapps)],
            ['points', String(stats.points)],
            ['logical size', formatBytes(stats.logicalBytes)],
            ['blocks stored', String(stats.blocksStored)],
            ['stored size', formatBytes(stats.storedBytes)],
            ['reduction', stats.reductionRatio === null ? '-' : `${stats.reductionRatio}x`],
          ]),
        );
    });
  return repo;
}
