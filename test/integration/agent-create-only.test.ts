import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDiskLocator } from '../../lib/agent/disk-locator.js';
import { runDiskBackupTask } from '../../lib/agent/task-runner.js';
import { ManualClock } from '../../lib/domain/clock.js';
import type { DiskBackupTask } from '../../lib/queue/messages.js';
import { Secret } from '../../lib/secret.js';
import { RepositoryRegistry } from '../../lib/wiring/repository-registry.js';

/**
 * The agent's repositories are create-only (as its IAM role demands in AWS): it adds blocks, indexes and
 * descriptors, but cannot replace or delete what exists, and it leaves no lock objects it would have to
 * delete again.
 */
const MiB = 1 << 20;
let dir: string;
const keySource = { kind: 'passphrase' as const, passphrase: new Secret('create-only test passphrase'), scrypt: { N: 1024, r: 8, p: 1 } };

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vcdb-create-only-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('create-only agent repositories', () => {
  it('back a disk up, but refuse to delete or replace objects, and write no locks', async () => {
    const clock = new ManualClock('2026-12-01T00:00:00.000Z');
    const url = `file://${path.join(dir, 'repo')}`;
    const service = new RepositoryRegistry({ clock, keySource, initMissing: true });
    await service.open({ id: 'r', url }, 'acme'); // the service creates the repository
    const agent = new RepositoryRegistry({ clock, keySource, createOnly: true });
    const image = path.join(dir, 'disks', 'disk.img');
    await import('node:fs/promises').then((fs) => fs.mkdir(path.dirname(image), { recursive: true }));
    await writeFile(image, Buffer.concat([Buffer.alloc(MiB, 7), Buffer.alloc(MiB), Buffer.alloc(MiB, 9)]));
    const task: DiskBackupTask = {
      type: 'DiskBackupTask',
      version: 2,
      taskId: 'task-1',
      runId: 'run-1',
      jobId: 'job-1',
      tenantId: 'acme',
      vappId: 'urn:vcloud:vapp:0b0e1c3a-0000-4000-8000-00000000000a',
      vmId: 'vm-1',
      diskId: 'disk-0',
      pointId: '20261201T000000Z-00000001',
      repository: { id: 'r', url },
      blockSize: MiB,
      diskLocator: { kind: 'file', path: image },
    };
    const result = await runDiskBackupTask(task, { repositories: agent, locator: new FileDiskLocator([path.dirname(image)]), repositoryLocks: false });
    expect(result.ok).toBe(true);
    expect(result.stats?.blocksNew).toBe(2);

    const { repository } = await agent.open({ id: 'r', url }, 'acme');
    const blocks: string[] = [];
    for await (const info of repository.store.list('blocks/')) blocks.push(info.key);
    expect(blocks).toHaveLength(2);
    const locks: string[] = [];
    for await (const info of repository.store.list('locks/')) locks.push(info.key);
    expect(locks).toEqual([]);

    await expect(repository.store.deleteMany([blocks[0]!])).rejects.toMatchObject({ code: 'STORE_CREATE_ONLY' });
    const before = await repository.store.get(blocks[0]!);
    await repository.store.put(blocks[0]!, Buffer.from('overwritten by a compromised agent'));
    expect(await repository.store.get(blocks[0]!)).toEqual(before);
    // The service's own registry still deletes (retention, GC).
    const { repository: full } = await service.open({ id: 'r', url }, 'acme');
    await full.store.deleteMany([blocks[0]!]);
    expect(await full.store.stat(blocks[0]!)).toBeUndefined();
    await Promise.all([service.close(), agent.close()]);
  });
});
