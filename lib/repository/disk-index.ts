import type { BlockCodec } from './block-codec.js';
import { HASH_BYTES } from './block-codec.js';
import { RepositoryFormatError } from './errors.js';

/**
 * Disk index (`points/{vapp}/{point}/disks/{disk}.idx`): the block size, the disk size and one 32-byte
 * block hash per block, in disk order; 32 zero bytes mark an all-zero block (never stored).
 *
 *   header (32 bytes, little endian)
 *     0  'VCDI'   4  version (1)   5  reserved (3)   8  blockSize u32   12 reserved u32
 *    16  diskSize u64             24  chunkCount u32  28  entriesPerChunk u32
 *   then chunkCount × ( u32 length, envelope(entries) )
 *
 * Entries are cut into chunks of 65 536 (2 MiB) that are compressed (and encrypted) one by one, so building
 * or reading the index of a 2 TiB disk (2 Mi entries at 1 MiB blocks) holds at most one plain chunk at a
 * time beside the stored bytes. Each chunk's GCM context is the header plus the object key plus the chunk
 * number, which authenticates the header and pins every chunk to its place.
 */
const MAGIC = Buffer.from('VCDI');
const VERSION = 1;
const HEADER_BYTES = 32;
export const ENTRIES_PER_CHUNK = 65_536;
export const ZERO_ENTRY: Buffer = Buffer.alloc(HASH_BYTES);

export function blockCountOf(diskSize: number, blockSize: number): number {
  return Math.ceil(diskSize / blockSize);
}

function header(blockSize: number, diskSize: number, chunkCount: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(h, 0);
  h[4] = VERSION;
  h.writeUInt32LE(blockSize, 8);
  h.writeBigUInt64LE(BigInt(diskSize), 16);
  h.writeUInt32LE(chunkCount, 24);
  h.writeUInt32LE(ENTRIES_PER_CHUNK, 28);
  return h;
}

function chunkContext(head: Buffer, key: string, chunk: number): Buffer {
  return Buffer.concat([head, Buffer.from(`${key}#${chunk}`)]);
}

/** Builds an index from entries appended in disk order. */
export class DiskIndexWriter {
  private readonly blockCount: number;
  private readonly chunkCount: number;
  private readonly head: Buffer;
  private readonly parts: Buffer[] = [];
  private current: Buffer;
  private filled = 0;
  private appended = 0;

  constructor(
    private readonly codec: BlockCodec,
    private readonly key: string,
    readonly blockSize: number,
    readonly diskSize: number,
  ) {
    this.blockCount = blockCountOf(diskSize, blockSize);
    this.chunkCount = Math.ceil(this.blockCount / ENTRIES_PER_CHUNK);
    this.head = header(blockSize, diskSize, this.chunkCount);
    this.current = Buffer.alloc(Math.min(ENTRIES_PER_CHUNK, this.blockCount) * HASH_BYTES);
  }

  /** Appends the next block's hash, or `null` for an all-zero block. */
  append(hash: Uint8Array | null): void {
    if (this.appended >= this.blockCount) throw new RepositoryFormatError(`index ${this.key} already has all ${this.blockCount} entries`);
    if (hash) {
      if (hash.byteLength !== HASH_BYTES) throw new RepositoryFormatError(`index entries are ${HASH_BYTES} bytes, got ${hash.byteLength}`);
      this.current.set(hash, this.filled * HASH_BYTES);
    } else {
      this.current.fill(0, this.filled * HASH_BYTES, (this.filled + 1) * HASH_BYTES);
    }
    this.filled++;
    this.appended++;
    if (this.filled === ENTRIES_PER_CHUNK || this.appended === this.blockCount) this.sealChunk();
  }

  get count(): number {
    return this.appended;
  }

  private sealChunk(): void {
    const chunkNo = this.parts.length / 2;
    const sealed = this.codec.encode(this.current.subarray(0, this.filled * HASH_BYTES), chunkContext(this.head, this.key, chunkNo));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(sealed.length, 0);
    this.parts.push(len, sealed);
    this.filled = 0;
    const remaining = this.blockCount - this.appended;
    if (remaining > 0 && remaining < ENTRIES_PER_CHUNK) this.current = Buffer.alloc(remaining * HASH_BYTES);
  }

