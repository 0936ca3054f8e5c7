import { CodecPool } from '../agent/codec-pool.js';
import { BackupError } from '../errors.js';
import { Limiter } from '../limiter.js';
import type { DiskIndexReader } from './disk-index.js';
import { DiskIndexWriter } from './disk-index.js';
import { BlockCorruptError, PointNotFoundError, RepositoryFormatError } from './errors.js';
import { FORMAT_VERSION, indexKey, type PointDescriptor, type PointDisk } from './format.js';
import { sameKeys } from './keys.js';
import type { Repository } from './repository.js';

/**
 * Repository-to-repository copy of restore points (DESIGN §1 "copy run", issue 7).
 *
 * What travels is only what the target lacks. The target's latest point of the same vApp is the basis: a
 * block at the same position of the same disk with the same content is known to be there without asking.
 * The rest is checked (existence) and copied.
 *
 * Two regimes, decided by how the repositories name blocks:
 * - **same naming** (both plaintext, or both encrypted with the same master keys): a block's name and its
 *   stored bytes are valid in both, so blocks are copied raw after being verified (decoded and re-hashed
 *   against their name): no re-compression, no re-encryption.
 * - **different naming** (other keys, or plaintext ⇄ encrypted): a name in the target is the target's keyed
 *   hash of the plaintext, which only the plaintext gives. Blocks are decoded with the source's keys,
 *   verified, re-named and re-encoded with the target's, and the target's indexes are written with the
 *   target's names. The basis maps names by position through the point it was copied from
 *   (`sourcePointId`), so an incremental reads only its changed blocks.
 *
 * Write ordering is the repository's: blocks → indexes → vapp.json → point.json (last, commits the point).
 * The target point keeps the source point's id and creation time and records `sourcePointId`, so a copy is
 * recognisable and a rerun is idempotent: a committed copy is reported `alreadyPresent`; a crash anywhere
 * before the commit leaves blocks that the rerun finds and does not copy again.
 */

/** Source-name → target-name memory for duplicates inside one run (≈ 250 bytes an entry). */
const NAME_MEMORY = 100_000;

/** Mapped positions checked per disk before the basis is trusted under different naming. */
const BASIS_SAMPLES = 3;

export interface CopyProgress {
  readonly blocksTotal: number;
  readonly blocksDone: number;
  readonly blocksCopied: number;
  readonly bytesCopied: number;
  readonly blocksSkipped: number;
  readonly bytesTotal: number;
  readonly bytesDone: number;
}

export interface CopyOptions {
  /** Blocks being read, checked and written at once (memory ≈ this × block size × 3). @default 32 */
  readonly concurrency?: number;
  /** Codec worker threads per repository when none are given. @default the machine's parallelism */
  readonly workers?: number;
  /** Codec pools to reuse: `source` in the source's settings, `target` in the target's. */
  readonly pools?: { readonly source?: CodecPool; readonly target?: CodecPool };
  readonly signal?: AbortSignal;
}

export interface CopyPointInput extends CopyOptions {
  readonly source: Repository;
  readonly target: Repository;
  readonly pointId: string;
  /** The point's vApp (saves a listing of the source). */
  readonly vappId?: string;
  /**
   * Names already established by `copyBlocks` batches (source name hex → target name): trusted as present
   * in the target, so committing after a fanned-out copy reads nothing again.
   */
  readonly names?: ReadonlyMap<string, Buffer>;
  readonly onProgress?: (progress: CopyProgress) => void;
}

export interface CopyPointResult {
  /** The target point's id: the source point's id, so copies are idempotent and recognisable. */
  readonly pointId: string;
  readonly vappId: string;
  /** The point copied from (in the source repository). */
  readonly sourcePointId: string;
  /** Blocks written to the target by this run. */
  readonly blocksCopied: number;
  /** Stored bytes written to the target by this run (blocks, after compression and encryption). */
  readonly bytesCopied: number;
  /** Non-zero positions not written: known from the basis, present already, or repeated in the point. */
  readonly blocksSkipped: number;
  /** Index positions of all disks (blocksCopied + blocksSkipped + blocksZero). */
  readonly blocksTotal: number;
  readonly blocksZero: number;
  /** Blocks read from the source (raw copies and, under different naming, every block not mapped). */
  readonly blocksRead: number;
  readonly bytesRead: number;
  /** True when blocks were decoded and re-encoded (different naming). */
  readonly reencoded: boolean;
  /** The target point the plan started from (its latest point of the vApp), if any. */
  readonly basisPointId: string | null;
  readonly seconds: number;
  /** The target already had this point committed: nothing was copied. */
  readonly alreadyPresent: boolean;
}

