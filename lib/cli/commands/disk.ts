import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { backupSingleDisk, restoreSingleDisk } from '../../agent/disk-jobs.js';
import { parseChangedAreas, type ChangedArea } from '../../agent/changed-areas.js';
import { InvalidInputError } from '../../errors.js';
import { systemClock } from '../../system-clock.js';
import { formatBytes } from '../progress.js';
import { byteProgress } from '../progress.js';
import { openRepository, withRepoOptions, withTenantOption, type RepoOptions } from '../repo-options.js';
import { parsePositiveInt, printJson, type CliIo, withAbortOnSignal } from '../support.js';

interface BackupOptions extends RepoOptions {
  source: string;
  vapp: string;
  disk: string;
  parent?: string;
  changedAreas?: string;
  blockSize?: number;
  json?: boolean;
}

interface RestoreOptions extends RepoOptions {
  point: string;
  vapp?: string;
  disk: string;
  out: string;
  json?: boolean;
}


export function registerDisk(program: Command, io: CliIo): void {
  const disk = program.command('disk').description('back up or restore one disk image, without the service');

  withTenantOption(withRepoOptions(disk.command('backup').description('back up a disk image or block device into a new restore point')))
    .requiredOption('--source <path>', 'raw disk image file or block device')
    .requiredOption('--vapp <id>', 'vApp id the point belongs to')
    .requiredOption('--disk <id>', 'disk id inside the point')
    .option('--parent <pointId>', 'previous point of the same vApp: makes the backup incremental')
    .option('--changed-areas <file>', 'JSON array of {"start","length"} byte ranges changed since --parent (CBT)')
    .option('--block-size <bytes>', 'block size (power of two, 256 KiB-8 MiB); default: the parent\'s or the repository\'s', parsePositiveInt('--block-size'))
    .option('--json', 'print the result as JSON on stdout')
    .action(async (opts: BackupOptions) => {
      const repository = await openRepository(opts, io);
      let changedAreas: ChangedArea[] | undefined;
      if (opts.changedAreas) {
        let raw: unknown;
        try {
          raw = JSON.parse(await readFile(opts.changedAreas, 'utf8'));
        } catch (err) {
          throw new InvalidInputError(`--changed-areas ${opts.changedAreas}: not a readable JSON file (${(err as Error).message})`);
        }
        changedAreas = parseChangedAreas(raw, `--changed-areas ${opts.changedAreas}`);
      }
      let bar: ReturnType<typeof byteProgress> | undefined;
      const result = await withAbortOnSignal((signal) =>
        backupSingleDisk({
          repository,
          clock: systemClock,
          sourcePath: opts.source,
          vappId: opts.vapp,
          diskId: opts.disk,
          parentPointId: opts.parent,
          changedAreas,
          blockSize: opts.blockSize,
          signal,
          onProgress: (p) => {
            bar ??= byteProgress(io, 'backup ', p.bytesTotal);
            bar.update(p.bytesDone, { uploaded: formatBytes(p.bytesUploaded) });
          },
        }),
      ).finally(() => bar?.stop());
      if (opts.json) printJson(io, result);
      else {
        io.stderr(
          `point ${result.pointId} committed: read ${formatBytes(result.bytesRead)}, uploaded ${formatBytes(result.bytesUploaded)} ` +
            `(${result.blocksNew} new, ${result.blocksReused} reused, ${result.blocksZero} zero of ${result.blocksTotal} blocks) in ${result.seconds.toFixed(1)} s\n`,
        );
        io.stdout(`${result.pointId}\n`);
      }
    });

  withTenantOption(withRepoOptions(disk.command('restore').description('write a disk of a restore point to a file or block device')))
    .requiredOption('--point <id>', 'restore point id')
    .option('--vapp <id>', 'vApp id of the point (faster lookup)')
    .requiredOption('--disk <id>', 'disk id inside the point')
    .requiredOption('--out <path>', 'file to create or replace, or a block device')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (opts: RestoreOptions) => {
      const repository = await openRepository(opts, io);
      let bar: ReturnType<typeof byteProgress> | undefined;
      const result = await withAbortOnSignal((signal) =>
        restoreSingleDisk({
          repository,
          clock: systemClock,
          pointId: opts.point,
          vappId: opts.vapp,
          diskId: opts.disk,
          out: opts.out,
          signal,
          onProgress: (p) => {
            bar ??= byteProgress(io, 'restore', p.bytesTotal);
            bar.update(p.bytesDone);
          },
        }),
      ).finally(() => bar?.stop());
      if (opts.json) printJson(io, result);
      else io.stderr(`restored ${formatBytes(result.bytesTotal)} of point ${result.pointId} to ${opts.out} (${result.blocksRestored} blocks written, ${result.blocksZero} zero blocks left sparse) in ${result.seconds.toFixed(1)} s\n`);
    });
}
