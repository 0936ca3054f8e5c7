/**
 * Writes every disk of a restore point back over the VM's current disks (same device key, same size), through
 * NBD: the VM is powered off first when it runs and put back to its power state after, also on failures.
 *
 * Quick rollback: each block of the target is read and compared with the point (hash in the codec workers)
 * and only differing blocks are fetched and written, so rolling back a few changed areas moves a few blocks.
 */
import { CodecPool } from '../agent/codec-pool.js';
import { NbdDiskTarget } from '../agent/nbd-disk-source.js';
import { restoreDisk } from '../agent/restore-disk.js';
import type { Clock } from '../domain/clock.js';
import type { Repository } from '../repository/repository.js';
import { serveLocalDisk, type LocalDatastores } from './backup-vm.js';
import { UnsupportedDiskError, VsphereError } from './errors.js';
import type { VsphereSession } from './session.js';
import { moRefOf, type ManagedObjectReference } from './soap.js';
import { waitForTask, type WaitOptions } from './tasks.js';
import { readVirtualMachine, vmRef, type VirtualMachinePowerState } from './vm.js';

export type VmRestoreTransport = 'nbd';

export interface VmRestoreInput {
  readonly session: VsphereSession;
  readonly repository: Repository;
  readonly clock: Clock;
  readonly vm: string;
  readonly pointId: string;
  readonly vappId?: string;
  /** Where the datastores' files are locally reachable (nbdkit file plugin); production: nbdkit vddk. */
  readonly localDatastores: LocalDatastores;
  readonly wait?: WaitOptions;
  /** Blocks compared/fetched/written at once. @default 16 */
  readonly concurrency?: number;
  readonly onEvent?: (message: string) => void;
  readonly onProgress?: (diskId: string, progress: { bytesTotal: number; bytesDone: number }) => void;
  readonly signal?: AbortSignal;
}

export interface VmRestoreDiskResult {
  readonly diskId: string;
  readonly deviceKey: number;
  readonly sizeBytes: number;
  readonly bytesWritten: number;
  readonly bytesCompared: number;
  readonly blocksWritten: number;
  readonly blocksUnchanged: number;
}

export interface VmRestoreResult {
  readonly pointId: string;
  readonly vappId: string;
  readonly vm: string;
  readonly transport: VmRestoreTransport;
  readonly powerStateBefore: VirtualMachinePowerState;
  readonly powerStateAfter: VirtualMachinePowerState;
  readonly disks: readonly VmRestoreDiskResult[];
  readonly seconds: number;
}

export class VmRestoreRefusedError extends VsphereError {
  constructor(message: string) {
    super('VSPHERE_RESTORE_REFUSED', message, { userFacing: true });
  }
}

