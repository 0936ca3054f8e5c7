import { describe, expect, it } from 'vitest';
import { IdempotencyGuard, PENDING_TAKEOVER_MS } from '../../lib/api/idempotency.js';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import { ManualClock } from '../../lib/domain/clock.js';

const principal = { kind: 'tenant', tenantId: 'acme' } as const;

function guard() {
  const clock = new ManualClock('2026-03-02T10:00:00.000Z');
  const catalog = new MemoryCatalog(clock);
  return { clock, catalog, idem: new IdempotencyGuard(catalog, clock) };
}

describe('IdempotencyGuard', () => {
  it('runs the work once per key and replays its response', async () => {
    const { idem } = guard();
    let runs = 0;
    const req = { principal, key: 'k', operation: 'POST /x', request: { a: 1, b: 2 }, check: async () => undefined, prepare: () => ({ id: `id-${runs}` }), execute: async (p: { id: string }) => ({ status: 202, body: { id: p.id, n: ++runs } }) };
    const first = await idem.run(req);
    const second = await idem.run({ ...req, request: { b: 2, a: 1 } });
    expect(first).toEqual({ status: 202, body: { id: 'id-0', n: 1 }, replayed: false });
    expect(second).toEqual({ status: 202, body: { id: 'id-0', n: 1 }, replayed: true });
    expect(runs).toBe(1);
  });

  it('scopes keys to the caller and the operation', async () => {
    const { idem } = guard();
    let runs = 0;
    const req = { principal, key: 'k', operation: 'POST /x', request: {}, check: async () => undefined, prepare: () => ({}), execute: async () => ({ status: 200, body: ++runs }) };
    await idem.run(req);
    await idem.run({ ...req, principal: { kind: 'tenant', tenantId: 'other' } });
    await idem.run({ ...req, operation: 'POST /y' });
    expect(runs).toBe(3);
  });

  it('refuses a key reused for another request, and a key whose request is still in progress', async () => {
    const { idem, clock } = guard();
    const base = { principal, key: 'k', operation: 'POST /x', check: async () => undefined, prepare: () => ({ runId: 'r1' }) };
    await idem.run({ ...base, request: { a: 1 }, execute: async () => ({ status: 202, body: {} }) });
    await expect(idem.run({ ...base, request: { a: 2 }, execute: async () => ({ status: 202, body: {} }) })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });

    // A request that never finished (crashed) leaves a pending record: refused at first, taken over later.
    let release!: () => void;
    const slow = idem.run({ ...base, key: 'k2', request: {}, execute: () => new Promise((resolve) => (release = () => resolve({ status: 202, body: { first: true } }))) });
    await new Promise((r) => setTimeout(r, 10));
    await expect(idem.run({ ...base, key: 'k2', request: {}, execute: async () => ({ status: 202, body: {} }) })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_IN_USE' });
    clock.advance(PENDING_TAKEOVER_MS);
    const prepared: unknown[] = [];
    const taken = await idem.run({ ...base, key: 'k2', request: {}, prepare: () => ({ runId: 'r-new' }), execute: async (p) => (prepared.push(p), { status: 202, body: { takeover: true } }) });
    expect(taken.body).toEqual({ takeover: true });
    expect(prepared).toEqual([{ runId: 'r1' }]); // the same ids as the crashed request
    release();
    await slow;
  });

  it('lets a retry redo work that failed, with the same prepared ids, and skips checks on replays', async () => {
    const { idem } = guard();
    let attempt = 0;
    let checks = 0;
    const req = {
      principal,
      key: 'k',
      operation: 'POST /x',
      request: {},
      check: async () => void checks++,
      prepare: () => ({ runId: `r${attempt}` }),
      execute: async (p: { runId: string }) => {
        attempt += 1;
        if (attempt === 1) throw new Error('queue down');
        return { status: 202, body: p };
      },
    };
    await expect(idem.run(req)).rejects.toThrow('queue down');
    expect((await idem.run(req)).body).toEqual({ runId: 'r0' });
    expect((await idem.run(req)).replayed).toBe(true);
    expect(checks).toBe(1);
  });
});
