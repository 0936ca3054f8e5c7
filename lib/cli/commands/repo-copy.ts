import { Option, type Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import { copyPoint, type CopyPointResult } from '../../repository/copy-point.js';
import { Repository } from '../../repository/repository.js';
import { byteProgress, formatBytes } from '../progress.js';
import { keySourceFrom, storeFrom } from '../repo-options.js';
import { parsePositiveInt, printJson, type CliIo, withAbortOnSignal } from '../support.js';

interface CopyOptions {
  from: string;
  to: string;
  point?: string;
  latest?: boolean;
  vapp?: string;
  fromEndpoint?: string;
  toEndpoint?: string;
  fromPassphraseEnv?: string;
  fromKeyFile?: string;
  toPassphraseEnv?: string;
  toKeyFile?: string;
  concurrency?: number;
  json?: boolean;
}


async function openSide(side: 'from' | 'to', url: string, endpoint: string | undefined, passphraseEnv: string | undefined, keyFile: string | undefined, io: CliIo): Promise<Repository> {
  const keySource = await keySourceFrom({ passphraseEnv, keyFile }, io);
  try {
    return await Repository.open(storeFrom(url, endpoint, io), keySource);
  } catch (err) {
    // Repository.open speaks of --passphrase-env/--key-file: name this side's flags instead.
    if (err instanceof InvalidInputError && err.code === 'REPOSITORY_KEY' && !keySource) {
      throw new InvalidInputError(`the --${side} repository ${url} is encrypted: pass --${side}-passphrase-env VAR (the name of a variable holding the passphrase) or --${side}-key-file FILE`, { code: 'REPOSITORY_KEY', cause: err });
    }
    throw err;
  }
}

/**
 * `vcd-backup repo copy`: copies one restore point to another repository without the service, moving only
 * the blocks the target lacks (seeding a cloud repository, or copying by hand). See docs/copy.md.
 */
export function registerRepoCopy(repo: Command, io: CliIo): void {
  repo
    .command('copy')
    .description('copy a restore point to another repository, moving only the blocks it lacks')
    .requiredOption('--from <url>', 'source repository URL: file:///absolute/dir or s3://bucket/prefix')
    .requiredOption('--to <url>', 'target repository URL (create it first with `vcd-backup repo init`)')
    .option('--point <id>', 'the restore point to copy')
    .option('--latest', 'copy the latest committed point of --vapp')
    .option('--vapp <id>', 'vApp id of the point (needed with --latest; speeds up --point)')
    .option('--from-endpoint <url>', 'S3 endpoint of the source (default: $AWS_ENDPOINT_URL_S3)')
    .option('--to-endpoint <url>', 'S3 endpoint of the target (default: $AWS_ENDPOINT_URL_S3)')
    .addOption(new Option('--from-passphrase-env <var>', 'name of the environment variable holding the source passphrase').conflicts('fromKeyFile'))
    .option('--from-key-file <file>', 'file holding the source key material')
    .addOption(new Option('--to-passphrase-env <var>', 'name of the environment variable holding the target passphrase').conflicts('toKeyFile'))
    .option('--to-key-file <file>', 'file holding the target key material')
    .option('--concurrency <n>', 'blocks in flight (default 32)', parsePositiveInt('--concurrency'))
    .option('--json', 'print the result as JSON on stdout')
    .action(async (opts: CopyOptions) => {
      if (opts.point && opts.latest) throw new InvalidInputError('give either --point ID or --latest --vapp ID, not both');
      if (!opts.point && !opts.latest) throw new InvalidInputError('say which point to copy: --point ID, or --latest --vapp ID');
      if (opts.latest && !opts.vapp) throw new InvalidInputError('--latest needs --vapp ID: the latest point of which vApp?');
      if (opts.from === opts.to && (opts.fromEndpoint ?? '') === (opts.toEndpoint ?? '')) throw new InvalidInputError('--from and --to are the same repository: give another target');
      const source = await openSide('from', opts.from, opts.fromEndpoint, opts.fromPassphraseEnv, opts.fromKeyFile, io);
      const target = await openSide('to', opts.to, opts.toEndpoint, opts.toPassphraseEnv, opts.toKeyFile, io);
      if (source.config.repositoryId === target.config.repositoryId) throw new InvalidInputError(`--from and --to are the same repository (${source.config.repositoryId}): give another target`);
      let pointId = opts.point;
      if (!pointId) {
        const latest = await source.latestPoint(opts.vapp!);
        if (!latest) throw new InvalidInputError(`vApp ${opts.vapp} has no committed point in ${opts.from}: list them with \`vcd-backup repo points --repo ${opts.from}\``, { code: 'POINT_NOT_FOUND' });
        pointId = latest.pointId;
      }
      let bar: ReturnType<typeof byteProgress> | undefined;
      const result: CopyPointResult = await withAbortOnSignal((signal) =>
        copyPoint({
          source,
          target,
          pointId: pointId!,
          vappId: opts.vapp,
          concurrency: opts.concurrency,
          signal,
          onProgress: (p) => {
            bar ??= byteProgress(io, 'copy   ', p.bytesTotal);
            bar.update(p.bytesDone, { copied: formatBytes(p.bytesCopied), blocks: p.blocksCopied });
          },
        }),
      ).finally(() => bar?.stop());
      if (opts.json) {
        printJson(io, { ...result, from: opts.from, to: opts.to });
        return;
      }
      if (result.alreadyPresent) io.stderr(`point ${result.pointId} of vApp ${result.vappId} is already in ${opts.to}: nothing to copy\n`);
      else {
        io.stderr(
          `point ${result.pointId} of vApp ${result.vappId} copied to ${opts.to}: ${result.blocksCopied} blocks (${formatBytes(result.bytesCopied)}) copied, ` +
            `${result.blocksSkipped} already there, ${result.blocksZero} zero of ${result.blocksTotal}${result.reencoded ? ', re-encrypted for the target' : ''} in ${result.seconds.toFixed(1)} s\n`,
        );
      }
      io.stdout(`${result.pointId}\n`);
    });
}
