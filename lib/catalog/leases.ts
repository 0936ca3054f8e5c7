import { CatalogInputError, ConflictError, CONFLICT } from './errors.js';
import type { Lease, LeaseMode } from './types.js';

/**
 * The lease rules both adapters apply to the leases of one resource (the adapters differ only in how they
 * make the read-decide-write atomic). Expired leases count as absent.
 */
export function decideAcquire(current: readonly Lease[], resource: string, holder: string, mode: LeaseMode, ttlMs: number, now: Date): Lease[] {
  assertTtl(ttlMs);
  const live = current.filter((l) => Date.parse(l.expiresAt) > now.getTime());
  const others = live.filter((l) => l.holder !== holder);
  const blocking = mode === 'exclusive' ? others : others.filter((l) => l.mode === 'exclusive');
  if (blocking.length > 0) {
    const who = blocking.map((l) => `${l.holder} (${l.mode}, until ${l.expiresAt})`).join(', ');
    throw new ConflictError(`lease on ${resource} is held by ${who}; ${holder} cannot take a ${mode} lease until it is released or expires`, { code: CONFLICT.leaseHeld });
  }
  const lease: Lease = { resource, holder, mode, expiresAt: new Date(now.getTime() + ttlMs).toISOString() };
  return [...others, lease];
}

export function decideRenew(current: readonly Lease[], resource: string, holder: string, ttlMs: number, now: Date): { leases: Lease[]; lease: Lease } {
  assertTtl(ttlMs);
  const live = current.filter((l) => Date.parse(l.expiresAt) > now.getTime());
  const mine = live.find((l) => l.holder === holder);
  if (!mine) {
    throw new ConflictError(`${holder} no longer holds a lease on ${resource} (it expired or was released); stop the work it guarded and acquire it again`, { code: CONFLICT.leaseLost });
  }
  const lease: Lease = { ...mine, expiresAt: new Date(now.getTime() + ttlMs).toISOString() };
  return { leases: [...live.filter((l) => l.holder !== holder), lease], lease };
}

export function liveLeases(current: readonly Lease[], now: Date): Lease[] {
  return current.filter((l) => Date.parse(l.expiresAt) > now.getTime()).sort((a, b) => (a.holder < b.holder ? -1 : a.holder > b.holder ? 1 : 0));
}

function assertTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new CatalogInputError(`invalid lease: ttlMs: must be a positive integer number of milliseconds, got ${ttlMs}`);
}
