import type { Clock } from '../domain/clock.js';
import { InvalidInputError } from '../errors.js';
import { systemClock } from '../system-clock.js';
import { HASH_BYTES } from './block-codec.js';
import { blockKey, diskDescriptorNamespaceSchema, pointDescriptorSchema, type PointDescriptor } from './format.js';
import { ObjectStoreLock, type HeldLease, type RepositoryLock } from './lock.js';
import type { ObjectInfo } from './object-store.js';
import type { Repository } from './repository.js';

/** Blocks younger than this are never deleted (DESIGN §3). */
export const DEFAULT_GC_GRACE_MS = 24 * 3_600_000;

export interface GcOptions {
  /** Mark and count only: take no lease, delete nothing. */
  readonly dryRun?: boolean;
  /** Unreferenced blocks (and objects of uncommitted points) younger than this stay. @default 24 h */
  readonly graceMs?: number;
  /** "Now" for the grace period and the default lock. @default the system clock */
  readonly clock?: Clock;
  /** The lease provider. @default an ObjectStoreLock on the repository */
  readonly lock?: RepositoryLock;
  /** Keys per deleteMany call. @default 1000 (the S3 DeleteObjects limit) */
  readonly deleteBatch?: number;
  readonly onProgress?: (progress: GcProgress) => void;
}

export interface GcProgress {
  readonly phase: 'mark' | 'sweep';
  readonly points: number;
  readonly indexesRead: number;
  readonly blocksListed: number;
  readonly blocksDeleted: number;
}

export interface GcReport {
  readonly dryRun: boolean;
  readonly startedAt: string;
  readonly graceMs: number;
  /** Committed points whose indexes were marked. */
  readonly points: number;
  readonly indexesRead: number;
  /** Distinct blocks named by committed points (and by in-flight indexes, see below). */
  readonly blocksReferenced: number;
  /** Indexes of uncommitted points younger than the grace period, marked as if committed. */
  readonly inflightIndexesMarked: number;
  readonly blocksListed: number;
  /** Unreferenced blocks deleted (or, in a dry run, that would be). */
  readonly blocksDeleted: number;
  readonly bytesFreed: number;
  /** Unreferenced blocks kept because they are younger than the grace period. */
  readonly blocksKeptYoung: number;
  readonly bytesKeptYoung: number;
  /** Referenced blocks that the listing did not find: damage for `repo verify` to explain. */
  readonly blocksMissing: number;
  /** Objects under blocks/ whose names are not block names: left alone. */
  readonly unknownObjects: number;
  /** Objects of uncommitted points (indexes, vapp.json) older than the grace period, deleted. */
  readonly orphanObjectsDeleted: number;
  readonly orphanBytesFreed: number;
  /** Uncommitted points left alone because some object of theirs is younger than the grace period. */
  readonly uncommittedPointsKept: number;
  /** Bytes of the mark set (what GC's memory grows with). */
  readonly markSetBytes: number;
  readonly seconds: number;
}

/**
 * `repo gc`: deletes the blocks no committed restore point needs, under an EXCLUSIVE lease (backups, copies
 * and forget hold shared ones, so none runs while GC deletes).
 *
 * - Mark: list `points/` once; read every committed point's indexes, each once, into a BlockHashSet (32 bytes
 *   a referenced block, open addressing): memory grows with the referenced blocks, not with the listing.
 *   Indexes of uncommitted points younger than the grace period (a backup between writing its indexes and
 *   its point.json) are marked too.
 * - Sweep: list `blocks/` once, streaming; a block that is not marked and whose object is older than the grace
 *   period is deleted, in batches of `deleteBatch` keys, each batch after checking the lease is still held.
 *   Objects of uncommitted points (no point.json) are deleted when all of them are older than the grace.
 *
 * Why blocks younger than the grace period stay: a running backup uploads blocks long before its point.json
 * commits them. Why leases are still needed: a backup that deduplicates against an OLD unreferenced block
 * (left by a deleted point) relies on that block staying, and only the shared lease keeps GC away meanwhile.
 *
 * Safe to interrupt and rerun: it only deletes, deleting is idempotent, and every decision is taken again
 * from the repository on the next run. The lease of an interrupted run expires by itself (or is released by
 * the `finally` below when the run fails rather than dies).
 */
