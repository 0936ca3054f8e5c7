import { randomUUID } from 'node:crypto';
import { cli } from '../helpers/cli.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecPool } from '../../lib/agent/codec-pool.js';
import { backupSingleDisk } from '../../lib/agent/disk-jobs.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { applyRetention, parseRetentionPolicy } from '../../lib/domain/retention/index.js';
import { chainStateKey, readChainState, recordPointFlags } from '../../lib/repository/chain-state.js';
import { forgetPoints } from '../../lib/repository/forget.js';
import { pointKey } from '../../lib/repository/format.js';
import { LocalDirStore } from '../../lib/repository/local-dir-store.js';
import { ObjectStoreLock } from '../../lib/repository/lock.js';
import type { ObjectStore } from '../../lib/repository/object-store.js';
import { Repository } from '../../lib/repository/repository.js';
import { S3Store } from '../../lib/repository/s3-store.js';
import { verifyRepository } from '../../lib/repository/verify.js';
import { useLocalStack } from '../helpers/local-stack.js';
import { writeSyntheticImage } from '../helpers/synthetic-image.js';

const KiB = 1024;
const BLOCK = 256 * KiB;
const DAY = 86_400_000;

const stack = useLocalStack({ dynamodb: false });
let work: string;
let pool: CodecPool;
let image: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'vcdb-forget-'));
  pool = new CodecPool({ compressionLevel: 1 }, 2);
  image = path.join(work, 'disk.img');
  await writeSyntheticImage(image, 1024 * KiB, { seed: 'forget', regionSize: 256 * KiB, layout: ['random', 'text'] });
});
afterAll(async () => {
  await pool.close();
  await rm(work, { recursive: true, force: true });
});

/** Records every deleteMany call, in order. */
function recording(inner: ObjectStore): { store: ObjectStore; deletes: string[][] } {
  const deletes: string[][] = [];
  return {
    deletes,
    store: {
      description: inner.description,
      get: (k, r) => inner.get(k, r),
      put: (k, b) => inner.put(k, b),
      stat: (k) => inner.stat(k),
      list: (p) => inner.list(p),
      deleteMany: async (ks) => {
        // Lock objects come and go with every backup's shared lease; only repository data is recorded.
        const data = ks.filter((k) => !k.startsWith('locks/'));
        if (data.length > 0) deletes.push(data);
        await inner.deleteMany(ks);
      },
    },
  };
}

async function keys(store: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const info of store.list(prefix)) out.push(info.key);
  return out.sort();
}

async function pointIds(repository: Repository, vappId?: string): Promise<string[]> {
  const out: string[] = [];
  for await (const p of repository.listPoints()) if (!vappId || p.vappId === vappId) out.push(p.pointId);
  return out.sort();
}

const policy = parseRetentionPolicy({ shortTerm: { restorePoints: 2 }, gfs: { weekly: { keep: 1, weekday: 'sunday' } } });

/** One point a day for `days` days (vApp `vappId`), each committed by a real backup; flags recorded when `record`. */
async function chain(repository: Repository, clock: ManualClock, vappId: string, days: number, record: boolean): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < days; i++) {
    const b = await backupSingleDisk({ repository, clock, sourcePath: image, vappId, diskId: 'disk-0', pool });
    if (record) await recordPointFlags(repository, policy, await repository.readPoint(vappId, b.pointId), clock);
    ids.push(b.pointId);
    clock.advance(DAY);
  }
  return ids;
}

type Backend = { name: string; make: () => Promise<ObjectStore> };
const backends: Backend[] = [
  { name: 'file://', make: async () => new LocalDirStore(await mkdtemp(path.join(tmpdir(), 'vcdb-forget-repo-'))) },
  {
    name: 's3 (fauxqs)',
    make: async () => {
      const bucket = `forget-${randomUUID().slice(0, 8)}`;
      await stack().s3.send(new CreateBucketCommand({ Bucket: bucket }));
      return new S3Store({ bucket, prefix: 'repo', client: stack().s3 });
    },
  },
];

