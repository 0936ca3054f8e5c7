import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { Clock } from '../domain/clock.js';
import { BackupError } from '../errors.js';
import { systemClock } from '../system-clock.js';
import type { ObjectStore } from './object-store.js';

/**
 * Repository leases (issue 5, DESIGN §3): GC runs under an EXCLUSIVE lease; backups, copies and `repo forget`
 * hold SHARED leases. Exclusive is granted only when no unexpired lease of any kind exists; shared only when
 * no unexpired exclusive lease exists. Leases expire, so a holder that died does not block the repository
 * forever, and a holder refreshes its lease while it works.
 *
 * `RepositoryLock` is the port. `ObjectStoreLock` implements it with lock objects inside the repository
 * (`locks/{id}.json`), for the CLI and anyone without a catalog; the service plugs in the catalog's lease
 * (Catalog.acquireLease, made atomic with DynamoDB conditions) behind the same port.
 *
 * ## The check-after-write protocol (ObjectStoreLock)
 *
 * Object stores have no compare-and-swap, so a lock object cannot be created "only if no other exists".
 * Instead, to acquire:
 * 1. list `locks/`; expired locks are ignored (and deleted, best effort); if an unexpired lock conflicts,
 *    fail with RepositoryLockedError;
 * 2. write our own `locks/{id}.json`;
 * 3. list `locks/` again; if any other unexpired conflicting lock is there, a writer raced us: delete our
 *    lock, wait a random back-off and start again (a few times, then RepositoryLockedError).
 *
 * Why it is safe: each writer lists after its own write. Of two racing writers A and B, whichever lists last
 * lists after both writes, so it sees the other and backs off; at most one of them proceeds (both may back
 * off; the random back-off makes a second round likely to succeed).
 *
 * Its limits, which the catalog's lease does not have:
 * - it needs strong read-after-write consistency of LIST (AWS S3 since 2020, local directories, fauxqs; some
 *   S3-compatible stores only list eventually, and there the check can miss a racer);
 * - expiry is judged by the reader's clock against the writer's `expiresAt`: clocks of machines sharing a
 *   repository must agree to well within the TTL;
 * - a holder stalled for longer than its TTL (a suspended laptop, a stopped process) loses the lease without
 *   noticing until its next refresh or `assertHeld()`; GC therefore calls `assertHeld()` before every batch
 *   of deletions, and a refresh that finds its lock gone (cleaned as stale) marks the lease lost.
 */

export type LockMode = 'exclusive' | 'shared';

export const LOCKS_PREFIX = 'locks/';
export const lockKey = (id: string) => `${LOCKS_PREFIX}${id}.json`;

/** The default time a lease lives without a refresh. */
export const DEFAULT_LOCK_TTL_MS = 10 * 60_000;

export const lockDocumentSchema = z.object({
  version: z.literal(1),
  holder: z.string().min(1),
  mode: z.enum(['exclusive', 'shared']),
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
});
export type LockDocument = z.infer<typeof lockDocumentSchema>;

/** A lease held on a repository. */
export interface HeldLease {
  readonly holder: string;
  readonly mode: LockMode;
  /** When the lease expires unless refreshed (moves forward on every refresh). */
  readonly expiresAt: Date;
  /** Throws RepositoryLockLostError when the lease expired or was taken away; call before destructive steps. */
  assertHeld(): void;
  /** Extends the lease now (a timer also does this while the lease is held). */
  refresh(): Promise<void>;
  /** Gives the lease up; idempotent. */
  release(): Promise<void>;
}

/** The port: the CLI uses ObjectStoreLock, the service the catalog's lease. */
export interface RepositoryLock {
  acquire(mode: LockMode): Promise<HeldLease>;
}

/** Someone else holds a conflicting lease. */
export class RepositoryLockedError extends BackupError {
  readonly holders: readonly { holder: string; mode: LockMode; expiresAt: string; key?: string }[];
  constructor(where: string, wanted: LockMode, holders: readonly { holder: string; mode: LockMode; expiresAt: string; key?: string }[]) {
    const who = holders.map((h) => `${h.holder} (${h.mode} lease until ${h.expiresAt}${h.key ? `, ${h.key}` : ''})`).join(', ');
    const keys = holders.flatMap((h) => (h.key ? [h.key] : []));
    super(
      'REPOSITORY_LOCKED',
      `${where} is locked by ${who}, so a ${wanted} lease cannot be taken now: wait for that work to finish and run again; ` +
        `if that process is gone, the lease expires at the time shown${keys.length > 0 ? ` (or delete ${keys.join(', ')} once you are sure nothing runs)` : ''}`,
      { userFacing: true },
    );
    this.holders = holders;
  }
}

