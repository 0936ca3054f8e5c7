import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupSingleDisk, restoreSingleDisk, type SingleDiskBackupResult } from '../../lib/agent/disk-jobs.js';
import { CodecPool } from '../../lib/agent/codec-pool.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { copyPoint } from '../../lib/repository/copy-point.js';
import { BlockCorruptError, PointNotFoundError, RepositoryIntegrityError, RepositoryKeyError } from '../../lib/repository/errors.js';
import { CONFIG_KEY, blockKey, pointKey } from '../../lib/repository/format.js';
import { collectGarbage } from '../../lib/repository/gc.js';
import type { KeySource } from '../../lib/repository/keys.js';
import { LocalDirStore } from '../../lib/repository/local-dir-store.js';
import type { ObjectStore } from '../../lib/repository/object-store.js';
import { Repository } from '../../lib/repository/repository.js';
import { S3Store } from '../../lib/repository/s3-store.js';
import { verifyRepository } from '../../lib/repository/verify.js';
import { Secret } from '../../lib/secret.js';
import { RepositoryRegistry } from '../../lib/wiring/repository-registry.js';
import { useLocalStack } from '../helpers/local-stack.js';
import { mutateImage, writeSyntheticImage } from '../helpers/synthetic-image.js';

/**
 * A hostile storage provider (or anyone who can write the bucket) against format 2: every tampering below
 * must be detected with an error naming the object, on a local directory and on S3 (the local server).
 * And tenants sharing a repository must not share blocks, learn of each other's content, or read each other.
 */
const KiB = 1024;
const BLOCK = 256 * KiB;
const SIZE = 2 * 1024 * KiB + 1000;
const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };
const key: KeySource = { kind: 'passphrase', passphrase: new Secret('tamper test passphrase'), scrypt: FAST_SCRYPT };

const stack = useLocalStack({ dynamodb: false });
const clock = new ManualClock('2026-12-01T10:00:00Z');
let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'vcdb-tamper-'));
});
// One codec pool per view for the whole file: starting worker threads is most of a small backup's time.
const pools = new Map<Repository, CodecPool>();
const poolOf = (repository: Repository) => {
  let pool = pools.get(repository);
  if (!pool) pools.set(repository, (pool = new CodecPool(repository.codecSettings(), 1)));
  return pool;
};
afterAll(async () => {
  await Promise.all([...pools.values()].map((p) => p.close()));
  await rm(work, { recursive: true, force: true });
});

type Kind = 'local' | 's3';

const urls = new WeakMap<ObjectStore, string>();

async function newStore(kind: Kind): Promise<ObjectStore> {
  if (kind === 'local') return new LocalDirStore(await mkdtemp(path.join(work, 'repo-')));
  const bucket = `tamper-${randomUUID().slice(0, 8)}`;
  await stack().s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const store = new S3Store({ bucket, prefix: 'repo', client: stack().s3 });
  urls.set(store, `s3://${bucket}/repo`);
  return store;
}

async function newImage(seed: string): Promise<string> {
  const file = path.join(work, `${seed}-${randomUUID().slice(0, 6)}.img`);
  await writeSyntheticImage(file, SIZE, { seed, regionSize: BLOCK });
  return file;
}

const sha = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

async function backup(repository: Repository, image: string, vappId: string, parentPointId?: string): Promise<SingleDiskBackupResult> {
  clock.advance(60_000);
  return backupSingleDisk({ repository, clock, sourcePath: image, vappId, diskId: 'disk-0', parentPointId, blockSize: BLOCK, pool: poolOf(repository) });
}

async function restore(repository: Repository, pointId: string): Promise<string> {
  const out = path.join(work, `restore-${randomUUID().slice(0, 6)}.img`);
  const point = await repository.findPoint(pointId);
  await restoreSingleDisk({ repository, clock, pointId, diskId: 'disk-0', out, pool: poolOf(repository.viewFor(point)) });
  return out;
}