export async function restoreVm(input: VmRestoreInput): Promise<VmRestoreResult> {
  const { session } = input;
  const started = input.clock.now();
  const vm = vmRef(input.vm);
  const event = (m: string) => input.onEvent?.(m);
  const found = await input.repository.findPoint(input.pointId, input.vappId);
  // An unbound repository sees every tenant's points: read this one with its own namespace's keys.
  const repository = input.repository.viewFor(found);
  const info = await readVirtualMachine(session, vm);

  // Check every disk before the VM is touched: a restore that stops halfway leaves a VM of mixed disks.
  const plan = found.disks.map((d) => {
    if (d.deviceKey === undefined) {
      throw new VmRestoreRefusedError(`point ${found.pointId} disk ${d.diskId} records no vSphere device key (it was not backed up from a VM): restore it with \`vcd-backup disk restore\``);
    }
    const target = info.disks.find((t) => t.key === d.deviceKey);
    if (target === undefined) {
      throw new VmRestoreRefusedError(`${vm.value} has no disk with device key ${d.deviceKey} (point disk ${d.diskId}); its disks are ${info.disks.map((t) => t.key).join(', ') || 'none'}: is this the VM the point was taken from?`);
    }
    if (target.capacityInBytes !== d.sizeBytes) {
      throw new VmRestoreRefusedError(`${vm.value} disk ${d.deviceKey} holds ${target.capacityInBytes} bytes but the point's ${d.diskId} has ${d.sizeBytes}: resize the VM's disk to the point's size first`);
    }
    return { pointDisk: d, target };
  });
  if (plan.length === 0) throw new VmRestoreRefusedError(`point ${found.pointId} has no disks to restore`);
  if (info.snapshots.length > 0) {
    // The current disk would be a delta on top of the snapshot's base; writing the base behind it corrupts the chain.
    throw new VmRestoreRefusedError(
      `${vm.value} has ${info.snapshots.length} snapshot(s) (${info.snapshots.map((s) => s.name).join(', ')}): delete them (stale backup snapshots: \`vcd-backup vsphere snapshots --remove-stale\`) before restoring over its disks`,
    );
  }
  if (info.powerState === 'suspended') {
    throw new VmRestoreRefusedError(`${vm.value} is suspended: its memory state refers to the current disks; power it off (discarding the suspended state) or resume it first`);
  }

  const powerStateBefore = info.powerState;
  if (powerStateBefore === 'poweredOn') {
    await powerTask(session, vm, 'PowerOffVM_Task', input.wait);
    event(`${vm.value} powered off for the restore`);
  }
  const pool = new CodecPool(repository.codecSettings());
  const disks: VmRestoreDiskResult[] = [];
  let failure: unknown;
  try {
    for (const { pointDisk, target } of plan) {
      const index = await repository.readIndex(found.vappId, found.pointId, pointDisk.diskId);
      const served = await serveLocalDisk(target, input.localDatastores, { readOnly: false });
      try {
        const nbd = await NbdDiskTarget.open({ socketPath: served.server.socketPath });
        try {
          if (nbd.size !== index.diskSize) throw new UnsupportedDiskError(`${nbd.description} serves ${nbd.size} bytes, the point's ${pointDisk.diskId} has ${index.diskSize}`);
          event(`${pointDisk.diskId}: writing over ${target.fileName} through ${nbd.description}`);
          // The agent's restore path: quick rollback (compare, write only differing blocks), zeros written as zeros.
          const stats = await restoreDisk({
            repository,
            pool,
            index,
            target: nbd,
            concurrency: input.concurrency ?? 16,
            signal: input.signal,
            onProgress: (p) => input.onProgress?.(pointDisk.diskId, { bytesTotal: p.bytesTotal, bytesDone: p.bytesDone }),
          });
          disks.push({
            diskId: pointDisk.diskId,
            deviceKey: target.key,
            sizeBytes: index.diskSize,
            bytesWritten: stats.bytesWritten,
            bytesCompared: stats.bytesCompared,
            blocksWritten: stats.blocksRestored,
            blocksUnchanged: stats.blocksUnchanged,
          });
        } finally {
          await nbd.close();
        }
      } finally {
        await served.server.stop();
      }
    }
  } catch (err) {
    failure = err;
  } finally {
    await pool.close();
  }
  // Back to the power state it had, also after a failure: a VM left off is an outage nobody asked for.
  let powerStateAfter: VirtualMachinePowerState = 'poweredOff';
  if (powerStateBefore === 'poweredOn') {
    try {
      await powerTask(session, vm, 'PowerOnVM_Task', input.wait);
      powerStateAfter = 'poweredOn';
      event(`${vm.value} powered on again`);
    } catch (err) {
      if (failure === undefined) failure = new VsphereError('VSPHERE_POWER_ON_FAILED', `the disks of ${vm.value} were restored but it could not be powered on again (${(err as Error).message}): power it on in vCenter`, { cause: err, userFacing: true });
      else event(`${vm.value} could not be powered on again: ${(err as Error).message}`);
    }
  }
  if (failure !== undefined) throw failure;
  return {
    pointId: found.pointId,
    vappId: found.vappId,
    vm: vm.value,
    transport: 'nbd',
    powerStateBefore,
    powerStateAfter,
    disks,
    seconds: (input.clock.now().getTime() - started.getTime()) / 1000,
  };
}

async function powerTask(session: VsphereSession, vm: ManagedObjectReference, method: 'PowerOffVM_Task' | 'PowerOnVM_Task', wait: WaitOptions | undefined): Promise<void> {
  const response = await session.client.call(method, vm);
  await waitForTask(session, moRefOf(response.children.find((c) => c.name === 'returnval'), method), wait);
}