  /** The object body, in parts (see ObjectStore.put). Every entry must have been appended. */
  finish(): Buffer[] {
    if (this.appended !== this.blockCount) throw new RepositoryFormatError(`index ${this.key} has ${this.appended} of ${this.blockCount} entries`);
    return [this.head, ...this.parts];
  }
}

/** Reads an index; entries are decoded one chunk at a time as they are visited. */
export class DiskIndexReader {
  readonly blockSize: number;
  readonly diskSize: number;
  readonly blockCount: number;
  private readonly head: Buffer;
  private readonly chunkOffsets: number[] = [];
  private cachedChunk = -1;
  private cached: Buffer = Buffer.alloc(0);

  constructor(
    private readonly codec: BlockCodec,
    private readonly key: string,
    private readonly body: Buffer,
  ) {
    if (body.length < HEADER_BYTES || !body.subarray(0, 4).equals(MAGIC)) throw new RepositoryFormatError(`${key} is not a disk index`);
    if (body[4] !== VERSION) throw new RepositoryFormatError(`${key} has index version ${body[4]}, this build reads ${VERSION}: upgrade vcd-backup`);
    this.head = body.subarray(0, HEADER_BYTES);
    this.blockSize = body.readUInt32LE(8);
    this.diskSize = Number(body.readBigUInt64LE(16));
    const chunkCount = body.readUInt32LE(24);
    if (body.readUInt32LE(28) !== ENTRIES_PER_CHUNK) throw new RepositoryFormatError(`${key} uses an unsupported chunk size`);
    this.blockCount = blockCountOf(this.diskSize, this.blockSize);
    if (chunkCount !== Math.ceil(this.blockCount / ENTRIES_PER_CHUNK)) throw new RepositoryFormatError(`${key} has ${chunkCount} chunks for ${this.blockCount} blocks`);
    let offset = HEADER_BYTES;
    for (let i = 0; i < chunkCount; i++) {
      if (offset + 4 > body.length) throw new RepositoryFormatError(`${key} is truncated`);
      this.chunkOffsets.push(offset);
      offset += 4 + body.readUInt32LE(offset);
    }
    if (offset !== body.length) throw new RepositoryFormatError(`${key} is truncated or has trailing bytes`);
  }

  private chunk(n: number): Buffer {
    if (n === this.cachedChunk) return this.cached;
    const offset = this.chunkOffsets[n]!;
    const len = this.body.readUInt32LE(offset);
    const plain = this.codec.decode(this.body.subarray(offset + 4, offset + 4 + len), chunkContext(this.head, this.key, n), `${this.key} chunk ${n}`);
    const expected = Math.min(ENTRIES_PER_CHUNK, this.blockCount - n * ENTRIES_PER_CHUNK) * HASH_BYTES;
    if (plain.length !== expected) throw new RepositoryFormatError(`${this.key} chunk ${n} has ${plain.length} bytes, expected ${expected}`);
    this.cachedChunk = n;
    this.cached = plain;
    return plain;
  }

  /** The hash of block `i`, or `null` for an all-zero block. Sequential access decodes each chunk once. */
  entry(i: number): Buffer | null {
    if (i < 0 || i >= this.blockCount) throw new RangeError(`block ${i} is outside ${this.key} (${this.blockCount} blocks)`);
    const chunk = this.chunk(Math.floor(i / ENTRIES_PER_CHUNK));
    const at = (i % ENTRIES_PER_CHUNK) * HASH_BYTES;
    const hash = chunk.subarray(at, at + HASH_BYTES);
    return hash.equals(ZERO_ENTRY) ? null : hash;
  }

  *entries(): Generator<Buffer | null> {
    for (let i = 0; i < this.blockCount; i++) yield this.entry(i);
  }
}
