import path from 'node:path';
import { BackupError } from '../errors.js';
import type { DiskLocator } from '../queue/messages.js';
import { FileDiskSource, type DiskSource } from './disk-source.js';

/** Where the agent opens the disk a task names: files and block devices today, NBD and VDDK later. */
export interface DiskLocatorPort {
  open(locator: DiskLocator): Promise<DiskSource>;
  /** The file or device a restore writes, checked like a source. */
  targetPath(locator: DiskLocator): string;
}

export class DiskLocationError extends BackupError {}

/**
 * Opens image files and block devices, but only under the roots the agent was configured with: a task
 * message must not be able to make the agent read (and upload) an arbitrary file of the proxy.
 */
export class FileDiskLocator implements DiskLocatorPort {
  private readonly roots: string[];

  constructor(roots: readonly string[]) {
    this.roots = roots.map((r) => path.resolve(r));
  }

  async open(locator: DiskLocator): Promise<DiskSource> {
    return FileDiskSource.open(this.targetPath(locator));
  }

  targetPath(locator: DiskLocator): string {
    if (locator.kind === 'nbd') throw new DiskLocationError('DISK_LOCATOR_UNSUPPORTED', 'NBD disks are not supported by this agent yet: configure file or block-device access');
    if (!locator.path) throw new DiskLocationError('DISK_LOCATOR_INVALID', `a ${locator.kind} disk locator needs a path`);
    const file = path.resolve(locator.path);
    if (!this.roots.some((root) => file === root || file.startsWith(root + path.sep))) {
      throw new DiskLocationError('DISK_OUTSIDE_ROOTS', `disk ${file} is outside the agent's disk roots (${this.roots.join(', ')}); add its directory to diskRoots in the agent config`);
    }
    return file;
  }
}
