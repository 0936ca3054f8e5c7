/**
 * Backs up every disk of one VM from a vSphere snapshot into a new restore point (issue 14, "CLI for one VM
 * without the service"; the service will call the same function per VM):
 *
 *   login (caller) → enable CBT if off → snapshot → per disk: transport → QueryChangedDiskAreas from the
 *   parent point's changeId → backupDisk → commit → remove the snapshot (always) → logout (caller).
 *
 * The point records each disk's `deviceKey` and the snapshot's `changeId`, which the next backup asks
 * QueryChangedDiskAreas from.
 */
import { randomBytes } from 'node:crypto';
import { open, realpath } from 'node:fs/promises';
import path from 'node:path';
import { backupDisk, type DiskBackupProgress } from '../agent/backup-disk.js';
import type { ChangedArea } from '../agent/changed-areas.js';
import { CodecPool } from '../agent/codec-pool.js';
import type { DiskSource } from '../agent/disk-source.js';
import { NbdDiskSource } from '../agent/nbd-disk-source.js';
import { startNbdkit, type NbdkitProcess } from '../agent/nbd-server.js';
import type { Clock } from '../domain/clock.js';
import { InvalidInputError } from '../errors.js';
import type { DiskIndexReader } from '../repository/disk-index.js';
import { FORMAT_VERSION, newPointId, type PointDescriptor, type PointDisk } from '../repository/format.js';
import { defaultLockHolder, ObjectStoreLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { queryChangedDiskAreas, enableChangeTracking } from './cbt.js';
import { parseDatastorePath } from './datastore.js';
import { FileFaultError, UnsupportedDiskError, VsphereError } from './errors.js';
import { HttpsDiskSource } from './https-disk-source.js';
import type { VsphereSession } from './session.js';
import { backupSnapshotName, createSnapshot, removeSnapshot } from './snapshots.js';
import type { ManagedObjectReference } from './soap.js';
import type { WaitOptions } from './tasks.js';
import { assertFlat, parseVmdkDescriptor, SECTOR } from './vmdk-descriptor.js';
import { readSnapshotDisks, readVirtualMachine, vmRef, type VirtualDiskInfo } from './vm.js';

export type VmBackupTransport = 'https' | 'nbd';
export const VM_BACKUP_TRANSPORTS: readonly VmBackupTransport[] = ['https', 'nbd'];

/**
 * Datastore name → local directory where its files are reachable (an NFS mount, or vcsim's temp dirs).
 * The nbd transport serves a disk's flat file from there with `nbdkit file`; production reads through
 * `nbdkit vddk` instead (docs/vsphere.md), which needs no local access.
 */
export type LocalDatastores = ReadonlyMap<string, string>;

export interface VmBackupInput {
  readonly session: VsphereSession;
  readonly repository: Repository;
  readonly clock: Clock;
  /** VM moref, e.g. `vm-42`. */
  readonly vm: string;
  readonly vappId: string;
  /** The previous point of this VM's chain: with it, disks whose changeId it recorded are read incrementally. */
  readonly parentPointId?: string;
  readonly transport: VmBackupTransport;
  /** nbd only. */
  readonly localDatastores?: LocalDatastores;
  readonly blockSize?: number;
  readonly quiesce?: boolean;
  readonly wait?: WaitOptions;
  /** For humans and the run's events: CBT enabled, why a disk is read in full, snapshot created/removed. */
  readonly onEvent?: (message: string) => void;
  readonly onProgress?: (diskId: string, progress: DiskBackupProgress) => void;
  readonly signal?: AbortSignal;
}

export interface VmBackupDiskResult {
  readonly diskId: string;
  readonly deviceKey: number;
  readonly sizeBytes: number;
  readonly bytesRead: number;
  /** Bytes CBT reported changed since the parent's changeId; null when the disk was read in full. */
  readonly changedBytes: number | null;
  /** The snapshot's changeId: the next incremental starts from it. Null when CBT gave none. */
  readonly changeId: string | null;
  readonly mode: 'full' | 'incremental';
  /** Why the disk was read in full (no parent, no changeId, CBT reset, resized, ...). */
  readonly fullReason: string | null;
  readonly bytesUploaded: number;
}

export interface VmBackupResult {
  readonly pointId: string;
  readonly vappId: string;
  readonly parentPointId: string | null;
  readonly vm: string;
  readonly snapshot: string;
  readonly snapshotRemoved: boolean;
  readonly transport: VmBackupTransport;
  readonly cbtEnabledNow: boolean;
  readonly disks: readonly VmBackupDiskResult[];
  readonly seconds: number;
}

/** A VM the backup cannot take (no disks): nothing was snapshotted. */
export class VmNotBackupableError extends VsphereError {
  constructor(message: string) {
    super('VSPHERE_VM_NOT_BACKUPABLE', message, { userFacing: true });
  }
}

/**
 * The point is committed but its snapshot could not be removed: the VM keeps growing a delta until it is.
 * Carries the result so callers can still report the point.
 */
export class SnapshotNotRemovedError extends VsphereError {
  constructor(
    readonly result: VmBackupResult,
    cause: unknown,
  ) {
    super(
      'VSPHERE_SNAPSHOT_NOT_REMOVED',
      `point ${result.pointId} is committed, but snapshot ${result.snapshot} of ${result.vm} could not be removed (${(cause as Error).message}): ` +
        'remove it with `vcd-backup vsphere snapshots --remove-stale --older-than 0s` or in vCenter, before the delta fills the datastore',
      { cause, userFacing: true },
    );
  }
}

/** Unique inside a vApp's point (several VMs each have a disk 2000), stable across backups of the VM. */
export function diskIdOf(vm: string, deviceKey: number): string {
  return `${vm}-disk-${deviceKey}`;
}

export async function backupVm(input: VmBackupInput): Promise<VmBackupResult> {
  const { session, repository } = input;
  const started = input.clock.now();
  const vm = vmRef(input.vm);
  const event = (m: string) => input.onEvent?.(m);
  if (input.transport === 'nbd' && (input.localDatastores?.size ?? 0) === 0) {
    throw new InvalidInputError('the nbd transport needs the datastores\' local directories (--datastore-dir NAME=DIR) to serve disks with nbdkit\'s file plugin; in production nbdkit\'s vddk plugin is the way (docs/vsphere.md), or use --transport https');
  }

  // Everything that can fail without touching the VM is checked before the snapshot stuns it.
  const parent = input.parentPointId === undefined ? undefined : await readParent(repository, input.vappId, input.parentPointId);
  const info = await readVirtualMachine(session, vm);
  if (info.disks.length === 0) throw new VmNotBackupableError(`${vm.value} (${info.name}) has no virtual disks: there is nothing to back up; check the moref (--vm)`);

  let cbtEnabledNow = false;
  if (!info.changeTrackingEnabled) {
    await enableChangeTracking(session, vm, input.wait);
    cbtEnabledNow = true;
    event(`changed block tracking was off on ${vm.value}: enabled it; this backup reads every disk in full, the next one reads only changes`);
  }

  const pointId = newPointId(started, randomBytes(4).toString('hex'));
  const snapshot = await createSnapshot(session, vm, {
    ...input.wait,
    name: backupSnapshotName(pointId, vm.value),
    description: `vcd-backup point ${pointId} of vApp ${input.vappId}`,
    quiesce: input.quiesce ?? false,
    quiesceFallback: true,
    onFallback: (err) => event(`quiesced snapshot failed (${err.faultMessage}): took a crash-consistent one`),
  });
  event(`snapshot ${snapshot.value} created on ${vm.value}`);

  let result: Omit<VmBackupResult, 'snapshotRemoved' | 'seconds'> | undefined;
  let failure: unknown;
  try {
    result = await backupSnapshot(input, vm, snapshot, pointId, parent, cbtEnabledNow);
  } catch (err) {
    failure = err;
  }
  // Always, also after failures: a snapshot left behind grows its delta until the datastore is full.
  let removeError: unknown;
  try {
    await removeSnapshot(session, snapshot, { ...input.wait, consolidate: true });
    event(`snapshot ${snapshot.value} removed`);
  } catch (err) {
    removeError = err;
    event(`snapshot ${snapshot.value} could not be removed: ${(err as Error).message}`);
  }
  if (failure !== undefined) throw failure;
  const done: VmBackupResult = { ...result!, snapshotRemoved: removeError === undefined, seconds: (input.clock.now().getTime() - started.getTime()) / 1000 };
  if (removeError !== undefined) throw new SnapshotNotRemovedError(done, removeError);
  return done;
}

async function readParent(repository: Repository, vappId: string, parentPointId: string): Promise<PointDescriptor> {
  const parent = await repository.readPoint(vappId, parentPointId).catch(async (err: unknown) => {
    const found = await repository.findPoint(parentPointId).catch(() => undefined);
    if (found) throw new InvalidInputError(`parent point ${parentPointId} belongs to vApp ${found.vappId}, not ${vappId}: pass --vapp ${found.vappId} or another --parent`);
    throw err;
  });
  if ((parent.tenantId ?? null) !== repository.tenantId) {
    throw new InvalidInputError(`parent point ${parent.pointId} belongs to ${parent.tenantId ? `tenant ${parent.tenantId}` : 'no tenant'}: back up with ${parent.tenantId ? `--tenant ${parent.tenantId}` : 'no --tenant'} to continue its chain`);
  }
  return parent;
}

async function backupSnapshot(
  input: VmBackupInput,
  vm: ManagedObjectReference,
  snapshot: ManagedObjectReference,
  pointId: string,
  parent: PointDescriptor | undefined,
  cbtEnabledNow: boolean,
): Promise<Omit<VmBackupResult, 'snapshotRemoved' | 'seconds'>> {
  const { session, repository } = input;
  const disks = await readSnapshotDisks(session, snapshot);
  if (disks.length === 0) throw new VmNotBackupableError(`snapshot ${snapshot.value} of ${vm.value} lists no virtual disks: nothing to back up`);
  const pool = new CodecPool(repository.codecSettings());
  // A shared lease keeps GC (exclusive) away while this backup deduplicates against existing blocks.
  const lease = await new ObjectStoreLock(repository.store, { clock: input.clock, holder: defaultLockHolder(`vsphere backup ${input.vappId}/${vm.value}`) }).acquire('shared');
  try {
    const results: VmBackupDiskResult[] = [];
    const pointDisks: PointDisk[] = [];
    for (const disk of disks) {
      const diskId = diskIdOf(vm.value, disk.key);
      const parentDisk = parent?.disks.find((d) => d.diskId === diskId);
      const parentIndex = parentDisk ? await repository.readIndex(input.vappId, parent!.pointId, diskId) : undefined;
      const plan = await planRead(input, vm, snapshot, disk, parent, parentDisk, parentIndex, cbtEnabledNow);
      if (plan.changedAreas === undefined) input.onEvent?.(`${diskId}: reading in full: ${plan.reason}`);
      else input.onEvent?.(`${diskId}: CBT reports ${plan.changedBytes} bytes changed since ${parentDisk?.changeId ?? '?'}: reading only those`);
      const opened = await openSource(input, vm, disk);
      try {
        input.onEvent?.(`${diskId}: reading ${opened.source.description}`);
        const r = await backupDisk({
          repository,
          pool,
          source: opened.source,
          vappId: input.vappId,
          pointId,
          diskId,
          vmId: vm.value,
          blockSize: parentIndex?.blockSize ?? input.blockSize ?? repository.config.defaultBlockSize,
          parent: parentIndex,
          changedAreas: plan.changedAreas,
          onProgress: input.onProgress && ((p) => input.onProgress!(diskId, p)),
          signal: input.signal,
        });
        const pointDisk: PointDisk = { ...r.disk, deviceKey: disk.key, ...(disk.changeId === null ? {} : { changeId: disk.changeId }) };
        await repository.putDiskDescriptor(input.vappId, pointId, pointDisk);
        pointDisks.push(pointDisk);
        results.push({
          diskId,
          deviceKey: disk.key,
          sizeBytes: r.disk.sizeBytes,
          bytesRead: r.stats.bytesRead,
          changedBytes: plan.changedAreas === undefined ? null : plan.changedBytes,
          changeId: disk.changeId,
          mode: plan.changedAreas === undefined ? 'full' : 'incremental',
          fullReason: plan.changedAreas === undefined ? plan.reason : null,
          bytesUploaded: r.stats.bytesUploaded,
        });
      } finally {
        await opened.close();
      }
    }
    await repository.commitPoint({
      format: FORMAT_VERSION,
      pointId,
      vappId: input.vappId,
      createdAt: input.clock.now().toISOString(),
      parentPointId: parent?.pointId ?? null,
      sourcePointId: null,
      hasVAppMetadata: false,
      disks: pointDisks,
    });
    return { pointId, vappId: input.vappId, parentPointId: parent?.pointId ?? null, vm: vm.value, snapshot: snapshot.value, transport: input.transport, cbtEnabledNow, disks: results };
  } finally {
    await lease.release();
    await pool.close();
  }
}

type ReadPlan = { changedAreas: ChangedArea[]; changedBytes: number; reason?: undefined } | { changedAreas?: undefined; changedBytes?: undefined; reason: string };

/** Incremental when the parent recorded this disk's changeId and CBT still knows it; otherwise full, and why. */
async function planRead(
  input: VmBackupInput,
  vm: ManagedObjectReference,
  snapshot: ManagedObjectReference,
  disk: VirtualDiskInfo,
  parent: PointDescriptor | undefined,
  parentDisk: PointDisk | undefined,
  parentIndex: DiskIndexReader | undefined,
  cbtEnabledNow: boolean,
): Promise<ReadPlan> {
  if (parent === undefined) return { reason: 'no parent point (--parent): a full backup starts the chain' };
  if (cbtEnabledNow) return { reason: 'changed block tracking was enabled just now, so no earlier changeId can be trusted' };
  if (parentDisk === undefined || parentIndex === undefined) return { reason: `parent point ${parent.pointId} has no ${diskIdOf(vm.value, disk.key)} (a disk added since, or another VM's point)` };
  if (parentDisk.changeId === undefined) return { reason: `parent point ${parent.pointId} recorded no changeId for this disk (CBT was off then, or it was not read from a snapshot)` };
  if (disk.changeId === null) return { reason: 'the snapshot reports no changeId: changed block tracking is off or was reset' };
  if (parentDisk.sizeBytes !== disk.capacityInBytes) return { reason: `the disk was resized from ${parentDisk.sizeBytes} to ${disk.capacityInBytes} bytes since the parent` };
  try {
    const changed = await queryChangedDiskAreas(input.session, vm, snapshot, disk.key, parentDisk.changeId, disk.capacityInBytes);
    return { changedAreas: [...changed.areas], changedBytes: changed.changedBytes };
  } catch (err) {
    // vSphere's way of saying the changeId is no longer valid (CBT reset, moved, restored disk).
    if (err instanceof FileFaultError) return { reason: `vSphere does not know the parent's changeId ${parentDisk.changeId} any more (${err.faultMessage})` };
    throw err;
  }
}

interface OpenedSource {
  readonly source: DiskSource;
  close(): Promise<void>;
}

async function openSource(input: VmBackupInput, vm: ManagedObjectReference, disk: VirtualDiskInfo): Promise<OpenedSource> {
  if (input.transport === 'https') {
    const source = await HttpsDiskSource.open(input.session, vm, disk);
    return { source, close: () => source.close() };
  }
  const served = await serveLocalDisk(disk, input.localDatastores ?? new Map(), { readOnly: true });
  try {
    const source = await NbdDiskSource.open({ socketPath: served.server.socketPath });
    return {
      source,
      close: async () => {
        try {
          await source.close();
        } finally {
          await served.server.stop();
        }
      },
    };
  } catch (err) {
    await served.server.stop();
    throw err;
  }
}

export interface ServedDisk {
  readonly server: NbdkitProcess;
  readonly flatFile: string;
}

/**
 * Serves a flat disk reachable as a local file with `nbdkit file` on a private socket. Only single-extent
 * flat disks qualify: anything else needs nbdkit's vddk plugin, which understands every VMDK kind.
 */
export async function serveLocalDisk(disk: VirtualDiskInfo, datastores: LocalDatastores, options: { readOnly: boolean }): Promise<ServedDisk> {
  const where = parseDatastorePath(disk.fileName);
  const root = datastores.get(where.datastore);
  const vddk = 'nbdkit\'s vddk plugin (production) or --transport https';
  if (root === undefined) {
    throw new UnsupportedDiskError(
      `the nbd transport refuses disk ${disk.key} (${disk.fileName}): datastore ${where.datastore} has no local directory (--datastore-dir ${where.datastore}=DIR); known: ${[...datastores.keys()].join(', ') || 'none'}. Use ${vddk}`,
    );
  }
  if (disk.hasParent) throw new UnsupportedDiskError(`disk ${disk.key} (${disk.fileName}) is a delta in a snapshot chain, which the file plugin cannot read: use ${vddk}`);
  const base = await realpath(root);
  const descriptorPath = inside(base, where.path, disk.fileName);
  const handle = await open(descriptorPath, 'r').catch((err: unknown) => {
    throw new UnsupportedDiskError(`the nbd transport cannot open ${disk.fileName} at ${descriptorPath}: ${(err as Error).message}; check --datastore-dir ${where.datastore}=DIR`);
  });
  let head: Buffer;
  try {
    const buf = Buffer.alloc(64 * 1024 + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  const descriptor = parseVmdkDescriptor(head, disk.fileName);
  assertFlat(descriptor, disk.fileName);
  const [extent, ...more] = descriptor.extents;
  if (extent === undefined || more.length > 0 || extent.fileName === null || extent.offset !== 0 || extent.sizeInSectors * SECTOR !== disk.capacityInBytes) {
    throw new UnsupportedDiskError(`${disk.fileName} is not one flat extent of the disk's ${disk.capacityInBytes} bytes, which is all the file plugin serves: use ${vddk}`);
  }
  const flatFile = inside(base, path.posix.join(path.posix.dirname(where.path), extent.fileName), disk.fileName);
  const server = await startNbdkit({ plugin: ['file', `file=${flatFile}`], readOnly: options.readOnly });
  return { server, flatFile };
}

/** A datastore-relative path under its local root; `..` that leaves the root is a descriptor we refuse. */
function inside(root: string, relative: string, what: string): string {
  const full = path.resolve(root, relative);
  if (full !== root && !full.startsWith(root + path.sep)) throw new UnsupportedDiskError(`${what}: ${relative} points outside its datastore's directory`);
  return full;
}