async function blockKeysOf(repository: Repository, vappId: string, pointId: string): Promise<string[]> {
  const index = await repository.viewFor(await repository.readPoint(vappId, pointId)).readIndex(vappId, pointId, 'disk-0');
  const keys: string[] = [];
  for (const hash of index.entries()) if (hash) keys.push(blockKey(hash.toString('hex')));
  return keys;
}

async function editJson(store: ObjectStore, objectKey: string, edit: (doc: Record<string, unknown>) => void): Promise<void> {
  const doc = JSON.parse((await store.get(objectKey)).toString('utf8')) as Record<string, unknown>;
  edit(doc);
  await store.put(objectKey, Buffer.from(JSON.stringify(doc, null, 2)));
}

/** Expects `promise` to fail with a RepositoryIntegrityError naming `objectKey`. */
async function expectTampered(promise: Promise<unknown>, objectKey: string, reason?: RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RepositoryIntegrityError);
  expect((err as RepositoryIntegrityError).code).toBe('REPOSITORY_TAMPERED');
  expect((err as RepositoryIntegrityError).objectKey).toBe(objectKey);
  expect((err as Error).message).toContain(objectKey);
  if (reason) expect((err as Error).message).toMatch(reason);
}

interface Fixture {
  store: ObjectStore;
  repository: Repository;
  full: SingleDiskBackupResult;
  incr: SingleDiskBackupResult;
  other: SingleDiskBackupResult;
}

/** An encrypted repository with a chain of two points of vapp-a (tenant acme) and one point of vapp-b. */
async function encryptedFixture(kind: Kind): Promise<Fixture> {
  const store = await newStore(kind);
  await Repository.init(store, { clock, keySource: key, blockSize: BLOCK });
  const repository = (await Repository.open(store, key)).forTenant('acme');
  const image = await newImage('tamper-a');
  const full = await backup(repository, image, 'vapp-a');
  await mutateImage(image, SIZE, { share: 0.3, writeSize: BLOCK, seed: 'tamper' });
  const incr = await backup(repository, image, 'vapp-a', full.pointId);
  const other = await backup(repository, await newImage('tamper-b'), 'vapp-b');
  return { store, repository, full, incr, other };
}

