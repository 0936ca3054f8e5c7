import { createHmac, createPublicKey, timingSafeEqual, verify as verifySignature, type JsonWebKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { Id } from '../catalog/types.js';
import type { Clock } from '../domain/clock.js';
import { ConfigError, describeIssues } from '../errors.js';
import { Secret } from '../secret.js';
import { systemClock } from '../system-clock.js';
import { bearerToken, type Authenticator, type Principal } from './auth.js';
import { unauthenticated } from './errors.js';

/**
 * JWT verification for AWS (the Lambda authorizer, and the API itself when no authorizer sits in front).
 * Deliberately small, with node:crypto only:
 * - RS256 with keys from a JWKS URL (fetched on first use, cached for `jwksCacheSeconds`, refetched at most
 *   once a minute when a token names an unknown `kid`, so key rotation works and a flood of bad tokens
 *   cannot hammer the issuer), or HS256 with a shared secret. The algorithm is fixed by configuration, never
 *   by the token: `alg: none` and algorithm confusion (an RS256 key used as an HMAC secret) are refused.
 * - `iss` must equal the configured issuer and `aud` must contain the configured audience (required: an
 *   identity provider issues tokens for many applications, and without the audience a token minted for any
 *   of them, with the same issuer and keys, would open this API); `exp` is required; `nbf` and `exp` are
 *   checked with a small clock tolerance.
 * - The principal comes from claims: `<roleClaim> == <providerRole>` → provider; otherwise `<tenantClaim>`
 *   names the tenant (a vCD organization). A token with neither is refused.
 */
export interface JwtConfig {
  readonly issuer: string;
  /** The value this API's tokens carry in `aud` (a string or one entry of an array); required. */
  readonly audience: string;
  readonly jwksUrl?: string;
  readonly hmacSecret?: Secret;
  /** @default 'role' */
  readonly roleClaim: string;
  /** @default 'provider' */
  readonly providerRole: string;
  /** @default 'tenant' */
  readonly tenantClaim: string;
  /** @default 60 */
  readonly clockToleranceSeconds: number;
  /** @default 600 */
  readonly jwksCacheSeconds: number;
}

const envSchema = z
  .object({
    JWT_ISSUER: z.string().min(1, 'set JWT_ISSUER to the issuer whose tokens the API accepts'),
    JWT_AUDIENCE: z
      .string({ error: "set JWT_AUDIENCE to the 'aud' value your identity provider puts in tokens for this API" })
      .trim()
      .min(1, "set JWT_AUDIENCE to the 'aud' value your identity provider puts in tokens for this API"),
    JWT_JWKS_URL: z.url().optional(),
    JWT_HS256_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    JWT_ROLE_CLAIM: z.string().min(1).default('role'),
    JWT_PROVIDER_ROLE: z.string().min(1).default('provider'),
    JWT_TENANT_CLAIM: z.string().min(1).default('tenant'),
    JWT_CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(600).default(60),
    JWT_JWKS_CACHE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(600),
  })
  .refine((e) => (e.JWT_JWKS_URL === undefined) !== (e.JWT_HS256_SECRET === undefined), {
    message: 'set exactly one of JWT_JWKS_URL (RS256) or JWT_HS256_SECRET (HS256)',
    path: ['JWT_JWKS_URL'],
  });

/**
 * Parses the JWT settings from an environment record. Entry points pass their environment, the same way
 * they pass it to lib/config.ts's loadConfig (these settings concern the API alone).
 */
export function loadJwtConfig(env: Record<string, string | undefined>): JwtConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid JWT configuration: ${describeIssues(parsed.error.issues)}`);
  const e = parsed.data;
  return {
    issuer: e.JWT_ISSUER,
    audience: e.JWT_AUDIENCE,
    jwksUrl: e.JWT_JWKS_URL,
    hmacSecret: e.JWT_HS256_SECRET === undefined ? undefined : new Secret(e.JWT_HS256_SECRET),
    roleClaim: e.JWT_ROLE_CLAIM,
    providerRole: e.JWT_PROVIDER_ROLE,
    tenantClaim: e.JWT_TENANT_CLAIM,
    clockToleranceSeconds: e.JWT_CLOCK_TOLERANCE_SECONDS,
    jwksCacheSeconds: e.JWT_JWKS_CACHE_SECONDS,
  };
}

type Fetch = (url: string) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

export interface JwtVerifierOptions {
  readonly config: JwtConfig;
  readonly clock?: Clock;
  /** @default globalThis.fetch */
  readonly fetch?: Fetch;
}

const HeaderSchema = z.object({ alg: z.string(), kid: z.string().optional(), typ: z.string().optional() });
const ClaimsSchema = z
  .object({
    iss: z.string().optional(),
    aud: z.union([z.string(), z.array(z.string())]).optional(),
    exp: z.number().optional(),
    nbf: z.number().optional(),
  })
  .loose();
const JwksSchema = z.object({ keys: z.array(z.object({ kty: z.string(), kid: z.string().optional(), use: z.string().optional(), alg: z.string().optional() }).loose()) });

const MIN_REFETCH_MS = 60_000;

export class JwtVerifier {
  private readonly config: JwtConfig;
  private readonly clock: Clock;
  private readonly fetch: Fetch;
  private keys: Map<string | undefined, KeyObject> | undefined;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;

  constructor(options: JwtVerifierOptions) {
    this.config = options.config;
    this.clock = options.clock ?? systemClock;
    this.fetch = options.fetch ?? ((url) => globalThis.fetch(url));
    if ((this.config.jwksUrl === undefined) === (this.config.hmacSecret === undefined)) {
      throw new ConfigError('configure exactly one of a JWKS URL (RS256) or an HMAC secret (HS256) for JWT verification');
    }
    // Configs built in code skip loadJwtConfig's schema; an empty audience would otherwise match nothing or,
    // worse, a token that carries an empty `aud`.
    if (typeof this.config.audience !== 'string' || this.config.audience.trim() === '') {
      throw new ConfigError("JWT verification needs an audience: set JWT_AUDIENCE to the 'aud' value of this API's tokens");
    }
  }

  /** Verifies the token and maps its claims to a principal; throws UNAUTHENTICATED (401). */
  async verify(token: string): Promise<Principal> {
    const parts = token.split('.');
    if (parts.length !== 3) throw unauthenticated('the bearer token is not a JWT');
    const [h, p, s] = parts as [string, string, string];
    const header = HeaderSchema.safeParse(decodeJson(h));
    if (!header.success) throw unauthenticated('the JWT header is not valid');
    const expectedAlg = this.config.jwksUrl !== undefined ? 'RS256' : 'HS256';
    if (header.data.alg !== expectedAlg) throw unauthenticated(`the JWT is signed with ${header.data.alg}; this service accepts ${expectedAlg} only`);
    const signed = Buffer.from(`${h}.${p}`);
    const signature = Buffer.from(s, 'base64url');
    if (expectedAlg === 'HS256') {
      const mac = createHmac('sha256', this.config.hmacSecret!.reveal()).update(signed).digest();
      if (mac.length !== signature.length || !timingSafeEqual(mac, signature)) throw unauthenticated('the JWT signature is invalid');
    } else {
      const key = await this.keyFor(header.data.kid);
      if (!verifySignature('sha256', signed, key, signature)) throw unauthenticated('the JWT signature is invalid');
    }
    const claims = ClaimsSchema.safeParse(decodeJson(p));
    if (!claims.success) throw unauthenticated('the JWT claims are not valid');
    this.checkClaims(claims.data);
    return this.principalOf(claims.data as Record<string, unknown>);
  }

  authenticator(): Authenticator {
    return { authenticate: async (header) => this.verify(bearerToken(header)) };
  }

  private checkClaims(claims: z.infer<typeof ClaimsSchema>): void {
    const now = this.clock.now().getTime() / 1000;
    const tolerance = this.config.clockToleranceSeconds;
    if (claims.iss !== this.config.issuer) throw unauthenticated('the JWT was issued by another issuer');
    if (claims.aud === undefined) throw unauthenticated('the JWT names no audience (aud); this service accepts tokens issued for it only');
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(this.config.audience)) throw unauthenticated('the JWT is meant for another audience');
    if (claims.exp === undefined) throw unauthenticated('the JWT has no expiry (exp); the service accepts short-lived tokens only');
    if (now >= claims.exp + tolerance) throw unauthenticated('the JWT has expired');
    if (claims.nbf !== undefined && now + tolerance < claims.nbf) throw unauthenticated('the JWT is not valid yet (nbf)');
  }

  private principalOf(claims: Record<string, unknown>): Principal {
    if (claims[this.config.roleClaim] === this.config.providerRole) return { kind: 'provider' };
    const tenant = Id.safeParse(claims[this.config.tenantClaim]);
    if (tenant.success) return { kind: 'tenant', tenantId: tenant.data };
    throw unauthenticated(`the JWT names neither the provider role (${this.config.roleClaim}) nor a tenant (${this.config.tenantClaim})`);
  }

  private async keyFor(kid: string | undefined): Promise<KeyObject> {
    const fresh = this.clock.now().getTime() - this.fetchedAt < this.config.jwksCacheSeconds * 1000;
    if (!this.keys || !fresh) await this.refresh();
    let key = this.find(kid);
    if (!key && this.clock.now().getTime() - this.fetchedAt >= MIN_REFETCH_MS) {
      await this.refresh();
      key = this.find(kid);
    }
    if (!key) throw unauthenticated(kid === undefined ? 'the JWT names no key (kid) and the key set has several' : `the JWT names an unknown signing key "${kid}"`);
    return key;
  }

  private find(kid: string | undefined): KeyObject | undefined {
    if (!this.keys) return undefined;
    if (kid !== undefined) return this.keys.get(kid);
    return this.keys.size === 1 ? [...this.keys.values()][0] : undefined;
  }

  private async refresh(): Promise<void> {
    this.inflight ??= (async () => {
      try {
        const url = this.config.jwksUrl!;
        let body: unknown;
        try {
          const response = await this.fetch(url);
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          body = await response.json();
        } catch (err) {
          // The caller gets a 401 either way; the cause is for the operator's log.
          throw unauthenticated(`the signing keys could not be fetched from ${url}: ${(err as Error).message}`);
        }
        const jwks = JwksSchema.safeParse(body);
        if (!jwks.success) throw unauthenticated(`${url} did not return a JWK set`);
        const keys = new Map<string | undefined, KeyObject>();
        for (const jwk of jwks.data.keys) {
          if (jwk.kty !== 'RSA' || (jwk.use !== undefined && jwk.use !== 'sig') || (jwk.alg !== undefined && jwk.alg !== 'RS256')) continue;
          try {
            keys.set(jwk.kid, createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }));
          } catch {
            // an unusable key is skipped; tokens signed with it are refused as "unknown key"
          }
        }
        this.keys = keys;
        this.fetchedAt = this.clock.now().getTime();
      } finally {
        this.inflight = undefined;
      }
    })();
    await this.inflight;
  }
}

function decodeJson(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The API Lambda's own Authenticator: a JWT verifier when JWT_ISSUER is configured; otherwise one that
 * refuses every request, since the API then relies on the API Gateway authorizer's context alone.
 */
export function authenticatorFromEnv(env: Record<string, string | undefined>, clock?: Clock): Authenticator {
  if (env.JWT_ISSUER === undefined || env.JWT_ISSUER === '') {
    return {
      authenticate: async () => {
        throw unauthenticated('this API accepts requests through its API Gateway authorizer only');
      },
    };
  }
  return new JwtVerifier({ config: loadJwtConfig(env), ...(clock ? { clock } : {}) }).authenticator();
}