/** Whether a block's name and stored bytes mean the same in both repository views (same namespace keys). */
export function sameNaming(source: Repository, target: Repository): boolean {
  if (source.keys && target.keys) return sameKeys(source.keys, target.keys);
  if (source.keys || target.keys) return false;
  if (source.namingKey && target.namingKey) return source.namingKey.equals(target.namingKey);
  if (source.namingKey || target.namingKey) return false;
  return source.config.blockHash === target.config.blockHash;
}

/**
 * The views a point is copied between: a tenant's point goes into the same tenant's namespace of the target.
 * Tenant views stay as given (reading another tenant's point through one fails as not found); an unbound
 * view switches to the point's namespace, and then the caller's codec pools (built for the unbound keys)
 * no longer apply.
 */
function copyViews(source: Repository, target: Repository, point: PointDescriptor): { source: Repository; target: Repository; switched: boolean } {
  const ns = point.tenantId ?? null;
  const src = source.viewFor(point);
  let tgt = target;
  if (target.tenantId !== ns) {
    if (target.tenantId !== null) throw new BackupError('REPOSITORY_TENANT', `point ${point.pointId} belongs to ${ns === null ? 'no tenant' : `tenant ${ns}`}; it cannot be copied into tenant ${target.tenantId}'s namespace`);
    tgt = ns === null ? target : target.forTenant(ns);
  }
  return { source: src, target: tgt, switched: src !== source || tgt !== target };
}

async function pointIfCommitted(repository: Repository, vappId: string, pointId: string): Promise<PointDescriptor | undefined> {
  try {
    return await repository.readPoint(vappId, pointId);
  } catch (err) {
    if (err instanceof PointNotFoundError) return undefined;
    throw err;
  }
}

async function resolveSourcePoint(source: Repository, pointId: string, vappId: string | undefined): Promise<PointDescriptor> {
  return vappId ? source.readPoint(vappId, pointId) : source.findPoint(pointId);
}

/**
 * Per disk: what the target already has by position. Under same naming it is the basis index itself
 * (target names = source names); under different naming a pair of indexes: the source point the basis was
 * copied from (source names) and the basis (target names) at the same positions.
 */
interface DiskBasis {
  readonly target: DiskIndexReader;
  readonly source?: DiskIndexReader;
}

interface Basis {
  readonly point: PointDescriptor;
  /** The source point the basis was copied from, when it is still in the source (different naming). */
  readonly sourcePoint?: PointDescriptor;
}

async function findBasis(source: Repository, target: Repository, point: PointDescriptor, same: boolean): Promise<Basis | undefined> {
  const latest = await target.latestPoint(point.vappId);
  if (!latest || latest.pointId === point.pointId) return undefined;
  if (same) return { point: latest };
  if (!latest.sourcePointId) return undefined;
  const sourcePoint = await pointIfCommitted(source, point.vappId, latest.sourcePointId);
  return sourcePoint ? { point: latest, sourcePoint } : undefined;
}

async function diskBasis(source: Repository, target: Repository, basis: Basis | undefined, disk: PointDisk, same: boolean): Promise<DiskBasis | undefined> {
  if (!basis) return undefined;
  const targetDisk = basis.point.disks.find((d) => d.diskId === disk.diskId);
  if (!targetDisk || targetDisk.blockSize !== disk.blockSize) return undefined;
  const targetIndex = await target.readIndex(basis.point.vappId, basis.point.pointId, disk.diskId);
  if (same) return { target: targetIndex };
  const sourceDisk = basis.sourcePoint?.disks.find((d) => d.diskId === disk.diskId);
  if (!basis.sourcePoint || !sourceDisk || sourceDisk.blockSize !== disk.blockSize || sourceDisk.sizeBytes !== targetDisk.sizeBytes) return undefined;
  const sourceIndex = await source.readIndex(basis.sourcePoint.vappId, basis.sourcePoint.pointId, disk.diskId);
  // Trust the mapping only after a few mapped positions prove the two indexes name the same content: a
  // point id reused by an unrelated repository must never turn into a wrong index.
  // Samples start at evenly spaced places and take the next position that names a block in both.
  const count = Math.min(targetIndex.blockCount, sourceIndex.blockCount);
  let i = 0;
  for (let sample = 0; sample < BASIS_SAMPLES && i < count; sample++) {
    i = Math.max(i, Math.floor((sample * count) / BASIS_SAMPLES));
    for (; i < count; i++) {
      const t = targetIndex.entry(i);
      const s = sourceIndex.entry(i);
      if (!t !== !s) return undefined;
      if (!t || !s) continue;
      const plain = await target.getBlock(Buffer.from(t));
      if (!source.codec.hash(plain).equals(s)) return undefined;
      i++;
      break;
    }
  }
  return { target: targetIndex, source: sourceIndex };
}