/** A lease expired or disappeared while its holder was still working. */
export class RepositoryLockLostError extends BackupError {
  constructor(holder: string, where: string, reason: string) {
    super('REPOSITORY_LOCK_LOST', `${holder} lost its lease on ${where} (${reason}); the work it guarded stopped. Run it again: it is safe to rerun`, { userFacing: true });
  }
}

export interface ObjectStoreLockOptions {
  readonly clock?: Clock;
  /** Who holds the lease, shown to whoever is blocked by it. @default `vcd-backup on {host} (pid {pid})` */
  readonly holder?: string;
  /** @default DEFAULT_LOCK_TTL_MS */
  readonly ttlMs?: number;
  /** How often a held lease is refreshed; 0 disables the timer (tests refresh by hand). @default ttlMs / 3 */
  readonly refreshMs?: number;
  /** Rounds of write-and-check before giving up on a race. @default 4 */
  readonly attempts?: number;
  /** Upper bound of the random back-off after losing a race. @default 500 ms */
  readonly backoffMs?: number;
  /** Test hook: how to wait (real timers by default). */
  readonly sleep?: (ms: number) => Promise<void>;
}

interface SeenLock {
  readonly key: string;
  readonly doc: LockDocument;
}

export function defaultLockHolder(purpose = 'vcd-backup'): string {
  return `${purpose} on ${hostname()} (pid ${process.pid})`;
}

/** Leases as lock objects in the repository; see the protocol above. */
export class ObjectStoreLock implements RepositoryLock {
  private readonly clock: Clock;
  private readonly holder: string;
  private readonly ttlMs: number;
  private readonly refreshMs: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly store: ObjectStore,
    options: ObjectStoreLockOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.holder = options.holder ?? defaultLockHolder();
    this.ttlMs = options.ttlMs ?? DEFAULT_LOCK_TTL_MS;
    if (!Number.isInteger(this.ttlMs) || this.ttlMs <= 0) throw new RangeError(`ttlMs must be a positive integer, got ${this.ttlMs}`);
    this.refreshMs = options.refreshMs ?? Math.floor(this.ttlMs / 3);
    this.attempts = options.attempts ?? 4;
    this.backoffMs = options.backoffMs ?? 500;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** The unexpired locks in the repository (expired ones are deleted on the way when `clean`). */
  async live(clean = false): Promise<SeenLock[]> {
    const now = this.clock.now().getTime();
    const live: SeenLock[] = [];
    const stale: string[] = [];
    for await (const info of this.store.list(LOCKS_PREFIX)) {
      if (!info.key.endsWith('.json')) continue;
      let doc: LockDocument;
      try {
        doc = lockDocumentSchema.parse(JSON.parse((await this.store.get(info.key)).toString('utf8')));
      } catch (err) {
        if ((err as { code?: string }).code === 'OBJECT_NOT_FOUND') continue; // released while we listed
        // An unreadable lock is not ignored (it may be a newer holder's): it blocks until its object is a TTL old.
        const expiresAt = new Date(info.lastModified.getTime() + this.ttlMs);
        doc = { version: 1, holder: `unreadable lock ${info.key}`, mode: 'exclusive', createdAt: info.lastModified.toISOString(), expiresAt: expiresAt.toISOString() };
      }
      if (Date.parse(doc.expiresAt) > now) live.push({ key: info.key, doc });
      else stale.push(info.key);
    }
    if (clean && stale.length > 0) await this.store.deleteMany(stale).catch(() => undefined);
    return live;
  }

