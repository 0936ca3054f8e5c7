import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { backupSingleDisk, restoreSingleDisk } from '../../lib/agent/disk-jobs.js';
import { CodecPool } from '../../lib/agent/codec-pool.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { BlockCorruptError, RepositoryKeyError } from '../../lib/repository/errors.js';
import { blockKey, pointKey } from '../../lib/repository/format.js';
import { LocalDirStore } from '../../lib/repository/local-dir-store.js';
import type { ObjectStore } from '../../lib/repository/object-store.js';
import { Repository } from '../../lib/repository/repository.js';
import { S3Store } from '../../lib/repository/s3-store.js';
import { verifyRepository } from '../../lib/repository/verify.js';
import { Secret } from '../../lib/secret.js';
import { useLocalStack } from '../helpers/local-stack.js';
import { mutateImage, writeSyntheticImage } from '../helpers/synthetic-image.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 256 * KiB;
const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };
const clock = new ManualClock('2026-11-01T10:00:00Z');

const stack = useLocalStack({ dynamodb: false });
let work: string;
let pool: CodecPool | undefined;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'vcdb-disk-'));
});
afterAll(async () => {
  await pool?.close();
  await rm(work, { recursive: true, force: true });
});

const sha = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

async function newImage(name: string, size: number, seed = name, regionSize = 512 * KiB): Promise<string> {
  const file = path.join(work, name);
  await writeSyntheticImage(file, size, { seed, regionSize });
  return file;
}

type Backend = { name: string; make: () => Promise<ObjectStore> };
const backends: Backend[] = [
  { name: 'file://', make: async () => new LocalDirStore(await mkdtemp(path.join(tmpdir(), 'vcdb-repo-'))) },
  {
    name: 's3 (fauxqs)',
    make: async () => {
      const bucket = `disk-${randomUUID().slice(0, 8)}`;
      await stack().s3.send(new CreateBucketCommand({ Bucket: bucket }));
      return new S3Store({ bucket, prefix: 'repo', client: stack().s3 });
    },
  },
];