/** The target name of position `i` when the basis proves it present, else undefined. */
function knownByPosition(basis: DiskBasis | undefined, i: number, hash: Buffer, same: boolean): Buffer | undefined {
  if (!basis || i >= basis.target.blockCount) return undefined;
  if (same) {
    const t = basis.target.entry(i);
    return t && t.equals(hash) ? Buffer.from(t) : undefined;
  }
  if (!basis.source || i >= basis.source.blockCount) return undefined;
  const s = basis.source.entry(i);
  if (!s || !s.equals(hash)) return undefined;
  const t = basis.target.entry(i);
  return t ? Buffer.from(t) : undefined;
}

interface BlockOutcome {
  /** The block's name in the target; null only if the block is all zeros (never stored). */
  readonly name: Buffer | null;
  readonly copied: boolean;
  readonly bytesWritten: number;
  readonly bytesRead: number;
}

/**
 * Moves single blocks from source to target, never propagating corruption: every block read is decoded
 * and checked against its name before anything is written.
 */
class BlockMover {
  readonly same: boolean;
  private readonly ownPools: CodecPool[] = [];
  private readonly sourcePool: CodecPool;
  private readonly targetPool: CodecPool | undefined;
  private readonly writes: Limiter;

  constructor(
    private readonly source: Repository,
    private readonly target: Repository,
    options: CopyOptions,
  ) {
    this.same = sameNaming(source, target);
    const workers = options.workers;
    this.sourcePool = options.pools?.source ?? this.own(new CodecPool(source.codecSettings(), workers));
    this.targetPool = this.same ? undefined : (options.pools?.target ?? this.own(new CodecPool(target.codecSettings(), workers)));
    this.writes = new Limiter(Math.max(1, options.concurrency ?? 32));
  }

  private own(pool: CodecPool): CodecPool {
    this.ownPools.push(pool);
    return pool;
  }

  /** Ensures the block is in the target; `expectedSize` (from the index) is checked when given. */
  async move(hash: Buffer, expectedSize?: number): Promise<BlockOutcome> {
    if (this.same && (await this.target.hasBlock(hash))) return { name: hash, copied: false, bytesWritten: 0, bytesRead: 0 };
    const encoded = await this.source.getEncodedBlock(hash);
    const bytesRead = encoded.byteLength;
    // The pool takes ownership of what it decodes: give it a copy when the stored bytes are written as is.
    const plain = await this.sourcePool.decode(this.same ? Buffer.from(encoded) : encoded, hash);
    if (expectedSize !== undefined && plain.byteLength !== expectedSize) {
      throw new BlockCorruptError(hash.toString('hex'), `it holds ${plain.byteLength} bytes where the index expects ${expectedSize}`);
    }
    if (this.same) {
      await this.writes.run(() => this.target.putBlock(hash, encoded));
      return { name: hash, copied: true, bytesWritten: encoded.byteLength, bytesRead };
    }
    const result = await this.targetPool!.encode(plain, null);
    if (result.kind === 'zero') return { name: null, copied: false, bytesWritten: 0, bytesRead };
    if (result.kind !== 'encoded') throw new BackupError('CODEC_PROTOCOL', `unexpected codec answer ${result.kind} while re-encoding block ${hash.toString('hex')}`);
    if (await this.target.hasBlock(result.hash)) return { name: result.hash, copied: false, bytesWritten: 0, bytesRead };
    await this.writes.run(() => this.target.putBlock(result.hash, result.encoded));
    return { name: result.hash, copied: true, bytesWritten: result.encoded.byteLength, bytesRead };
  }

  async close(): Promise<void> {
    await Promise.all(this.ownPools.map((p) => p.close()));
  }
}

