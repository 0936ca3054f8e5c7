import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Catalog } from '../catalog/catalog.js';
import type { Clock } from '../domain/clock.js';
import type { Principal } from './auth.js';
import { ApiError } from './errors.js';

/**
 * `Idempotency-Key` for requests that start work, backed by the catalog's idempotency records.
 *
 * A record is scoped to the caller (provider, or one tenant) and the operation, and remembers a fingerprint
 * of the request, the ids prepared for it (run id, job id) and, once done, the response. Timeline:
 * 1. a completed record with the same fingerprint → the stored response, replayed (`Idempotent-Replayed`);
 *    a different fingerprint → 422 IDEMPOTENCY_KEY_REUSED. Replays skip the checks (a run that filled the
 *    quota does not turn its own retry into a 409).
 * 2. no record → the checks run (authorization, validation, quota), then the record is claimed (put-if-absent:
 *    of racing requests exactly one proceeds; the others see step 1 or 3), the work runs with the prepared ids,
 *    and the response is stored.
 * 3. a pending record (another request is doing the work) → 409 IDEMPOTENCY_KEY_IN_USE, retry later; when
 *    the pending record is older than PENDING_TAKEOVER_MS (its request crashed), the work is redone with the
 *    same prepared ids. Work is written to be safe to repeat with the same ids: the queue is at least once
 *    and run ids make the orchestrator's createRun idempotent.
 * If the work throws, the record is marked failed so that a retry with the same key tries again at once.
 */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
export const PENDING_TAKEOVER_MS = 30_000;

export interface Outcome {
  readonly status: number;
  readonly body: unknown;
}

const StoredSchema = z.object({
  v: z.literal(1),
  fingerprint: z.string(),
  state: z.enum(['pending', 'done', 'failed']),
  startedAt: z.string(),
  prepared: z.unknown(),
  status: z.number().int().optional(),
  body: z.unknown().optional(),
});
type Stored = z.infer<typeof StoredSchema>;

export interface IdempotentRequest<P> {
  readonly principal: Principal;
  /** The client's key; without one the work simply runs. */
  readonly key: string | undefined;
  /** e.g. `POST /v1/jobs/j1/run`. */
  readonly operation: string;
  /** What makes two requests "the same" (the parsed body). */
  readonly request: unknown;
  /** Authorization, validation and quota checks; run only when no record exists yet. */
  readonly check: (prepared: P) => Promise<void>;
  /** Ids for the work, generated once and stored with the record. */
  readonly prepare: () => P;
  readonly execute: (prepared: P) => Promise<Outcome>;
}

export class IdempotencyGuard {
  constructor(
    private readonly catalog: Catalog,
    private readonly clock: Clock,
  ) {}

  async run<P>(req: IdempotentRequest<P>): Promise<Outcome & { replayed: boolean }> {
    if (req.key === undefined) {
      const prepared = req.prepare();
      await req.check(prepared);
      return { ...(await req.execute(prepared)), replayed: false };
    }
    const scope = req.principal.kind === 'provider' ? 'provider' : `tenant:${req.principal.tenantId}`;
    const recordKey = `api:${sha256(`${scope}\n${req.operation}\n${req.key}`)}`;
    const fingerprint = sha256(`${req.operation}\n${canonicalJson(req.request)}`);

    const existing = await this.catalog.getIdempotencyRecord(recordKey);
    let prepared: P;
    if (existing) {
      const decided = this.decide(existing.result, fingerprint);
      if ('outcome' in decided) return decided.outcome;
      prepared = decided.prepared as P;
    } else {
      prepared = req.prepare();
      await req.check(prepared);
      const pending: Stored = { v: 1, fingerprint, state: 'pending', startedAt: this.clock.now().toISOString(), prepared };
      const expiresAt = new Date(this.clock.now().getTime() + IDEMPOTENCY_TTL_MS).toISOString();
      const claim = await this.catalog.putIdempotencyRecord(recordKey, expiresAt, pending);
      if (!claim.created) {
        const decided = this.decide(claim.record.result, fingerprint);
        if ('outcome' in decided) return decided.outcome;
        prepared = decided.prepared as P;
      }
    }

    let outcome: Outcome;
    try {
      outcome = await req.execute(prepared);
    } catch (err) {
      await this.complete(recordKey, { v: 1, fingerprint, state: 'failed', startedAt: this.clock.now().toISOString(), prepared }).catch(() => undefined);
      throw err;
    }
    await this.complete(recordKey, { v: 1, fingerprint, state: 'done', startedAt: this.clock.now().toISOString(), prepared, status: outcome.status, body: outcome.body });
    return { ...outcome, replayed: false };
  }

  /** What to do with a record someone else wrote: replay, refuse, or take over with its prepared ids. */
  private decide(result: unknown, fingerprint: string): { outcome: Outcome & { replayed: boolean } } | { prepared: unknown } {
    const stored = StoredSchema.safeParse(result);
    if (!stored.success) {
      throw new ApiError('IDEMPOTENCY_KEY_IN_USE', 'this Idempotency-Key is being used by a request still in progress; retry in a few seconds', { details: { retryAfterSeconds: 5 } });
    }
    const s = stored.data;
    if (s.fingerprint !== fingerprint) {
      throw new ApiError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was already used for a different request; use a new key for a new request', { details: null });
    }
    if (s.state === 'done') return { outcome: { status: s.status ?? 200, body: s.body ?? null, replayed: true } };
    if (s.state === 'failed') return { prepared: s.prepared };
    const age = this.clock.now().getTime() - Date.parse(s.startedAt);
    if (age >= PENDING_TAKEOVER_MS) return { prepared: s.prepared };
    const wait = Math.max(1, Math.ceil((PENDING_TAKEOVER_MS - age) / 1000));
    throw new ApiError('IDEMPOTENCY_KEY_IN_USE', `a request with this Idempotency-Key is still in progress; retry in ${wait} s to get its result`, { details: { retryAfterSeconds: wait } });
  }

  private async complete(recordKey: string, stored: Stored): Promise<void> {
    await this.catalog.completeIdempotencyRecord(recordKey, stored);
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** JSON with object keys sorted, so `{a,b}` and `{b,a}` are the same request. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
