import { createHash, randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupDisk } from '../../lib/agent/backup-disk.js';
import { CodecPool } from '../../lib/agent/codec-pool.js';
import { backupSingleDisk, restoreSingleDisk } from '../../lib/agent/disk-jobs.js';
import { FileDiskSource } from '../../lib/agent/disk-source.js';
import { ManualClock, type Clock } from '../../lib/domain/clock.js';
import { parseRetentionPolicy } from '../../lib/domain/retention/index.js';
import { forgetPoints } from '../../lib/repository/forget.js';
import { FORMAT_VERSION, indexKey, newPointId, type PointDescriptor } from '../../lib/repository/format.js';
import { BlockHashSet, collectGarbage } from '../../lib/repository/gc.js';
import { LocalDirStore } from '../../lib/repository/local-dir-store.js';
import { ObjectStoreLock, RepositoryLockedError, type HeldLease } from '../../lib/repository/lock.js';
import { MemoryStore } from '../../lib/repository/memory-store.js';
import type { ObjectStore } from '../../lib/repository/object-store.js';
import { Repository } from '../../lib/repository/repository.js';
import { S3Store } from '../../lib/repository/s3-store.js';
import { verifyRepository } from '../../lib/repository/verify.js';
import { useLocalStack } from '../helpers/local-stack.js';
import { mutateImage, writeSyntheticImage } from '../helpers/synthetic-image.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 256 * KiB;
const HOUR = 3_600_000;

const stack = useLocalStack({ dynamodb: false });
let work: string;
let pool: CodecPool;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'vcdb-gc-'));
  pool = new CodecPool({ compressionLevel: 1 }, 2);
});
afterAll(async () => {
  await pool.close();
  await rm(work, { recursive: true, force: true });
});

const sha = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A clock at the real time plus an offset: object ages on real adapters come from the real time. */
const realClock = (offsetMs = 0): Clock => ({ now: () => new Date(Date.now() + offsetMs) });

async function newImage(name: string, size: number, seed = name): Promise<string> {
  const file = path.join(work, `${name}-${randomUUID().slice(0, 8)}`);
  await writeSyntheticImage(file, size, { seed, regionSize: 512 * KiB, layout: ['random', 'text', 'zero', 'random'] });
  return file;
}

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const info of store.list(prefix)) out.push(info.key);
  return out.sort();
}

/** Hex names of the blocks every committed point references, read independently of gc.ts. */
async function referenced(repository: Repository): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const p of repository.listPoints()) {
    for (const d of p.disks) {
      const index = await repository.readIndex(p.vappId, p.pointId, d.diskId);
      for (const h of index.entries()) if (h) out.add(h.toString('hex'));
    }
  }
  return out;
}

const blockNames = async (store: ObjectStore) => new Set((await keys(store, 'blocks/')).map((k) => k.slice(k.lastIndexOf('/') + 1)));

type Backend = { name: string; make: () => Promise<ObjectStore> };
const backends: Backend[] = [
  { name: 'file://', make: async () => new LocalDirStore(await mkdtemp(path.join(tmpdir(), 'vcdb-gc-repo-'))) },
  {
    name: 's3 (fauxqs)',
    make: async () => {
      const bucket = `gc-${randomUUID().slice(0, 8)}`;
      await stack().s3.send(new CreateBucketCommand({ Bucket: bucket }));
      return new S3Store({ bucket, prefix: 'repo', client: stack().s3 });
    },
  },
];

