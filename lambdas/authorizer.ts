import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from 'aws-lambda';
import { authorizerContextOf, bearerToken } from '../lib/api/auth.js';
import { JwtVerifier, loadJwtConfig } from '../lib/api/jwt.js';
import { createLambdaLogger } from '../lib/log.js';

/**
 * API Gateway TOKEN authorizer: verifies the bearer JWT (issuer, audience, expiry, RS256 with a cached JWKS
 * or HS256; see lib/api/jwt.ts; JWT_ISSUER, JWT_AUDIENCE and the key source are required, so a function
 * deployed without them fails on its first request with a ConfigError naming the variable) and returns an IAM policy allowing the whole API, with the principal in `context`
 * (`principalKind`, `tenantId`) for the API Lambda. The policy covers every method and path of the stage so
 * API Gateway may cache it per token; tenant scoping is enforced by the API itself, never by this policy.
 * An invalid token throws "Unauthorized", which API Gateway turns into a 401.
 */
let verifier: JwtVerifier | undefined; // built on the first event, then reused (it caches the JWKS)
const log = createLambdaLogger('authorizer');

export async function authorize(event: APIGatewayTokenAuthorizerEvent, jwt: JwtVerifier = (verifier ??= new JwtVerifier({ config: loadJwtConfig(process.env) }))): Promise<APIGatewayAuthorizerResult> {
  let principal;
  try {
    principal = await jwt.verify(bearerToken(event.authorizationToken));
  } catch (err) {
    log.info('token refused', { reason: err instanceof Error ? err.message : String(err) });
    throw new Error('Unauthorized');
  }
  return {
    principalId: principal.kind === 'provider' ? 'provider' : `tenant:${principal.tenantId}`,
    policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: wholeApi(event.methodArn) }] },
    context: authorizerContextOf(principal),
  };
}

/** `arn:aws:execute-api:region:account:apiId/stage/METHOD/path` → `arn:...:apiId/stage/*`. */
export function wholeApi(methodArn: string): string {
  const [arnAndApiId, stage] = methodArn.split('/');
  return stage !== undefined && stage !== '' ? `${arnAndApiId}/${stage}/*` : methodArn;
}

export const handler = (event: APIGatewayTokenAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => authorize(event);