describe.each(backends)('repo forget on $name', ({ make }) => {
  it('deletes exactly the points the plan says, point.json first; dry run changes nothing', async () => {
    // 2026-10-28 is a Wednesday: the chain covers Sunday Nov 1 and Sunday Nov 8.
    const clock = new ManualClock('2026-10-28T22:00:00Z');
    const rec = recording(await make());
    const repository = await Repository.init(rec.store, { clock, blockSize: BLOCK });
    const ids = await chain(repository, clock, 'vapp-1', 14, true);
    const other = await chain(repository, clock, 'vapp-2', 1, true);
    const state = await readChainState(repository, 'vapp-1');
    const now = clock.now();

    // The expected plan, computed from the recorded flags with the pure domain function.
    const expected = applyRetention(policy, ids.map((id, i) => ({ id, createdAt: new Date(Date.parse('2026-10-28T22:00:00Z') + i * DAY).toISOString(), flags: state.flags[id] ?? [] })), now);
    const expectDelete = expected.delete.map((d) => d.point.id);
    expect(expectDelete.length).toBeGreaterThan(0);
    expect(state.flags[ids[0]!]).toEqual(['weekly']); // the chain's first point (late assignment)

    const before = await keys(rec.store);
    const dry = await forgetPoints(repository, policy, now, { dryRun: true, clock });
    expect(dry.dryRun).toBe(true);
    expect(dry.vapps.find((v) => v.vappId === 'vapp-1')!.delete.map((d) => d.pointId)).toEqual(expectDelete);
    expect(await keys(rec.store)).toEqual(before);
    expect(rec.deletes).toEqual([]);

    const report = await forgetPoints(repository, policy, now, { clock });
    const v1 = report.vapps.find((v) => v.vappId === 'vapp-1')!;
    expect(v1.delete.map((d) => d.pointId)).toEqual(expectDelete);
    expect(v1.keep.map((k) => k.pointId)).toEqual(expected.keep.map((k) => k.point.id));
    expect(v1.keep.at(-1)!.reasons).toContain('newest point');
    expect(v1.replayedFlags).toEqual([]);
    expect(report.vapps.find((v) => v.vappId === 'vapp-2')!.delete).toEqual([]);
    expect(await pointIds(repository, 'vapp-1')).toEqual(ids.filter((id) => !expectDelete.includes(id)).sort());
    expect(await pointIds(repository, 'vapp-2')).toEqual(other);

    // point.json of each deleted point went first, in a call of its own, before any other object of the point.
    const pointDeletes = rec.deletes.filter((d) => d.some((k) => k.startsWith('points/')));
    for (const id of expectDelete) {
      const first = pointDeletes.findIndex((d) => d.some((k) => k.includes(`/${id}/`)));
      expect(pointDeletes[first]).toEqual([pointKey('vapp-1', id)]);
    }
    for (const id of expectDelete) expect(await keys(rec.store, `points/vapp-1/${id}/`)).toEqual([]);
    expect(await keys(rec.store, 'locks/')).toEqual([]);

    // The chain keeps its given periods; the flags of deleted points are pruned.
    const after = await readChainState(repository, 'vapp-1');
    expect(after.givenPeriods).toEqual(state.givenPeriods);
    expect(Object.keys(after.flags).sort()).toEqual(ids.filter((id) => !expectDelete.includes(id)).sort());
    expect((await verifyRepository(repository)).ok).toBe(true);

    // Applying again at the same instant deletes nothing.
    expect((await forgetPoints(repository, policy, now, { clock })).deleted).toBe(0);
  });

  it('replays flags for points committed without recorded flags, records them, and honours --vapp', async () => {
    const clock = new ManualClock('2026-10-28T22:00:00Z');
    const repository = await Repository.init(await make(), { clock, blockSize: BLOCK });
    const ids = await chain(repository, clock, 'vapp-1', 10, false);
    const others = await chain(repository, clock, 'vapp-2', 4, false);
    expect(await repository.store.stat(chainStateKey('vapp-1'))).toBeUndefined();

    const report = await forgetPoints(repository, policy, clock.now(), { clock, vappId: 'vapp-1' });
    expect(report.vapps.map((v) => v.vappId)).toEqual(['vapp-1']);
    const v1 = report.vapps[0]!;
    expect(v1.replayedFlags).toEqual(ids);
    // Wed Oct 28 (first point: weekly period from Sun Oct 25) and Sun Nov 1 get the weekly flag.
    const weekly = [...v1.keep, ...v1.delete].filter((p) => p.flags.includes('weekly')).map((p) => p.createdAt).sort();
    expect(weekly).toEqual(['2026-10-28T22:00:00.000Z', '2026-11-01T22:00:00.000Z']);
    const state = await readChainState(repository, 'vapp-1');
    expect(state.givenPeriods).toEqual(['weekly:2026-10-25', 'weekly:2026-11-01']);
    expect(Object.keys(state.flags).sort()).toEqual(v1.keep.map((k) => k.pointId).sort());
    expect(await pointIds(repository, 'vapp-2')).toEqual(others);
    expect(await repository.store.stat(chainStateKey('vapp-2'))).toBeUndefined();

    // Recording a later point continues from the recorded periods: the week of Nov 1 does not give its flag twice.
    const commit = await recordPointFlags(repository, policy, { vappId: 'vapp-1', pointId: 'p-late', createdAt: '2026-11-06T23:00:00Z' }, clock);
    expect(commit.flags).toEqual([]);
  });

  it('refuses to run while GC holds the exclusive lease', async () => {
    const clock = new ManualClock(new Date());
    const store = await make();
    const repository = await Repository.init(store, { clock, blockSize: BLOCK });
    await chain(repository, clock, 'vapp-1', 3, true);
    const gc = await new ObjectStoreLock(store, { clock, holder: 'vcd-backup repo gc on other-host (pid 7)', refreshMs: 0 }).acquire('exclusive');
    await expect(forgetPoints(repository, policy, clock.now(), { clock })).rejects.toMatchObject({ code: 'REPOSITORY_LOCKED' });
    expect(await pointIds(repository)).toHaveLength(3);
    await gc.release();
  });
});

