/**
 * The agent's transports through its task runner against Debian's real nbdkit: backups read an NBD export
 * (holes skipped via BLOCK_STATUS), restores write one (quick rollback writes only differing blocks), and
 * locators the agent config does not allow are refused with permanent DISK_ errors.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentVcenterCredentials, loadAgentConfig } from '../../lib/agent/agent-config.js';
import { AgentDiskLocator, DiskLocationError, vddkPluginArgs } from '../../lib/agent/disk-locator.js';
import { NbdDiskSource, NbdDiskTarget } from '../../lib/agent/nbd-disk-source.js';
import { startNbdkit, type NbdkitOptions, type NbdkitProcess } from '../../lib/agent/nbd-server.js';
import { isPermanentTaskError, runDiskBackupTask, runDiskRestoreTask } from '../../lib/agent/task-runner.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { parseMessage, type DiskBackupTask, type DiskLocator, type DiskRestoreTask } from '../../lib/queue/messages.js';
import { Secret } from '../../lib/secret.js';
import { RepositoryRegistry } from '../../lib/wiring/repository-registry.js';

const VDDK_SHA1 = '3C:7E:1B:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
/** Written areas (4 KiB aligned so the file system reports the rest as holes); they touch blocks 0, 20, 21, 40, 63. */
const WRITTEN = [
  { offset: 0, length: MiB },
  { offset: 20 * MiB + 4096, length: 1536 * 1024 },
  { offset: 40 * MiB, length: 8192 },
  { offset: SIZE - MiB, length: MiB },
];
const keySource = { kind: 'passphrase' as const, passphrase: new Secret('agent transports test'), scrypt: { N: 1024, r: 8, p: 1 } };

let dir: string;
let image: string;
let imageBytes: Buffer;
let repoUrl: string;
let agentRepos: RepositoryRegistry;
const servers: NbdkitProcess[] = [];

async function server(options: NbdkitOptions): Promise<NbdkitProcess> {
  const s = await startNbdkit(options);
  servers.push(s);
  return s;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vcdb-agent-transports-'));
  await mkdir(path.join(dir, 'disks'));
  image = path.join(dir, 'disks', 'sparse.img');
  const handle = await open(image, 'w');
  await handle.truncate(SIZE);
  imageBytes = Buffer.alloc(SIZE);
  for (const area of WRITTEN) {
    const data = randomBytes(area.length);
    data.copy(imageBytes, area.offset);
    await handle.write(data, 0, data.length, area.offset);
  }
  await handle.close();
  const clock = new ManualClock('2026-12-01T00:00:00.000Z');
  repoUrl = `file://${path.join(dir, 'repo')}`;
  await new RepositoryRegistry({ clock, keySource, initMissing: true }).open({ id: 'r', url: repoUrl }, 'acme');
  agentRepos = new RepositoryRegistry({ clock, keySource, createOnly: true });
});

afterAll(async () => {
  await Promise.allSettled(servers.map((s) => s.stop()));
  await agentRepos?.close();
  await rm(dir, { recursive: true, force: true });
});

const backupTask = (pointId: string, diskLocator: DiskLocator): DiskBackupTask => ({
  type: 'DiskBackupTask',
  version: 2,
  taskId: `t-${pointId}`,
  runId: 'run-1',
  jobId: 'job-1',
  tenantId: 'acme',
  vappId: 'vapp-1',
  vmId: 'vm-1',
  diskId: 'disk-1',
  pointId,
  repository: { id: 'r', url: repoUrl },
  blockSize: MiB,
  diskLocator,
});

const restoreTask = (pointId: string, target: DiskLocator): DiskRestoreTask => ({
  type: 'DiskRestoreTask',
  version: 2,
  taskId: `r-${pointId}`,
  runId: 'run-r',
  tenantId: 'acme',
  vappId: 'vapp-1',
  vmId: 'vm-1',
  diskId: 'disk-1',
  pointId,
  repository: { id: 'r', url: repoUrl },
  indexKey: `points/vapp-1/${pointId}/disks/disk-1.idx`,
  target,
});

/** Locator whose disk roots include the private directory nbdkit put its socket in. */
const locatorFor = (...sockets: NbdkitProcess[]) => new AgentDiskLocator({ diskRoots: [path.join(dir, 'disks'), ...sockets.map((s) => path.dirname(s.socketPath))], nbdEndpoints: ['127.0.0.1:10809'] });

async function exportBytes(socketPath: string): Promise<Buffer> {
  const source = await NbdDiskSource.open({ socketPath });
  try {
    const out = Buffer.alloc(source.size);
    await source.read(0, source.size, out);
    return out;
  } finally {
    await source.close();
  }
}

