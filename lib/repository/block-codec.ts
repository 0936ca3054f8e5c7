import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { Compressor, Decompressor } from 'zstd-napi';
import { BlockCorruptError, RepositoryFormatError } from './errors.js';
import type { MasterKeys } from './keys.js';

/**
 * The envelope every stored object body uses (blocks, index chunks, vapp.json):
 *
 *   0  'V' 'B'          magic
 *   2  version (1)
 *   3  flags            bit 0: zstd-compressed, bit 1: AES-256-GCM-encrypted
 *   4  nonce (12 bytes) only when encrypted
 *   …  payload
 *   …  GCM tag (16)     only when encrypted
 *
 * The GCM additional data is the 4-byte header plus a context (a block's hash, an object's key), so a
 * ciphertext cannot be moved under another name or have its flags flipped without failing authentication.
 */
const MAGIC0 = 0x56;
const MAGIC1 = 0x42;
const VERSION = 1;
const FLAG_ZSTD = 1;
const FLAG_AES_GCM = 2;
const HEADER = 4;
const NONCE = 12;
const TAG = 16;

export const HASH_BYTES = 32;

/** Compression must save at least this share of a block, or the block is stored raw (cheaper restores). */
const MIN_SAVING = 0.03;

const zeroBuffers = new Map<number, Buffer>();
function zeros(length: number): Buffer {
  let z = zeroBuffers.get(length);
  if (!z) {
    z = Buffer.alloc(length);
    zeroBuffers.set(length, z);
  }
  return z;
}

/** All-zero blocks are never stored: the index marks them and a restore leaves holes. */
export function isZeroBlock(block: Uint8Array): boolean {
  return Buffer.from(block.buffer, block.byteOffset, block.byteLength).equals(zeros(block.byteLength));
}

export interface CodecOptions {
  readonly compressionLevel: number;
  /** Present for encrypted repositories: blocks are named by HMAC and sealed with AES-256-GCM. */
  readonly keys?: MasterKeys;
  /**
   * Plaintext repositories opened for a tenant: blocks are named by HMAC under this key (derived from the
   * public naming salt) so tenants never share a block name, but nothing is sealed.
   */
  readonly namingKey?: Buffer;
}

/**
 * Hashing, compression and encryption of blocks and objects. One instance per thread: it keeps a zstd
 * context for reuse, which is most of zstd's speed on small inputs.
 */
export class BlockCodec {
  private readonly compressor = new Compressor();
  private readonly decompressor = new Decompressor();
  readonly encrypted: boolean;

  constructor(private readonly options: CodecOptions) {
    this.compressor.setParameters({ compressionLevel: options.compressionLevel });
    this.encrypted = options.keys !== undefined;
  }

  /** The block's name: SHA-256 of the plaintext, or HMAC-SHA-256 under the namespace's MAC (or naming) key. */
  hash(plain: Uint8Array): Buffer {
    const key = this.options.keys?.macKey ?? this.options.namingKey;
    return key ? createHmac('sha256', key).update(plain).digest() : createHash('sha256').update(plain).digest();
  }

  encode(plain: Uint8Array, context: Uint8Array): Buffer {
    let flags = 0;
    let payload: Uint8Array = plain;
    if (plain.byteLength > 0) {
      const compressed = this.compressor.compress(plain);
      if (compressed.byteLength <= plain.byteLength * (1 - MIN_SAVING)) {
        payload = compressed;
        flags |= FLAG_ZSTD;
      }
    }
    const keys = this.options.keys;
    if (!keys) {
      const out = Buffer.allocUnsafe(HEADER + payload.byteLength);
      writeHeader(out, flags);
      out.set(payload, HEADER);
      return out;
    }
    flags |= FLAG_AES_GCM;
    const out = Buffer.allocUnsafe(HEADER + NONCE + payload.byteLength + TAG);
    writeHeader(out, flags);
    const nonce = randomBytes(NONCE);
    nonce.copy(out, HEADER);
    const cipher = createCipheriv('aes-256-gcm', keys.dataKey, nonce);
    cipher.setAAD(Buffer.concat([out.subarray(0, HEADER), context]));
    const c1 = cipher.update(payload);
    c1.copy(out, HEADER + NONCE);
    const c2 = cipher.final();
    c2.copy(out, HEADER + NONCE + c1.length);
    cipher.getAuthTag().copy(out, HEADER + NONCE + payload.byteLength);
    return out;
  }

  /** Opens an envelope. Throws `RepositoryFormatError` when it is not one, or fails authentication. */
  decode(encoded: Uint8Array, context: Uint8Array, what: string): Buffer {
    const buf = Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
    if (buf.length < HEADER || buf[0] !== MAGIC0 || buf[1] !== MAGIC1) throw new RepositoryFormatError(`${what} is not a vcd-backup object (bad magic)`);
    if (buf[2] !== VERSION) throw new RepositoryFormatError(`${what} has envelope version ${buf[2]}, this build reads version ${VERSION}: upgrade vcd-backup`);
    const flags = buf[3]!;
    let payload: Buffer;
    if (flags & FLAG_AES_GCM) {
      const keys = this.options.keys;
      if (!keys) throw new RepositoryFormatError(`${what} is encrypted but the repository was opened without a key`);
      if (buf.length < HEADER + NONCE + TAG) throw new RepositoryFormatError(`${what} is truncated`);
      const decipher = createDecipheriv('aes-256-gcm', keys.dataKey, buf.subarray(HEADER, HEADER + NONCE));
      decipher.setAAD(Buffer.concat([buf.subarray(0, HEADER), context]));
      decipher.setAuthTag(buf.subarray(buf.length - TAG));
      try {
        payload = decipher.update(buf.subarray(HEADER + NONCE, buf.length - TAG));
        decipher.final(); // GCM returns nothing here: it only checks the tag (no second 1 MiB copy)
      } catch (err) {
        throw new RepositoryFormatError(`${what} failed authentication (damaged, tampered with, or sealed with another key)`, { cause: err });
      }
    } else {
      if (this.options.keys) throw new RepositoryFormatError(`${what} is not encrypted in an encrypted repository`);
      payload = buf.subarray(HEADER);
    }
    if (flags & FLAG_ZSTD) {
      try {
        return this.decompressor.decompress(payload);
      } catch (err) {
        throw new RepositoryFormatError(`${what} does not decompress`, { cause: err });
      }
    }
    return payload;
  }

  /** Encodes a block named by its hash (the hash is the GCM context). */
  encodeBlock(plain: Uint8Array, hash: Buffer): Buffer {
    return this.encode(plain, hash);
  }

  /** Decodes a block and checks it against its name: a mismatch is a `BlockCorruptError` naming the block. */
  decodeBlock(encoded: Uint8Array, hash: Buffer): Buffer {
    const name = hash.toString('hex');
    let plain: Buffer;
    try {
      plain = this.decode(encoded, hash, `block ${name}`);
    } catch (err) {
      throw new BlockCorruptError(name, (err as Error).message, { cause: err });
    }
    if (!this.hash(plain).equals(hash)) throw new BlockCorruptError(name, 'its content does not hash to its name');
    return plain;
  }
}

function writeHeader(out: Buffer, flags: number): void {
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = VERSION;
  out[3] = flags;
}
