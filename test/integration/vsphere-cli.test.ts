/**
 * `vcd-backup vsphere backup|restore|snapshots` through the real CLI against vcsim (test/vcsim/main.go) and
 * Debian's nbdkit: full and CBT-incremental backups, restore over the VM's disk, and snapshots that never
 * stay behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../../lib/domain/clock.js';
import { Repository } from '../../lib/repository/repository.js';
import { openStore } from '../../lib/repository/url.js';
import { Secret } from '../../lib/secret.js';
import { backupSnapshotName, createSnapshot, el, moRefOf, raw, readVirtualMachine, removeSnapshot, vmRef, VsphereSession, waitForTask } from '../../lib/vsphere/index.js';
import { cli } from '../helpers/cli.js';
import { startVcsim, type Vcsim } from '../helpers/vcsim.js';
import { writeAt } from '../helpers/write-at.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MiB = 1024 * 1024;
const KiB = 1024;
const BLOCK = 256 * KiB;
const PASSPHRASE = 'vsphere cli test passphrase';
let sim: Vcsim;
let session: VsphereSession;
let work: string;
let repo: string;
let env: Record<string, string>;

beforeAll(async () => {
  sim = await startVcsim({ diskMiB: 8 });
  session = await VsphereSession.login({ url: sim.url, userName: sim.userName, password: sim.password });
  work = await mkdtemp(path.join(tmpdir(), 'vcdb-vsphere-cli-'));
  repo = `file://${work}/repo`;
  // A cheap scrypt keeps the test fast; opening reads the parameters from the key document.
  await Repository.init(openStore(repo), { clock: new ManualClock('2026-11-01T00:00:00Z'), blockSize: BLOCK, keySource: { kind: 'passphrase', passphrase: new Secret(PASSPHRASE), scrypt: { N: 1024, r: 8, p: 1 } } });
  env = { VC_PASSWORD: sim.password.reveal(), REPO_PASS: PASSPHRASE };
});

afterAll(async () => {
  await session?.logout();
  await sim?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const vcenter = () => ['--vcenter', sim.url, '--user', sim.userName, '--password-env', 'VC_PASSWORD'];
const datastoreDirs = () => sim.datastores.flatMap((d) => ['--datastore-dir', `${d.name}=${d.path}`]);


function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 131 + seed * 7 + (i >> 10)) & 0xff;
  return b;
}

async function flatFileOf(moref: string): Promise<string> {
  const info = await readVirtualMachine(session, vmRef(moref));
  return sim.localPath(info.disks[0]!.fileName.replace(/\.vmdk$/, '-flat.vmdk'));
}

async function ourSnapshots(moref?: string): Promise<Array<{ snapshot: string; vm: string; name: string; stale: boolean; removed: boolean }>> {
  const run = await cli(['vsphere', 'snapshots', ...vcenter(), ...(moref ? ['--vm', moref] : []), '--json'], env);
  expect(run.code, run.stderr).toBe(0);
  return run.json<{ snapshots: Array<{ snapshot: string; vm: string; name: string; stale: boolean; removed: boolean }> }>().snapshots;
}

/**
 * Runs `vcd-backup vsphere backup` as its own process and SIGKILLs it as soon as it reports its snapshot,
 * i.e. while it reads the disk (the snapshot is removed only after every disk is read): a crashed agent.
 */
async function killedBackup(moref: string): Promise<{ snapshot: string; name: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/vcd-backup.mjs'), 'vsphere', 'backup', ...vcenter(), '--vm', moref, '--repo', repo, '--passphrase-env', 'REPO_PASS', '--vapp', 'vapp-killed'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  let snapshot: string | undefined;
  for await (const line of createInterface({ input: child.stderr! })) {
    const m = /^snapshot (snapshot-\d+) created/.exec(line);
    if (m) {
      snapshot = m[1];
      child.kill('SIGKILL');
      break;
    }
  }
  expect(await exited).toBe('SIGKILL');
  const left = (await readVirtualMachine(session, vmRef(moref))).snapshots.find((s) => s.snapshot.value === snapshot);
  expect(left, 'the killed backup left its snapshot').toBeDefined();
  return { snapshot: left!.snapshot.value, name: left!.name };
}