describe.each(backends)('repo gc on $name', ({ make }) => {
  const clock = new ManualClock('2026-11-01T10:00:00Z');

  it('deletes exactly the old unreferenced blocks; every committed point still restores; dry run changes nothing', async () => {
    const store = await make();
    const repository = await Repository.init(store, { clock, blockSize: BLOCK });
    const image = await newImage('gc-main', 3 * MiB);
    const p1 = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', pool });
    await mutateImage(image, 3 * MiB, { share: 0.34, writeSize: BLOCK, seed: 'm1' });
    clock.advance(HOUR);
    const p2 = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', parentPointId: p1.pointId, pool });
    const sha2 = await sha(image);
    await mutateImage(image, 3 * MiB, { share: 0.34, writeSize: BLOCK, seed: 'm2' });
    clock.advance(HOUR);
    const p3 = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', parentPointId: p2.pointId, pool });
    const sha3 = await sha(image);
    await repository.deletePoint('vapp-1', p1.pointId);

    const needed = await referenced(repository);
    const before = await blockNames(store);
    const garbage = [...before].filter((h) => !needed.has(h));
    expect(garbage.length).toBeGreaterThan(0);
    let garbageBytes = 0;
    for await (const info of store.list('blocks/')) if (!needed.has(info.key.slice(info.key.lastIndexOf('/') + 1))) garbageBytes += info.size;
    const everything = await keys(store, '');

    // Dry run: same numbers, nothing deleted, no lock left.
    const dry = await collectGarbage(repository, { dryRun: true, graceMs: 0, clock: realClock(60_000) });
    expect(dry).toMatchObject({ dryRun: true, points: 2, indexesRead: 2, blocksReferenced: needed.size, blocksListed: before.size, blocksDeleted: garbage.length, bytesFreed: garbageBytes, blocksMissing: 0 });
    expect(await keys(store, '')).toEqual(everything);

    // Default grace (24 h): everything here is minutes old, so nothing goes.
    const young = await collectGarbage(repository, { clock: realClock() });
    expect(young).toMatchObject({ blocksDeleted: 0, blocksKeptYoung: garbage.length, bytesKeptYoung: garbageBytes });
    expect(await keys(store, '')).toEqual(everything);

    // Past the grace period: exactly the garbage goes.
    const gc = await collectGarbage(repository, { graceMs: HOUR, clock: realClock(2 * HOUR) });
    expect(gc).toMatchObject({ dryRun: false, blocksDeleted: garbage.length, bytesFreed: garbageBytes, blocksKeptYoung: 0, orphanObjectsDeleted: 0 });
    expect(await blockNames(store)).toEqual(needed);
    expect(await keys(store, 'locks/')).toEqual([]);
    expect((await verifyRepository(repository)).ok).toBe(true);
    for (const [p, want] of [[p2, sha2], [p3, sha3]] as const) {
      const out = path.join(work, `gc-${p.pointId}.out`);
      await restoreSingleDisk({ repository, clock, pointId: p.pointId, diskId: 'disk-0', out, pool });
      expect(await sha(out)).toBe(want);
    }

    // A second run finds nothing more to do.
    const again = await collectGarbage(repository, { graceMs: 0, clock: realClock(2 * HOUR) });
    expect(again.blocksDeleted).toBe(0);
  });

  it('beside a running backup: blocks uploaded but not yet committed are younger than the grace and stay', async () => {
    const store = await make();
    const repository = await Repository.init(store, { clock, blockSize: BLOCK });
    const old = await backupSingleDisk({ repository, clock, sourcePath: await newImage('gc-old', 2 * MiB), vappId: 'vapp-1', diskId: 'disk-0', pool });
    await backupSingleDisk({ repository, clock, sourcePath: await newImage('gc-keep', 2 * MiB), vappId: 'vapp-2', diskId: 'disk-0', pool });
    await repository.deletePoint('vapp-1', old.pointId);
    const neededBefore = await referenced(repository);
    const oldBlocks = [...(await blockNames(store))].filter((h) => !neededBefore.has(h));
    await sleep(3000); // the deleted point's blocks are now 3 s old; the running backup's will be younger than 2 s

    // The running backup: blocks uploaded, index not written yet (we hold its index back), point.json not written.
    const image = await newImage('gc-running', 2 * MiB);
    const pointId = newPointId(clock.now(), 'aaaa0001');
    const source = await FileDiskSource.open(image);
    const result = await backupDisk({ repository, pool, source, vappId: 'vapp-3', pointId, diskId: 'disk-0', blockSize: BLOCK }).finally(() => source.close());
    const idxKey = indexKey('vapp-3', pointId, 'disk-0');
    const idxBody = await store.get(idxKey);
    await store.deleteMany([idxKey]);
    const running = (await blockNames(store)).size - neededBefore.size - oldBlocks.length;
    expect(running).toBe(result.stats.blocksNew);

    const gc = await collectGarbage(repository, { graceMs: 2000, clock: realClock() });
    expect(gc.blocksDeleted).toBe(oldBlocks.length);
    expect(gc.blocksKeptYoung).toBe(result.stats.blocksNew);
    const left = await blockNames(store);
    for (const h of oldBlocks) expect(left.has(h)).toBe(false);

    // The backup finishes: index, then point.json. It restores and the repository verifies.
    await store.put(idxKey, idxBody);
    const point: PointDescriptor = { format: FORMAT_VERSION, pointId, vappId: 'vapp-3', createdAt: clock.now().toISOString(), parentPointId: null, sourcePointId: null, hasVAppMetadata: false, disks: [result.disk] };
    await repository.commitPoint(point);
    const out = path.join(work, `running-${pointId}.out`);
    await restoreSingleDisk({ repository, clock, pointId, diskId: 'disk-0', out, pool });
    expect(await sha(out)).toBe(await sha(image));
    const verify = await verifyRepository(repository);
    expect(verify).toMatchObject({ ok: true, points: 2 });
  });

  it('a running backup whose index is written protects the old blocks it deduplicated against', async () => {
    const store = await make();
    const repository = await Repository.init(store, { clock, blockSize: BLOCK });
    const image = await newImage('gc-dedup', 2 * MiB);
    const gone = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', pool });
    await repository.deletePoint('vapp-1', gone.pointId);
    await sleep(3000);

    // Same content again: every block is found in the repository (old, unreferenced) and reused.
    const pointId = newPointId(clock.now(), 'bbbb0002');
    const source = await FileDiskSource.open(image);
    const result = await backupDisk({ repository, pool, source, vappId: 'vapp-1', pointId, diskId: 'disk-0', blockSize: BLOCK }).finally(() => source.close());
    expect(result.stats.blocksNew).toBe(0);

    const gc = await collectGarbage(repository, { graceMs: 2000, clock: realClock() });
    expect(gc).toMatchObject({ blocksDeleted: 0, inflightIndexesMarked: 1, uncommittedPointsKept: 1, orphanObjectsDeleted: 0 });
    await repository.commitPoint({ format: FORMAT_VERSION, pointId, vappId: 'vapp-1', createdAt: clock.now().toISOString(), parentPointId: null, sourcePointId: null, hasVAppMetadata: false, disks: [result.disk] });
    expect((await verifyRepository(repository)).ok).toBe(true);
  });

  it('a backup holding a shared lease keeps GC out entirely (the case the grace period cannot cover)', async () => {
    const store = await make();
    const repository = await Repository.init(store, { clock, blockSize: BLOCK });
    const image = await newImage('gc-lease', 1 * MiB);
    const gone = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', pool });
    await repository.deletePoint('vapp-1', gone.pointId);
    // Both sides judge the lease by the same (agreeing) clocks.
    const backupLease = await new ObjectStoreLock(store, { clock: realClock(HOUR), holder: 'backup of vapp-1', refreshMs: 0 }).acquire('shared');
    const before = await keys(store, 'blocks/');
    await expect(collectGarbage(repository, { graceMs: 0, clock: realClock(HOUR) })).rejects.toThrow(/backup of vapp-1 \(shared lease/);
    expect(await keys(store, 'blocks/')).toEqual(before);
    await backupLease.release();
    const gc = await collectGarbage(repository, { graceMs: 0, clock: realClock(HOUR) });
    expect(gc.blocksDeleted).toBe(before.length);
  });

  it('removes the objects of an uncommitted point older than the grace period, with its blocks', async () => {
    const store = await make();
    const repository = await Repository.init(store, { clock, blockSize: BLOCK });
    const committed = await backupSingleDisk({ repository, clock, sourcePath: await newImage('gc-c', 1 * MiB), vappId: 'vapp-1', diskId: 'disk-0', pool });
    const pointId = newPointId(clock.now(), 'cccc0003');
    const source = await FileDiskSource.open(await newImage('gc-crashed', 1 * MiB));
    const crashed = await backupDisk({ repository, pool, source, vappId: 'vapp-1', pointId, diskId: 'disk-0', blockSize: BLOCK }).finally(() => source.close());
    await repository.putVAppMetadata('vapp-1', pointId, { name: 'crashed before commit' });

    const crashedKeys = await keys(store, `points/vapp-1/${pointId}/`);
    const committedKeys = await keys(store, `points/vapp-1/${committed.pointId}/`);
    expect(crashedKeys).toContain(indexKey('vapp-1', pointId, 'disk-0'));
    expect(crashedKeys).not.toContain(`points/vapp-1/${pointId}/point.json`);

    const young = await collectGarbage(repository, { clock: realClock() });
    expect(young).toMatchObject({ orphanObjectsDeleted: 0, uncommittedPointsKept: 1, blocksDeleted: 0 });

    const gc = await collectGarbage(repository, { graceMs: HOUR, clock: realClock(2 * HOUR) });
    expect(gc).toMatchObject({ orphanObjectsDeleted: crashedKeys.length, uncommittedPointsKept: 0, blocksDeleted: crashed.stats.blocksNew, points: 1 });
    expect(await keys(store, `points/vapp-1/${pointId}/`)).toEqual([]);
    expect(await keys(store, `points/vapp-1/${committed.pointId}/`)).toEqual(committedKeys);
    expect((await verifyRepository(repository)).ok).toBe(true);
  });

  it('an interrupted GC leaves committed points intact and a rerun finishes the job', async () => {
    const real = await make();
    let blockDeletes = 0;
    let failAt = 2;
    const flaky: ObjectStore = {
      description: real.description,
      get: (k, r) => real.get(k, r),
      put: (k, b) => real.put(k, b),
      stat: (k) => real.stat(k),
      list: (p) => real.list(p),
      deleteMany: async (ks) => {
        if (ks.some((k) => k.startsWith('blocks/')) && ++blockDeletes === failAt) throw new Error('connection reset');
        await real.deleteMany(ks);
      },
    };
    const repository = await Repository.init(flaky, { clock, blockSize: BLOCK });
    const image = await newImage('gc-int', 3 * MiB);
    const a = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', pool });
    await mutateImage(image, 3 * MiB, { share: 0.5, writeSize: BLOCK, seed: 'int' });
    await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', parentPointId: a.pointId, pool });
    await repository.deletePoint('vapp-1', a.pointId);
    const needed = await referenced(repository);
    const garbage = [...(await blockNames(real))].filter((h) => !needed.has(h));
    expect(garbage.length).toBeGreaterThan(2);

    await expect(collectGarbage(repository, { graceMs: 0, clock: realClock(HOUR), deleteBatch: 1 })).rejects.toThrow('connection reset');
    expect(await keys(real, 'locks/')).toEqual([]); // released on failure
    const partial = await blockNames(real);
    expect(partial.size).toBe(needed.size + garbage.length - 1); // the first batch went, the second failed
    expect((await verifyRepository(repository)).ok).toBe(true);

    failAt = -1;
    const rerun = await collectGarbage(repository, { graceMs: 0, clock: realClock(HOUR), deleteBatch: 1 });
    expect(rerun.blocksDeleted).toBe(garbage.length - 1);
    expect(await blockNames(real)).toEqual(needed);
    expect((await verifyRepository(repository)).ok).toBe(true);
  });

  it('a GC whose process died leaves a lease that blocks until it expires', async () => {
    const store = await make();
    const repository = await Repository.init(store, { clock, blockSize: BLOCK });
    const lockClock = new ManualClock(new Date());
    await new ObjectStoreLock(store, { clock: lockClock, holder: 'dead gc', refreshMs: 0, ttlMs: 10 * 60_000 }).acquire('exclusive'); // never released
    const lock = new ObjectStoreLock(store, { clock: lockClock, holder: 'new gc', refreshMs: 0 });
    await expect(collectGarbage(repository, { graceMs: 0, clock: lockClock, lock })).rejects.toBeInstanceOf(RepositoryLockedError);
    lockClock.advance(10 * 60_000);
    await expect(collectGarbage(repository, { graceMs: 0, clock: lockClock, lock })).resolves.toMatchObject({ blocksDeleted: 0 });
    expect(await keys(store, 'locks/')).toEqual([]); // the stale lock was cleaned, ours released
  });
});

describe('BlockHashSet', () => {
  it('behaves like a Set of hashes across growth', () => {
    const set = new BlockHashSet(4);
    const model = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const h = createHash('sha256').update(String(i % 3777)).digest();
      expect(set.add(h)).toBe(!model.has(h.toString('hex')));
      model.add(h.toString('hex'));
    }
    expect(set.size).toBe(model.size);
    for (let i = 0; i < 8000; i++) {
      const h = createHash('sha256').update(String(i)).digest();
      expect(set.has(h)).toBe(model.has(h.toString('hex')));
    }
    expect(set.has(Buffer.alloc(32))).toBe(false);
    expect(() => set.add(Buffer.alloc(32))).toThrow(RangeError);
    expect(set.byteLength).toBeLessThanOrEqual(32 * Math.ceil((model.size * 8) / 3));
  });
});

