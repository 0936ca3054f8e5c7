import { z } from 'zod';
import { Id } from '../catalog/types.js';
import { unauthenticated } from './errors.js';

/**
 * Who is calling. Provider administrators manage tenants, repositories and quotas and see every tenant;
 * a tenant user (one vCD organization) sees and changes only what belongs to that tenant.
 */
export type Principal = { readonly kind: 'provider' } | { readonly kind: 'tenant'; readonly tenantId: string };

export const PrincipalSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('provider') }),
  z.object({ kind: z.literal('tenant'), tenantId: Id }),
]);

/**
 * The authentication port. `authenticate` receives the raw `Authorization` header (undefined when absent) and
 * returns the principal, or throws an ApiError with code UNAUTHENTICATED (401). Implementations: local
 * HMAC tokens (local-tokens.ts) and JWTs (jwt.ts).
 */
export interface Authenticator {
  authenticate(authorizationHeader: string | undefined): Promise<Principal>;
}

/** The token of a `Bearer <token>` header; throws UNAUTHENTICATED naming what is wrong. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === '') {
    throw unauthenticated('missing Authorization header; send "Authorization: Bearer <token>" (locally: TOKEN=$(npx vcd-backup local token --provider))');
  }
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthenticated('the Authorization header must be "Bearer <token>"');
  return match[1]!;
}

/** A short description for logs ("provider", "tenant acme"); never includes a token. */
export function describePrincipal(principal: Principal): string {
  return principal.kind === 'provider' ? 'provider' : `tenant ${principal.tenantId}`;
}

/**
 * The principal an API Gateway Lambda authorizer put in `requestContext.authorizer` (context values are
 * strings): `{ principalKind: 'provider' }` or `{ principalKind: 'tenant', tenantId }`. Undefined when the
 * context carries none (no authorizer configured), so the API falls back to its own Authenticator.
 */
export function principalFromAuthorizerContext(context: Record<string, unknown> | null | undefined): Principal | undefined {
  if (!context || typeof context.principalKind !== 'string') return undefined;
  const parsed = PrincipalSchema.safeParse({ kind: context.principalKind, tenantId: context.tenantId });
  return parsed.success ? (parsed.data.kind === 'provider' ? { kind: 'provider' } : parsed.data) : undefined;
}

/** The `context` an authorizer returns for a principal (the inverse of principalFromAuthorizerContext). */
export function authorizerContextOf(principal: Principal): Record<string, string> {
  return principal.kind === 'provider' ? { principalKind: 'provider' } : { principalKind: 'tenant', tenantId: principal.tenantId };
}
