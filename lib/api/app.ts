import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { z } from 'zod';
import type { Catalog } from '../catalog/catalog.js';
import type { Clock } from '../domain/clock.js';
import { toFieldIssues } from '../domain/jobs/validation.js';
import type { Log } from '../log.js';
import type { Queue } from '../queue/queue.js';
import { describePrincipal, type Authenticator, type Principal } from './auth.js';
import { ApiError, forbidden, toErrorResponse } from './errors.js';
import { buildOpenApiDocument } from './openapi.js';
import { apiRoutes, type Result, type Route } from './routes.js';
import { IdempotencyKey } from './schemas.js';
import { ApiService, type RestoreService, type ScopeResolver } from './service.js';

export interface ApiDeps {
  readonly catalog: Catalog;
  /** The runs queue: "run now" sends StartBackupRun / StartCopyRun here. */
  readonly runsQueue: Queue;
  readonly clock: Clock;
  readonly auth: Authenticator;
  /** Restore planning and start; without it, POST /v1/restores and /v1/restores/plan answer 501. */
  readonly restores?: RestoreService;
  /** Resolves job scopes and run-now vApps inside the tenant's vCD organization (404 for anything outside). */
  readonly vcd?: ScopeResolver;
  readonly log?: Log;
}

/**
 * Bindings the entry point may pass to `app.fetch(request, bindings)`. The Lambda adapter passes the
 * principal an API Gateway authorizer already verified; the local server passes Node's objects, never this.
 */
export interface ApiBindings {
  trustedPrincipal?: Principal;
  requestId?: string;
}

export const MAX_BODY_BYTES = 1024 * 1024;
/**
 * Deepest nesting of arrays and objects a body may have. The API's bodies nest a few levels; validating and
 * reporting on a deeper structure recurses, and 100 000 levels overflow the stack (a 500).
 */
export const MAX_JSON_DEPTH = 32;

type Env = { Bindings: ApiBindings | undefined; Variables: { requestId: string } };

/**
 * The API as one Hono application: API Gateway (lambdas/api.ts through apigateway.ts) and the local server
 * (server.ts) both call its `fetch`. Every route comes from the route table (routes.ts), is authenticated,
 * validated with zod and answered with JSON; errors are `{"error": {"code", "message", "details"}}`.
 */
