import type { DiskSource } from './disk-source.js';
import { NbdClient, NbdError, type NbdConnectOptions, type NbdExtent } from './nbd-client.js';

export type { NbdExtent } from './nbd-client.js';

/**
 * A disk read through an NBD export (nbdkit's vddk plugin on a snapshot in production). Reads of any size
 * and alignment the caller uses are split by the client at the server's maximum request size; several reads
 * may be in flight, as the backup pipeline keeps them.
 */
export class NbdDiskSource implements DiskSource {
  private constructor(
    private readonly client: NbdClient,
    readonly description: string,
  ) {}

  static async open(options: NbdConnectOptions): Promise<NbdDiskSource> {
    const client = await NbdClient.connect(options);
    return new NbdDiskSource(client, client.description);
  }

  get size(): number {
    return this.client.size;
  }

  /** True when the server reports allocation, i.e. `allocatedExtents` can tell holes from data. */
  get knowsAllocation(): boolean {
    return this.client.info.allocationContextId !== undefined;
  }

  async read(offset: number, length: number, into: Buffer): Promise<number> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    if (n > 0) await this.client.read(offset, n, into, 0);
    return n;
  }

  /**
   * Allocation of `[offset, offset+length)` (clipped to the disk) from BLOCK_STATUS base:allocation:
   * consecutive extents, `hole` where nothing is stored, `zero` where the bytes read as zeros. Areas with
   * `zero` set need not be read: they are zero blocks in the index.
   */
  async allocatedExtents(offset: number, length: number): Promise<NbdExtent[]> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    return this.client.extents(offset, n);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** The disk a restore writes through NBD: positional writes, then a flush before the restore is reported done. */
export class NbdDiskTarget {
  private constructor(
    private readonly client: NbdClient,
    readonly description: string,
  ) {}

  static async open(options: NbdConnectOptions): Promise<NbdDiskTarget> {
    const client = await NbdClient.connect(options);
    if (client.info.readOnly) {
      await client.close();
      throw new NbdError('NBD_READ_ONLY', `${client.description} is read-only, so a restore cannot write it: start nbdkit without -r (for vddk, without readonly=true)`);
    }
    return new NbdDiskTarget(client, client.description);
  }

  get size(): number {
    return this.client.size;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (offset + data.length > this.size) {
      throw new NbdError('NBD_TARGET_TOO_SMALL', `${this.description} holds ${this.size} bytes; a write of ${data.length} at ${offset} does not fit: grow the target disk to the point's disk size`);
    }
    await this.client.write(offset, data);
  }

  /** Reads back (quick rollback compares the target with the point before writing). */
  async read(offset: number, length: number, into: Buffer): Promise<number> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    if (n > 0) await this.client.read(offset, n, into, 0);
    return n;
  }

  async flush(): Promise<void> {
    await this.client.flush();
  }

  /** Flushes, then disconnects: a restore is only done when its writes are durable. */
  async close(): Promise<void> {
    try {
      await this.client.flush();
    } finally {
      await this.client.close();
    }
  }
}