function abortedError(): BackupError {
  return new BackupError('ABORTED', 'the copy was stopped before it finished; run it again to resume (blocks already in the target are not copied again)');
}

/**
 * Copies one committed restore point from `source` to `target` (see the module comment). Bounded memory:
 * at most `concurrency` blocks are in flight, and each disk's index is read and written one chunk at a
 * time plus the target index being built (32 bytes a block).
 */
export async function copyPoint(input: CopyPointInput): Promise<CopyPointResult> {
  const started = performance.now();
  const point = await resolveSourcePoint(input.source, input.pointId, input.vappId);
  const views = copyViews(input.source, input.target, point);
  const { source, target } = views;
  const seconds = () => (performance.now() - started) / 1000;
  const same = sameNaming(source, target);
  const blocksTotal = point.disks.reduce((n, d) => n + d.blocksTotal, 0);
  const existing = await pointIfCommitted(target, point.vappId, point.pointId);
  if (existing) {
    return {
      pointId: existing.pointId,
      vappId: existing.vappId,
      sourcePointId: point.pointId,
      blocksCopied: 0,
      bytesCopied: 0,
      blocksSkipped: 0,
      blocksTotal,
      blocksZero: 0,
      blocksRead: 0,
      bytesRead: 0,
      reencoded: false,
      basisPointId: null,
      seconds: seconds(),
      alreadyPresent: true,
    };
  }
  const basis = await findBasis(source, target, point, same);
  const mover = new BlockMover(source, target, views.switched ? { ...input, pools: undefined } : input);
  const concurrency = Math.max(1, input.concurrency ?? 32);
  const window = new Limiter(concurrency);
  /** Source name hex → target name, for repeats inside the run (and names given by copyBlocks batches). */
  const names = new Map<string, Promise<Buffer | null>>();
  const stats = { blocksCopied: 0, bytesCopied: 0, blocksSkipped: 0, blocksZero: 0, blocksRead: 0, bytesRead: 0, blocksDone: 0, bytesDone: 0 };
  const bytesTotal = point.disks.reduce((n, d) => n + d.sizeBytes, 0);
  let lastReport = 0;
  const report = () =>
    input.onProgress?.({
      blocksTotal,
      blocksDone: stats.blocksDone,
      blocksCopied: stats.blocksCopied,
      bytesCopied: stats.bytesCopied,
      blocksSkipped: stats.blocksSkipped,
      bytesTotal,
      bytesDone: stats.bytesDone,
    });

  /** The target name of a source block not known by position: from memory, or by moving it. */
  const resolve = async (hash: Buffer, size: number): Promise<Buffer | null> => {
    const hex = hash.toString('hex');
    const given = input.names?.get(hex);
    if (given) {
      stats.blocksSkipped++;
      return given;
    }
    const pending = names.get(hex);
    if (pending) {
      const name = await pending;
      stats.blocksSkipped++;
      return name;
    }
    const moving = mover.move(hash, size).then((outcome) => {
      if (outcome.copied) {
        stats.blocksCopied++;
        stats.bytesCopied += outcome.bytesWritten;
      } else stats.blocksSkipped++;
      if (outcome.bytesRead > 0) {
        stats.blocksRead++;
        stats.bytesRead += outcome.bytesRead;
      }
      return outcome.name;
    });
    if (names.size >= NAME_MEMORY) names.clear();
    names.set(hex, moving);
    // A failed move must not be remembered as a name.
    moving.catch(() => names.delete(hex));
    return moving;
  };

  const disks: PointDisk[] = [];
  try {
    for (const disk of point.disks) {
      const index = await source.readIndex(point.vappId, point.pointId, disk.diskId);
      if (index.blockSize !== disk.blockSize || index.diskSize !== disk.sizeBytes) {
        throw new RepositoryFormatError(`the index of disk ${disk.diskId} in point ${point.pointId} does not match point.json (block size or disk size): run \`vcd-backup repo verify\` on the source`);
      }
      const known = await diskBasis(source, target, basis, disk, same);
      const writer = new DiskIndexWriter(target.codec, indexKey(point.vappId, point.pointId, disk.diskId), index.blockSize, index.diskSize);
      const before = { copied: stats.blocksCopied, bytes: stats.bytesCopied, zero: stats.blocksZero };
      const done = new Map<number, Buffer | null>();
      let nextToWrite = 0;
      let failure: unknown;
      const settle = (block: number, name: Buffer | null) => {
        done.set(block, name);
        while (done.has(nextToWrite)) {
          writer.append(done.get(nextToWrite)!);
          done.delete(nextToWrite);
          stats.blocksDone++;
          stats.bytesDone += Math.min(index.blockSize, index.diskSize - nextToWrite * index.blockSize);
          nextToWrite++;
        }
      };
      for (let i = 0; i < index.blockCount; i++) {
        if (failure) break;
        if (input.signal?.aborted) {
          failure = abortedError();
          break;
        }
        const entry = index.entry(i);
        if (!entry) {
          stats.blocksZero++;
          settle(i, null);
          continue;
        }
        const hash = Buffer.from(entry);
        const name = knownByPosition(known, i, hash, same);
        if (name) {
          stats.blocksSkipped++;
          settle(i, name);
          continue;
        }
        const size = Math.min(index.blockSize, index.diskSize - i * index.blockSize);
        await window.acquire();
        if (failure) {
          window.release();
          break;
        }
        resolve(hash, size)
          .then((n) => settle(i, n))
          .catch((err: unknown) => {
            failure ??= err;
          })
          .finally(() => window.release());
        if (input.onProgress && stats.blocksDone - lastReport >= 64) {
          lastReport = stats.blocksDone;
          report();
        }
      }
      await window.drain();
      if (failure) throw failure;
      report();
      await target.putIndex(point.vappId, point.pointId, disk.diskId, writer.finish());
      disks.push({
        ...disk,
        blocksZero: stats.blocksZero - before.zero,
        blocksNew: stats.blocksCopied - before.copied,
        bytesUploaded: stats.bytesCopied - before.bytes,
      });
    }
  } finally {
    await mover.close();
  }
  if (point.hasVAppMetadata) await target.putVAppMetadata(point.vappId, point.pointId, await source.getVAppMetadata(point.vappId, point.pointId));
  const basisPoint = basis?.point;
  await target.commitPoint({
    format: FORMAT_VERSION,
    pointId: point.pointId,
    vappId: point.vappId,
    createdAt: point.createdAt,
    parentPointId: basisPoint && basisPoint.createdAt <= point.createdAt ? basisPoint.pointId : null,
    sourcePointId: point.pointId,
    hasVAppMetadata: point.hasVAppMetadata,
    disks,
  });
  return {
    pointId: point.pointId,
    vappId: point.vappId,
    sourcePointId: point.pointId,
    blocksCopied: stats.blocksCopied,
    bytesCopied: stats.bytesCopied,
    blocksSkipped: stats.blocksSkipped,
    blocksTotal,
    blocksZero: stats.blocksZero,
    blocksRead: stats.blocksRead,
    bytesRead: stats.bytesRead,
    reencoded: !same,
    basisPointId: basisPoint?.pointId ?? null,
    seconds: seconds(),
    alreadyPresent: false,
  };
}