interface BackupJson {
  pointId: string;
  vm: string;
  snapshotRemoved: boolean;
  transport: string;
  disks: Array<{ diskId: string; deviceKey: number; sizeBytes: number; bytesRead: number; changedBytes: number | null; changeId: string | null; mode: string; fullReason: string | null }>;
}

describe('vcd-backup vsphere against vcsim', () => {
  it('full backup (https), CBT incremental (nbd) reads only the changed blocks, restore writes the bytes back', async () => {
    const vm = sim.vms[0]!.moref;
    const flat = await flatFileOf(vm);
    await writeAt(flat, 0, pattern(6 * MiB, 1));
    const atFull = await readFile(flat);

    const full = await cli(['vsphere', 'backup', ...vcenter(), '--vm', vm, '--repo', repo, '--passphrase-env', 'REPO_PASS', '--vapp', 'vapp-1', '--json'], env);
    expect(full.code, full.stderr).toBe(0);
    expect(full.stderr).toContain('changed block tracking was off');
    expect(full.stderr).not.toContain(PASSPHRASE);
    expect(full.stderr).not.toContain(sim.password.reveal());
    const f = full.json<BackupJson>();
    expect(f).toMatchObject({ vm, snapshotRemoved: true, transport: 'https' });
    expect(f.disks).toHaveLength(1);
    const [fd] = f.disks;
    expect(fd).toMatchObject({ sizeBytes: 8 * MiB, bytesRead: 8 * MiB, changedBytes: null, mode: 'full' });
    expect(fd!.changeId).toMatch(/^52 .+\/\d+$/);
    expect(fd!.fullReason).toContain('no parent');
    expect(await ourSnapshots(vm)).toEqual([]);

    // 10 bytes inside one 64 KiB CBT chunk, and 128 KiB across the 5 MiB block boundary: 3 blocks of 256 KiB.
    await writeAt(flat, 3 * MiB + 100, Buffer.alloc(10, 0xee));
    await writeAt(flat, 5 * MiB - 64 * KiB, Buffer.alloc(128 * KiB, 0xdd));
    const atIncr = await readFile(flat);

    const incr = await cli(
      ['vsphere', 'backup', ...vcenter(), '--vm', vm, '--repo', repo, '--passphrase-env', 'REPO_PASS', '--vapp', 'vapp-1', '--parent', f.pointId, '--transport', 'nbd', ...datastoreDirs(), '--json'],
      env,
    );
    expect(incr.code, incr.stderr).toBe(0);
    const i = incr.json<BackupJson>();
    expect(i).toMatchObject({ vm, snapshotRemoved: true, transport: 'nbd' });
    const [id] = i.disks;
    expect(id).toMatchObject({ deviceKey: fd!.deviceKey, mode: 'incremental', changedBytes: 192 * KiB, bytesRead: 3 * BLOCK, fullReason: null });
    expect(id!.changeId).not.toBe(fd!.changeId);
    expect(await ourSnapshots(vm)).toEqual([]);

    // The point records the changeId the next incremental starts from.
    const points = await cli(['repo', 'points', '--repo', repo, '--passphrase-env', 'REPO_PASS', '--json'], env);
    expect(points.code, points.stderr).toBe(0);
    expect(points.stdout).toContain(id!.changeId!);

    // Scribble over the disk, then roll back to each point; the VM ends powered on as it was.
    await writeAt(flat, 1 * MiB, Buffer.alloc(2 * MiB, 0x55));
    const held = await createSnapshot(session, vmRef(vm), { name: 'operator snapshot' });
    const refused = await cli(['vsphere', 'restore', ...vcenter(), '--vm', vm, '--repo', repo, '--passphrase-env', 'REPO_PASS', '--point', i.pointId, ...datastoreDirs()], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('VSPHERE_RESTORE_REFUSED');
    expect(refused.stderr).toContain('operator snapshot');
    expect((await readVirtualMachine(session, vmRef(vm))).powerState).toBe('poweredOn');
    await removeSnapshot(session, held);
    const back = await cli(['vsphere', 'restore', ...vcenter(), '--vm', vm, '--repo', repo, '--passphrase-env', 'REPO_PASS', '--point', i.pointId, ...datastoreDirs(), '--json'], env);
    expect(back.code, back.stderr).toBe(0);
    const r = back.json<{ powerStateBefore: string; powerStateAfter: string; disks: Array<{ bytesWritten: number; blocksUnchanged: number }> }>();
    expect(r).toMatchObject({ powerStateBefore: 'poweredOn', powerStateAfter: 'poweredOn' });
    expect(r.disks[0]!.bytesWritten).toBe(2 * MiB); // quick rollback: only the scribbled blocks
    expect((await readFile(flat)).equals(atIncr)).toBe(true);
    expect((await readVirtualMachine(session, vmRef(vm))).powerState).toBe('poweredOn');

    const toFull = await cli(['vsphere', 'restore', ...vcenter(), '--vm', vm, '--repo', repo, '--passphrase-env', 'REPO_PASS', '--point', f.pointId, ...datastoreDirs(), '--json'], env);
    expect(toFull.code, toFull.stderr).toBe(0);
    expect((await readFile(flat)).equals(atFull)).toBe(true);
  });

  it('an unchanged disk reads nothing; with CBT switched off since the parent it reads in full and says why', async () => {
    const vm = sim.vms[1]!.moref;
    const base = ['vsphere', 'backup', ...vcenter(), '--vm', vm, '--repo', repo, '--passphrase-env', 'REPO_PASS', '--vapp', 'vapp-2', '--json'];
    const first = await cli(base, env);
    expect(first.code, first.stderr).toBe(0);
    const p1 = first.json<BackupJson>().pointId;
    const same = await cli([...base, '--parent', p1], env);
    expect(same.code, same.stderr).toBe(0);
    expect(same.json<BackupJson>().disks[0]).toMatchObject({ mode: 'incremental', changedBytes: 0, bytesRead: 0 });

    // An administrator turns CBT off: the old changeIds mean nothing any more.
    const reconfig = await session.client.call('ReconfigVM_Task', vmRef(vm), raw('spec', el('changeTrackingEnabled', false)));
    await waitForTask(session, moRefOf(reconfig.children.find((c) => c.name === 'returnval'), 'ReconfigVM_Task'));
    const after = await cli([...base, '--parent', same.json<BackupJson>().pointId], env);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toContain('changed block tracking was off');
    const d = after.json<BackupJson>().disks[0]!;
    expect(d).toMatchObject({ mode: 'full', changedBytes: null, bytesRead: 8 * MiB });
    expect(d.fullReason).toContain('enabled just now');
  });

  it('failures are clear and leave no snapshot: wrong passphrase, missing moref, refused transport, bad usage, a VM without disks', async () => {
    const vm = sim.vms[2]!.moref;
    const backup = ['vsphere', 'backup', ...vcenter(), '--vm', vm, '--repo', repo, '--vapp', 'vapp-3'];

    const wrong = await cli([...backup, '--passphrase-env', 'WRONG'], { ...env, WRONG: 'not the passphrase' });
    // A wrong key is bad input (exit 2, as everywhere in the CLI), found before the VM is snapshotted.
    expect(wrong.code, wrong.stderr).toBe(2);
    expect(wrong.stderr).not.toContain('not the passphrase');
    expect(await ourSnapshots(vm)).toEqual([]);

    const missing = await cli(['vsphere', 'backup', ...vcenter(), '--vm', 'vm-9999', '--repo', repo, '--passphrase-env', 'REPO_PASS', '--vapp', 'vapp-3'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('vm-9999');
    expect(missing.stderr).toContain('VSPHERE_OBJECT_NOT_FOUND');

    // The snapshot exists when the transport refuses the disk: it must be removed all the same.
    const refused = await cli([...backup, '--passphrase-env', 'REPO_PASS', '--transport', 'nbd', '--datastore-dir', `NoSuchDS=${work}`], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('VSPHERE_DISK_UNSUPPORTED');
    expect(refused.stderr).toContain('--datastore-dir');
    expect(refused.stderr).toMatch(/snapshot snapshot-\d+ removed/);
    expect(await ourSnapshots(vm)).toEqual([]);

    const usage = await cli([...backup, '--passphrase-env', 'REPO_PASS', '--transport', 'hotadd'], env);
    expect(usage.code).toBe(2);
    const noDirs = await cli([...backup, '--passphrase-env', 'REPO_PASS', '--transport', 'nbd'], env);
    expect(noDirs.code).toBe(2);
    expect(noDirs.stderr).toContain('--datastore-dir');
    const https = await cli(['vsphere', 'restore', ...vcenter(), '--vm', vm, '--repo', repo, '--point', 'p-1', '--transport', 'https'], env);
    expect(https.code).toBe(2);
    expect(https.stderr).toContain('--transport nbd');
    const noPassword = await cli([...backup, '--passphrase-env', 'REPO_PASS'], { REPO_PASS: PASSPHRASE });
    expect(noPassword.code).toBe(2);
    expect(noPassword.stderr).toContain('VC_PASSWORD');
    expect(await ourSnapshots(vm)).toEqual([]);

    // Last, as it takes the VM's disk away: a VM without disks is refused before any snapshot.
    const [disk] = (await readVirtualMachine(session, vmRef(vm))).disks;
    const change = raw('deviceChange', el('operation', 'remove') + raw('device', el('key', disk!.key) + el('capacityInKB', disk!.capacityInBytes / 1024), 'VirtualDisk'));
    const reconfig = await session.client.call('ReconfigVM_Task', vmRef(vm), raw('spec', change));
    await waitForTask(session, moRefOf(reconfig.children.find((c) => c.name === 'returnval'), 'ReconfigVM_Task'));
    expect((await readVirtualMachine(session, vmRef(vm))).disks).toEqual([]);
    const noDisks = await cli([...backup, '--passphrase-env', 'REPO_PASS'], env);
    expect(noDisks.code).toBe(1);
    expect(noDisks.stderr).toContain('VSPHERE_VM_NOT_BACKUPABLE');
    expect(noDisks.stderr).toContain('has no virtual disks');
    expect(await ourSnapshots(vm)).toEqual([]);
  });

  it('a backup killed mid-read leaves its snapshot; snapshots --remove-stale removes it once older than --older-than, and nothing else', async () => {
    const vm = vmRef(sim.vms[3]!.moref);
    const foreign = await createSnapshot(session, vm, { name: 'before upgrade' });
    const orphan = await killedBackup(vm.value);
    expect(orphan.name).toBe(backupSnapshotName(orphan.name.split(':')[1]!, vm.value));

    const listed = await ourSnapshots();
    expect(listed.map((s) => [s.vm, s.snapshot, s.stale])).toEqual([[vm.value, orphan.snapshot, false]]);

    const young = await cli(['vsphere', 'snapshots', ...vcenter(), '--remove-stale', '--json'], env);
    expect(young.code, young.stderr).toBe(0);
    expect(young.json<{ removed: number }>().removed).toBe(0);

    const sweep = await cli(['vsphere', 'snapshots', ...vcenter(), '--remove-stale', '--older-than', '0s', '--json'], env);
    expect(sweep.code, sweep.stderr).toBe(0);
    expect(sweep.json<{ removed: number; snapshots: Array<{ snapshot: string; removed: boolean }> }>()).toMatchObject({ removed: 1, snapshots: [{ snapshot: orphan.snapshot, removed: true }] });
    expect((await readVirtualMachine(session, vm)).snapshots.map((s) => s.snapshot.value)).toEqual([foreign.value]);
    expect(await ourSnapshots()).toEqual([]);

    const bad = await cli(['vsphere', 'snapshots', ...vcenter(), '--older-than', 'yesterday'], env);
    expect(bad.code).toBe(2);
    await removeSnapshot(session, foreign);
  });
});