export async function collectGarbage(repository: Repository, options: GcOptions = {}): Promise<GcReport> {
  const dryRun = options.dryRun ?? false;
  const graceMs = options.graceMs ?? DEFAULT_GC_GRACE_MS;
  if (!Number.isFinite(graceMs) || graceMs < 0) throw new InvalidInputError(`the GC grace period must be zero or more, got ${graceMs} ms`);
  const batchSize = options.deleteBatch ?? 1000;
  const clock = options.clock ?? systemClock;
  const store = repository.store;
  // GC works on the whole repository whatever view it is given: every tenant namespace's points protect
  // their blocks, each read with its own namespace's keys.
  const namespaces = repository.allNamespaces();
  const unbound = namespaces.unbound;

  let lease: HeldLease | undefined;
  if (!dryRun) lease = await (options.lock ?? new ObjectStoreLock(store, { clock })).acquire('exclusive');
  try {
    const started = clock.now();
    const cutoff = started.getTime() - graceMs;
    const old = (info: ObjectInfo) => info.lastModified.getTime() < cutoff;
    const progress = { phase: 'mark' as 'mark' | 'sweep', points: 0, indexesRead: 0, blocksListed: 0, blocksDeleted: 0 };

    // ---- mark
    type PointObjects = { vappId: string; pointId: string; committed: boolean; objects: ObjectInfo[] };
    const prefixes = new Map<string, PointObjects>();
    for await (const info of store.list('points/')) {
      const parts = info.key.split('/');
      if (parts.length < 4) continue; // points/{vapp}/chain.json and the like
      const id = `${parts[1]}/${parts[2]}`;
      let entry = prefixes.get(id);
      if (!entry) prefixes.set(id, (entry = { vappId: parts[1]!, pointId: parts[2]!, committed: false, objects: [] }));
      if (parts.length === 4 && parts[3] === 'point.json') entry.committed = true;
      else entry.objects.push(info);
    }

    const marks = new BlockHashSet();
    const markIndex = async (view: Repository, vappId: string, pointId: string, diskId: string) => {
      const index = await view.readIndex(vappId, pointId, diskId);
      for (let i = 0; i < index.blockCount; i++) {
        const hash = index.entry(i);
        if (hash) marks.add(hash);
      }
      progress.indexesRead++;
    };

    const orphans: ObjectInfo[] = [];
    let inflightIndexesMarked = 0;
    let uncommittedPointsKept = 0;
    const seenNamespaces = new Set<string | null>([null]);
    const inflight: PointObjects[] = [];
    for (const entry of prefixes.values()) {
      if (entry.committed) {
        let point: PointDescriptor;
        try {
          point = await unbound.readPoint(entry.vappId, entry.pointId);
        } catch (err) {
          // Deleted since we listed (forget cannot run beside GC, but a person can): nothing to mark.
          if ((err as { code?: string }).code === 'POINT_NOT_FOUND') continue;
          throw err; // never sweep with an incomplete mark
        }
        const view = namespaces.view(point.tenantId ?? null);
        seenNamespaces.add(point.tenantId ?? null);
        for (const disk of point.disks) await markIndex(view, point.vappId, point.pointId, disk.diskId);
        progress.points++;
        options.onProgress?.({ ...progress });
        continue;
      }
      if (entry.objects.every(old)) {
        orphans.push(...entry.objects);
        continue;
      }
      uncommittedPointsKept++;
      inflight.push(entry);
    }
    // A backup in flight: protect what its written indexes name, in case it commits after our mark. Its
    // namespace is in its disk descriptors (format 2); otherwise every namespace seen is tried (an index
    // opens under one only).
    for (const entry of inflight) {
      for (const info of entry.objects) {
        const m = /^points\/[^/]+\/[^/]+\/disks\/([^/]+)\.idx$/.exec(info.key);
        if (!m || !pointDescriptorSchema.shape.vappId.safeParse(m[1]).success) continue;
        const candidates = [...(await descriptorNamespace(store, info.key.replace(/\.idx$/, '.json'))), ...seenNamespaces];
        for (const ns of new Set(candidates)) {
          try {
            await markIndex(namespaces.view(ns), entry.vappId, entry.pointId, m[1]!);
            inflightIndexesMarked++;
            break;
          } catch {
            // not this namespace, unreadable or gone: its blocks are young anyway, or the backup failed
          }
        }
      }
    }

    // ---- sweep
    progress.phase = 'sweep';
    let blocksDeleted = 0;
    let bytesFreed = 0;
    let blocksKeptYoung = 0;
    let bytesKeptYoung = 0;
    let unknownObjects = 0;
    let referencedFound = 0;
    const scratch = Buffer.alloc(HASH_BYTES);
    let batch: string[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      if (!dryRun) {
        lease?.assertHeld();
        await store.deleteMany(batch);
      }
      batch = [];
      options.onProgress?.({ ...progress });
    };
    for await (const info of store.list('blocks/')) {
      progress.blocksListed++;
      const hex = info.key.slice(info.key.lastIndexOf('/') + 1);
      if (hex.length !== HASH_BYTES * 2 || !/^[0-9a-f]+$/.test(hex) || blockKey(hex) !== info.key) {
        unknownObjects++;
        continue;
      }
      scratch.write(hex, 0, 'hex');
      if (marks.has(scratch)) {
        referencedFound++;
        continue;
      }
      if (!old(info)) {
        blocksKeptYoung++;
        bytesKeptYoung += info.size;
        continue;
      }
      batch.push(info.key);
      blocksDeleted++;
      progress.blocksDeleted++;
      bytesFreed += info.size;
      if (batch.length >= batchSize) await flush();
    }
    await flush();

    let orphanBytesFreed = 0;
    for (const info of orphans) {
      batch.push(info.key);
      orphanBytesFreed += info.size;
      if (batch.length >= batchSize) await flush();
    }
    await flush();

    return {
      dryRun,
      startedAt: started.toISOString(),
      graceMs,
      points: progress.points,
      indexesRead: progress.indexesRead,
      blocksReferenced: marks.size,
      inflightIndexesMarked,
      blocksListed: progress.blocksListed,
      blocksDeleted,
      bytesFreed,
      blocksKeptYoung,
      bytesKeptYoung,
      blocksMissing: marks.size - referencedFound,
      unknownObjects,
      orphanObjectsDeleted: orphans.length,
      orphanBytesFreed,
      uncommittedPointsKept,
      markSetBytes: marks.byteLength,
      seconds: (clock.now().getTime() - started.getTime()) / 1000,
    };
  } finally {
    await lease?.release();
  }
}

