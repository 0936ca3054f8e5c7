import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { Principal } from '../../api/auth.js';
import { DEFAULT_TOKEN_TTL_MINUTES, issueLocalToken, loadOrCreateApiSecret, MAX_TOKEN_TTL_MINUTES } from '../../api/local-tokens.js';
import { InvalidInputError } from '../../errors.js';
import { parsePositiveInt, type CliIo } from '../support.js';

interface TokenOptions {
  tenant?: string;
  provider?: boolean;
  dataDir?: string;
  ttl?: number;
}

/**
 * `vcd-backup local token (--tenant ORG | --provider) [--data-dir DIR] [--ttl MINUTES]`: prints a short-lived
 * bearer token for the local API, signed with the data directory's secret (created on first use), so that
 * `curl -H "Authorization: Bearer $(npx vcd-backup local token --provider)" http://127.0.0.1:8080/v1/...` works.
 */
export function registerLocalToken(localCommand: Command, io: CliIo): void {
  localCommand
    .command('token')
    .description('print a short-lived API token for the local service (provider administrator or one tenant)')
    .option('--tenant <org>', 'a token for this tenant (vCD organization)')
    .option('--provider', 'a token for the provider administrator')
    .option('--data-dir <dir>', 'the local service\'s data directory (holds api-secret)')
    .option('--ttl <minutes>', `lifetime in minutes, 1-${MAX_TOKEN_TTL_MINUTES}`, parseTtl, DEFAULT_TOKEN_TTL_MINUTES)
    .action(async (_opts: TokenOptions, command: Command) => {
      // `local` defines --data-dir too, and commander lets the parent take it wherever it is written.
      const opts = command.optsWithGlobals<TokenOptions>();
      if (Boolean(opts.provider) === (opts.tenant !== undefined)) {
        throw new InvalidInputError('give exactly one of --provider or --tenant ORG');
      }
      const principal: Principal = opts.provider ? { kind: 'provider' } : { kind: 'tenant', tenantId: opts.tenant! };
      const secret = await loadOrCreateApiSecret(path.resolve(opts.dataDir ?? '.vcd-backup'));
      io.stdout(issueLocalToken({ secret, principal, ttlMinutes: opts.ttl ?? DEFAULT_TOKEN_TTL_MINUTES }) + '\n');
    });
}

function parseTtl(value: string): number {
  const n = parsePositiveInt('--ttl')(value);
  if (n > MAX_TOKEN_TTL_MINUTES) throw new InvalidArgumentError(`--ttl must be at most ${MAX_TOKEN_TTL_MINUTES} minutes (24 hours), got "${value}"`);
  return n;
}
