import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { readEnvSecret } from '../config.js';
import { InvalidInputError } from '../errors.js';
import type { KeySource } from '../repository/keys.js';
import { Repository } from '../repository/repository.js';
import { openStore } from '../repository/url.js';
import { Secret } from '../secret.js';
import type { CliIo } from './support.js';

export interface RepoOptions {
  repo: string;
  endpoint?: string;
  passphraseEnv?: string;
  keyFile?: string;
  /** Work in this tenant's namespace (format 2) instead of the repository's own. */
  tenant?: string;
}

/** Adds the options every command that opens a repository takes. A passphrase is never a flag value. */
export function withRepoOptions(cmd: Command, flag = '--repo <url>', description = 'repository URL: file:///absolute/dir or s3://bucket/prefix'): Command {
  return cmd
    .requiredOption(flag, description)
    .option('--endpoint <url>', 'S3 endpoint for S3-compatible storage (default: $AWS_ENDPOINT_URL_S3)')
    .addOption(new Option('--passphrase-env <var>', 'name of the environment variable holding the repository passphrase').conflicts('keyFile'))
    .option('--key-file <file>', 'file holding the repository key material');
}

/** `--tenant ID`: for commands that read or write one tenant's points with that tenant's keys. */
export function withTenantOption(cmd: Command): Command {
  return cmd.option('--tenant <id>', "work in this tenant's namespace (its blocks and points, under its derived keys); default: the repository's own namespace, and reading sees every tenant's points");
}

export async function keySourceFrom(opts: { passphraseEnv?: string; keyFile?: string }, io: CliIo): Promise<KeySource | undefined> {
  if (opts.passphraseEnv) return { kind: 'passphrase', passphrase: readEnvSecret(io.env, opts.passphraseEnv) };
  if (opts.keyFile) {
    let content: string;
    try {
      content = await readFile(opts.keyFile, 'utf8');
    } catch (err) {
      throw new InvalidInputError(`cannot read key file ${opts.keyFile}: ${(err as Error).message}`, { cause: err });
    }
    return { kind: 'key-file', keyMaterial: new Secret(content) };
  }
  return undefined;
}

export function storeFrom(url: string, endpoint: string | undefined, io: CliIo) {
  const env = io.env;
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN } : undefined;
  return openStore(url, { endpoint: endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL, region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION, credentials });
}

export async function openRepository(opts: RepoOptions, io: CliIo): Promise<Repository> {
  const repository = await Repository.open(storeFrom(opts.repo, opts.endpoint, io), await keySourceFrom(opts, io));
  return opts.tenant ? repository.forTenant(opts.tenant) : repository;
}