/** The namespace a disk descriptor records, if it exists and records one. */
async function descriptorNamespace(store: Repository['store'], key: string): Promise<(string | null)[]> {
  try {
    const parsed = diskDescriptorNamespaceSchema.safeParse(JSON.parse((await store.get(key)).toString('utf8')));
    return parsed.success && parsed.data.tenantId !== undefined ? [parsed.data.tenantId] : [];
  } catch {
    return [];
  }
}

/**
 * A set of 32-byte block hashes in one Buffer: open addressing with linear probing, at most 3/4 full, so a
 * referenced block costs 43–85 bytes (a Set of hex strings costs about 120). Block names are SHA-256 or
 * HMAC-SHA-256 outputs, uniformly distributed, so their first 4 bytes are a good slot number. The all-zero
 * hash marks an empty slot; it is the index's zero-block marker and never names a stored block.
 */
export class BlockHashSet {
  private table: Buffer;
  private mask: number;
  private count = 0;

  constructor(initialCapacity = 1024) {
    let cap = 16;
    while (cap < (initialCapacity * 4) / 3) cap *= 2;
    this.table = Buffer.alloc(cap * HASH_BYTES);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  get byteLength(): number {
    return this.table.length;
  }

  add(hash: Uint8Array): boolean {
    if (hash.byteLength !== HASH_BYTES) throw new RangeError(`block hashes are ${HASH_BYTES} bytes, got ${hash.byteLength}`);
    if (isZero(hash, 0)) throw new RangeError('the all-zero hash marks zero blocks and cannot be stored');
    if ((this.count + 1) * 4 > (this.mask + 1) * 3) this.grow();
    const slot = this.find(this.table, this.mask, hash);
    if (slot >= 0) return false;
    this.table.set(hash, ~slot * HASH_BYTES);
    this.count++;
    return true;
  }

  has(hash: Uint8Array): boolean {
    if (hash.byteLength !== HASH_BYTES || isZero(hash, 0)) return false;
    return this.find(this.table, this.mask, hash) >= 0;
  }

  /** The slot holding `hash` (≥ 0), or ~slot of the empty slot where it would go. */
  private find(table: Buffer, mask: number, hash: Uint8Array): number {
    const view = Buffer.isBuffer(hash) ? hash : Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength);
    let slot = view.readUInt32LE(0) & mask;
    for (;;) {
      const at = slot * HASH_BYTES;
      if (isZero(table, at)) return ~slot;
      if (table.compare(view, 0, HASH_BYTES, at, at + HASH_BYTES) === 0) return slot;
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const old = this.table;
    const cap = (this.mask + 1) * 2;
    const table = Buffer.alloc(cap * HASH_BYTES);
    const mask = cap - 1;
    for (let at = 0; at < old.length; at += HASH_BYTES) {
      if (isZero(old, at)) continue;
      const entry = old.subarray(at, at + HASH_BYTES);
      table.set(entry, ~this.find(table, mask, entry) * HASH_BYTES);
    }
    this.table = table;
    this.mask = mask;
  }
}

function isZero(buf: Uint8Array, at: number): boolean {
  for (let i = at; i < at + HASH_BYTES; i++) if (buf[i] !== 0) return false;
  return true;
}