describe.each<Kind>(['local', 's3'])('tampering with an encrypted %s repository', (kind) => {
  it('a config.json downgraded to plaintext, edited, or turned back into format 1 is refused when opening with the key', async () => {
    const { store } = await encryptedFixture(kind);
    const original = await store.get(CONFIG_KEY);

    await editJson(store, CONFIG_KEY, (doc) => {
      doc.encryption = null;
      doc.blockHash = 'sha256';
      delete doc.mac;
    });
    await expectTampered(Repository.open(store, key), CONFIG_KEY, /not encrypted, but a key was given/);

    await store.put(CONFIG_KEY, original);
    await editJson(store, CONFIG_KEY, (doc) => {
      doc.compression = { algorithm: 'zstd', level: 19 };
    });
    await expectTampered(Repository.open(store, key), CONFIG_KEY, /MAC does not match/);

    await store.put(CONFIG_KEY, original);
    await editJson(store, CONFIG_KEY, (doc) => {
      doc.format = 1;
      delete doc.mac;
      delete doc.namingSalt;
    });
    await expectTampered(Repository.open(store, key), CONFIG_KEY, /format-2 repository/);

    await store.put(CONFIG_KEY, original);
    await expect(Repository.open(store, key)).resolves.toBeInstanceOf(Repository);
  });

  it('a swapped point.json is found by reading, restore, listing and verify', async () => {
    const { store, repository, full, incr } = await encryptedFixture(kind);
    const a = pointKey('vapp-a', full.pointId);
    const b = pointKey('vapp-a', incr.pointId);
    const [bodyA, bodyB] = [await store.get(a), await store.get(b)];
    await store.put(a, bodyB);
    await store.put(b, bodyA);
    await expectTampered(repository.readPoint('vapp-a', full.pointId), a, /swapped or replayed/);
    await expectTampered(restore(repository, incr.pointId), b);
    await expect(
      (async () => {
        for await (const _ of repository.listPoints());
      })(),
    ).rejects.toBeInstanceOf(RepositoryIntegrityError);
    const report = await verifyRepository(repository);
    expect(report.ok).toBe(false);
    expect(report.problems.filter((p) => p.problem === 'tampered').map((p) => p.block).sort()).toEqual([a, b].sort());
    expect(report.damagedPoints).toEqual(expect.arrayContaining([`vapp-a/${full.pointId}`, `vapp-a/${incr.pointId}`]));
  });

  it('a point.json replayed under another vApp is found, also when its ids are rewritten to match', async () => {
    const { store, repository, full, other } = await encryptedFixture(kind);
    const replayed = pointKey('vapp-b', full.pointId);
    await store.put(replayed, await store.get(pointKey('vapp-a', full.pointId)));
    await expectTampered(repository.readPoint('vapp-b', full.pointId), replayed, /swapped or replayed/);

    await editJson(store, replayed, (doc) => {
      doc.vappId = 'vapp-b';
    });
    await expectTampered(repository.readPoint('vapp-b', full.pointId), replayed, /MAC does not match/);
    await expectTampered(repository.findPoint(full.pointId, 'vapp-b'), replayed);
    const report = await verifyRepository(repository);
    expect(report.problems).toEqual([expect.objectContaining({ block: replayed, problem: 'tampered', points: [`vapp-b/${full.pointId}`] })]);
    // the genuine points are unaffected
    await expect(repository.readPoint('vapp-b', other.pointId)).resolves.toMatchObject({ pointId: other.pointId });
  });

  it('an edited point.json (another tenant, sizes, a dropped MAC) is found by restore and verify', async () => {
    const { store, repository, incr } = await encryptedFixture(kind);
    const k = pointKey('vapp-a', incr.pointId);
    const original = await store.get(k);
    for (const edit of [
      (doc: Record<string, unknown>) => void (doc.createdAt = '2020-01-01T00:00:00.000Z'),
      (doc: Record<string, unknown>) => void (doc.tenantId = 'globex'),
      (doc: Record<string, unknown>) => void ((doc.disks as Array<Record<string, unknown>>)[0]!.blocksNew = 0),
      (doc: Record<string, unknown>) => void delete doc.mac,
      (doc: Record<string, unknown>) => void (doc.format = 1),
    ]) {
      await store.put(k, original);
      await editJson(store, k, edit);
      await expect(repository.readPoint('vapp-a', incr.pointId)).rejects.toThrow(k);
      await expect(restore(repository, incr.pointId)).rejects.toThrow(k);
      expect((await verifyRepository(repository)).problems).toEqual([expect.objectContaining({ block: k, problem: 'tampered' })]);
    }
    await store.put(k, original);
    expect((await verifyRepository(repository)).ok).toBe(true);
  });

  it('a swapped block is found by restore and verify, naming the block', async () => {
    const { store, repository, full, other } = await encryptedFixture(kind);
    const [victim] = await blockKeysOf(repository, 'vapp-a', full.pointId);
    const [intruder] = await blockKeysOf(repository, 'vapp-b', other.pointId);
    await store.put(victim!, await store.get(intruder!));
    const hex = victim!.slice(victim!.lastIndexOf('/') + 1);
    const err = await restore(repository, full.pointId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlockCorruptError);
    expect((err as Error).message).toContain(hex);
    const report = await verifyRepository(repository);
    expect(report.problems).toEqual([expect.objectContaining({ block: hex, problem: 'corrupt', points: expect.arrayContaining([`vapp-a/${full.pointId}`]) as unknown })]);
  });
});