export function createApi(deps: ApiDeps): Hono<Env> {
  const service = new ApiService(deps);
  const routes = apiRoutes(service);
  const openapi = buildOpenApiDocument(routes);
  const app = new Hono<Env>();

  app.use('*', async (c, next) => {
    const given = c.env?.requestId ?? c.req.header('x-request-id');
    c.set('requestId', given !== undefined && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID());
    await next();
    c.header('X-Request-Id', c.get('requestId'));
  });

  app.get('/openapi.json', (c) => c.json(openapi));
  app.get('/health', (c) => c.json({ ok: true }));

  for (const r of routes) {
    const path = r.path.replace(/\{(\w+)\}/g, ':$1');
    const limit = bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new ApiError('PAYLOAD_TOO_LARGE', `the body is larger than ${MAX_BODY_BYTES} bytes`, { details: { maxBytes: MAX_BODY_BYTES } });
      },
    });
    app.on(r.method, path, limit, async (c) => respond(c, await handle(c, r)));
  }

  app.notFound((c) => c.json({ error: { code: 'ROUTE_NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}; see /openapi.json for the routes`, details: null } }, 404));

  app.onError((err, c) => {
    const requestId = c.get('requestId') ?? randomUUID();
    const { status, body, internal } = toErrorResponse(err, requestId);
    if (internal) {
      deps.log?.error('api request failed', { requestId, method: c.req.method, path: c.req.path, error: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined });
    }
    c.header('X-Request-Id', requestId);
    if (status === 401) c.header('WWW-Authenticate', 'Bearer');
    const retry = (body.error.details as { retryAfterSeconds?: unknown } | null)?.retryAfterSeconds;
    if (typeof retry === 'number') c.header('Retry-After', String(retry));
    return c.json(body, status as 400);
  });

  return app;

  async function handle(c: Context<Env>, r: Route): Promise<Result> {
    const principal = c.env?.trustedPrincipal ?? (await deps.auth.authenticate(c.req.header('authorization')));
    if (r.access === 'provider' && principal.kind !== 'provider') throw forbidden(`${r.method} ${r.path} is for the provider only`);
    const params = r.params ? parseRequestPart(r.params, c.req.param(), 'path') : undefined;
    const query = r.query ? parseRequestPart(r.query, c.req.query(), 'query') : undefined;
    let idempotencyKey: string | undefined;
    const rawKey = c.req.header('idempotency-key');
    if (rawKey !== undefined) {
      if (!r.idempotent) throw new ApiError('INVALID_HEADER', `${r.method} ${r.path} does not take an Idempotency-Key (only requests that start work do)`, { details: { issues: [{ field: 'header.Idempotency-Key', message: 'not supported on this route' }] } });
      const parsed = IdempotencyKey.safeParse(rawKey);
      if (!parsed.success) throw new ApiError('INVALID_HEADER', `Idempotency-Key ${parsed.error.issues[0]?.message ?? 'is invalid'}`, { details: { issues: [{ field: 'header.Idempotency-Key', message: parsed.error.issues[0]?.message }] } });
      idempotencyKey = parsed.data;
    }
    const body = r.body ? parseBody(r.body, await readJson(c)) : undefined;
    deps.log?.debug('api request', { requestId: c.get('requestId'), method: r.method, path: c.req.path, principal: describePrincipal(principal) });
    return r.handle({ principal, params, query, body, idempotencyKey } as never);
  }
}

function respond(c: Context<Env>, result: Result): Response {
  for (const [name, value] of Object.entries(result.headers ?? {})) c.header(name, value);
  if (result.status === 204 || result.body === undefined) return c.body(null, result.status as 204);
  return c.json(result.body as object, result.status as 200);
}

/** Path and query values: 400 INVALID_REQUEST naming `path.x` / `query.x`. */
function parseRequestPart(schema: z.ZodType, value: unknown, where: 'path' | 'query'): unknown {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.flatMap(toFieldIssues).map((i) => ({ field: `${where}.${i.field === '(root)' ? '' : i.field}`.replace(/\.$/, ''), message: i.message }));
  throw new ApiError('INVALID_REQUEST', `invalid ${where === 'path' ? 'path parameter' : 'query parameter'}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { details: { issues } });
}

/** Bodies: 422 VALIDATION_FAILED with every field issue. */
function parseBody(schema: z.ZodType, value: unknown): unknown {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.flatMap(toFieldIssues);
  throw new ApiError('VALIDATION_FAILED', `invalid body: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { details: { issues } });
}

/** The JSON body, or undefined when there is none; 415 for another media type, 400 for broken JSON. */
async function readJson(c: Context<Env>): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return undefined;
  const type = c.req.header('content-type');
  if (type !== undefined && type.trim() !== '' && !/^application\/([\w.+-]*\+)?json\s*(;|$)/i.test(type.trim())) {
    throw new ApiError('UNSUPPORTED_MEDIA_TYPE', `send the body as application/json, not ${type.slice(0, 100)}`, { details: null });
  }
  assertJsonDepth(text, MAX_JSON_DEPTH);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError('INVALID_JSON', `the body is not valid JSON: ${(err as Error).message}`, { details: null });
  }
}

/**
 * Refuses text whose arrays and objects nest deeper than `max`, by one pass over the characters before
 * anything is parsed, so a hostile body never builds the deep structure. Brackets inside strings do not
 * count; broken JSON is left for JSON.parse to report.
 */
export function assertJsonDepth(text: string, max: number): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) {
        throw new ApiError('INVALID_REQUEST', `the JSON body nests arrays and objects deeper than ${max} levels; send a flatter body (see /openapi.json for its shape)`, {
          details: { maxDepth: max },
        });
      }
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
}
