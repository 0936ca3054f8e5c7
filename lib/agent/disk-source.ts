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
  close(): Promise<void>;
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

  async read(offset: number, length: number, into: Buffer): Promise<number> {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(into, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
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

