import { createHmac, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import type { APIGatewayTokenAuthorizerEvent } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authorize, wholeApi } from '../../lambdas/authorizer.js';
import { principalFromAuthorizerContext } from '../../lib/api/auth.js';
import { authenticatorFromEnv, JwtVerifier, loadJwtConfig, type JwtConfig } from '../../lib/api/jwt.js';
import { createLocalAuthenticator, issueLocalToken, loadOrCreateApiSecret, verifyLocalToken } from '../../lib/api/local-tokens.js';
import { registerLocalToken } from '../../lib/cli/commands/local-token.js';
import type { CliIo } from '../../lib/cli/support.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { Secret } from '../../lib/secret.js';

const clock = new ManualClock('2026-03-02T10:00:00.000Z');
const secret = new Secret('a'.repeat(64));

describe('local tokens', () => {
  it('issue and verify for the provider and for a tenant', () => {
    expect(verifyLocalToken(issueLocalToken({ secret, principal: { kind: 'provider' }, clock }), { secret, clock })).toEqual({ kind: 'provider' });
    expect(verifyLocalToken(issueLocalToken({ secret, principal: { kind: 'tenant', tenantId: 'acme' }, clock }), { secret, clock })).toEqual({ kind: 'tenant', tenantId: 'acme' });
  });

  it('expire after their lifetime', () => {
    const token = issueLocalToken({ secret, principal: { kind: 'provider' }, clock, ttlMinutes: 5 });
    const later = new ManualClock(clock.now());
    later.advance(5 * 60_000 - 1000);
    expect(verifyLocalToken(token, { secret, clock: later })).toEqual({ kind: 'provider' });
    later.advance(1000);
    expect(() => verifyLocalToken(token, { secret, clock: later })).toThrow(/expired at 2026-03-02T10:05:00.000Z/);
  });

  it('refuse a tampered payload, a foreign secret and garbage, with code UNAUTHENTICATED', () => {
    const token = issueLocalToken({ secret, principal: { kind: 'tenant', tenantId: 'acme' }, clock });
    const [prefix, , sig] = token.split('.');
    const forged = `${prefix}.${Buffer.from(JSON.stringify({ kind: 'provider', iat: 0, exp: 9e9 })).toString('base64url')}.${sig}`;
    expect(() => verifyLocalToken(forged, { secret, clock })).toThrow(/signature is invalid/);
    expect(() => verifyLocalToken(token, { secret: new Secret('b'.repeat(64)), clock })).toThrow(/signature is invalid/);
    for (const bad of ['', 'abc', 'vcdb1..', 'vcdb1.x.y', token + 'x']) {
      expect(() => verifyLocalToken(bad, { secret, clock })).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
    }
    // A correctly signed payload of the wrong shape is refused too.
    const body = `vcdb1.${Buffer.from(JSON.stringify({ kind: 'root', iat: 0, exp: 9e9 })).toString('base64url')}`;
    const signed = `${body}.${createHmac('sha256', secret.reveal()).update(body).digest('base64url')}`;
    expect(() => verifyLocalToken(signed, { secret, clock })).toThrow(/payload is not valid/);
  });

  it('refuse lifetimes outside 1-1440 minutes and invalid tenant ids', () => {
    expect(() => issueLocalToken({ secret, principal: { kind: 'provider' }, ttlMinutes: 0 })).toThrow(/1 to 1440/);
    expect(() => issueLocalToken({ secret, principal: { kind: 'provider' }, ttlMinutes: 1441 })).toThrow(/1 to 1440/);
    expect(() => issueLocalToken({ secret, principal: { kind: 'tenant', tenantId: 'a#b' } })).toThrow(/invalid tenant/);
  });

  it('authenticate bearer headers and say what is missing', async () => {
    const auth = createLocalAuthenticator({ secret, clock });
    const token = issueLocalToken({ secret, principal: { kind: 'provider' }, clock });
    await expect(auth.authenticate(`Bearer ${token}`)).resolves.toEqual({ kind: 'provider' });
    await expect(auth.authenticate(undefined)).rejects.toThrow(/missing Authorization header.*local token --provider/);
    await expect(auth.authenticate(`Basic ${token}`)).rejects.toThrow(/Bearer <token>/);
  });
});

