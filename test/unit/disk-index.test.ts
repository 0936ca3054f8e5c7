import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BlockCodec } from '../../lib/repository/block-codec.js';
import { DiskIndexReader, DiskIndexWriter, ENTRIES_PER_CHUNK } from '../../lib/repository/disk-index.js';
import { RepositoryFormatError } from '../../lib/repository/errors.js';
import { generateMasterKeys } from '../../lib/repository/keys.js';

const plain = new BlockCodec({ compressionLevel: 1 });
const sealed = new BlockCodec({ compressionLevel: 1, keys: generateMasterKeys() });

function build(codec: BlockCodec, key: string, blockSize: number, diskSize: number, entry: (i: number) => Buffer | null) {
  const writer = new DiskIndexWriter(codec, key, blockSize, diskSize);
  const count = Math.ceil(diskSize / blockSize);
  for (let i = 0; i < count; i++) writer.append(entry(i));
  return Buffer.concat(writer.finish());
}

describe('disk index', () => {
  it.each([
    ['plain', plain],
    ['encrypted', sealed],
  ])('round-trips entries across several chunks (%s), zero entries included', (_, codec) => {
    const blockSize = 256 * 1024;
    const count = ENTRIES_PER_CHUNK * 2 + 17;
    const diskSize = count * blockSize - 1000; // last block partial
    const hashes = Array.from({ length: 50 }, () => randomBytes(32));
    const entry = (i: number) => (i % 7 === 0 ? null : hashes[i % 50]!);
    const body = build(codec, 'points/v/p/disks/d.idx', blockSize, diskSize, entry);
    const reader = new DiskIndexReader(codec, 'points/v/p/disks/d.idx', body);
    expect(reader.blockCount).toBe(count);
    expect(reader.diskSize).toBe(diskSize);
    expect(reader.blockSize).toBe(blockSize);
    let i = 0;
    for (const got of reader.entries()) {
      const want = entry(i++);
      if (want === null) expect(got).toBeNull();
      else expect(got?.equals(want)).toBe(true);
    }
    expect(i).toBe(count);
    // random access back into an earlier chunk
    expect(reader.entry(5)?.equals(entry(5)!)).toBe(true);
  });

  it('an empty disk has a valid, empty index', () => {
    const body = build(plain, 'k', 1 << 20, 0, () => null);
    const reader = new DiskIndexReader(plain, 'k', body);
    expect(reader.blockCount).toBe(0);
    expect([...reader.entries()]).toEqual([]);
  });

  it('refuses to finish with entries missing, and refuses extra entries', () => {
    const writer = new DiskIndexWriter(plain, 'k', 1 << 20, 3 << 20);
    writer.append(null);
    expect(() => writer.finish()).toThrow(RepositoryFormatError);
    writer.append(null);
    writer.append(null);
    expect(() => writer.append(null)).toThrow(RepositoryFormatError);
  });

  it('an encrypted index moved to another key or with a changed header fails authentication', () => {
    const body = build(sealed, 'points/v/p1/disks/d.idx', 1 << 20, 10 << 20, () => randomBytes(32));
    expect(() => new DiskIndexReader(sealed, 'points/v/p2/disks/d.idx', body).entry(0)).toThrow(/failed authentication/);
    const tampered = Buffer.from(body);
    tampered.writeBigUInt64LE(BigInt(10 << 20) - 1n, 16); // claim a smaller disk, same block count
    expect(() => new DiskIndexReader(sealed, 'points/v/p1/disks/d.idx', tampered).entry(0)).toThrow(/failed authentication/);
  });

  it('rejects truncated and foreign objects', () => {
    const body = build(plain, 'k', 1 << 20, 5 << 20, () => randomBytes(32));
    expect(() => new DiskIndexReader(plain, 'k', body.subarray(0, body.length - 1))).toThrow(RepositoryFormatError);
    expect(() => new DiskIndexReader(plain, 'k', Buffer.from('{"not":"an index"}'))).toThrow(/not a disk index/);
  });
});

describe('block codec', () => {
  it.each([
    ['plain', plain],
    ['encrypted', sealed],
  ])('encodes and decodes blocks, checking them against their name (%s)', (_, codec) => {
    const text = Buffer.from('backup '.repeat(40_000));
    const random = randomBytes(100_000);
    for (const block of [text, random, Buffer.alloc(1)]) {
      const hash = codec.hash(block);
      const encoded = codec.encodeBlock(block, hash);
      expect(codec.decodeBlock(encoded, hash).equals(block)).toBe(true);
    }
    // compressible data shrinks; incompressible data is stored raw, not inflated by more than the envelope
    expect(codec.encodeBlock(text, codec.hash(text)).length).toBeLessThan(text.length / 10);
    expect(codec.encodeBlock(random, codec.hash(random)).length).toBeLessThanOrEqual(random.length + 32);
  });

  it('names blocks by SHA-256 in plain repositories and by HMAC in encrypted ones', () => {
    const block = Buffer.from('same bytes');
    const other = new BlockCodec({ compressionLevel: 1, keys: generateMasterKeys() });
    expect(plain.hash(block).toString('hex')).toBe(createHash('sha256').update(block).digest('hex'));
    expect(sealed.hash(block).equals(plain.hash(block))).toBe(false);
    expect(sealed.hash(block).equals(other.hash(block))).toBe(false);
  });

  it('detects a flipped bit in a stored block and names the block', () => {
    for (const codec of [plain, sealed]) {
      const block = randomBytes(4096);
      const hash = codec.hash(block);
      const encoded = codec.encodeBlock(block, hash);
      encoded[encoded.length - 20]! ^= 0x10;
      expect(() => codec.decodeBlock(encoded, hash)).toThrow(new RegExp(`block ${hash.toString('hex')} is corrupt`));
    }
  });
});
