import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { backupSingleDisk, restoreSingleDisk, type SingleDiskBackupResult } from '../../lib/agent/disk-jobs.js';
import { CodecPool } from '../../lib/agent/codec-pool.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { COPY_BATCH_BLOCKS, copyBlocks, copyPoint, planCopy } from '../../lib/repository/copy-point.js';
import { BlockCorruptError } from '../../lib/repository/errors.js';
import type { KeySource } from '../../lib/repository/keys.js';
import { LocalDirStore } from '../../lib/repository/local-dir-store.js';
import type { ObjectStore } from '../../lib/repository/object-store.js';
import { Repository } from '../../lib/repository/repository.js';
import { S3Store } from '../../lib/repository/s3-store.js';
import { verifyRepository } from '../../lib/repository/verify.js';
import { Secret } from '../../lib/secret.js';
import { cli } from '../helpers/cli.js';
import { useLocalStack } from '../helpers/local-stack.js';
import { mutateImage, writeSyntheticImage } from '../helpers/synthetic-image.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 256 * KiB;
const SIZE = 16 * MiB + 12_345;
const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };
const WORKERS = 2;

const stack = useLocalStack({ dynamodb: false });
const clock = new ManualClock('2026-11-01T10:00:00Z');
let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'vcdb-copy-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const sha = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');
const passphrase = (text: string): KeySource => ({ kind: 'passphrase', passphrase: new Secret(text), scrypt: FAST_SCRYPT });

interface Bucket {
  readonly name: string;
  readonly store: S3Store;
  readonly url: string;
}

async function newBucket(label: string): Promise<Bucket> {
  const name = `${label}-${randomUUID().slice(0, 8)}`;
  await stack().s3.send(new CreateBucketCommand({ Bucket: name }));
  return { name, store: new S3Store({ bucket: name, prefix: 'repo', client: stack().s3 }), url: `s3://${name}/repo` };
}