describe('api secret and the local token command', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'api-secret-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates <dataDir>/api-secret with mode 0600 once and reuses it', async () => {
    const first = await loadOrCreateApiSecret(dir);
    const again = await loadOrCreateApiSecret(dir);
    expect(again.reveal()).toBe(first.reveal());
    expect((await stat(path.join(dir, 'api-secret'))).mode & 0o777).toBe(0o600);
    const racing = await Promise.all(Array.from({ length: 5 }, () => loadOrCreateApiSecret(path.join(dir, 'fresh'))));
    expect(new Set(racing.map((s) => s.reveal())).size).toBe(1);
  });

  it.skipIf(process.platform === 'win32')('refuses a secret other users can read', async () => {
    await loadOrCreateApiSecret(dir);
    await chmod(path.join(dir, 'api-secret'), 0o644);
    await expect(loadOrCreateApiSecret(dir)).rejects.toThrow(/chmod 600/);
  });

  const run = async (args: string[]) => {
    const out: string[] = [];
    const io: CliIo = { stdout: (t) => out.push(t), stderr: () => undefined, env: {}, interactive: false };
    const program = new Command().exitOverride();
    const local = program.command('local').option('--data-dir <dir>', 'data', '.vcd-backup').option('--port <n>', 'port', '8080');
    registerLocalToken(local, io);
    await program.parseAsync(['node', 'vcd-backup', 'local', ...args]);
    return out.join('');
  };

  it('prints a token for the provider or a tenant, signed with the data directory\'s secret', async () => {
    const token = (await run(['token', '--provider', '--data-dir', dir])).trim();
    const s = await loadOrCreateApiSecret(dir);
    expect(verifyLocalToken(token, { secret: s })).toEqual({ kind: 'provider' });
    const tenant = (await run(['--data-dir', dir, 'token', '--tenant', 'acme', '--ttl', '5'])).trim();
    expect(verifyLocalToken(tenant, { secret: s })).toEqual({ kind: 'tenant', tenantId: 'acme' });
    expect(JSON.parse(Buffer.from(tenant.split('.')[1]!, 'base64url').toString())).toMatchObject({ exp: expect.any(Number) });
    expect((await readFile(path.join(dir, 'api-secret'), 'utf8')).trim()).toBe(s.reveal());
  });

  it('refuses both or neither of --provider and --tenant, and a bad --ttl', async () => {
    await expect(run(['token', '--data-dir', dir])).rejects.toThrow(/exactly one of --provider or --tenant/);
    await expect(run(['token', '--provider', '--tenant', 'x', '--data-dir', dir])).rejects.toThrow(/exactly one/);
    await expect(run(['token', '--provider', '--ttl', '0', '--data-dir', dir])).rejects.toThrow(/--ttl/);
    await expect(run(['token', '--provider', '--ttl', '5000', '--data-dir', dir])).rejects.toThrow(/at most 1440/);
  });
});

// ---------------------------------------------------------------------------------------------- JWT

