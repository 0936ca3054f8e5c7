import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { principalFromAuthorizerContext } from './auth.js';
import type { ApiBindings } from './app.js';

/**
 * API Gateway REST proxy events ⇄ fetch Request/Response, so the Hono app that serves local mode also serves
 * Lambda. Multi-value headers and query strings are kept; binary bodies arrive base64-encoded; responses are
 * returned as text when they are JSON or text, as base64 otherwise.
 */
export function requestFromEvent(event: APIGatewayProxyEvent): Request {
  const headers = new Headers();
  for (const [name, values] of Object.entries(event.multiValueHeaders ?? {})) for (const v of values ?? []) headers.append(name, v);
  for (const [name, value] of Object.entries(event.headers ?? {})) if (value !== undefined && !headers.has(name)) headers.set(name, value);
  const host = headers.get('host') ?? 'api.local';
  const proto = headers.get('x-forwarded-proto') ?? 'https';
  const url = new URL(event.path || '/', `${proto}://${host}`);
  const multi = event.multiValueQueryStringParameters ?? {};
  for (const [name, values] of Object.entries(multi)) for (const v of values ?? []) url.searchParams.append(name, v);
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) if (value !== undefined && !(name in multi)) url.searchParams.append(name, value);
  const method = event.httpMethod.toUpperCase();
  const hasBody = event.body !== null && event.body !== undefined && method !== 'GET' && method !== 'HEAD';
  const body = hasBody ? (event.isBase64Encoded ? Buffer.from(event.body!, 'base64') : event.body!) : undefined;
  return new Request(url, { method, headers, body });
}

/** What the app needs from the event besides the request: the authorizer's principal and the request id. */
export function bindingsFromEvent(event: APIGatewayProxyEvent): ApiBindings {
  const principal = principalFromAuthorizerContext(event.requestContext?.authorizer as Record<string, unknown> | null | undefined);
  return { ...(principal ? { trustedPrincipal: principal } : {}), ...(event.requestContext?.requestId ? { requestId: event.requestContext.requestId } : {}) };
}

export async function resultFromResponse(response: Response): Promise<APIGatewayProxyResult> {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) multiValueHeaders['set-cookie'] = cookies;
  const type = response.headers.get('content-type') ?? '';
  const textual = type === '' || /^(text\/|application\/([\w.+-]*\+)?json)/i.test(type);
  const buffer = Buffer.from(await response.arrayBuffer());
  return {
    statusCode: response.status,
    headers,
    ...(cookies.length > 0 ? { multiValueHeaders } : {}),
    body: textual ? buffer.toString('utf8') : buffer.toString('base64'),
    isBase64Encoded: !textual,
  };
}

/** The whole round trip for a Lambda handler. */
export async function handleProxyEvent(app: { fetch: (request: Request, bindings: ApiBindings) => Response | Promise<Response> }, event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> {
  return resultFromResponse(await app.fetch(requestFromEvent(event), bindingsFromEvent(event)));
}
