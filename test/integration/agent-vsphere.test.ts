/**
 * The agent's vsphere locator against vcsim: a DiskBackupTask v2 naming a snapshot's disk is read through the
 * https transport with a session from the agent's vCenter config, and the restored bytes equal the disk's
 * flat file.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentDiskLocator } from '../../lib/agent/disk-locator.js';
import { isPermanentTaskError, runDiskBackupTask, runDiskRestoreTask } from '../../lib/agent/task-runner.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { encodeMessage, parseMessage, type DiskBackupTask, type DiskRestoreTask } from '../../lib/queue/messages.js';
import { Secret } from '../../lib/secret.js';
import { backupSnapshotName, createSnapshot, readSnapshotDisks, removeSnapshot, vmRef, VsphereSession } from '../../lib/vsphere/index.js';
import { RepositoryRegistry } from '../../lib/wiring/repository-registry.js';
import { startVcsim, type Vcsim } from '../helpers/vcsim.js';
import { writeAt } from '../helpers/write-at.js';

const MiB = 1024 * 1024;
const keySource = { kind: 'passphrase' as const, passphrase: new Secret('agent vsphere test'), scrypt: { N: 1024, r: 8, p: 1 } };
const noWait = { sleep: async () => undefined, pollMs: 0 };

let sim: Vcsim;
let session: VsphereSession;
let dir: string;
let repoUrl: string;
let agentRepos: RepositoryRegistry;

beforeAll(async () => {
  sim = await startVcsim({ diskMiB: 8 });
  session = await VsphereSession.login({ url: sim.url, userName: sim.userName, password: sim.password });
  dir = await mkdtemp(path.join(os.tmpdir(), 'vcdb-agent-vsphere-'));
  const clock = new ManualClock('2026-12-01T00:00:00.000Z');
  repoUrl = `file://${path.join(dir, 'repo')}`;
  await new RepositoryRegistry({ clock, keySource, initMissing: true }).open({ id: 'r', url: repoUrl }, 'acme');
  agentRepos = new RepositoryRegistry({ clock, keySource, createOnly: true });
});

afterAll(async () => {
  await session?.logout();
  await sim?.stop();
  await agentRepos?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});


describe('agent vsphere locator against vcsim', () => {
  it('backs up a snapshot disk named by a DiskBackupTask v2 through https, and restores its exact bytes', async () => {
    const vm = vmRef(sim.vms[0]!.moref);
    const snap = await createSnapshot(session, vm, { name: backupSnapshotName('run-agent', vm.value), ...noWait });
    const locator = new AgentDiskLocator({
      diskRoots: [dir],
      vcenters: new Map([['vc-sim', { id: 'vc-sim', url: sim.url, user: sim.userName, password: sim.password }]]),
    });
    try {
      const [disk] = await readSnapshotDisks(session, snap);
      const flat = sim.localPath(disk!.fileName.replace(/\.vmdk$/, '-flat.vmdk'));
      const pattern = Buffer.alloc(3 * MiB + 5);
      for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 131 + (i >> 10)) & 0xff;
      await writeAt(flat, MiB + 7, pattern);
      const expected = await readFile(flat);

      const task: DiskBackupTask = {
        type: 'DiskBackupTask',
        version: 2,
        taskId: 't-vs-1',
        runId: 'run-agent',
        jobId: 'job-1',
        tenantId: 'acme',
        vappId: 'vapp-1',
        vmId: 'vm-1',
        diskId: `disk-${disk!.key}`,
        pointId: 'pt-vs',
        repository: { id: 'r', url: repoUrl },
        blockSize: MiB,
        diskLocator: { kind: 'vsphere', vsphere: { vcenter: 'vc-sim', vm: vm.value, snapshot: snap.value, deviceKey: disk!.key, fileName: disk!.fileName, transport: 'https' } },
      };
      // As the agent receives it: encoded and parsed on the agent-tasks queue.
      const received = parseMessage('agentTasks', encodeMessage('agentTasks', task)) as DiskBackupTask;
      const deps = { repositories: agentRepos, locator, repositoryLocks: false };
      const backup = await runDiskBackupTask(received, deps);
      expect(backup.error).toBeUndefined();
      expect(backup.ok).toBe(true);
      expect(backup.stats?.diskSizeBytes).toBe(8 * MiB);
      expect(backup.stats?.bytesRead).toBe(8 * MiB);

      // A second disk read reuses the cached vCenter session (no second login needed to succeed).
      const again = await runDiskBackupTask({ ...received, taskId: 't-vs-2', pointId: 'pt-vs-2' }, deps);
      expect(again.ok).toBe(true);
      expect(again.stats?.blocksNew).toBe(0);

      const out = path.join(dir, 'restored.img');
      const restore: DiskRestoreTask = {
        type: 'DiskRestoreTask',
        version: 2,
        taskId: 'r-vs',
        runId: 'run-r',
        tenantId: 'acme',
        vappId: 'vapp-1',
        vmId: 'vm-1',
        diskId: task.diskId,
        pointId: 'pt-vs',
        repository: { id: 'r', url: repoUrl },
        indexKey: backup.stats!.indexKey!,
        target: { kind: 'file', path: out },
      };
      const restored = await runDiskRestoreTask(restore, deps);
      expect(restored.ok).toBe(true);
      expect((await readFile(out)).equals(expected)).toBe(true);

      // The task's disk must be the snapshot's disk: a wrong device key or file name is refused, permanently.
      const wrongKey = await runDiskBackupTask({ ...received, diskLocator: { kind: 'vsphere', vsphere: { ...received.diskLocator.vsphere!, deviceKey: 9999 } } }, deps).catch((e: unknown) => e);
      expect(wrongKey).toMatchObject({ code: 'DISK_NOT_FOUND' });
      expect(isPermanentTaskError(wrongKey)).toBe(true);
      const wrongFile = await runDiskBackupTask({ ...received, diskLocator: { kind: 'vsphere', vsphere: { ...received.diskLocator.vsphere!, fileName: '[LocalDS_0] other/other.vmdk' } } }, deps).catch((e: unknown) => e);
      expect(wrongFile).toMatchObject({ code: 'DISK_LOCATOR_MISMATCH' });
    } finally {
      await locator.close();
      await removeSnapshot(session, snap, noWait);
    }
  });

  it('reports a wrong vCenter password as a permanent login failure without showing it', async () => {
    const locator = new AgentDiskLocator({ diskRoots: [dir], vcenters: new Map([['vc-sim', { id: 'vc-sim', url: sim.url, user: sim.userName, password: new Secret('wrong-password-xyz') }]]) });
    try {
      const err = await locator.open({ kind: 'vsphere', vsphere: { vcenter: 'vc-sim', vm: sim.vms[0]!.moref, deviceKey: 2000, fileName: '[LocalDS_0] x/x.vmdk' } }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'VSPHERE_INVALID_LOGIN' });
      expect(isPermanentTaskError(err)).toBe(true);
      expect(String((err as Error).message)).not.toContain('wrong-password-xyz');
    } finally {
      await locator.close();
    }
  });
});
