import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { ManualClock } from '../../lib/domain/clock.js';
import {
  backupSnapshotName,
  createSnapshot,
  enableChangeTracking,
  FileFaultError,
  HttpsDiskSource,
  ManagedObjectNotFoundError,
  queryChangedDiskAreas,
  readSnapshotDisks,
  readVirtualMachine,
  removeSnapshot,
  snapshotRef,
  sweepStaleSnapshots,
  vmRef,
  VsphereSession,
} from '../../lib/vsphere/index.js';
import { startVcsim, type Vcsim } from '../helpers/vcsim.js';
import { writeAt } from '../helpers/write-at.js';

const MiB = 1024 * 1024;
let sim: Vcsim;
let session: VsphereSession;

beforeAll(async () => {
  sim = await startVcsim({ diskMiB: 8 });
  session = await VsphereSession.login({ url: sim.url, userName: sim.userName, password: sim.password });
});

afterAll(async () => {
  await session?.logout();
  await sim?.stop();
});


const noWait = { sleep: async () => undefined, pollMs: 0 };

describe('snapshots, CBT and the https transport against vcsim', () => {
  it('creates and removes a snapshot through tasks; the snapshot tree shows it in between', async () => {
    const vm = vmRef(sim.vms[0]!.moref);
    const snap = await createSnapshot(session, vm, { name: backupSnapshotName('run-1', vm.value), description: 'point p-1', ...noWait });
    expect(snap.type).toBe('VirtualMachineSnapshot');
    const during = await readVirtualMachine(session, vm);
    expect(during.snapshots.map((s) => [s.snapshot.value, s.name, s.description])).toEqual([[snap.value, `vcd-backup:run-1:${vm.value}`, 'point p-1']]);
    expect(during.currentSnapshot).toEqual(snap);
    await removeSnapshot(session, snap, noWait);
    expect((await readVirtualMachine(session, vm)).snapshots).toEqual([]);
  });

  it('gives a typed error for removing a snapshot that does not exist', async () => {
    await expect(removeSnapshot(session, snapshotRef('snapshot-404'), noWait)).rejects.toBeInstanceOf(ManagedObjectNotFoundError);
  });

  it('enables CBT; QueryChangedDiskAreas answers exactly the areas the test changed', async () => {
    const vm = vmRef(sim.vms[1]!.moref);
    await enableChangeTracking(session, vm, noWait);
    const info = await readVirtualMachine(session, vm);
    expect(info.changeTrackingEnabled).toBe(true);
    const disk = info.disks[0]!;
    const flat = sim.localPath(disk.fileName.replace(/\.vmdk$/, '-flat.vmdk'));

    await writeAt(flat, 0, Buffer.alloc(64 * 1024, 1));
    const first = await createSnapshot(session, vm, { name: backupSnapshotName('run-a', vm.value), ...noWait });
    const [firstDisk] = await readSnapshotDisks(session, first);
    expect(firstDisk?.changeId).toMatch(/^52 .+\/\d+$/);

    // Full backup: "*" lists the allocated areas.
    const allocated = await queryChangedDiskAreas(session, vm, first, disk.key, '*', disk.capacityInBytes);
    expect(allocated.areas).toEqual([{ start: 0, length: 64 * 1024 }]);
    expect(allocated.calls).toBe(4); // vcsim answers 2 MiB per call, the client loops over 8 MiB
    await removeSnapshot(session, first, noWait);

    // Changes in two places, one crossing a 2 MiB answer boundary.
    await writeAt(flat, 3 * MiB + 100, Buffer.alloc(10, 7));
    await writeAt(flat, 4 * MiB - 64 * 1024, Buffer.alloc(128 * 1024, 9));
    const second = await createSnapshot(session, vm, { name: backupSnapshotName('run-b', vm.value), ...noWait });
    const [secondDisk] = await readSnapshotDisks(session, second);
    expect(secondDisk?.changeId).not.toBe(firstDisk?.changeId);
    const changed = await queryChangedDiskAreas(session, vm, second, disk.key, firstDisk!.changeId!, disk.capacityInBytes);
    expect(changed.areas).toEqual([
      { start: 3 * MiB, length: 64 * 1024 },
      { start: 4 * MiB - 64 * 1024, length: 128 * 1024 },
    ]);
    expect(changed.changedBytes).toBe(192 * 1024);

    // An unknown changeId is a FileFault: the caller reads everything.
    await expect(queryChangedDiskAreas(session, vm, second, disk.key, '52 00/999', disk.capacityInBytes)).rejects.toBeInstanceOf(FileFaultError);
    await removeSnapshot(session, second, noWait);
  });

  it('reads a snapshot disk over https with range reads, equal to the flat file', async () => {
    const vm = vmRef(sim.vms[2]!.moref);
    const info = await readVirtualMachine(session, vm);
    const flat = sim.localPath(info.disks[0]!.fileName.replace(/\.vmdk$/, '-flat.vmdk'));
    const pattern = Buffer.alloc(3 * MiB);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31 + (i >> 12)) & 0xff;
    await writeAt(flat, 2 * MiB + 17, pattern);

    const snap = await createSnapshot(session, vm, { name: backupSnapshotName('run-c', vm.value), ...noWait });
    try {
      const [disk] = await readSnapshotDisks(session, snap);
      const source = await HttpsDiskSource.open(session, vm, disk!);
      expect(source.size).toBe(8 * MiB);
      const expected = await readFile(flat);
      const got = Buffer.alloc(source.size);
      const block = 1 * MiB + 4096; // unaligned blocks exercise the extent arithmetic
      for (let off = 0; off < source.size; off += block) {
        const n = await source.read(off, Math.min(block, source.size - off), got.subarray(off));
        expect(n).toBe(Math.min(block, source.size - off));
      }
      expect(got.equals(expected)).toBe(true);
      await source.close();
    } finally {
      await removeSnapshot(session, snap, noWait);
    }
  });

  it('the sweeper removes an old snapshot of ours and leaves a foreign one and a young one of ours', async () => {
    const vm = vmRef(sim.vms[3]!.moref);
    const orphan = await createSnapshot(session, vm, { name: backupSnapshotName('crashed-run', vm.value), ...noWait });
    const foreign = await createSnapshot(session, vm, { name: 'before upgrade', ...noWait });
    const created = (await readVirtualMachine(session, vm)).snapshots.find((s) => s.snapshot.value === orphan.value)!.createTime;

    const young = await sweepStaleSnapshots(session, { olderThanMs: 3_600_000, clock: new ManualClock(created), vms: [vm], ...noWait });
    expect(young.removed).toEqual([]);
    expect(young.kept.map((s) => s.snapshot.value)).toEqual([orphan.value]);

    const later = new ManualClock(new Date(created.getTime() + 2 * 3_600_000));
    const report = await sweepStaleSnapshots(session, { olderThanMs: 3_600_000, clock: later, ...noWait });
    expect(report.failed).toEqual([]);
    expect(report.removed.map((s) => s.snapshot.value)).toEqual([orphan.value]);
    const left = (await readVirtualMachine(session, vm)).snapshots.map((s) => s.snapshot.value);
    expect(left).toEqual([foreign.value]);
    await removeSnapshot(session, foreign, noWait);
  });
});