  async acquire(mode: LockMode): Promise<HeldLease> {
    let conflicts: SeenLock[] = [];
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      if (attempt > 0) await this.sleep(Math.floor(Math.random() * this.backoffMs) + 1);
      conflicts = blocking(await this.live(true), mode);
      if (conflicts.length > 0) throw this.lockedError(mode, conflicts);

      const created = this.clock.now();
      const id = `${created.toISOString().replace(/[-:.]/g, '')}-${randomBytes(6).toString('hex')}`;
      const key = lockKey(id);
      const doc: LockDocument = { version: 1, holder: this.holder, mode, createdAt: created.toISOString(), expiresAt: new Date(created.getTime() + this.ttlMs).toISOString() };
      await this.store.put(key, Buffer.from(JSON.stringify(doc, null, 2)));

      // Check after write: a racer that wrote before our re-list is seen here (see the protocol above).
      conflicts = blocking((await this.live()).filter((l) => l.key !== key), mode);
      if (conflicts.length === 0) return new ObjectStoreLease(this.store, this.clock, key, doc, this.ttlMs, this.refreshMs);
      await this.store.deleteMany([key]);
    }
    throw this.lockedError(mode, conflicts);
  }

  private lockedError(mode: LockMode, conflicts: readonly SeenLock[]): RepositoryLockedError {
    return new RepositoryLockedError(
      `repository ${this.store.description}`,
      mode,
      conflicts.map((c) => ({ holder: c.doc.holder, mode: c.doc.mode, expiresAt: c.doc.expiresAt, key: c.key })),
    );
  }
}

function blocking(live: readonly SeenLock[], mode: LockMode): SeenLock[] {
  return mode === 'exclusive' ? [...live] : live.filter((l) => l.doc.mode === 'exclusive');
}

class ObjectStoreLease implements HeldLease {
  private doc: LockDocument;
  private timer: ReturnType<typeof setInterval> | undefined;
  private lost: string | undefined;
  private released = false;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly clock: Clock,
    private readonly key: string,
    doc: LockDocument,
    private readonly ttlMs: number,
    refreshMs: number,
  ) {
    this.doc = doc;
    if (refreshMs > 0) {
      this.timer = setInterval(() => {
        this.refresh().catch(() => undefined); // a failed refresh shows up as a lost lease in assertHeld()
      }, refreshMs);
      this.timer.unref();
    }
  }

  get holder(): string {
    return this.doc.holder;
  }

  get mode(): LockMode {
    return this.doc.mode;
  }

  get expiresAt(): Date {
    return new Date(this.doc.expiresAt);
  }

  assertHeld(): void {
    const where = `repository ${this.store.description}`;
    if (this.released) throw new RepositoryLockLostError(this.doc.holder, where, 'it was released');
    if (this.lost) throw new RepositoryLockLostError(this.doc.holder, where, this.lost);
    if (this.clock.now().getTime() >= Date.parse(this.doc.expiresAt)) {
      throw new RepositoryLockLostError(this.doc.holder, where, `it expired at ${this.doc.expiresAt} without a refresh`);
    }
  }

  async refresh(): Promise<void> {
    if (this.released || this.lost) return;
    this.refreshing ??= (async () => {
      try {
        // A lease that expired, or whose object someone cleaned as stale, is lost: recreating it could hand
        // us a lease another holder was already granted in between.
        if (this.clock.now().getTime() >= Date.parse(this.doc.expiresAt)) {
          this.lost = `it expired at ${this.doc.expiresAt} before it was refreshed`;
          return;
        }
        if (!(await this.store.stat(this.key))) {
          this.lost = `its lock object ${this.key} was deleted by someone else`;
          return;
        }
        const next: LockDocument = { ...this.doc, expiresAt: new Date(this.clock.now().getTime() + this.ttlMs).toISOString() };
        await this.store.put(this.key, Buffer.from(JSON.stringify(next, null, 2)));
        this.doc = next;
      } finally {
        this.refreshing = undefined;
      }
    })();
    await this.refreshing;
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.released) return;
    await this.refreshing?.catch(() => undefined);
    this.released = true;
    await this.store.deleteMany([this.key]);
  }
}

/** Runs `fn` under a lease and always releases it. */
export async function withLease<T>(lock: RepositoryLock, mode: LockMode, fn: (lease: HeldLease) => Promise<T>): Promise<T> {
  const lease = await lock.acquire(mode);
  try {
    return await fn(lease);
  } finally {
    await lease.release();
  }
}