describe.each<Kind>(['local', 's3'])('tampering with a plaintext %s repository', (kind) => {
  it('finds swapped points and blocks by their names; edits cannot be authenticated without a secret', async () => {
    const store = await newStore(kind);
    await Repository.init(store, { clock, blockSize: BLOCK });
    const repository = await Repository.open(store);
    expect(repository.authenticatesPoints).toBe(false);
    // a key given for a plaintext repository: the downgrade case, refused
    await expectTampered(Repository.open(store, key), CONFIG_KEY);
    const a = await backup(repository, await newImage('plain-a'), 'vapp-a');
    const b = await backup(repository, await newImage('plain-b'), 'vapp-b');
    const ka = pointKey('vapp-a', a.pointId);
    const kb = pointKey('vapp-b', b.pointId);
    const [bodyA, bodyB] = [await store.get(ka), await store.get(kb)];
    await store.put(ka, bodyB);
    await expectTampered(repository.readPoint('vapp-a', a.pointId), ka, /swapped or replayed/);
    await store.put(ka, bodyA);
    await store.put(kb, bodyB);

    const [victim] = await blockKeysOf(repository, 'vapp-a', a.pointId);
    const [intruder] = await blockKeysOf(repository, 'vapp-b', b.pointId);
    await store.put(victim!, await store.get(intruder!));
    await expect(restore(repository, a.pointId)).rejects.toThrow(/does not hash to its name/);
    expect((await verifyRepository(repository)).problems).toEqual([expect.objectContaining({ block: victim!.slice(victim!.lastIndexOf('/') + 1), problem: 'corrupt' })]);
  });
});

describe.each([
  ['encrypted', key],
  ['plaintext', undefined],
] as const)('two tenants sharing an %s repository', (_label, keySource) => {
  it('name identical content differently, learn nothing of each other, and cannot read each other', async () => {
    const store = await newStore('s3');
    await Repository.init(store, { clock, keySource, blockSize: BLOCK });
    const base = await Repository.open(store, keySource);
    const acme = base.forTenant('acme');
    const globex = base.forTenant('globex');
    const image = await newImage('shared-content');
    const want = await sha(image);

    const a = await backup(acme, image, 'vapp-1');
    const g = await backup(globex, image, 'vapp-1');
    // globex stores the same disk as if nobody had: no block reused, so it cannot tell acme has it
    expect(g.blocksReused).toBe(0);
    expect(g.blocksNew).toBe(a.blocksNew);
    const aKeys = await blockKeysOf(base, 'vapp-1', a.pointId);
    const gKeys = await blockKeysOf(base, 'vapp-1', g.pointId);
    expect(aKeys.length).toBeGreaterThan(0);
    expect(aKeys.filter((k) => gKeys.includes(k))).toEqual([]);
    // ... and a second backup of its own does reuse
    expect((await backup(globex, image, 'vapp-1', g.pointId)).blocksReused).toBe(g.blocksNew);

    // each point records its namespace; a tenant's view sees only its own
    expect(await acme.readPoint('vapp-1', a.pointId)).toMatchObject({ tenantId: 'acme' });
    await expect(acme.readPoint('vapp-1', g.pointId)).rejects.toBeInstanceOf(PointNotFoundError);
    await expect(restore(acme, g.pointId)).rejects.toBeInstanceOf(PointNotFoundError);
    await expect(acme.deletePoint('vapp-1', g.pointId)).rejects.toBeInstanceOf(PointNotFoundError);
    const seen: string[] = [];
    for await (const p of acme.listPoints()) seen.push(p.pointId);
    expect(seen).toEqual([a.pointId]);
    expect((await acme.latestPoint('vapp-1'))?.pointId).toBe(a.pointId);
    expect(() => acme.forTenant('globex')).toThrow(/belongs to tenant acme/);

    // acme's keys open none of globex's objects
    const gHash = Buffer.from(gKeys[0]!.slice(gKeys[0]!.lastIndexOf('/') + 1), 'hex');
    await expect(acme.getBlock(gHash)).rejects.toBeInstanceOf(BlockCorruptError);
    if (keySource) await expect(acme.readIndex('vapp-1', g.pointId, 'disk-0').then((i) => i.entry(0))).rejects.toThrow(/failed authentication/);

    // the unbound view (CLI, GC, verify) reads every namespace with the right keys
    expect(await sha(await restore(base, g.pointId))).toBe(want);
    expect(await sha(await restore(acme, a.pointId))).toBe(want);
    expect((await verifyRepository(base)).ok).toBe(true);
    const gc = await collectGarbage(base, { graceMs: 0, clock: new ManualClock(new Date(Date.now() + 3_600_000).toISOString()) });
    expect(gc.blocksDeleted).toBe(0);
    expect((await verifyRepository(base)).ok).toBe(true);
    expect(await sha(await restore(globex, g.pointId))).toBe(want);
  });
});

