import { z } from 'zod';
import type { Route } from './routes.js';

/**
 * The OpenAPI 3.1 document, generated from the route table and its zod schemas (z.toJSONSchema, JSON Schema
 * draft 2020-12, which OpenAPI 3.1 uses as is). Named schemas (`.meta({ id })`) become components.
 */
type Json = Record<string, unknown>;

export function buildOpenApiDocument(routes: readonly Route[]): Json {
  const components: Record<string, Json> = {};
  const paths: Record<string, Record<string, Json>> = {};

  const schemaOf = (schema: z.ZodType, io: 'input' | 'output'): Json => {
    const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
    const defs = (json.$defs ?? {}) as Record<string, Json>;
    delete json.$defs;
    delete json.$schema;
    const renames = new Map<string, string>();
    for (const [id, def] of Object.entries(defs)) {
      let name = id;
      if (components[name] !== undefined && JSON.stringify(components[name]) !== JSON.stringify(def)) name = `${id}Input`;
      renames.set(id, name);
    }
    const rewrite = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(rewrite);
      if (value === null || typeof value !== 'object') return value;
      const out: Json = {};
      for (const [k, v] of Object.entries(value as Json)) {
        out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/') ? `#/components/schemas/${renames.get(v.slice(8)) ?? v.slice(8)}` : rewrite(v);
      }
      return out;
    };
    for (const [id, def] of Object.entries(defs)) components[renames.get(id)!] = rewrite(def) as Json;
    return rewrite(json) as Json;
  };

  const parametersOf = (schema: z.ZodType | undefined, where: 'path' | 'query'): Json[] => {
    if (!schema) return [];
    const json = schemaOf(schema, 'input');
    const props = (json.properties ?? {}) as Record<string, Json>;
    const required = new Set((json.required ?? []) as string[]);
    return Object.entries(props).map(([name, s]) => ({
      name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(typeof s.description === 'string' ? { description: s.description } : {}),
      schema: s,
    }));
  };

  for (const r of routes) {
    const parameters = [...parametersOf(r.params, 'path'), ...parametersOf(r.query, 'query')];
    if (r.idempotent) {
      parameters.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description: 'makes a retry safe: the same key and body within 24 h return the first response (Idempotent-Replayed: true) instead of starting the work again',
        schema: { type: 'string', minLength: 1, maxLength: 255 },
      });
    }
    const body = r.bodyDoc ?? r.body;
    const operation: Json = {
      operationId: r.operationId,
      summary: r.summary,
      tags: [r.tag],
      ...(r.access === 'provider' ? { description: 'Provider administrators only; tenants get 403.' } : {}),
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(body ? { requestBody: { required: !(r.body?.safeParse(undefined).success ?? false), content: { 'application/json': { schema: schemaOf(body, 'input') } } } } : {}),
      responses: Object.fromEntries(
        Object.entries(r.responses).map(([status, res]) => [
          status,
          { description: res.description, ...(res.schema ? { content: { 'application/json': { schema: schemaOf(res.schema, 'output') } } } : {}) },
        ]),
      ),
    };
    (paths[r.path] ??= {})[r.method.toLowerCase()] = operation;
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'vcd-backup API',
      version: '1',
      description: 'Backup-as-a-service for VMware Cloud Director. Provider administrators manage tenants, repositories and quotas; tenants manage their own jobs, runs, restore points and restores. Errors are {"error": {"code", "message", "details"}}. Lists are paged with ?limit= and ?cursor= (nextCursor of the previous page).',
    },
    servers: [{ url: 'http://127.0.0.1:8080', description: 'vcd-backup local' }],
    security: [{ bearer: [] }],
    paths,
    components: { schemas: components, securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'locally: vcd-backup local token (--provider | --tenant ORG); in AWS: a JWT from the configured issuer' } } },
  };
}