describe('GC never deletes a block a committed point references (fast-check, memory store, ManualClock)', () => {
  const IMAGE = 1 * MiB;
  let images: string[] = [];
  beforeAll(async () => {
    const a = await newImage('pbt-a', IMAGE, 'pbt-a');
    const b = path.join(work, 'pbt-b');
    await copyFile(a, b);
    await mutateImage(b, IMAGE, { share: 0.5, writeSize: BLOCK, seed: 'pbt-b' });
    const c = await newImage('pbt-c', IMAGE, 'pbt-c');
    const d = path.join(work, 'pbt-d');
    await copyFile(c, d);
    await mutateImage(d, IMAGE, { share: 0.25, writeSize: BLOCK, seed: 'pbt-d' });
    images = [a, b, c, d];
  });

  type Op =
    | { kind: 'backup'; image: number; vapp: number }
    | { kind: 'start'; image: number; vapp: number }
    | { kind: 'finish' }
    | { kind: 'abandon' }
    | { kind: 'forget'; keep: number }
    | { kind: 'delete'; pick: number }
    | { kind: 'gc'; graceHours: number; dryRun: boolean }
    | { kind: 'advance'; hours: number };

  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('backup' as const), image: fc.nat(3), vapp: fc.nat(1) }),
    fc.record({ kind: fc.constant('start' as const), image: fc.nat(3), vapp: fc.nat(1) }),
    fc.constant({ kind: 'finish' as const }),
    fc.constant({ kind: 'abandon' as const }),
    fc.record({ kind: fc.constant('forget' as const), keep: fc.integer({ min: 1, max: 2 }) }),
    fc.record({ kind: fc.constant('delete' as const), pick: fc.nat(10) }),
    fc.record({ kind: fc.constant('gc' as const), graceHours: fc.constantFrom(0, 1, 24), dryRun: fc.boolean() }),
    fc.record({ kind: fc.constant('advance' as const), hours: fc.integer({ min: 1, max: 30 }) }),
  );

  it('holds over random sequences of backup, forget, delete and gc', async () => {
    const seen = { backups: 0, blocksDeleted: 0, gcRefused: 0, gcRun: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 14 }), async (ops) => {
        const clock = new ManualClock('2026-11-01T10:00:00Z');
        const store = new MemoryStore(clock);
        const repository = await Repository.init(store, { clock, blockSize: BLOCK });
        const lock = () => new ObjectStoreLock(store, { clock, refreshMs: 0, ttlMs: 7 * 24 * HOUR, holder: 'model' });
        const pending: Array<{ lease: HeldLease; point: PointDescriptor }> = [];
        const check = async () => {
          const have = await blockNames(store);
          for (const h of await referenced(repository)) expect(have.has(h)).toBe(true);
        };
        for (const o of ops) {
          clock.advance(60_000);
          switch (o.kind) {
            case 'backup':
              await backupSingleDisk({ repository, clock, sourcePath: images[o.image]!, vappId: `v${o.vapp}`, diskId: 'd0', pool });
              seen.backups++;
              break;
            case 'start': {
              // A backup as the agent should run it: under a shared lease, blocks and index written, not committed.
              const lease = await lock().acquire('shared');
              const pointId = newPointId(clock.now(), randomUUID().slice(0, 8));
              const source = await FileDiskSource.open(images[o.image]!);
              const r = await backupDisk({ repository, pool, source, vappId: `v${o.vapp}`, pointId, diskId: 'd0', blockSize: BLOCK }).finally(() => source.close());
              pending.push({ lease, point: { format: FORMAT_VERSION, pointId, vappId: `v${o.vapp}`, createdAt: clock.now().toISOString(), parentPointId: null, sourcePointId: null, hasVAppMetadata: false, disks: [r.disk] } });
              break;
            }
            case 'finish': {
              const p = pending.shift();
              if (p) {
                await repository.commitPoint(p.point);
                await p.lease.release();
              }
              break;
            }
            case 'abandon':
              await pending.shift()?.lease.release(); // crashed before commit: its objects stay for GC
              break;
            case 'forget':
              await forgetPoints(repository, parseRetentionPolicy({ shortTerm: { restorePoints: o.keep } }), clock.now(), { clock, lock: lock() });
              break;
            case 'delete': {
              const all: PointDescriptor[] = [];
              for await (const p of repository.listPoints()) all.push(p);
              const victim = all.sort((a, b) => (a.pointId < b.pointId ? -1 : 1))[o.pick % Math.max(1, all.length)];
              if (victim) await repository.deletePoint(victim.vappId, victim.pointId);
              break;
            }
            case 'gc': {
              const run = collectGarbage(repository, { graceMs: o.graceHours * HOUR, dryRun: o.dryRun, clock, lock: lock() });
              if (pending.length > 0 && !o.dryRun) {
                await expect(run).rejects.toBeInstanceOf(RepositoryLockedError);
                seen.gcRefused++;
              } else {
                const report = await run;
                seen.gcRun++;
                if (!o.dryRun) seen.blocksDeleted += report.blocksDeleted;
              }
              break;
            }
            case 'advance':
              clock.advance(o.hours * HOUR);
              for (const p of pending) await p.lease.refresh();
              break;
          }
          await check();
        }
        // Finish what runs, then GC well past the grace period: exactly the referenced blocks remain.
        for (const p of pending.splice(0)) {
          await repository.commitPoint(p.point);
          await p.lease.release();
        }
        await check();
        clock.advance(25 * HOUR);
        seen.blocksDeleted += (await collectGarbage(repository, { clock, lock: lock() })).blocksDeleted;
        expect(await blockNames(store)).toEqual(await referenced(repository));
        const pointKeys = await keys(store, 'points/');
        for (const k of pointKeys) {
          if (k.split('/').length < 4) continue; // chain.json
          expect(pointKeys).toContain(`${k.split('/').slice(0, 3).join('/')}/point.json`); // no orphans left
        }
        expect((await verifyRepository(repository)).ok).toBe(true);
      }),
      { numRuns: 50 },
    );
    // The property was exercised, not vacuously true.
    expect(seen.backups).toBeGreaterThan(10);
    expect(seen.gcRun).toBeGreaterThan(5);
    expect(seen.gcRefused).toBeGreaterThan(0);
    expect(seen.blocksDeleted).toBeGreaterThan(0);
  }, 240_000);
});