describe.each(backends)('disk backup and restore on $name', ({ make }) => {
  const codecPool = () => (pool ??= new CodecPool({ compressionLevel: 1 }, 2));

  async function roundTrip(repository: Repository, image: string, name: string) {
    const p = new CodecPool(repository.codecSettings(), 2);
    try {
      const backup = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', pool: p });
      const out = path.join(work, `${name}.out`);
      await restoreSingleDisk({ repository, clock, pointId: backup.pointId, diskId: 'disk-0', out, pool: p });
      return { backup, out };
    } finally {
      await p.close();
    }
  }

  it('round-trips an image of zero, random and text regions whose size is not a multiple of the block size', async () => {
    const repository = await Repository.init(await make(), { clock, blockSize: BLOCK });
    const size = 5 * MiB + 12_345;
    const image = await newImage(`mixed-${randomUUID()}`, size);
    const { backup, out } = await roundTrip(repository, image, 'mixed');
    expect(await sha(out)).toBe(await sha(image));
    expect(backup.blocksTotal).toBe(Math.ceil(size / BLOCK));
    expect(backup.blocksZero).toBeGreaterThan(0);
    expect(backup.blocksNew + backup.blocksReused + backup.blocksZero).toBe(backup.blocksTotal);
    expect(backup.bytesRead).toBe(size);
    // text compresses, random does not: stored bytes fall between the random share and the full size
    expect(backup.bytesUploaded).toBeLessThan(size - backup.blocksZero * BLOCK);
    expect((await verifyRepository(repository)).ok).toBe(true);
  });

  it('round-trips an empty disk', async () => {
    const repository = await Repository.init(await make(), { clock, blockSize: BLOCK });
    const image = path.join(work, `empty-${randomUUID()}`);
    await writeFile(image, Buffer.alloc(0));
    const { backup, out } = await roundTrip(repository, image, 'empty');
    expect(backup.blocksTotal).toBe(0);
    expect((await readFile(out)).length).toBe(0);
  });

  it('incremental with changed areas reads and uploads only the changed blocks and restores byte-identical', async () => {
    const repository = await Repository.init(await make(), { clock, blockSize: BLOCK });
    const size = 8 * MiB;
    const image = await newImage(`cbt-${randomUUID()}`, size);
    const full = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', pool: codecPool() });
    const areas = await mutateImage(image, size, { share: 0.1, writeSize: BLOCK, seed: 'cbt' });
    const incr = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', parentPointId: full.pointId, changedAreas: areas, pool: codecPool() });
    expect(incr.bytesRead).toBe(areas.length * BLOCK);
    expect(incr.blocksNew).toBe(areas.length);
    expect(incr.blocksTotal).toBe(full.blocksTotal);
    const out = path.join(work, 'cbt.out');
    await restoreSingleDisk({ repository, clock, pointId: incr.pointId, diskId: 'disk-0', out, pool: codecPool() });
    expect(await sha(out)).toBe(await sha(image));
    // the full point still restores the old content
    const outFull = path.join(work, 'cbt-full.out');
    await restoreSingleDisk({ repository, clock, pointId: full.pointId, diskId: 'disk-0', out: outFull, pool: codecPool() });
    expect(await sha(outFull)).not.toBe(await sha(image));
  });

  it('incremental without changed areas reads everything but uploads only changed blocks', async () => {
    const repository = await Repository.init(await make(), { clock, blockSize: BLOCK });
    const size = 6 * MiB;
    const image = await newImage(`nocbt-${randomUUID()}`, size);
    const full = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', pool: codecPool() });
    const areas = await mutateImage(image, size, { share: 0.125, writeSize: BLOCK, seed: 'nocbt' });
    const incr = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', parentPointId: full.pointId, pool: codecPool() });
    expect(incr.bytesRead).toBe(size);
    expect(incr.blocksNew).toBe(areas.length);
    expect(incr.bytesUploaded).toBeLessThanOrEqual(areas.length * (BLOCK + 64));
    const out = path.join(work, 'nocbt.out');
    await restoreSingleDisk({ repository, clock, pointId: incr.pointId, diskId: 'disk-0', out, pool: codecPool() });
    expect(await sha(out)).toBe(await sha(image));
  });

  it('quick rollback: restoring over a disk that still mostly matches writes only the differing blocks', async () => {
    const repository = await Repository.init(await make(), { clock, blockSize: BLOCK });
    const size = 4 * MiB;
    const image = await newImage(`qr-${randomUUID()}`, size, 'qr', 512 * KiB); // zero, text, random regions
    const backup = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', pool: codecPool() });
    const out = path.join(work, `qr-${randomUUID()}.out`);
    const first = await restoreSingleDisk({ repository, clock, pointId: backup.pointId, diskId: 'disk-0', out, pool: codecPool() });
    expect(first.blocksUnchanged).toBe(0); // a new file: nothing to compare
    // Damage two data blocks and write into a block that must be zero (the first region is zeros).
    const fh = await (await import('node:fs/promises')).open(out, 'r+');
    await fh.write(Buffer.alloc(1000, 0x5a), 0, 1000, 3 * BLOCK + 10);
    await fh.write(Buffer.alloc(1000, 0x5a), 0, 1000, 5 * BLOCK + 10);
    await fh.write(Buffer.alloc(1000, 0x5a), 0, 1000, 0);
    await fh.close();
    const rollback = await restoreSingleDisk({ repository, clock, pointId: backup.pointId, diskId: 'disk-0', out, pool: codecPool() });
    expect(await sha(out)).toBe(await sha(image));
    expect(rollback.blocksRestored).toBe(2);
    expect(rollback.bytesDownloaded).toBeLessThanOrEqual(2 * (BLOCK + 64));
    expect(rollback.blocksUnchanged).toBe(rollback.blocksTotal - 3);
    expect(rollback.bytesCompared).toBe(size);
  });

  it('a grown disk whose old size was not block-aligned backs up with changed areas and restores', async () => {
    const repository = await Repository.init(await make(), { clock, blockSize: BLOCK });
    const oldSize = 2 * MiB + 100_000; // the parent's last block is partial
    const image = await newImage(`growcbt-${randomUUID()}`, oldSize, 'growcbt', 256 * KiB);
    await writeSyntheticImage(image, oldSize, { seed: 'growcbt', layout: ['random'] });
    const full = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', pool: codecPool() });
    // The disk grows; CBT reports only the newly written region, not the old tail that now has another length.
    const grown = 3 * MiB;
    const fh = await (await import('node:fs/promises')).open(image, 'r+');
    await fh.write(Buffer.alloc(grown - oldSize, 0x33), 0, grown - oldSize, oldSize);
    await fh.close();
    const incr = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', parentPointId: full.pointId, changedAreas: [{ start: oldSize, length: grown - oldSize }], pool: codecPool() });
    expect(incr.blocksReused).toBeGreaterThan(0); // the unchanged whole blocks came from the parent, unread
    expect(incr.bytesRead).toBeLessThan(grown);
    const out = path.join(work, 'growcbt.out');
    await restoreSingleDisk({ repository, clock, pointId: incr.pointId, diskId: 'disk-0', out, pool: codecPool() });
    expect(await sha(out)).toBe(await sha(image));
  });

  it('a grown disk backs up incrementally and restores at its new size', async () => {
    const repository = await Repository.init(await make(), { clock, blockSize: BLOCK });
    const image = await newImage(`grow-${randomUUID()}`, 2 * MiB);
    const full = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', pool: codecPool() });
    await truncate(image, 3 * MiB + 100);
    const incr = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-1', diskId: 'disk-0', parentPointId: full.pointId, pool: codecPool() });
    expect(incr.blocksReused).toBeGreaterThan(0);
    expect(incr.bytesUploaded).toBeLessThan(full.bytesUploaded);
    const out = path.join(work, 'grow.out');
    await restoreSingleDisk({ repository, clock, pointId: incr.pointId, diskId: 'disk-0', out, pool: codecPool() });
    expect(await sha(out)).toBe(await sha(image));
  });

  it('an encrypted repository is unreadable without its key and shows no plaintext hashes', async () => {
    const store = await make();
    const keySource = { kind: 'passphrase' as const, passphrase: new Secret('correct horse battery staple'), scrypt: FAST_SCRYPT };
    const repository = await Repository.init(store, { clock, blockSize: BLOCK, keySource });
    const image = await newImage(`enc-${randomUUID()}`, 3 * MiB, 'enc', 256 * KiB);
    const { backup, out } = await roundTrip(repository, image, 'enc');
    expect(await sha(out)).toBe(await sha(image));

    await expect(Repository.open(store)).rejects.toBeInstanceOf(RepositoryKeyError);
    await expect(Repository.open(store, { kind: 'passphrase', passphrase: new Secret('wrong') })).rejects.toThrow(/does not open this repository/);

    // No block is named by the SHA-256 of its plaintext, and no stored object holds plaintext text.
    const content = await readFile(image);
    const keys: string[] = [];
    for await (const info of store.list('blocks/')) keys.push(info.key);
    expect(keys.length).toBe(backup.blocksNew);
    for (let off = 0; off < content.length; off += BLOCK) {
      const plainHash = createHash('sha256').update(content.subarray(off, off + BLOCK)).digest('hex');
      expect(keys).not.toContain(blockKey(plainHash));
    }
    const textSample = content.subarray(256 * KiB, 256 * KiB + 64).toString('latin1');
    expect(textSample).toMatch(/[a-z]{3,} [a-z]{2,}/); // the region really is text
    for (const key of [...keys, pointKey('vapp-1', backup.pointId).replace('point.json', 'disks/disk-0.idx')]) {
      expect((await store.get(key)).toString('latin1')).not.toContain(textSample.slice(0, 24));
    }
  });

  it('a flipped byte in any block is caught by verify and by restore', async () => {
    const store = await make();
    const repository = await Repository.init(store, { clock, blockSize: BLOCK });
    const image = await newImage(`flip-${randomUUID()}`, 2 * MiB, 'flip', 256 * KiB);
    const backup = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-9', diskId: 'disk-0', pool: codecPool() });
    const keys: string[] = [];
    for await (const info of store.list('blocks/')) keys.push(info.key);
    const victim = keys.sort()[1]!;
    const body = await store.get(victim);
    body[body.length - 3]! ^= 0x01;
    await store.put(victim, body);

    const report = await verifyRepository(repository);
    expect(report.ok).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]!.block).toBe(victim.split('/').pop());
    expect(report.problems[0]!.problem).toBe('corrupt');
    expect(report.damagedPoints).toEqual([`vapp-9/${backup.pointId}`]);

    await expect(restoreSingleDisk({ repository, clock, pointId: backup.pointId, diskId: 'disk-0', out: path.join(work, 'flip.out'), pool: codecPool() })).rejects.toBeInstanceOf(BlockCorruptError);
  });

  it('a backup killed mid-way commits nothing; the next backup succeeds and reuses the uploaded blocks', async () => {
    const store = await make();
    const repository = await Repository.init(store, { clock, blockSize: BLOCK });
    const image = await newImage(`kill-${randomUUID()}`, 6 * MiB, 'kill', 6 * MiB); // one zero region: make it all data
    await writeSyntheticImage(image, 6 * MiB, { seed: 'kill', layout: ['random'] });
    // A store that dies after 10 block uploads, like an agent killed mid-task.
    let blockPuts = 0;
    const dying: ObjectStore = {
      description: store.description,
      get: (k, r) => store.get(k, r),
      stat: (k) => store.stat(k),
      list: (p) => store.list(p),
      deleteMany: (k) => store.deleteMany(k),
      put: async (k, b) => {
        if (k.startsWith('blocks/') && ++blockPuts > 10) throw new Error('agent killed');
        return store.put(k, b);
      },
    };
    const doomed = await Repository.open(dying);
    await expect(backupSingleDisk({ repository: doomed, clock, sourcePath: image, vappId: 'vapp-k', diskId: 'disk-0', pool: codecPool() })).rejects.toThrow('agent killed');
    const points = [];
    for await (const p of repository.listPoints()) points.push(p);
    expect(points).toEqual([]);

    const retry = await backupSingleDisk({ repository, clock, sourcePath: image, vappId: 'vapp-k', diskId: 'disk-0', pool: codecPool() });
    expect(retry.blocksReused).toBeGreaterThanOrEqual(10);
    expect(retry.blocksNew + retry.blocksReused).toBe(24);
    const out = path.join(work, 'kill.out');
    await restoreSingleDisk({ repository, clock, pointId: retry.pointId, diskId: 'disk-0', out, pool: codecPool() });
    expect(await sha(out)).toBe(await sha(image));
  });
});
