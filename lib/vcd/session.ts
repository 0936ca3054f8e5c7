/**
 * Logging in to vCD (references/vcd-api.md §2): CloudAPI sessions for provider (System org) and tenant
 * users, and API tokens (OAuth refresh-token grant). Both yield a bearer JWT. Secrets stay `Secret`s.
 */
import { Secret } from '../secret.js';

export type VcdCredentials =
  | { readonly kind: 'password'; readonly user: string; readonly org: string; readonly password: Secret }
  | {
      readonly kind: 'apiToken';
      /** `System` (or omitted) for a provider token; the organization name for a tenant token. */
      readonly org?: string;
      readonly token: Secret;
      /** Service-account tokens are one-time: every refresh returns a new refresh token to use next. */
      readonly rotating?: boolean;
      /** Called with the new refresh token of a rotating token, so it can be persisted. */
      readonly onRotate?: (token: Secret) => void | Promise<void>;
    };

export function isProviderOrg(org: string | undefined): boolean {
  return org === undefined || org.toLowerCase() === 'system';
}

export interface LoginRequest {
  readonly method: 'POST';
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

export function loginRequest(credentials: VcdCredentials, version: string, refreshToken?: Secret): LoginRequest {
  if (credentials.kind === 'password') {
    const basic = Buffer.from(`${credentials.user}@${credentials.org}:${credentials.password.reveal()}`, 'utf8').toString('base64');
    return {
      method: 'POST',
      path: isProviderOrg(credentials.org) ? '/cloudapi/1.0.0/sessions/provider' : '/cloudapi/1.0.0/sessions',
      headers: { authorization: `Basic ${basic}`, accept: `application/json;version=${version}` },
    };
  }
  const token = (refreshToken ?? credentials.token).reveal();
  return {
    method: 'POST',
    path: isProviderOrg(credentials.org) ? '/oauth/provider/token' : `/oauth/tenant/${encodeURIComponent(credentials.org ?? '')}/token`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }).toString(),
  };
}

export interface SessionToken {
  readonly accessToken: Secret;
  readonly refreshToken?: Secret;
}

/** Reads the bearer token from a successful login answer; null when the answer carries none. */
export function readLoginResponse(
  credentials: VcdCredentials,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
): SessionToken | null {
  if (credentials.kind === 'password') {
    const header = headers['x-vmware-vcloud-access-token'];
    const value = Array.isArray(header) ? header[0] : header;
    return value ? { accessToken: new Secret(value) } : null;
  }
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { access_token?: unknown; refresh_token?: unknown };
    if (typeof parsed.access_token !== 'string' || parsed.access_token === '') return null;
    return {
      accessToken: new Secret(parsed.access_token),
      refreshToken: typeof parsed.refresh_token === 'string' && parsed.refresh_token !== '' ? new Secret(parsed.refresh_token) : undefined,
    };
  } catch {
    return null;
  }
}

/** Describes credentials for messages and logs: who, never the secret. */
export function describeCredentials(credentials: VcdCredentials): string {
  if (credentials.kind === 'password') return `${credentials.user}@${credentials.org}`;
  return `API token for ${isProviderOrg(credentials.org) ? 'the provider (System)' : `organization ${credentials.org}`}`;
}
