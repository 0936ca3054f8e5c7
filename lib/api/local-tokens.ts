import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { Id } from '../catalog/types.js';
import type { Clock } from '../domain/clock.js';
import { InvalidInputError } from '../errors.js';
import { Secret } from '../secret.js';
import { systemClock } from '../system-clock.js';
import { bearerToken, type Authenticator, type Principal } from './auth.js';
import { unauthenticated } from './errors.js';

/**
 * Short-lived signed tokens for local mode: `vcdb1.<payload>.<signature>`, where the payload is base64url
 * JSON `{ kind, tenantId?, iat, exp }` (seconds) and the signature is HMAC-SHA-256 over
 * `vcdb1.<payload>` with the secret kept in `<dataDir>/api-secret` (32 random bytes, hex, mode 0600,
 * created on first use). Anyone who can read that file can mint tokens, exactly like anyone who can read
 * the data directory can read the catalog: local mode trusts the machine's user.
 */
const PREFIX = 'vcdb1';
export const SECRET_FILE = 'api-secret';
export const DEFAULT_TOKEN_TTL_MINUTES = 60;
export const MAX_TOKEN_TTL_MINUTES = 24 * 60;

const PayloadSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('provider'), iat: z.number().int(), exp: z.number().int() }),
  z.strictObject({ kind: z.literal('tenant'), tenantId: Id, iat: z.number().int(), exp: z.number().int() }),
]);

export interface IssueTokenOptions {
  readonly secret: Secret;
  readonly principal: Principal;
  /** @default 60 */
  readonly ttlMinutes?: number;
  readonly clock?: Clock;
}

export function issueLocalToken(options: IssueTokenOptions): string {
  const ttl = options.ttlMinutes ?? DEFAULT_TOKEN_TTL_MINUTES;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_MINUTES) {
    throw new InvalidInputError(`token lifetime must be a whole number of minutes from 1 to ${MAX_TOKEN_TTL_MINUTES}, got ${ttl}`);
  }
  if (options.principal.kind === 'tenant') {
    const id = Id.safeParse(options.principal.tenantId);
    if (!id.success) throw new InvalidInputError(`invalid tenant "${options.principal.tenantId}": ${id.error.issues[0]?.message ?? 'not a valid id'}`);
  }
  const iat = Math.floor((options.clock ?? systemClock).now().getTime() / 1000);
  const payload = options.principal.kind === 'provider' ? { kind: 'provider', iat, exp: iat + ttl * 60 } : { kind: 'tenant', tenantId: options.principal.tenantId, iat, exp: iat + ttl * 60 };
  const body = `${PREFIX}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${body}.${sign(options.secret, body)}`;
}

/** Verifies a token: signature, shape and expiry. Throws UNAUTHENTICATED (401) saying what is wrong. */
export function verifyLocalToken(token: string, options: { secret: Secret; clock?: Clock }): Principal {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) throw unauthenticated('not a local service token; create one with: vcd-backup local token --provider (or --tenant ORG)');
  const body = `${parts[0]}.${parts[1]}`;
  const expected = Buffer.from(sign(options.secret, body), 'base64url');
  const given = Buffer.from(parts[2]!, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw unauthenticated('the token signature is invalid (tampered, or signed with another data directory\'s secret); create a new one with vcd-backup local token');
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    throw unauthenticated('the token payload is not valid');
  }
  const payload = PayloadSchema.safeParse(json);
  if (!payload.success) throw unauthenticated('the token payload is not valid');
  const now = Math.floor((options.clock ?? systemClock).now().getTime() / 1000);
  if (now >= payload.data.exp) throw unauthenticated(`the token expired at ${new Date(payload.data.exp * 1000).toISOString()}; create a new one with vcd-backup local token`);
  return payload.data.kind === 'provider' ? { kind: 'provider' } : { kind: 'tenant', tenantId: payload.data.tenantId };
}

function sign(secret: Secret, body: string): string {
  return createHmac('sha256', secret.reveal()).update(body).digest('base64url');
}

/**
 * Reads `<dataDir>/api-secret`, creating it (mode 0600) on first use. Racing creators agree: the file is
 * created exclusively and the loser reads the winner's secret. A secret readable by group or others is
 * refused, since anyone who reads it can act as the provider.
 */
export async function loadOrCreateApiSecret(dataDir: string): Promise<Secret> {
  const file = path.join(dataDir, SECRET_FILE);
  await mkdir(dataDir, { recursive: true });
  try {
    await writeFile(file, randomBytes(32).toString('hex') + '\n', { flag: 'wx', mode: 0o600 });
    await chmod(file, 0o600); // the umask may have narrowed nothing, but be explicit
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (process.platform !== 'win32') {
    const mode = (await stat(file)).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new InvalidInputError(`${file} is readable by other users (mode ${mode.toString(8)}); run: chmod 600 ${file}`, { code: 'API_SECRET_EXPOSED' });
    }
  }
  const value = (await readFile(file, 'utf8')).trim();
  if (!/^[0-9a-f]{64}$/.test(value)) {
    throw new InvalidInputError(`${file} does not hold a 32-byte hex secret; delete it to create a new one (tokens issued so far stop working)`, { code: 'API_SECRET_INVALID' });
  }
  return new Secret(value);
}

/** The Authenticator of local mode: bearer tokens signed with the data directory's secret. */
export function createLocalAuthenticator(options: { secret: Secret; clock?: Clock }): Authenticator {
  return {
    authenticate: async (header) => verifyLocalToken(bearerToken(header), options),
  };
}
