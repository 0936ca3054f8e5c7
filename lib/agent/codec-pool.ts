import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BlockCorruptError } from '../repository/errors.js';
import { BackupError } from '../errors.js';
import type { MasterKeys } from '../repository/keys.js';
import type { CodecRequest, CodecResponse, CodecWorkerData } from './codec-protocol.js';

export type EncodeResult =
  | { readonly kind: 'zero' }
  | { readonly kind: 'same'; readonly hash: Buffer }
  | { readonly kind: 'encoded'; readonly hash: Buffer; readonly encoded: Buffer };

type Pending = { resolve: (r: CodecResponse) => void; reject: (e: Error) => void };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * The block pipeline's CPU stage: one worker thread per core doing hash, compression and encryption, so the
 * main thread is left with reading and network I/O. Work goes to the worker with the fewest jobs queued.
 */
export class CodecPool {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private failure: Error | undefined;

  constructor(settings: { compressionLevel: number; keys?: MasterKeys; namingKey?: Buffer }, size = Math.max(1, availableParallelism())) {
    const data: CodecWorkerData = { compressionLevel: settings.compressionLevel, dataKey: settings.keys?.dataKey, macKey: settings.keys?.macKey, namingKey: settings.namingKey };
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL('./codec-worker.mjs', import.meta.url), { workerData: data });
      worker.on('message', (res: CodecResponse) => {
        this.load[i]!--;
        const p = this.pending.get(res.id);
        if (!p) return;
        this.pending.delete(res.id);
        p.resolve(res);
      });
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new BackupError('CODEC_WORKER_EXIT', `a codec worker exited unexpectedly (code ${code})`));
      });
      this.workers.push(worker);
      this.load.push(0);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private submit(req: DistributiveOmit<CodecRequest, 'id'>, transfer: ArrayBuffer[]): Promise<CodecResponse> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new BackupError('CODEC_POOL_CLOSED', 'the codec pool is closed'));
    let best = 0;
    for (let i = 1; i < this.load.length; i++) if (this.load[i]! < this.load[best]!) best = i;
    const id = this.nextId++;
    this.load[best]!++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[best]!.postMessage({ ...req, id }, transfer);
    });
  }

  /**
   * Hashes and encodes a block. The block's memory is transferred to the worker: do not use it afterwards.
   * With `parentHash`, a block whose hash matches it comes back as `same` without being compressed.
   */
  async encode(block: Buffer, parentHash: Buffer | null): Promise<EncodeResult> {
    const ab = ownArrayBuffer(block);
    // A view is cloned with its whole backing store: send the 32 hash bytes in a buffer of their own.
    const res = await this.submit({ op: 'encode', block: ab, length: block.byteLength, parentHash: parentHash ? new Uint8Array(parentHash) : null }, [ab]);
    if (res.kind === 'zero') return res;
    if (res.kind === 'same') return { kind: 'same', hash: Buffer.from(res.hash) };
    if (res.kind === 'encoded') return { kind: 'encoded', hash: Buffer.from(res.hash), encoded: Buffer.from(res.encoded) };
    if (res.kind === 'error') throw new BackupError('CODEC_ERROR', res.message);
    throw new BackupError('CODEC_PROTOCOL', `unexpected codec answer ${res.kind}`);
  }

  /** Whether `block` is exactly the block named `expected` (or all zeros for `null`). The block's memory is transferred. */
  async matches(block: Buffer, expected: Buffer | null): Promise<boolean> {
    const ab = ownArrayBuffer(block);
    const res = await this.submit({ op: 'compare', block: ab, length: block.byteLength, expected: expected ? new Uint8Array(expected) : null }, [ab]);
    if (res.kind === 'compared') return res.same;
    if (res.kind === 'error') throw new BackupError('CODEC_ERROR', res.message);
    throw new BackupError('CODEC_PROTOCOL', `unexpected codec answer ${res.kind}`);
  }

  /** Decodes a stored block and checks it against its hash (`BlockCorruptError` on mismatch). */
  async decode(encoded: Buffer, hash: Buffer): Promise<Buffer> {
    const ab = ownArrayBuffer(encoded);
    const res = await this.submit({ op: 'decode', encoded: ab, hash: new Uint8Array(hash) }, [ab]);
    if (res.kind === 'decoded') return Buffer.from(res.plain);
    if (res.kind === 'error') {
      if (res.code === 'BLOCK_CORRUPT') throw new BlockCorruptError(res.blockKey ?? hash.toString('hex'), res.message.replace(/^block \S+ is corrupt: /, '').replace(/\. Run `vcd-backup repo verify`.*$/, ''));
      throw new BackupError('CODEC_ERROR', res.message);
    }
    throw new BackupError('CODEC_PROTOCOL', `unexpected codec answer ${res.kind}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Nothing may wait forever on a worker that is going away.
    this.fail(new BackupError('CODEC_POOL_CLOSED', 'the codec pool was closed while work was pending'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Transferring a Buffer's ArrayBuffer is only safe when the Buffer owns all of it (not a pooled slice). */
function ownArrayBuffer(buf: Buffer): ArrayBuffer {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) return buf.buffer;
  const copy = new ArrayBuffer(buf.byteLength);
  new Uint8Array(copy).set(buf);
  return copy;
}