describe('tenant namespaces across services', () => {
  it('the registry opens a repository per tenant with separate codec pools; a copy lands in the same tenant of the target', async () => {
    const sourceStore = await newStore('s3');
    const targetStore = await newStore('s3');
    await Repository.init(sourceStore, { clock, keySource: key, blockSize: BLOCK });
    const otherKey: KeySource = { kind: 'passphrase', passphrase: new Secret('another repository passphrase'), scrypt: FAST_SCRYPT };
    await Repository.init(targetStore, { clock, keySource: otherKey, blockSize: BLOCK });
    const source = (await Repository.open(sourceStore, key)).forTenant('acme');
    const image = await newImage('copy-tenant');
    const point = await backup(source, image, 'vapp-c');

    const target = await Repository.open(targetStore, otherKey);
    // an unbound copy keeps the point in its tenant's namespace
    const copied = await copyPoint({ source: source.allNamespaces().unbound, target, pointId: point.pointId, workers: 1 });
    expect(copied.reencoded).toBe(true);
    expect(await target.readPoint('vapp-c', point.pointId)).toMatchObject({ tenantId: 'acme', sourcePointId: point.pointId });
    await expect(target.forTenant('globex').readPoint('vapp-c', point.pointId)).rejects.toBeInstanceOf(PointNotFoundError);
    // a tenant's copy into another tenant's namespace is refused; into its own it is already there
    await expect(copyPoint({ source, target: target.forTenant('globex'), pointId: point.pointId, workers: 1 })).rejects.toMatchObject({ code: 'REPOSITORY_TENANT' });
    expect((await copyPoint({ source, target: target.forTenant('acme'), pointId: point.pointId, workers: 1 })).alreadyPresent).toBe(true);
    expect(await sha(await restore(target.forTenant('acme'), point.pointId))).toBe(await sha(image));

    // the registry: one repository per URL, a view and a codec pool per tenant
    const url = urls.get(sourceStore)!;
    const registry = new RepositoryRegistry({ clock, s3: stack().s3, keySource: key });
    try {
      const acme = await registry.open({ id: 'r', url }, 'acme');
      const globex = await registry.open({ id: 'r', url }, 'globex');
      expect(acme.repository.tenantId).toBe('acme');
      expect(globex.repository.tenantId).toBe('globex');
      expect(acme.repository.keys!.macKey.equals(globex.repository.keys!.macKey)).toBe(false);
      expect(acme.pool).not.toBe(globex.pool);
      expect((await registry.open({ id: 'r', url }, 'acme')).pool).toBe(acme.pool);
      await expect(acme.repository.readPoint('vapp-c', point.pointId)).resolves.toMatchObject({ tenantId: 'acme' });
      await expect(globex.repository.readPoint('vapp-c', point.pointId)).rejects.toBeInstanceOf(PointNotFoundError);
    } finally {
      await registry.close();
    }
  });

  it('a new passphrase shorter than 12 characters is refused (RepositoryKeyError: exit code 2) without echoing it', async () => {
    const store = await newStore('local');
    const err = await Repository.init(store, { clock, keySource: { kind: 'passphrase', passphrase: new Secret('short pass'), scrypt: FAST_SCRYPT } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RepositoryKeyError);
    expect((err as Error).message).toMatch(/at least 12 characters/);
    expect((err as Error).message).not.toContain('short pass');
  });
});