describe('vcd-backup repo forget|gc (CLI)', () => {
  const run = (args: string[]) => cli(args);

  it('forget and gc as a user runs them: dry run, JSON, readable output, exit codes', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vcdb-forget-cli-'));
    const url = pathToFileURL(dir).href;
    const clock = new ManualClock('2026-10-28T22:00:00Z');
    const repository = await Repository.init(new LocalDirStore(dir), { clock, blockSize: BLOCK });
    const ids = await chain(repository, clock, 'vapp-1', 5, false);
    const policyFile = path.join(work, 'policy.json');
    await writeFile(policyFile, JSON.stringify({ shortTerm: { restorePoints: 2 } }));
    const now = clock.now().toISOString();

    const dry = await run(['repo', 'forget', '--repo', url, '--policy', policyFile, '--now', now, '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    const planned = JSON.parse(dry.stdout) as { dryRun: boolean; deleted: number; vapps: Array<{ delete: Array<{ pointId: string }> }> };
    expect(planned.dryRun).toBe(true);
    expect(planned.vapps[0]!.delete.map((d) => d.pointId)).toEqual(ids.slice(0, 3));
    expect(await pointIds(repository)).toHaveLength(5);

    const human = await run(['repo', 'forget', '--repo', url, '--policy', policyFile, '--now', now]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/repo forget at .*: 1 vApp\(s\), keep 2, deleted 3/);
    expect(human.stdout).toMatch(/DELETED\s+short-term: not among 2 newest/);
    expect(human.stdout).toContain('repo gc');
    expect(await pointIds(repository)).toEqual(ids.slice(3).sort());

    const gcDry = await run(['repo', 'gc', '--repo', url, '--grace', '0', '--dry-run', '--json']);
    expect(gcDry.code).toBe(0);
    expect(JSON.parse(gcDry.stdout)).toMatchObject({ dryRun: true, blocksDeleted: 0, points: 2 }); // same image: all blocks still referenced

    const gc = await run(['repo', 'gc', '--repo', url]);
    expect(gc.code).toBe(0);
    expect(gc.stdout).toMatch(/^repo gc: freed 0 B/);
    expect(gc.stdout).toMatch(/kept: younger than 24 h/);

    // A held exclusive lease: exit 1, naming the holder and how to proceed.
    const held = await new ObjectStoreLock(new LocalDirStore(dir), { holder: 'vcd-backup repo gc on elsewhere (pid 9)', refreshMs: 0 }).acquire('exclusive');
    const locked = await run(['repo', 'gc', '--repo', url, '--grace', '0']);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(/is locked by vcd-backup repo gc on elsewhere \(pid 9\) \(exclusive lease until .*wait for that work to finish.*\[REPOSITORY_LOCKED\]/);
    const forgetLocked = await run(['repo', 'forget', '--repo', url, '--policy', policyFile]);
    expect(forgetLocked.code).toBe(1);
    await held.release();

    // Bad usage: exit 2 with a message that says what is allowed.
    const badGrace = await run(['repo', 'gc', '--repo', url, '--grace', 'soon']);
    expect(badGrace.code).toBe(2);
    expect(badGrace.stderr).toMatch(/--grace must be a number of hours/);
    await writeFile(policyFile, JSON.stringify({ shortTerm: { restorePoint: 2 } }));
    const badPolicy = await run(['repo', 'forget', '--repo', url, '--policy', policyFile]);
    expect(badPolicy.code).toBe(2);
    expect(badPolicy.stderr).toMatch(/shortTerm\.restorePoint: unknown field.*RETENTION_POLICY_INVALID/);
    const badNow = await run(['repo', 'forget', '--repo', url, '--policy', policyFile, '--now', '2026-02-30']);
    expect(badNow.code).toBe(2);
    await rm(dir, { recursive: true, force: true });
  });
});