export interface PlannedBlock {
  /** The block's name in the source. */
  readonly hash: Buffer;
  /** Plaintext bytes (from the index). */
  readonly size: number;
}

export interface CopyPlan {
  readonly vappId: string;
  readonly pointId: string;
  /** The target already has the point committed: nothing to do. */
  readonly alreadyPresent: boolean;
  /**
   * True under same naming: `blocks` is exactly what the target lacks (existence checked). Under different
   * naming the target name needs the plaintext, so `blocks` lists every distinct block not mapped by the
   * basis: `copyBlocks` reads them, re-names them and writes those the target lacks.
   */
  readonly exact: boolean;
  readonly basisPointId: string | null;
  readonly blocksTotal: number;
  readonly blocksZero: number;
  /** Non-zero positions known present (by the basis, an existence check or a repeat). */
  readonly blocksKnown: number;
  /** Distinct blocks to hand to `copyBlocks`, in disk order. */
  readonly blocks: readonly PlannedBlock[];
  readonly bytes: number;
}

/**
 * Plans a copy without moving anything, so a service can fan the blocks out in batches (`copyBlocks`) and
 * then commit with `copyPoint({ names })`. Holds one entry per distinct planned block in memory.
 */
export async function planCopy(sourceRepository: Repository, targetRepository: Repository, pointId: string, options: { vappId?: string; concurrency?: number; signal?: AbortSignal } = {}): Promise<CopyPlan> {
  const point = await resolveSourcePoint(sourceRepository, pointId, options.vappId);
  const { source, target } = copyViews(sourceRepository, targetRepository, point);
  const blocksTotal = point.disks.reduce((n, d) => n + d.blocksTotal, 0);
  const base = { vappId: point.vappId, pointId: point.pointId, blocksTotal };
  if (await pointIfCommitted(target, point.vappId, point.pointId)) {
    return { ...base, alreadyPresent: true, exact: true, basisPointId: null, blocksZero: 0, blocksKnown: 0, blocks: [], bytes: 0 };
  }
  const same = sameNaming(source, target);
  const basis = await findBasis(source, target, point, same);
  const seen = new Set<string>();
  const candidates: PlannedBlock[] = [];
  let blocksZero = 0;
  let blocksKnown = 0;
  for (const disk of point.disks) {
    const index = await source.readIndex(point.vappId, point.pointId, disk.diskId);
    const known = await diskBasis(source, target, basis, disk, same);
    for (let i = 0; i < index.blockCount; i++) {
      if (options.signal?.aborted) throw abortedError();
      const entry = index.entry(i);
      if (!entry) {
        blocksZero++;
        continue;
      }
      const hash = Buffer.from(entry);
      const hex = hash.toString('hex');
      if (knownByPosition(known, i, hash, same) || seen.has(hex)) {
        blocksKnown++;
        continue;
      }
      seen.add(hex);
      candidates.push({ hash, size: Math.min(index.blockSize, index.diskSize - i * index.blockSize) });
    }
  }
  let blocks = candidates;
  if (same) {
    const present = new Array<boolean>(candidates.length).fill(false);
    const limiter = new Limiter(Math.max(1, options.concurrency ?? 32));
    await Promise.all(candidates.map((c, n) => limiter.run(async () => void (present[n] = await target.hasBlock(c.hash)))));
    blocks = candidates.filter((_, n) => !present[n]);
    blocksKnown += candidates.length - blocks.length;
  }
  return { ...base, alreadyPresent: false, exact: same, basisPointId: basis?.point.pointId ?? null, blocksZero, blocksKnown, blocks, bytes: blocks.reduce((n, b) => n + b.size, 0) };
}

