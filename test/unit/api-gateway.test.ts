import type { APIGatewayProxyEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { handleProxyEvent, requestFromEvent, resultFromResponse } from '../../lib/api/apigateway.js';
import { createApi } from '../../lib/api/app.js';
import { createLocalAuthenticator, issueLocalToken } from '../../lib/api/local-tokens.js';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import { Secret } from '../../lib/secret.js';

const clock = new ManualClock('2026-03-02T10:00:00.000Z');
const secret = new Secret('c'.repeat(64));

function event(overrides: Partial<APIGatewayProxyEvent> & { authorizer?: Record<string, unknown> | null }): APIGatewayProxyEvent {
  const { authorizer, ...rest } = overrides;
  return {
    httpMethod: 'GET',
    path: '/v1/tenants',
    resource: '/{proxy+}',
    headers: { Host: 'abc123.execute-api.eu-central-1.amazonaws.com' },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: { requestId: 'req-1', authorizer: authorizer ?? null } as unknown as APIGatewayProxyEvent['requestContext'],
    ...rest,
  };
}

const setup = () => {
  const catalog = new MemoryCatalog(clock);
  const app = createApi({ catalog, runsQueue: new MemoryQueue({ clock }), clock, auth: createLocalAuthenticator({ secret, clock }) });
  return { catalog, app };
};

describe('API Gateway proxy adapter', () => {
  it('round-trips a POST with the authorizer\'s provider principal to the Hono app and back', async () => {
    const { app, catalog } = setup();
    const result = await handleProxyEvent(
      app,
      event({ httpMethod: 'POST', path: '/v1/tenants', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id: 'acme', name: 'Acme', quotaBytes: 10 }), authorizer: { principalKind: 'provider' } }),
    );
    expect(result.statusCode).toBe(201);
    expect(result.isBase64Encoded).toBe(false);
    expect(JSON.parse(result.body)).toEqual({ id: 'acme', name: 'Acme', quotaBytes: 10 });
    expect(result.headers).toMatchObject({ location: '/v1/tenants/acme', 'x-request-id': 'req-1', 'content-type': expect.stringContaining('application/json') });
    expect(await catalog.getTenant('acme')).toBeDefined();
  });

  it('takes the tenant principal from the authorizer context, so provider routes answer 403', async () => {
    const { app } = setup();
    const result = await handleProxyEvent(app, event({ authorizer: { principalKind: 'tenant', tenantId: 'acme' } }));
    expect(result.statusCode).toBe(403);
    expect(JSON.parse(result.body).error.code).toBe('FORBIDDEN');
  });

  it('falls back to the bearer token when no authorizer ran, and decodes base64 bodies', async () => {
    const { app } = setup();
    const token = issueLocalToken({ secret, principal: { kind: 'provider' }, clock });
    const noAuth = await handleProxyEvent(app, event({}));
    expect(noAuth.statusCode).toBe(401);
    expect(noAuth.headers).toMatchObject({ 'www-authenticate': 'Bearer' });
    const body = Buffer.from(JSON.stringify({ id: 'b64', name: 'B' })).toString('base64');
    const created = await handleProxyEvent(app, event({ httpMethod: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body, isBase64Encoded: true }));
    expect(created.statusCode).toBe(201);
    const list = await handleProxyEvent(app, event({ headers: { authorization: `Bearer ${token}` }, queryStringParameters: { limit: '1' }, multiValueQueryStringParameters: { limit: ['1'] } }));
    expect(JSON.parse(list.body)).toEqual({ items: [{ id: 'b64', name: 'B' }], nextCursor: null });
  });

  it('ignores an authorizer context that names no valid principal', async () => {
    const { app } = setup();
    expect((await handleProxyEvent(app, event({ authorizer: { principalKind: 'tenant' } }))).statusCode).toBe(401);
    expect((await handleProxyEvent(app, event({ authorizer: { principalKind: 'root' } }))).statusCode).toBe(401);
  });

  it('keeps multi-value query strings and headers when building the Request', async () => {
    const request = requestFromEvent(
      event({
        path: '/v1/runs',
        queryStringParameters: { kind: 'backup' },
        multiValueQueryStringParameters: { kind: ['backup', 'copy'] },
        multiValueHeaders: { 'X-Thing': ['a', 'b'] },
        headers: { 'X-Thing': 'b', Host: 'h.example' },
      }),
    );
    expect(new URL(request.url).searchParams.getAll('kind')).toEqual(['backup', 'copy']);
    expect(request.headers.get('x-thing')).toBe('a, b');
    expect(new URL(request.url).host).toBe('h.example');
    expect(request.method).toBe('GET');
    expect(await request.text()).toBe('');
  });

  it('returns binary responses base64-encoded and JSON as text', async () => {
    const binary = await resultFromResponse(new Response(new Uint8Array([0, 1, 2, 255]), { headers: { 'content-type': 'application/octet-stream' } }));
    expect(binary).toMatchObject({ statusCode: 200, isBase64Encoded: true, body: Buffer.from([0, 1, 2, 255]).toString('base64') });
    const json = await resultFromResponse(Response.json({ ok: true }, { status: 202 }));
    expect(json).toMatchObject({ statusCode: 202, isBase64Encoded: false, body: '{"ok":true}' });
  });

  it('serves /openapi.json through the adapter', async () => {
    const { app } = setup();
    const result = await handleProxyEvent(app, event({ path: '/openapi.json' }));
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body).openapi).toBe('3.1.0');
  });
});
