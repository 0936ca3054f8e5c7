import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/domain/clock.js';
import { lockKey, ObjectStoreLock, RepositoryLockedError, RepositoryLockLostError, withLease, type LockMode } from '../../lib/repository/lock.js';
import { MemoryStore } from '../../lib/repository/memory-store.js';
import type { Body, ObjectStore } from '../../lib/repository/object-store.js';

const MIN = 60_000;

function setup() {
  const clock = new ManualClock('2026-11-01T10:00:00Z');
  const store = new MemoryStore(clock);
  const make = (holder: string, ttlMs = 10 * MIN) => new ObjectStoreLock(store, { clock, holder, ttlMs, refreshMs: 0, sleep: async () => undefined });
  const keys = async () => {
    const out: string[] = [];
    for await (const info of store.list('locks/')) out.push(info.key);
    return out.sort();
  };
  return { clock, store, make, keys };
}

describe('ObjectStoreLock: exclusive and shared leases', () => {
  const cases: Array<{ held: LockMode; wanted: LockMode; granted: boolean }> = [
    { held: 'shared', wanted: 'shared', granted: true },
    { held: 'shared', wanted: 'exclusive', granted: false },
    { held: 'exclusive', wanted: 'shared', granted: false },
    { held: 'exclusive', wanted: 'exclusive', granted: false },
  ];
  it.each(cases)('$wanted while $held is held: granted=$granted', async ({ held, wanted, granted }) => {
    const { make, keys } = setup();
    const first = await make('backup A').acquire(held);
    const attempt = make('gc B').acquire(wanted);
    if (granted) {
      const second = await attempt;
      expect(await keys()).toHaveLength(2);
      await second.release();
    } else {
      await expect(attempt).rejects.toThrow(RepositoryLockedError);
      expect(await keys()).toHaveLength(1); // the loser left nothing behind
    }
    await first.release();
    expect(await keys()).toEqual([]);
  });

  it('several shared leases coexist, and exclusive waits for all of them', async () => {
    const { make } = setup();
    const a = await make('backup A').acquire('shared');
    const b = await make('backup B').acquire('shared');
    await a.release();
    await expect(make('gc').acquire('exclusive')).rejects.toThrow(/backup B \(shared lease until/);
    await b.release();
    const gc = await make('gc').acquire('exclusive');
    expect(gc.mode).toBe('exclusive');
    await gc.release();
  });

  it('names the holder, the expiry, the lock object and how to proceed; code REPOSITORY_LOCKED', async () => {
    const { make, keys } = setup();
    await make('vcd-backup repo gc on host1 (pid 42)').acquire('exclusive');
    const err = await make('backup').acquire('shared').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RepositoryLockedError);
    const locked = err as RepositoryLockedError;
    expect(locked.code).toBe('REPOSITORY_LOCKED');
    expect(locked.userFacing).toBe(true);
    const [key] = await keys();
    expect(locked.message).toContain('vcd-backup repo gc on host1 (pid 42) (exclusive lease until 2026-11-01T10:10:00.000Z');
    expect(locked.message).toContain(key!);
    expect(locked.message).toMatch(/wait for that work to finish and run again/);
    expect(locked.holders).toEqual([{ holder: 'vcd-backup repo gc on host1 (pid 42)', mode: 'exclusive', expiresAt: '2026-11-01T10:10:00.000Z', key }]);
  });

  it('ignores expired locks and cleans them up', async () => {
    const { clock, make, keys, store } = setup();
    await make('crashed gc').acquire('exclusive'); // never released: its process died
    clock.advance(10 * MIN - 1);
    await expect(make('backup').acquire('shared')).rejects.toThrow(RepositoryLockedError);
    clock.advance(1); // now exactly at expiresAt: expired
    const lease = await make('backup').acquire('shared');
    const left = await keys();
    expect(left).toHaveLength(1);
    expect(JSON.parse((await store.get(left[0]!)).toString('utf8'))).toMatchObject({ holder: 'backup', mode: 'shared' });
    await lease.release();
  });

  it('refresh extends the lease; without refresh it expires and assertHeld says so', async () => {
    const { clock, make } = setup();
    const lease = await make('gc').acquire('exclusive');
    clock.advance(9 * MIN);
    await lease.refresh();
    expect(lease.expiresAt.toISOString()).toBe('2026-11-01T10:19:00.000Z');
    clock.advance(9 * MIN);
    expect(() => lease.assertHeld()).not.toThrow();
    await expect(make('backup').acquire('shared')).rejects.toThrow(RepositoryLockedError);
    clock.advance(2 * MIN);
    expect(() => lease.assertHeld()).toThrow(RepositoryLockLostError);
    // a refresh after expiry does not resurrect it: someone may have been granted a lease meanwhile
    await lease.refresh();
    expect(() => lease.assertHeld()).toThrow(/expired/);
    await lease.release();
  });

  it('a lease whose lock object was cleaned by someone else is lost at the next refresh', async () => {
    const { clock, make, store, keys } = setup();
    const lease = await make('gc').acquire('exclusive');
    await store.deleteMany(await keys());
    clock.advance(MIN);
    await lease.refresh();
    expect(() => lease.assertHeld()).toThrow(/was deleted by someone else/);
    expect(await keys()).toEqual([]); // not recreated
  });

  it('release is idempotent and withLease releases on failure', async () => {
    const { make, keys } = setup();
    const lock = make('forget');
    await expect(withLease(lock, 'shared', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await keys()).toEqual([]);
    const lease = await lock.acquire('exclusive');
    await lease.release();
    await lease.release();
    expect(() => lease.assertHeld()).toThrow(/released/);
  });

  it('an unreadable lock object blocks until it is a TTL old', async () => {
    const { clock, store, make } = setup();
    await store.put(lockKey('garbage'), Buffer.from('not json'));
    await expect(make('backup').acquire('shared')).rejects.toThrow(/unreadable lock locks\/garbage\.json/);
    clock.advance(10 * MIN);
    const lease = await make('backup').acquire('shared');
    await lease.release();
  });
});

describe('ObjectStoreLock: check after write', () => {
  /** A store where another writer's lock appears right after ours is written (a race the first list missed). */
  class RacingStore implements ObjectStore {
    readonly description = 'racing store';
    races = 0;
    constructor(
      private readonly inner: MemoryStore,
      private readonly rival: () => Promise<void>,
      private readonly times: number,
    ) {}
    get = (key: string) => this.inner.get(key);
    stat = (key: string) => this.inner.stat(key);
    list = (prefix: string) => this.inner.list(prefix);
    deleteMany = (keys: readonly string[]) => this.inner.deleteMany(keys);
    async put(key: string, body: Body): Promise<void> {
      await this.inner.put(key, body);
      if (key.startsWith('locks/') && this.races < this.times) {
        this.races++;
        await this.rival();
      }
    }
  }

  it('backs off when a racing exclusive writer appears, removes its own lock, and retries', async () => {
    const clock = new ManualClock('2026-11-01T10:00:00Z');
    const inner = new MemoryStore(clock);
    // The rival wrote its lock before ours was visible (it did not see ours) and releases it at once after.
    const store = new RacingStore(inner, async () => {
      await inner.put(lockKey('rival'), Buffer.from(JSON.stringify({ version: 1, holder: 'rival gc', mode: 'exclusive', createdAt: clock.now().toISOString(), expiresAt: new Date(clock.now().getTime() + MIN).toISOString() })));
    }, 1);
    const sleeps: number[] = [];
    const lock = new ObjectStoreLock(store, { clock, holder: 'backup', refreshMs: 0, attempts: 3, sleep: async (ms) => void sleeps.push(ms) });
    // First round: our lock is written, the rival appears, we back off and remove ours; the rival still holds.
    await expect(lock.acquire('shared')).rejects.toThrow(/rival gc \(exclusive lease/);
    expect(sleeps).toHaveLength(1);
    const left: string[] = [];
    for await (const info of inner.list('locks/')) left.push(info.key);
    expect(left).toEqual([lockKey('rival')]);
    // Once the rival is gone, the lock is granted.
    await inner.deleteMany([lockKey('rival')]);
    const lease = await lock.acquire('shared');
    expect(lease.holder).toBe('backup');
    await lease.release();
  });

  it('of two exclusive writers that race, at most one proceeds', async () => {
    const clock = new ManualClock('2026-11-01T10:00:00Z');
    const inner = new MemoryStore(clock);
    // Interleave two acquisitions step by step by yielding on every store call.
    const slow: ObjectStore = {
      description: 'interleaving store',
      get: async (k, r) => (await tick(), inner.get(k, r)),
      put: async (k, b) => (await tick(), inner.put(k, b)),
      stat: async (k) => (await tick(), inner.stat(k)),
      list: (p) => inner.list(p),
      deleteMany: async (k) => (await tick(), inner.deleteMany(k)),
    };
    for (let round = 0; round < 20; round++) {
      const a = new ObjectStoreLock(slow, { clock, holder: 'gc A', refreshMs: 0, attempts: 1 });
      const b = new ObjectStoreLock(slow, { clock, holder: 'gc B', refreshMs: 0, attempts: 1 });
      const results = await Promise.allSettled([a.acquire('exclusive'), b.acquire('exclusive')]);
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won.length).toBeLessThanOrEqual(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(RepositoryLockedError);
      for (const r of won) await r.value.release();
    }
  });
});

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