const ISSUER = 'https://login.example.net/';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = (key: KeyObject, kid: string) => ({ ...key.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' });
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = Math.floor(clock.now().getTime() / 1000);

function rs256(claims: Record<string, unknown>, options: { kid?: string; key?: KeyObject; alg?: string } = {}): string {
  const body = `${b64({ alg: options.alg ?? 'RS256', typ: 'JWT', kid: options.kid ?? 'k1' })}.${b64(claims)}`;
  const sign = createSign('RSA-SHA256');
  sign.update(body);
  return `${body}.${sign.sign(options.key ?? rsa.privateKey).toString('base64url')}`;
}

function hs256(claims: Record<string, unknown>, key: string | Buffer, alg = 'HS256'): string {
  const body = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
}

const claims = (extra: Record<string, unknown> = {}) => ({ iss: ISSUER, aud: 'vcd-backup', exp: now + 300, iat: now, ...extra });

function rsVerifier(keys: unknown[] = [jwk(rsa.publicKey, 'k1')], overrides: Partial<JwtConfig> = {}) {
  const fetched: string[] = [];
  const config = { ...loadJwtConfig({ JWT_ISSUER: ISSUER, JWT_AUDIENCE: 'vcd-backup', JWT_JWKS_URL: 'https://login.example.net/jwks.json' }), ...overrides };
  const verifier = new JwtVerifier({
    config,
    clock,
    fetch: async (url) => {
      fetched.push(url);
      return { ok: true, status: 200, json: async () => ({ keys }) };
    },
  });
  return { verifier, fetched };
}

describe('JwtVerifier (RS256 with a JWKS)', () => {
  it('maps the provider role and the tenant claim to principals, fetching the key set once', async () => {
    const { verifier, fetched } = rsVerifier();
    await expect(verifier.verify(rs256(claims({ role: 'provider' })))).resolves.toEqual({ kind: 'provider' });
    await expect(verifier.verify(rs256(claims({ tenant: 'acme' })))).resolves.toEqual({ kind: 'tenant', tenantId: 'acme' });
    expect(fetched).toEqual(['https://login.example.net/jwks.json']);
  });

  it('refuses wrong issuer, audience, expiry, nbf, a missing exp and claims naming nobody', async () => {
    const { verifier } = rsVerifier();
    await expect(verifier.verify(rs256(claims({ tenant: 'a', iss: 'https://evil/' })))).rejects.toThrow(/another issuer/);
    await expect(verifier.verify(rs256(claims({ tenant: 'a', aud: 'other' })))).rejects.toThrow(/another audience/);
    await expect(verifier.verify(rs256(claims({ tenant: 'a', exp: now - 61 })))).rejects.toThrow(/expired/);
    await expect(verifier.verify(rs256(claims({ tenant: 'a', exp: now - 30 })))).resolves.toEqual({ kind: 'tenant', tenantId: 'a' }); // clock tolerance
    await expect(verifier.verify(rs256(claims({ tenant: 'a', nbf: now + 600 })))).rejects.toThrow(/not valid yet/);
    await expect(verifier.verify(rs256(claims({ tenant: 'a', exp: undefined })))).rejects.toThrow(/no expiry/);
    await expect(verifier.verify(rs256(claims({ role: 'admin' })))).rejects.toThrow(/neither the provider role/);
  });

  it('refuses bad signatures, alg none, HS256 signed with the public key, and tampered claims', async () => {
    const { verifier } = rsVerifier();
    await expect(verifier.verify(rs256(claims({ tenant: 'a' }), { key: other.privateKey }))).rejects.toThrow(/signature is invalid/);
    const none = `${b64({ alg: 'none' })}.${b64(claims({ role: 'provider' }))}.`;
    await expect(verifier.verify(none)).rejects.toThrow(/accepts RS256 only/);
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
    await expect(verifier.verify(hs256(claims({ role: 'provider' }), pem))).rejects.toThrow(/accepts RS256 only/);
    const [h, , s] = rs256(claims({ tenant: 'a' })).split('.');
    await expect(verifier.verify(`${h}.${b64(claims({ role: 'provider' }))}.${s}`)).rejects.toThrow(/signature is invalid/);
    await expect(verifier.verify('not.a.jwt')).rejects.toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
  });

  it('refetches the key set for an unknown kid at most once a minute (key rotation)', async () => {
    let keys: unknown[] = [jwk(rsa.publicKey, 'k1')];
    let fetches = 0;
    const verifier = new JwtVerifier({
      config: loadJwtConfig({ JWT_ISSUER: ISSUER, JWT_AUDIENCE: 'vcd-backup', JWT_JWKS_URL: 'https://login.example.net/jwks.json' }),
      clock,
      fetch: async () => {
        fetches += 1;
        return { ok: true, status: 200, json: async () => ({ keys }) };
      },
    });
    await verifier.verify(rs256(claims({ tenant: 'a' })));
    keys = [jwk(rsa.publicKey, 'k1'), jwk(other.publicKey, 'k2')];
    const rotated = rs256(claims({ tenant: 'a' }), { kid: 'k2', key: other.privateKey });
    await expect(verifier.verify(rotated)).rejects.toThrow(/unknown signing key "k2"/); // fetched moments ago
    expect(fetches).toBe(1);
    clock.advance(61_000);
    await expect(verifier.verify(rotated)).resolves.toEqual({ kind: 'tenant', tenantId: 'a' });
    expect(fetches).toBe(2);
    clock.set('2026-03-02T10:00:00.000Z');
  });

  it('answers 401 when the key set cannot be fetched', async () => {
    const verifier = new JwtVerifier({
      config: loadJwtConfig({ JWT_ISSUER: ISSUER, JWT_AUDIENCE: 'vcd-backup', JWT_JWKS_URL: 'https://login.example.net/jwks.json' }),
      clock,
      fetch: async () => ({ ok: false, status: 503, json: async () => ({}) }),
    });
    await expect(verifier.verify(rs256(claims({ tenant: 'a' })))).rejects.toThrow(/could not be fetched.*HTTP 503/);
  });
});

describe('JwtVerifier (HS256) and its configuration', () => {
  const key = 'k'.repeat(40);
  const verifier = new JwtVerifier({ config: loadJwtConfig({ JWT_ISSUER: ISSUER, JWT_AUDIENCE: 'vcd-backup', JWT_HS256_SECRET: key, JWT_TENANT_CLAIM: 'org' }), clock });

  it('verifies HMAC tokens and reads the configured tenant claim', async () => {
    await expect(verifier.verify(hs256(claims({ org: 'acme' }), key))).resolves.toEqual({ kind: 'tenant', tenantId: 'acme' });
    await expect(verifier.verify(hs256(claims({ org: 'acme' }), 'x'.repeat(40)))).rejects.toThrow(/signature is invalid/);
    await expect(verifier.verify(rs256(claims({ org: 'acme' })))).rejects.toThrow(/accepts HS256 only/);
  });

  it('names the missing or conflicting settings', () => {
    const aud = { JWT_AUDIENCE: 'vcd-backup' };
    expect(() => loadJwtConfig({})).toThrow(/JWT_ISSUER/);
    expect(() => loadJwtConfig({ JWT_ISSUER: ISSUER, ...aud })).toThrow(/exactly one of JWT_JWKS_URL/);
    expect(() => loadJwtConfig({ JWT_ISSUER: ISSUER, ...aud, JWT_HS256_SECRET: key, JWT_JWKS_URL: 'https://x/jwks' })).toThrow(/exactly one/);
    expect(() => loadJwtConfig({ JWT_ISSUER: ISSUER, ...aud, JWT_HS256_SECRET: 'short' })).toThrow(/JWT_HS256_SECRET: must be at least 32/);
    expect(String(loadJwtConfig({ JWT_ISSUER: ISSUER, ...aud, JWT_HS256_SECRET: key }).hmacSecret)).toBe('***');
  });
});

describe('the audience is required (issue 13)', () => {
  const key = 'k'.repeat(40);

  it('refuses to configure verification without an audience', () => {
    for (const JWT_AUDIENCE of [undefined, '', '   ']) {
      expect(() => loadJwtConfig({ JWT_ISSUER: ISSUER, JWT_AUDIENCE, JWT_JWKS_URL: 'https://login.example.net/jwks.json' })).toThrow(/JWT_AUDIENCE: set JWT_AUDIENCE to the 'aud' value/);
    }
    const config = loadJwtConfig({ JWT_ISSUER: ISSUER, JWT_AUDIENCE: 'vcd-backup', JWT_HS256_SECRET: key });
    expect(() => new JwtVerifier({ config: { ...config, audience: '' } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(/needs an audience/) as string }));
    expect(() => new JwtVerifier({ config: { ...config, audience: undefined as unknown as string } })).toThrow(/needs an audience/);
  });

  it('refuses a token without aud, with another aud, or with an empty one, with 401', async () => {
    const { verifier } = rsVerifier();
    for (const aud of [undefined, 'other', '', ['other', 'more'], []]) {
      await expect(verifier.verify(rs256(claims({ tenant: 'acme', aud }))), JSON.stringify(aud)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    }
    await expect(verifier.verify(rs256(claims({ tenant: 'acme', aud: undefined })))).rejects.toThrow(/names no audience/);
    await expect(verifier.verify(rs256(claims({ tenant: 'acme', aud: ['other', 'vcd-backup'] })))).resolves.toEqual({ kind: 'tenant', tenantId: 'acme' });
  });

  it('the authorizer answers "Unauthorized" (401) to a token without aud', async () => {
    const { verifier } = rsVerifier();
    const event: APIGatewayTokenAuthorizerEvent = { type: 'TOKEN', authorizationToken: `Bearer ${rs256(claims({ role: 'provider', aud: undefined }))}`, methodArn: 'arn:aws:execute-api:eu-central-1:1:a/prod/GET/x' };
    await expect(authorize(event, verifier)).rejects.toThrow(/^Unauthorized$/);
  });

  it('the API function refuses to start verifying JWTs without an audience', async () => {
    expect(() => authenticatorFromEnv({ JWT_ISSUER: ISSUER, JWT_HS256_SECRET: key })).toThrow(/JWT_AUDIENCE/);
    const auth = authenticatorFromEnv({ JWT_ISSUER: ISSUER, JWT_AUDIENCE: 'vcd-backup', JWT_HS256_SECRET: key }, clock);
    await expect(auth.authenticate(`Bearer ${hs256(claims({ tenant: 'acme', aud: 'elsewhere' }), key)}`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(auth.authenticate(`Bearer ${hs256(claims({ tenant: 'acme' }), key)}`)).resolves.toEqual({ kind: 'tenant', tenantId: 'acme' });
  });
});

describe('Lambda TOKEN authorizer', () => {
  const methodArn = 'arn:aws:execute-api:eu-central-1:123456789012:abc123/prod/GET/v1/jobs/job-1';
  const event = (token: string): APIGatewayTokenAuthorizerEvent => ({ type: 'TOKEN', authorizationToken: token, methodArn });

  it('allows the whole stage and puts the principal in the context, which the API reads back', async () => {
    const { verifier } = rsVerifier();
    const result = await authorize(event(`Bearer ${rs256(claims({ tenant: 'acme' }))}`), verifier);
    expect(result.principalId).toBe('tenant:acme');
    expect(result.policyDocument.Statement).toEqual([{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: 'arn:aws:execute-api:eu-central-1:123456789012:abc123/prod/*' }]);
    expect(principalFromAuthorizerContext(result.context)).toEqual({ kind: 'tenant', tenantId: 'acme' });
    const provider = await authorize(event(`Bearer ${rs256(claims({ role: 'provider' }))}`), verifier);
    expect(principalFromAuthorizerContext(provider.context)).toEqual({ kind: 'provider' });
  });

  it('answers "Unauthorized" (a 401 from API Gateway) for a bad token', async () => {
    const { verifier } = rsVerifier();
    await expect(authorize(event('Bearer nope'), verifier)).rejects.toThrow(/^Unauthorized$/);
    await expect(authorize(event(''), verifier)).rejects.toThrow(/^Unauthorized$/);
  });

  it('keeps an ARN it cannot split as it is', () => {
    expect(wholeApi('weird')).toBe('weird');
  });
});
