import { open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInputError } from '../errors.js';

/**
 * Where the agent reads a virtual disk from: a raw image file or a block device today, an NBD export or
 * VDDK later. Reads are positional, so several can be in flight at once.
 */
export interface DiskSource {
  readonly description: string;
  readonly size: number;
  /** Reads up to `length` bytes at `offset` into `into`; returns the bytes read (short only at the end). */
  read(offset: number, length: number, into: Buffer): Promise<number>;
  /**
   * Allocation of `[offset, offset+length)` as consecutive extents covering the whole range (clipped to the
   * disk). Sources that can tell (NBD with base:allocation) let a backup skip `zero` areas without reading.
   */
  allocatedExtents?(offset: number, length: number): Promise<DiskExtent[]>;
  close(): Promise<void>;
}

export interface DiskExtent {
  readonly offset: number;
  readonly length: number;
  /** Nothing is stored there. */
  readonly hole: boolean;
  /** Reads as zeros. */
  readonly zero: boolean;
}

/** Where a restore writes a disk: an image file, a block device, or an NBD export. */
export interface DiskTarget {
  readonly description: string;
  /** Current size in bytes (0 for a file the restore creates). */
  readonly size: number;
  /**
   * Regular files only: sets the length, dropping every byte first, so what the restore does not write reads
   * as zeros (holes). Absent on fixed-size targets, where zero blocks must be written as zeros.
   */
  reset?(size: number): Promise<void>;
  read(offset: number, length: number, into: Buffer): Promise<number>;
  write(offset: number, data: Buffer): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** A restore target on the agent's file system: a regular file (created when missing) or a block device. */
export class FileDiskTarget implements DiskTarget {
  readonly reset?: (size: number) => Promise<void>;

  private constructor(
    readonly description: string,
    private currentSize: number,
    private readonly handle: FileHandle,
    isFile: boolean,
  ) {
    if (isFile) {
      this.reset = async (size: number) => {
        await this.handle.truncate(0);
        await this.handle.truncate(size);
        this.currentSize = size;
      };
    }
  }

  static async open(file: string): Promise<FileDiskTarget> {
    let handle: FileHandle;
    try {
      // 'r+' keeps an existing disk for quick rollback; only a missing file is created.
      handle = await open(file, 'r+').catch(async (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return open(file, 'w+');
        throw err;
      });
    } catch (err) {
      throw new InvalidInputError(`cannot open restore target ${file}: ${(err as Error).message}`, { cause: err });
    }
    const s = await handle.stat();
    if (s.isBlockDevice()) return new FileDiskTarget(file, await blockDeviceSize(file), handle, false);
    if (!s.isFile()) {
      await handle.close();
      throw new InvalidInputError(`restore target ${file} is neither a disk image file nor a block device`);
    }
    return new FileDiskTarget(file, s.size, handle, true);
  }

  get size(): number {
    return this.currentSize;
  }

  read(offset: number, length: number, into: Buffer): Promise<number> {
    return readFully(this.handle, offset, length, into);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
    if (offset + data.length > this.currentSize) this.currentSize = offset + data.length;
  }

  async flush(): Promise<void> {
    await this.handle.sync();
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

export class FileDiskSource implements DiskSource {
  private constructor(
    readonly description: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(file: string): Promise<FileDiskSource> {
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      throw new InvalidInputError(`cannot open disk source ${file}: ${(err as Error).message}`, { cause: err });
    }
    const s = await handle.stat();
    let size = s.size;
    if (s.isBlockDevice()) size = await blockDeviceSize(file);
    else if (!s.isFile()) {
      await handle.close();
      throw new InvalidInputError(`${file} is neither a disk image file nor a block device`);
    }
    return new FileDiskSource(file, size, handle);
  }

  read(offset: number, length: number, into: Buffer): Promise<number> {
    return readFully(this.handle, offset, length, into);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Linux exposes a block device's size in 512-byte sectors under /sys; fs.stat reports 0 for devices. */
async function blockDeviceSize(device: string): Promise<number> {
  const real = path.basename(await import('node:fs/promises').then((fs) => fs.realpath(device)));
  const sectors = Number((await readFile(`/sys/class/block/${real}/size`, 'utf8')).trim());
  if (!Number.isFinite(sectors)) throw new InvalidInputError(`cannot read the size of block device ${device}`);
  return sectors * 512;
}

/** Reads `length` bytes at `offset` (the kernel may return fewer per call); short only at the end. */
async function readFully(handle: FileHandle, offset: number, length: number, into: Buffer): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(into, done, length - done, offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