describe('agent transports: nbd through the task runner', () => {
  it('backs a sparse NBD export up reading only its allocated blocks, and restores it into another export', async () => {
    const src = await server({ plugin: ['file', `file=${image}`], readOnly: true });
    const locator = locatorFor(src);
    const deps = { repositories: agentRepos, locator, repositoryLocks: false };

    // The same image read as a file: every block is read, as no allocation is known.
    const whole = await runDiskBackupTask(backupTask('pt-file', { kind: 'file', path: image }), deps);
    expect(whole.ok).toBe(true);
    expect(whole.stats?.bytesRead).toBe(SIZE);

    // A v1 message still reaches the runner (upgraded by parseMessage).
    const wire = parseMessage('agentTasks', { ...backupTask('pt-nbd', { kind: 'nbd', path: src.socketPath }), version: 1 });
    expect(wire.version).toBe(2);
    const sparse = await runDiskBackupTask(wire as DiskBackupTask, deps);
    expect(sparse.ok).toBe(true);
    // 5 blocks hold data; the 59 others lie in zero extents and are never read.
    expect(sparse.stats?.bytesRead).toBeLessThanOrEqual(5 * MiB);
    expect(sparse.stats?.bytesRead).toBeGreaterThan(0);
    expect(sparse.stats?.blocksZero).toBeGreaterThanOrEqual(59);
    expect(sparse.stats?.blocksNew).toBe(0); // the file backup uploaded the same blocks already

    // CBT keeps precedence over holes: unchanged blocks come from the parent unread, changed ones are read.
    const cbt = await runDiskBackupTask({ ...backupTask('pt-cbt', { kind: 'nbd', path: src.socketPath }), parentIndexKey: 'points/vapp-1/pt-nbd/disks/disk-1.idx', changedAreas: [{ offset: 20 * MiB, length: 4096 }, { offset: 30 * MiB, length: 1 }] }, deps);
    expect(cbt.stats?.bytesRead).toBeLessThanOrEqual(MiB); // block 20 read; block 30 is a hole, skipped unread
    expect(cbt.stats?.blocksReused).toBeGreaterThanOrEqual(4); // blocks 0, 21, 40, 63 from the parent (20 too: same hash)

    const dst = await server({ plugin: ['memory', `size=${SIZE}`] });
    const restoreLocator = locatorFor(dst);
    const restoreDeps = { repositories: agentRepos, locator: restoreLocator, repositoryLocks: false };
    const first = await runDiskRestoreTask(restoreTask('pt-nbd', { kind: 'nbd', path: dst.socketPath }), restoreDeps);
    expect(first.ok).toBe(true);
    expect((await exportBytes(dst.socketPath)).equals(imageBytes)).toBe(true);

    // Quick rollback: the export already holds the point, so nothing is written.
    const again = await runDiskRestoreTask(restoreTask('pt-nbd', { kind: 'nbd', path: dst.socketPath }), restoreDeps);
    expect(again.stats?.bytesWritten).toBe(0);

    // One data block and one zero block damaged: exactly those two are written back (zeros as zeros).
    const target = await NbdDiskTarget.open({ socketPath: dst.socketPath });
    await target.write(20 * MiB, Buffer.alloc(4096, 0xee));
    await target.write(30 * MiB + 512, Buffer.alloc(512, 0xee));
    await target.close();
    const repair = await runDiskRestoreTask(restoreTask('pt-nbd', { kind: 'nbd', path: dst.socketPath }), restoreDeps);
    expect(repair.stats?.bytesWritten).toBe(2 * MiB);
    expect((await exportBytes(dst.socketPath)).equals(imageBytes)).toBe(true);
  });

  it('restores through the runner into a file, leaving zero blocks as holes', async () => {
    const out = path.join(dir, 'disks', 'restored.img');
    const locator = locatorFor();
    const result = await runDiskRestoreTask(restoreTask('pt-file', { kind: 'file', path: out }), { repositories: agentRepos, locator, repositoryLocks: false });
    expect(result.ok).toBe(true);
    expect(result.stats?.bytesWritten).toBe(5 * MiB);
    expect((await readFile(out)).equals(imageBytes)).toBe(true);
  });

  it('refuses NBD servers, sockets and vSphere disks the agent config does not allow, with permanent DISK_ errors', async () => {
    const locator = locatorFor();
    const refusal = async (p: Promise<unknown>, code: string, text: RegExp) => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DiskLocationError);
      expect((err as DiskLocationError).code).toBe(code);
      expect((err as Error).message).toMatch(text);
      expect(isPermanentTaskError(err)).toBe(true);
    };
    await refusal(locator.open({ kind: 'nbd', host: '10.0.0.5', port: 10809 }), 'DISK_NBD_ENDPOINT_NOT_ALLOWED', /10\.0\.0\.5:10809.*nbdEndpoints/);
    await refusal(locator.openTarget({ kind: 'nbd', path: '/run/other/nbd.sock' }), 'DISK_OUTSIDE_ROOTS', /diskRoots/);
    const vsphere = { vcenter: 'vc-9', vm: 'vm-1', snapshot: 'snapshot-1', deviceKey: 2000, fileName: '[ds] vm/vm.vmdk' };
    await refusal(locator.open({ kind: 'vsphere', vsphere }), 'DISK_VCENTER_NOT_CONFIGURED', /vc-9.*vcenters/);

    const withVcenter = new AgentDiskLocator({
      diskRoots: [dir],
      vcenters: new Map([['vc-9', { id: 'vc-9', url: 'https://vc.example/sdk', user: 'backup', password: new Secret('never-shown') }]]),
    });
    await refusal(withVcenter.open({ kind: 'vsphere', vsphere: { ...vsphere, transport: 'nbd' } }), 'DISK_TRANSPORT_UNAVAILABLE', /VDDK.*vddkLibDir.*https/);
    await refusal(withVcenter.open({ kind: 'vsphere', vsphere: { ...vsphere, transport: 'hotadd' } }), 'DISK_TRANSPORT_UNSUPPORTED', /hotadd.*not supported.*https/);
    await refusal(withVcenter.openTarget({ kind: 'vsphere', vsphere: { ...vsphere, transport: 'https' } }), 'DISK_TRANSPORT_UNSUPPORTED', /https.*cannot write.*nbd/);
    await refusal(withVcenter.openTarget({ kind: 'vsphere', vsphere }), 'DISK_TRANSPORT_UNAVAILABLE', /vddkLibDir/);
    await withVcenter.close();
  });

  it('reads vCenters from the agent config by secret reference only, and starts nbdkit vddk without the password on its command line', async () => {
    const cfgDir = path.join(dir, 'cfg');
    await mkdir(cfgDir, { recursive: true });
    await writeFile(path.join(cfgDir, 'vc2.pw'), 'file-secret\n', { mode: 0o600 });
    const base = { queues: { tasks: 'http://localhost:1/q/t', results: 'http://localhost:1/q/r' }, repositories: [{ url: repoUrl }], diskRoots: ['disks'] };
    const file = path.join(cfgDir, 'agent.json');
    await writeFile(
      file,
      JSON.stringify({
        ...base,
        nbdEndpoints: ['nbd.example:10809'],
        vddkLibDir: 'vddk',
        vcenters: [
          { id: 'vc-1', url: 'https://vc1.example/sdk', user: 'backup@vsphere.local', passwordEnv: 'VC1_PASSWORD' },
          { id: 'vc-2', url: 'https://vc2.example/sdk', user: 'backup', passwordFile: 'vc2.pw', thumbprint: 'ab'.repeat(32) },
        ],
      }),
    );
    const config = await loadAgentConfig(file);
    expect(config.vddkLibDir).toBe(path.join(cfgDir, 'vddk'));
    const creds = await agentVcenterCredentials(config, { VC1_PASSWORD: 'env-secret' });
    expect(creds.get('vc-1')?.password.reveal()).toBe('env-secret');
    expect(creds.get('vc-2')?.password.reveal()).toBe('file-secret');
    expect(JSON.stringify([...creds.values()])).not.toMatch(/env-secret|file-secret/);
    await expect(agentVcenterCredentials(config, {})).rejects.toThrow(/VC1_PASSWORD/);

    await writeFile(file, JSON.stringify({ ...base, vcenters: [{ id: 'vc-1', url: 'https://vc1.example/sdk', user: 'u', password: 'inline' }] }));
    await expect(loadAgentConfig(file)).rejects.toThrow(/password/);
    await writeFile(file, JSON.stringify({ ...base, vcenters: [{ id: 'vc-1', url: 'https://vc1.example/sdk', user: 'u' }] }));
    await expect(loadAgentConfig(file)).rejects.toThrow(/exactly one of passwordEnv, passwordFile/);

    const args = vddkPluginArgs('/opt/vddk', creds.get('vc-1')!, { vcenter: 'vc-1', vm: 'vm-42', snapshot: 'snapshot-7', deviceKey: 2000, fileName: '[ds1] vm/vm.vmdk' }, '/tmp/x/password');
    expect(args).toEqual(['vddk', 'libdir=/opt/vddk', 'server=vc1.example', 'user=backup@vsphere.local', 'password=+/tmp/x/password', 'vm=moref=vm-42', 'snapshot=snapshot-7', 'file=[ds1] vm/vm.vmdk', 'transports=nbdssl:nbd']);
    expect(args.join(' ')).not.toContain('env-secret');
  });

  it('refuses the vddk transport without the vCenter SHA-1 thumbprint VDDK verifies it by', async () => {
    const locator = new AgentDiskLocator({
      diskRoots: [dir],
      vddkLibDir: '/opt/vmware-vix-disklib-distrib',
      vcenters: new Map([['vc-1', { id: 'vc-1', url: 'https://vc1.example/sdk', user: 'backup', password: new Secret('vddk-secret') }]]),
    });
    await expect(
      locator.open({ kind: 'vsphere', vsphere: { vcenter: 'vc-1', vm: 'vm-42', snapshot: 'snapshot-7', deviceKey: 2000, fileName: '[ds1] vm/vm.vmdk', transport: 'nbd' } }),
    ).rejects.toMatchObject({ code: 'DISK_VDDK_THUMBPRINT_MISSING' });
    await locator.close();
  });

  it('serves a vsphere disk over the nbd transport through nbdkit when VDDK is configured (vddk stood in for by the file plugin)', async () => {
    // Debian's nbdkit has no vddk plugin (VDDK is VMware's): a wrapper checks what the agent passes to
    // nbdkit vddk, then runs the real nbdkit with the file plugin on an image in its place.
    const shim = path.join(dir, 'nbdkit-vddk-shim.sh');
    const argsLog = path.join(dir, 'vddk-args.txt');
    const copy = path.join(dir, 'disks', 'vddk-copy.img');
    const sparseCopy = await open(copy, 'w');
    await sparseCopy.truncate(SIZE);
    for (const area of WRITTEN) await sparseCopy.write(imageBytes, area.offset, area.length, area.offset);
    await sparseCopy.close();
    await writeFile(
      shim,
      [
        '#!/bin/sh',
        'opts=""',
        'while [ "$1" != vddk ]; do opts="$opts $1"; shift; done',
        'shift',
        'for a in "$@"; do case "$a" in password=+*) pw="${a#password=+}";; esac; done',
        '[ "$(cat "$pw")" = "vddk-secret" ] || { echo "password file missing or wrong" >&2; exit 1; }',
        '[ "$(stat -c %a "$pw")" = 600 ] || { echo "password file readable by others" >&2; exit 1; }',
        `printf '%s\n' "$@" > ${argsLog}`,
        `exec nbdkit $opts file file=${copy}`,
        '',
      ].join('\n'),
    );
    await chmod(shim, 0o755);
    const locator = new AgentDiskLocator({
      diskRoots: [path.join(dir, 'disks')],
      vcenters: new Map([['vc-1', { id: 'vc-1', url: 'https://vc1.example/sdk', user: 'backup', password: new Secret('vddk-secret'), vddkThumbprint: VDDK_SHA1 }]]),
      vddkLibDir: '/opt/vmware-vix-disklib-distrib',
      nbdkit: shim,
    });
    const deps = { repositories: agentRepos, locator, repositoryLocks: false };
    const vsphere = { vcenter: 'vc-1', vm: 'vm-42', snapshot: 'snapshot-7', deviceKey: 2000, fileName: '[ds1] vm/vm.vmdk', transport: 'nbd' as const };
    try {
      const backup = await runDiskBackupTask(backupTask('pt-vddk', { kind: 'vsphere', vsphere }), deps);
      expect(backup.error).toBeUndefined();
      expect(backup.stats?.bytesRead).toBeLessThanOrEqual(5 * MiB); // holes skipped through nbdkit too
      const args = (await readFile(argsLog, 'utf8')).trim().split('\n');
      expect(args).toEqual(expect.arrayContaining(['libdir=/opt/vmware-vix-disklib-distrib', 'server=vc1.example', 'user=backup', `thumbprint=${VDDK_SHA1}`, 'vm=moref=vm-42', 'snapshot=snapshot-7', 'file=[ds1] vm/vm.vmdk']));
      expect(args.join(' ')).not.toContain('vddk-secret');

      // A restore writes the VM's current disk (no snapshot) through a writable nbdkit.
      await writeFile(copy, Buffer.alloc(SIZE, 0x5a));
      const restore = await runDiskRestoreTask(restoreTask('pt-vddk', { kind: 'vsphere', vsphere: { ...vsphere, snapshot: undefined } }), deps);
      expect(restore.error).toBeUndefined();
      expect((await readFile(copy)).equals(imageBytes)).toBe(true);
      expect(await readFile(argsLog, 'utf8')).not.toContain('snapshot=');
    } finally {
      await locator.close();
    }
  });
});
