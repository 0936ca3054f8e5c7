/**
 * The https transport: a snapshot's base disk read with HTTP Range requests through the datastore file
 * service, after following the VMDK descriptor to its flat extent(s).
 */
import path from 'node:path/posix';
import type { DiskSource } from '../agent/disk-source.js';
import { UnsupportedDiskError } from './errors.js';
import { DatastoreFile, datacenterPathOf, datastoreType, parseDatastorePath } from './datastore.js';
import type { ManagedObjectReference } from './soap.js';
import type { VsphereSession } from './session.js';
import { assertFlat, parseVmdkDescriptor, SECTOR } from './vmdk-descriptor.js';
import type { VirtualDiskInfo } from './vm.js';

interface MappedExtent {
  readonly start: number; // byte offset in the virtual disk
  readonly length: number;
  readonly file: DatastoreFile | null; // null: a ZERO extent
  readonly fileOffset: number;
}

const OTHER_TRANSPORTS = 'use the nbd transport (nbdkit with VDDK) or hotadd';

export class HttpsDiskSource implements DiskSource {
  private constructor(
    readonly description: string,
    readonly size: number,
    private readonly extents: readonly MappedExtent[],
  ) {}

  /**
   * Opens a disk of a VM (normally from the snapshot's config, see readSnapshotDisks). The VM moref finds the
   * datacenter for `dcPath`.
   */
  static async open(session: VsphereSession, vm: ManagedObjectReference, disk: VirtualDiskInfo): Promise<HttpsDiskSource> {
    if (disk.hasParent) throw new UnsupportedDiskError(`disk ${disk.key} (${disk.fileName}) is part of an older snapshot chain: https reads see only one layer; ${OTHER_TRANSPORTS}, or consolidate the VM's snapshots`);
    if (disk.backingType !== 'VirtualDiskFlatVer2BackingInfo') {
      throw new UnsupportedDiskError(`disk ${disk.key} (${disk.fileName}) has a ${disk.backingType} backing, which https range reads cannot read: ${OTHER_TRANSPORTS}`);
    }
    if (disk.datastore !== null) {
      const type = (await datastoreType(session, disk.datastore))?.toLowerCase() ?? '';
      if (type === 'vsan' || type === 'vvol') throw new UnsupportedDiskError(`disk ${disk.key} (${disk.fileName}) is on a ${type} datastore, which serves no flat files: ${OTHER_TRANSPORTS}`);
    }
    return HttpsDiskSource.openFile(session, await datacenterPathOf(session, vm), disk.fileName, disk.capacityInBytes);
  }

  /** Opens `[ds] dir/disk.vmdk` in the datacenter at `datacenterPath`. */
  static async openFile(session: VsphereSession, datacenterPath: string, fileName: string, expectedSize?: number): Promise<HttpsDiskSource> {
    const where = parseDatastorePath(fileName);
    const descriptorFile = new DatastoreFile(session, datacenterPath, where);
    const descriptor = parseVmdkDescriptor(await descriptorFile.readAll(64 * 1024 + 1), fileName);
    assertFlat(descriptor, fileName);
    const extents: MappedExtent[] = [];
    let start = 0;
    for (const e of descriptor.extents) {
      const length = e.sizeInSectors * SECTOR;
      const file = e.fileName === null || e.type === 'ZERO' ? null : new DatastoreFile(session, datacenterPath, { datastore: where.datastore, path: path.join(path.dirname(where.path), e.fileName) });
      extents.push({ start, length, file, fileOffset: e.offset });
      start += length;
    }
    if (expectedSize !== undefined && start !== expectedSize) {
      throw new UnsupportedDiskError(`${fileName}: the descriptor's extents hold ${start} bytes but the disk's capacity is ${expectedSize}; the disk may be resizing or not a plain flat disk (${OTHER_TRANSPORTS})`);
    }
    return new HttpsDiskSource(`https ${fileName}`, start, extents);
  }

  async read(offset: number, length: number, into: Buffer): Promise<number> {
    const end = Math.min(offset + length, this.size);
    let done = 0;
    for (const extent of this.extents) {
      if (offset + done >= end) break;
      const pos = offset + done;
      if (pos >= extent.start + extent.length || pos < extent.start) continue;
      const n = Math.min(end, extent.start + extent.length) - pos;
      if (extent.file === null) {
        into.fill(0, done, done + n);
      } else {
        const data = await extent.file.read(extent.fileOffset + pos - extent.start, n);
        data.copy(into, done);
        // A flat file shorter than its extent (thin files on some NAS) reads as zeros past its end.
        if (data.length < n) into.fill(0, done + data.length, done + n);
      }
      done += n;
    }
    return done;
  }

  async close(): Promise<void> {
    // Connections belong to the session's pool; nothing is held per disk.
  }
}