export interface CopiedBlock {
  readonly sourceHash: Buffer;
  /** The block's name in the target (equal to `sourceHash` under same naming). */
  readonly targetHash: Buffer | null;
  readonly copied: boolean;
  readonly bytesWritten: number;
}

export interface CopyBlocksResult {
  readonly blocks: readonly CopiedBlock[];
  readonly blocksCopied: number;
  readonly bytesCopied: number;
  readonly blocksSkipped: number;
  readonly bytesRead: number;
}

/**
 * Copies a batch of blocks by source name (a `CopyBlocksBatch`, e.g. 64 blocks): each is read, verified,
 * re-encoded when the naming differs, and written unless the target has it. Idempotent: a redelivered
 * batch writes nothing again. The returned target names feed `copyPoint({ names })` at commit.
 */
export async function copyBlocks(source: Repository, target: Repository, hashes: readonly Buffer[], options: CopyOptions = {}): Promise<CopyBlocksResult> {
  const mover = new BlockMover(source, target, options);
  const limiter = new Limiter(Math.max(1, options.concurrency ?? 32));
  try {
    const blocks = await Promise.all(
      hashes.map((hash) =>
        limiter.run(async () => {
          if (options.signal?.aborted) throw abortedError();
          const outcome = await mover.move(Buffer.from(hash));
          return { sourceHash: Buffer.from(hash), targetHash: outcome.name, copied: outcome.copied, bytesWritten: outcome.bytesWritten, bytesRead: outcome.bytesRead };
        }),
      ),
    );
    return {
      blocks: blocks.map(({ bytesRead: _read, ...b }) => b),
      blocksCopied: blocks.filter((b) => b.copied).length,
      bytesCopied: blocks.reduce((n, b) => n + b.bytesWritten, 0),
      blocksSkipped: blocks.filter((b) => !b.copied).length,
      bytesRead: blocks.reduce((n, b) => n + b.bytesRead, 0),
    };
  } finally {
    await mover.close();
  }
}

/** Blocks per `CopyBlocksBatch` message (DESIGN §1). */
export const COPY_BATCH_BLOCKS = 64;