/** The block objects as the S3 server lists them (not through our store). */
async function blockObjects(bucket: Bucket): Promise<Set<string>> {
  const keys = new Set<string>();
  let token: string | undefined;
  do {
    const page = await stack().s3.send(new ListObjectsV2Command({ Bucket: bucket.name, Prefix: 'repo/blocks/', ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.add(o.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

const minus = (a: Set<string>, b: Set<string>) => new Set([...a].filter((k) => !b.has(k)));

async function newImage(name: string, size = SIZE): Promise<string> {
  const file = path.join(work, `${name}-${randomUUID().slice(0, 6)}.img`);
  await writeSyntheticImage(file, size, { seed: name, regionSize: 512 * KiB });
  return file;
}

async function backup(repository: Repository, image: string, vappId: string, parentPointId?: string): Promise<SingleDiskBackupResult> {
  clock.advance(60_000);
  const pool = new CodecPool(repository.codecSettings(), WORKERS);
  try {
    return await backupSingleDisk({ repository, clock, sourcePath: image, vappId, diskId: 'disk-0', parentPointId, pool });
  } finally {
    await pool.close();
  }
}

async function restoredSha(repository: Repository, pointId: string, vappId?: string): Promise<string> {
  const out = path.join(work, `restore-${randomUUID().slice(0, 8)}.img`);
  await restoreSingleDisk({ repository, clock, pointId, vappId, diskId: 'disk-0', out });
  const digest = await sha(out);
  await rm(out, { force: true });
  return digest;
}

/** A repository and the images of its chain: a full, then a 5 % incremental of random 256 KiB writes. */
async function sourceWithChain(repository: Repository, vappId: string) {
  const image = await newImage(vappId);
  const full = await backup(repository, image, vappId);
  const fullSha = await sha(image);
  await mutateImage(image, SIZE - 12_345, { share: 0.05, writeSize: BLOCK, seed: `${vappId}-m` });
  const incr = await backup(repository, image, vappId, full.pointId);
  return { image, full, fullSha, incr, incrSha: await sha(image) };
}

type Kind = 'plain' | 'enc-a' | 'enc-b';
const keysOf: Record<Kind, KeySource | undefined> = { plain: undefined, 'enc-a': passphrase('alpha passphrase'), 'enc-b': passphrase('bravo passphrase') };

async function newRepository(kind: Kind, label: string): Promise<{ bucket: Bucket; repository: Repository }> {
  const bucket = await newBucket(label);
  const repository = await Repository.init(bucket.store, { clock, blockSize: BLOCK, keySource: keysOf[kind] });
  return { bucket, repository };
}

describe.each([
  { from: 'plain' as Kind, to: 'plain' as Kind, reencoded: false },
  { from: 'enc-a' as Kind, to: 'enc-b' as Kind, reencoded: true },
  { from: 'plain' as Kind, to: 'enc-b' as Kind, reencoded: true },
])('copy $from → $to', ({ from, to, reencoded }) => {
  it('copies a full, then exactly the new blocks of a 5 % incremental; copies restore byte-identical', async () => {
    const src = await newRepository(from, 'src');
    const dst = await newRepository(to, 'dst');
    const chain = await sourceWithChain(src.repository, 'vapp-1');
    expect(chain.incr.blocksNew).toBeGreaterThan(0);

    const full = await copyPoint({ source: src.repository, target: dst.repository, pointId: chain.full.pointId, workers: WORKERS });
    expect(full).toMatchObject({ pointId: chain.full.pointId, sourcePointId: chain.full.pointId, alreadyPresent: false, reencoded, basisPointId: null });
    expect(full.blocksCopied).toBe(chain.full.blocksNew);
    expect(full.blocksCopied + full.blocksSkipped + full.blocksZero).toBe(full.blocksTotal);
    expect(full.blocksZero).toBe(chain.full.blocksZero);
    const afterFull = await blockObjects(dst.bucket);
    expect(afterFull.size).toBe(chain.full.blocksNew);

    const incr = await copyPoint({ source: src.repository, target: dst.repository, pointId: chain.incr.pointId, vappId: 'vapp-1', workers: WORKERS });
    expect(incr.blocksCopied).toBe(chain.incr.blocksNew);
    expect(incr.basisPointId).toBe(chain.full.pointId);
    // only the changed blocks were even read, also when they had to be re-encrypted under other keys
    expect(incr.blocksRead).toBe(chain.incr.blocksNew);
    expect(incr.blocksSkipped).toBe(chain.incr.blocksTotal - chain.incr.blocksZero - chain.incr.blocksNew);
    const afterIncr = await blockObjects(dst.bucket);
    const added = minus(afterIncr, afterFull);
    expect(added.size).toBe(chain.incr.blocksNew);
    expect(afterIncr.size).toBe(chain.full.blocksNew + chain.incr.blocksNew);

    const srcBlocks = await blockObjects(src.bucket);
    if (reencoded) {
      // other keys, other names: no block name travels
      expect([...afterIncr].filter((k) => srcBlocks.has(k))).toEqual([]);
    } else {
      expect(afterIncr).toEqual(srcBlocks);
    }
    const stored = await dst.repository.readPoint('vapp-1', chain.incr.pointId);
    expect(stored).toMatchObject({ pointId: chain.incr.pointId, sourcePointId: chain.incr.pointId, parentPointId: chain.full.pointId });
    expect(stored.disks[0]!.blocksNew).toBe(chain.incr.blocksNew);
    expect(stored.disks[0]!.bytesUploaded).toBe(incr.bytesCopied);

    expect(await restoredSha(dst.repository, chain.incr.pointId)).toBe(chain.incrSha);
    expect(await restoredSha(dst.repository, chain.full.pointId, 'vapp-1')).toBe(chain.fullSha);
    expect((await verifyRepository(dst.repository)).ok).toBe(true);

    const again = await copyPoint({ source: src.repository, target: dst.repository, pointId: chain.incr.pointId, workers: WORKERS });
    expect(again).toMatchObject({ alreadyPresent: true, blocksCopied: 0, bytesCopied: 0 });
    expect((await blockObjects(dst.bucket)).size).toBe(afterIncr.size);
  });
});

describe('copy', () => {
  it('copies a copy (A → B → C): sourcePointId names the immediate source, incrementals stay exact', async () => {
    const a = await newRepository('plain', 'a');
    const b = await newRepository('enc-a', 'b');
    const c = await newRepository('enc-b', 'c');
    const chain = await sourceWithChain(a.repository, 'vapp-c');
    for (const p of [chain.full, chain.incr]) await copyPoint({ source: a.repository, target: b.repository, pointId: p.pointId, workers: WORKERS });
    // C receives only the latest point first (a periodic copy), then nothing else to do
    const latestInB = await b.repository.latestPoint('vapp-c');
    expect(latestInB?.pointId).toBe(chain.incr.pointId);
    const toC = await copyPoint({ source: b.repository, target: c.repository, pointId: latestInB!.pointId, workers: WORKERS });
    // a first copy moves every distinct block the point needs, and nothing else
    expect(toC.blocksCopied).toBe(chain.incr.blocksTotal - chain.incr.blocksZero);
    expect(toC.blocksSkipped).toBe(0);
    expect((await blockObjects(c.bucket)).size).toBe(toC.blocksCopied);
    const inC = await c.repository.readPoint('vapp-c', chain.incr.pointId);
    expect(inC.sourcePointId).toBe(latestInB!.pointId);
    expect(inC.parentPointId).toBeNull();
    expect(await restoredSha(c.repository, chain.incr.pointId)).toBe(chain.incrSha);

    // a next incremental in A flows A → B → C moving exactly its new blocks at each hop
    await mutateImage(chain.image, SIZE - 12_345, { share: 0.05, writeSize: BLOCK, seed: 'vapp-c-m2' });
    const next = await backup(a.repository, chain.image, 'vapp-c', chain.incr.pointId);
    const ab = await copyPoint({ source: a.repository, target: b.repository, pointId: next.pointId, workers: WORKERS });
    const bc = await copyPoint({ source: b.repository, target: c.repository, pointId: next.pointId, workers: WORKERS });
    expect(ab.blocksCopied).toBe(next.blocksNew);
    expect(bc.blocksCopied).toBe(next.blocksNew);
    expect(bc.blocksRead).toBe(next.blocksNew);
    expect((await c.repository.readPoint('vapp-c', next.pointId)).parentPointId).toBe(chain.incr.pointId);
    expect(await restoredSha(c.repository, next.pointId)).toBe(await sha(chain.image));
  });

  it('does not trust a basis whose source point no longer names the content it was copied from', async () => {
    const src = await newRepository('plain', 'lineage-src');
    const dst = await newRepository('enc-b', 'lineage-dst');
    const first = await backup(src.repository, await newImage('lineage-one'), 'vapp-l');
    await copyPoint({ source: src.repository, target: dst.repository, pointId: first.pointId, workers: WORKERS });
    // The source's point of that id now names other content (a colliding id from elsewhere, or tampering):
    const otherImage = await newImage('lineage-two');
    const other = await backup(src.repository, otherImage, 'vapp-l');
    const idx = (p: string) => `points/vapp-l/${p}/disks/disk-0.idx`;
    await src.bucket.store.put(idx(first.pointId), await src.bucket.store.get(idx(other.pointId)));
    await mutateImage(otherImage, SIZE - 12_345, { share: 0.05, writeSize: BLOCK, seed: 'lineage-m' });
    const next = await backup(src.repository, otherImage, 'vapp-l', other.pointId);
    const copied = await copyPoint({ source: src.repository, target: dst.repository, pointId: next.pointId, workers: WORKERS });
    // the mapping through the basis was refused: every block was read and re-named, none taken by position
    expect(copied.basisPointId).toBe(first.pointId);
    expect(copied.blocksRead).toBe(next.blocksTotal - next.blocksZero);
    expect(await restoredSha(dst.repository, next.pointId)).toBe(await sha(otherImage));
  });

  it('resumes after a crash at any step, copying only what is missing', async () => {
    for (const to of ['plain', 'enc-b'] as const) {
      const src = await newRepository('plain', 'crash-src');
      const dst = await newRepository(to, 'crash-dst');
      const image = await newImage('crash');
      await writeSyntheticImage(image, 6 * MiB, { seed: `crash-${to}`, layout: ['random'] });
      const point = await backup(src.repository, image, 'vapp-k');
      expect(point.blocksNew).toBe(24);

      // dies after 10 block writes, like a worker killed mid-run
      let blockPuts = 0;
      const dying = await Repository.open(wrap(dst.bucket.store, (key) => key.startsWith('blocks/') && ++blockPuts > 10), keysOf[to]);
      await expect(copyPoint({ source: src.repository, target: dying, pointId: point.pointId, workers: WORKERS, concurrency: 1 })).rejects.toThrow('worker killed');
      expect(await dst.repository.latestPoint('vapp-k')).toBeUndefined();
      expect((await blockObjects(dst.bucket)).size).toBe(10);

      // dies after every block and index, just before point.json
      const beforeCommit = await Repository.open(wrap(dst.bucket.store, (key) => key.endsWith('/point.json')), keysOf[to]);
      const partial = copyPoint({ source: src.repository, target: beforeCommit, pointId: point.pointId, workers: WORKERS });
      await expect(partial).rejects.toThrow('worker killed');
      expect(await dst.repository.latestPoint('vapp-k')).toBeUndefined();
      expect((await blockObjects(dst.bucket)).size).toBe(24);

      const rerun = await copyPoint({ source: src.repository, target: dst.repository, pointId: point.pointId, workers: WORKERS });
      expect(rerun).toMatchObject({ alreadyPresent: false, blocksCopied: 0, blocksSkipped: 24 });
      expect(await restoredSha(dst.repository, point.pointId)).toBe(await sha(image));
    }
  });

  it('refuses to copy a corrupt source block, naming it, and commits nothing', async () => {
    for (const to of ['plain', 'enc-b'] as const) {
      const src = await newRepository('plain', 'rot-src');
      const dst = await newRepository(to, 'rot-dst');
      const image = await newImage('rot', 2 * MiB);
      const point = await backup(src.repository, image, 'vapp-r');
      const keys = [...(await blockObjects(src.bucket))].sort().map((k) => k.slice('repo/'.length));
      const victim = keys[1]!;
      const body = await src.bucket.store.get(victim);
      body[body.length - 3]! ^= 0x01;
      await src.bucket.store.put(victim, body);
      const failed = await copyPoint({ source: src.repository, target: dst.repository, pointId: point.pointId, workers: WORKERS }).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(BlockCorruptError);
      expect((failed as BlockCorruptError).blockKey).toBe(victim.split('/').pop());
      expect((failed as Error).message).toMatch(/repo verify/);
      expect(await dst.repository.latestPoint('vapp-r')).toBeUndefined();
      const copied = await blockObjects(dst.bucket);
      if (to === 'plain') expect(copied.has(`repo/${victim}`)).toBe(false);
    }
  });

  it('plans, copies in batches and commits with the batch names (the service path); redelivery copies nothing', async () => {
    for (const to of ['plain', 'enc-b'] as const) {
      const src = await newRepository('enc-a', 'plan-src');
      const dst = await newRepository(to, 'plan-dst');
      const chain = await sourceWithChain(src.repository, 'vapp-p');
      await copyPoint({ source: src.repository, target: dst.repository, pointId: chain.full.pointId, workers: WORKERS });
      const plan = await planCopy(src.repository, dst.repository, chain.incr.pointId);
      expect(plan).toMatchObject({ alreadyPresent: false, exact: false, basisPointId: chain.full.pointId });
      expect(plan.blocks).toHaveLength(chain.incr.blocksNew);
      const names = new Map<string, Buffer>();
      let copied = 0;
      for (let i = 0; i < plan.blocks.length; i += COPY_BATCH_BLOCKS) {
        const batch = plan.blocks.slice(i, i + COPY_BATCH_BLOCKS).map((b) => b.hash);
        const result = await copyBlocks(src.repository, dst.repository, batch, { workers: WORKERS });
        const redelivered = await copyBlocks(src.repository, dst.repository, batch, { workers: WORKERS });
        expect(redelivered.blocksCopied).toBe(0);
        copied += result.blocksCopied;
        for (const b of result.blocks) names.set(b.sourceHash.toString('hex'), b.targetHash!);
      }
      expect(copied).toBe(chain.incr.blocksNew);
      const commit = await copyPoint({ source: src.repository, target: dst.repository, pointId: chain.incr.pointId, names, workers: WORKERS });
      expect(commit).toMatchObject({ blocksCopied: 0, blocksRead: 0 });
      expect(await restoredSha(dst.repository, chain.incr.pointId)).toBe(chain.incrSha);
      expect((await planCopy(src.repository, dst.repository, chain.incr.pointId)).alreadyPresent).toBe(true);
    }
  });

  it('plans exactly the missing blocks when the naming is the same', async () => {
    const src = await newRepository('plain', 'pe-src');
    const dst = await newRepository('plain', 'pe-dst');
    const chain = await sourceWithChain(src.repository, 'vapp-e');
    const first = await planCopy(src.repository, dst.repository, chain.full.pointId);
    expect(first).toMatchObject({ exact: true, basisPointId: null });
    expect(first.blocks).toHaveLength(chain.full.blocksNew);
    await copyPoint({ source: src.repository, target: dst.repository, pointId: chain.full.pointId, workers: WORKERS });
    const second = await planCopy(src.repository, dst.repository, chain.incr.pointId);
    expect(second.blocks).toHaveLength(chain.incr.blocksNew);
    expect(second.bytes).toBe(chain.incr.blocksNew * BLOCK);
  });

  it('copies to a file:// repository and stops cleanly when aborted', async () => {
    const src = await newRepository('plain', 'file-src');
    const dst = await Repository.init(new LocalDirStore(await mkdtemp(path.join(tmpdir(), 'vcdb-copy-dst-'))), { clock, blockSize: BLOCK });
    const image = await newImage('file');
    const point = await backup(src.repository, image, 'vapp-f');
    const controller = new AbortController();
    controller.abort();
    await expect(copyPoint({ source: src.repository, target: dst, pointId: point.pointId, signal: controller.signal, workers: WORKERS })).rejects.toMatchObject({ code: 'ABORTED' });
    const progress: number[] = [];
    const done = await copyPoint({ source: src.repository, target: dst, pointId: point.pointId, workers: WORKERS, onProgress: (p) => progress.push(p.bytesDone) });
    expect(done.blocksCopied).toBe(point.blocksNew);
    expect(progress.at(-1)).toBe(SIZE);
    expect(await restoredSha(dst, point.pointId)).toBe(await sha(image));
  });
});

function wrap(store: ObjectStore, dieOn: (key: string) => boolean): ObjectStore {
  return {
    description: store.description,
    get: (k, r) => store.get(k, r),
    stat: (k) => store.stat(k),
    list: (p) => store.list(p),
    deleteMany: (k) => store.deleteMany(k),
    put: async (k, b) => {
      if (dieOn(k)) throw new Error('worker killed');
      return store.put(k, b);
    },
  };
}

/** Runs `vcd-backup repo copy` through the real program (test/helpers/cli.ts). */
const copyCli = (args: readonly string[], env: Record<string, string | undefined>) => cli(['repo', 'copy', ...args], env);

describe('vcd-backup repo copy', () => {
  it('copies by --latest and --point with --json, and the copy restores with `disk restore`', async () => {
    const src = await newRepository('plain', 'cli-src');
    const dst = await newRepository('enc-b', 'cli-dst');
    const chain = await sourceWithChain(src.repository, 'vapp-cli');
    const env = { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: stack().endpoints.s3, DST_PASS: 'bravo passphrase' };
    const base = ['--from', src.bucket.url, '--to', dst.bucket.url, '--to-passphrase-env', 'DST_PASS', '--json'];

    const full = await copyCli([...base, '--point', chain.full.pointId], env);
    expect(full.stderr).toBe('');
    expect(full.code).toBe(0);
    const f = full.json<Record<string, unknown>>();
    for (const field of ['pointId', 'blocksCopied', 'bytesCopied', 'blocksSkipped', 'sourcePointId', 'alreadyPresent']) expect(f).toHaveProperty(field);
    expect(f).toMatchObject({ pointId: chain.full.pointId, blocksCopied: chain.full.blocksNew, alreadyPresent: false });

    const latest = await copyCli([...base, '--latest', '--vapp', 'vapp-cli'], env);
    expect(latest.code).toBe(0);
    expect(latest.json()).toMatchObject({ pointId: chain.incr.pointId, blocksCopied: chain.incr.blocksNew });
    const again = await copyCli([...base, '--latest', '--vapp', 'vapp-cli'], env);
    expect(again.json()).toMatchObject({ alreadyPresent: true, blocksCopied: 0 });

    const human = await copyCli(['--from', src.bucket.url, '--to', dst.bucket.url, '--to-passphrase-env', 'DST_PASS', '--point', chain.full.pointId], env);
    expect(human.code).toBe(0);
    expect(human.stdout).toBe(`${chain.full.pointId}\n`);
    expect(human.stderr).toMatch(/already in/);

    const out = path.join(work, 'cli-restored.img');
    const restore = await cli(['disk', 'restore', '--repo', dst.bucket.url, '--passphrase-env', 'DST_PASS', '--point', chain.incr.pointId, '--disk', 'disk-0', '--out', out, '--json'], env);
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    expect(await sha(out)).toBe(chain.incrSha);
  });

  it('exits 2 with a message that says how to fix bad usage', async () => {
    const src = await newRepository('plain', 'usage-src');
    const dst = await newRepository('enc-b', 'usage-dst');
    const env = { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: stack().endpoints.s3, DST_PASS: 'bravo passphrase' };
    const fromTo = ['--from', src.bucket.url, '--to', dst.bucket.url];
    const cases: Array<[string[], RegExp]> = [
      [[...fromTo, '--to-passphrase-env', 'DST_PASS'], /--point ID, or --latest --vapp ID/],
      [[...fromTo, '--to-passphrase-env', 'DST_PASS', '--latest'], /--latest needs --vapp/],
      [[...fromTo, '--to-passphrase-env', 'DST_PASS', '--latest', '--vapp', 'v', '--point', 'p'], /not both/],
      [['--from', src.bucket.url, '--point', 'p'], /--to/],
      [[...fromTo, '--point', 'p'], /--to-passphrase-env VAR/],
      [[...fromTo, '--to-passphrase-env', 'DST_PASS', '--latest', '--vapp', 'nothing-here'], /no committed point/],
      [[...fromTo, '--to-passphrase-env', 'DST_PASS', '--point', '20261101T000000Z-00000000'], /repo points/],
      [['--from', src.bucket.url, '--to', src.bucket.url, '--point', 'p'], /same repository/],
      [[...fromTo, '--to-passphrase-env', 'DST_PASS', '--to-key-file', '/x', '--point', 'p'], /cannot be used with/],
    ];
    for (const [args, message] of cases) {
      const run = await copyCli(args, env);
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toMatch(message);
    }
  });
});
