import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { InvalidInputError, describeIssues } from '../errors.js';
import { BlockCodec } from './block-codec.js';
import { DiskIndexReader } from './disk-index.js';
import { BlockMissingError, PointNotFoundError, RepositoryExistsError, RepositoryFormatError, RepositoryKeyError, RepositoryNotFoundError } from './errors.js';
import {
  CONFIG_KEY,
  DEFAULT_BLOCK_SIZE,
  FORMAT_VERSION,
  blockKey,
  blockSizeSchema,
  diskDescriptorKey,
  indexKey,
  keyDocumentSchema,
  keyFileKey,
  pointDescriptorSchema,
  pointDiskSchema,
  pointKey,
  pointPrefix,
  repositoryConfigSchema,
  vappKey,
  type PointDescriptor,
  type PointDisk,
  type RepositoryConfig,
} from './format.js';
import { generateMasterKeys, unwrapMasterKeys, wrapMasterKeys, type KeySource, type MasterKeys } from './keys.js';
import { ObjectNotFoundError, type Body, type ObjectStore } from './object-store.js';
import type { z } from 'zod';

export interface InitOptions {
  readonly clock: Clock;
  /** Encrypt the repository with a key derived from this source. Plaintext when absent. */
  readonly keySource?: KeySource;
  readonly blockSize?: number;
  /** zstd level. @default 1 — compression is most of the CPU; level 1 keeps the agent ahead of the network. */
  readonly compressionLevel?: number;
}

export const DEFAULT_COMPRESSION_LEVEL = 1;

/**
 * A repository of format 1 on an ObjectStore: what the objects mean, in which order they are written, and
 * how they are checked when read. Upper layers (the agent's pipeline, copy, retention, GC) use this and
 * never build keys or parse objects themselves.
 */
export class Repository {
  readonly codec: BlockCodec;

  private constructor(
    readonly store: ObjectStore,
    readonly config: RepositoryConfig,
    readonly keys: MasterKeys | undefined,
  ) {
    this.codec = new BlockCodec({ compressionLevel: config.compression.level, keys });
  }

  get encrypted(): boolean {
    return this.config.encryption !== null;
  }

  static async init(store: ObjectStore, options: InitOptions): Promise<Repository> {
    if (await store.stat(CONFIG_KEY)) throw new RepositoryExistsError(store.description);
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    const checked = blockSizeSchema.safeParse(blockSize);
    if (!checked.success) throw new InvalidInputError(`--block-size ${blockSize}: ${describeIssues(checked.error.issues).replace('(root): ', '')}`);
    const created = options.clock.now();
    let keys: MasterKeys | undefined;
    let keyId: string | undefined;
    if (options.keySource) {
      keys = generateMasterKeys();
      keyId = randomBytes(8).toString('hex');
      const doc = await wrapMasterKeys(keys, options.keySource, keyId, created);
      await store.put(keyFileKey(keyId), Buffer.from(JSON.stringify(doc, null, 2)));
    }
    const config: RepositoryConfig = {
      format: FORMAT_VERSION,
      repositoryId: randomUUID(),
      created: created.toISOString(),
      blockHash: keys ? 'hmac-sha256' : 'sha256',
      compression: { algorithm: 'zstd', level: options.compressionLevel ?? DEFAULT_COMPRESSION_LEVEL },
      encryption: keyId ? { scheme: 'aes-256-gcm', keyIds: [keyId] } : null,
      defaultBlockSize: blockSize,
    };
    // config.json last: until it exists there is no repository, so a failed init can simply be rerun.
    await store.put(CONFIG_KEY, Buffer.from(JSON.stringify(config, null, 2)));
    return new Repository(store, config, keys);
  }

  static async open(store: ObjectStore, keySource?: KeySource): Promise<Repository> {
    let raw: Buffer;
    try {
      raw = await store.get(CONFIG_KEY);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new RepositoryNotFoundError(store.description);
      throw err;
    }
    const config = parseJson(repositoryConfigSchema, raw, `${store.description}/${CONFIG_KEY}`);
    if (!config.encryption) return new Repository(store, config, undefined);
    if (!keySource) throw new RepositoryKeyError('this repository is encrypted: pass --passphrase-env VAR (the name of a variable holding the passphrase) or --key-file FILE');
    let lastError: unknown;
    for (const keyId of config.encryption.keyIds) {
      const doc = parseJson(keyDocumentSchema, await store.get(keyFileKey(keyId)), keyFileKey(keyId));
      try {
        return new Repository(store, config, await unwrapMasterKeys(doc, keySource));
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError instanceof Error ? lastError : new RepositoryKeyError('no key of this repository opens with the given secret');
  }

  /** A codec of the same settings for another thread (see the agent's codec pool). */
  codecSettings(): { compressionLevel: number; keys?: MasterKeys } {
    return { compressionLevel: this.config.compression.level, keys: this.keys };
  }

  blockKeyOf(hash: Uint8Array): string {
    return blockKey(Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex'));
  }

  async hasBlock(hash: Uint8Array): Promise<boolean> {
    return (await this.store.stat(this.blockKeyOf(hash))) !== undefined;
  }

  /** Stores an encoded block. Blocks are immutable and content-named, so a repeated put is harmless. */
  async putBlock(hash: Uint8Array, encoded: Uint8Array): Promise<void> {
    await this.store.put(this.blockKeyOf(hash), encoded);
  }

  /** Reads a block's stored bytes; a missing block is a `BlockMissingError`. */
  async getEncodedBlock(hash: Uint8Array): Promise<Buffer> {
    const key = this.blockKeyOf(hash);
    try {
      return await this.store.get(key);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new BlockMissingError(Buffer.from(hash).toString('hex'), { cause: err });
      throw err;
    }
  }

  /** Reads, decodes and checks a block against its hash. */
  async getBlock(hash: Buffer): Promise<Buffer> {
    return this.codec.decodeBlock(await this.getEncodedBlock(hash), hash);
  }

  async putIndex(vappId: string, pointId: string, diskId: string, body: Body): Promise<string> {
    const key = indexKey(vappId, pointId, diskId);
    await this.store.put(key, body);
    return key;
  }

  async readIndex(vappId: string, pointId: string, diskId: string): Promise<DiskIndexReader> {
    const key = indexKey(vappId, pointId, diskId);
    return new DiskIndexReader(this.codec, key, await this.store.get(key));
  }

  async readIndexByKey(key: string): Promise<DiskIndexReader> {
    return new DiskIndexReader(this.codec, key, await this.store.get(key));
  }

  /** Records a finished disk of an uncommitted point (after its index): the commit collects these. */
  async putDiskDescriptor(vappId: string, pointId: string, disk: PointDisk): Promise<void> {
    const valid = pointDiskSchema.parse(disk);
    await this.store.put(diskDescriptorKey(vappId, pointId, valid.diskId), Buffer.from(JSON.stringify(valid, null, 2)));
  }

  /** The disk descriptors written so far for a point, by disk id. */
  async readDiskDescriptors(vappId: string, pointId: string): Promise<Map<string, PointDisk>> {
    const out = new Map<string, PointDisk>();
    for await (const info of this.store.list(`${pointPrefix(vappId, pointId)}disks/`)) {
      if (!info.key.endsWith('.json')) continue;
      const disk = parseJson(pointDiskSchema, await this.store.get(info.key), info.key);
      out.set(disk.diskId, disk);
    }
    return out;
  }

  /** Stores the captured vApp model; sealed like a block when the repository is encrypted. */
  async putVAppMetadata(vappId: string, pointId: string, model: unknown): Promise<void> {
    const key = vappKey(vappId, pointId);
    const json = Buffer.from(JSON.stringify(model, null, 2));
    await this.store.put(key, this.encrypted ? this.codec.encode(json, Buffer.from(key)) : json);
  }

  async getVAppMetadata(vappId: string, pointId: string): Promise<unknown> {
    const key = vappKey(vappId, pointId);
    const raw = await this.store.get(key);
    const json = this.encrypted ? this.codec.decode(raw, Buffer.from(key), key) : raw;
    try {
      return JSON.parse(json.toString('utf8')) as unknown;
    } catch (err) {
      throw new RepositoryFormatError(`${key} is not valid JSON`, { cause: err });
    }
  }

  /**
   * Commits a restore point by writing `point.json`, which must come after its blocks, indexes and vapp.json:
   * its presence is what makes the point exist.
   */
  async commitPoint(point: PointDescriptor): Promise<void> {
    const valid = pointDescriptorSchema.parse(point);
    await this.store.put(pointKey(valid.vappId, valid.pointId), Buffer.from(JSON.stringify(valid, null, 2)));
  }

  async readPoint(vappId: string, pointId: string): Promise<PointDescriptor> {
    const key = pointKey(vappId, pointId);
    let raw: Buffer;
    try {
      raw = await this.store.get(key);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new PointNotFoundError(pointId, this.store.description);
      throw err;
    }
    return parseJson(pointDescriptorSchema, raw, key);
  }

  /** Every committed point; objects of uncommitted points (no point.json) are not points. */
  async *listPoints(): AsyncIterable<PointDescriptor> {
    for await (const info of this.store.list('points/')) {
      if (!info.key.endsWith('/point.json')) continue;
      yield parseJson(pointDescriptorSchema, await this.store.get(info.key), info.key);
    }
  }

  /** Finds a committed point by id alone (ids are unique in a repository). */
  async findPoint(pointId: string, vappId?: string): Promise<PointDescriptor> {
    if (vappId) return this.readPoint(vappId, pointId);
    for await (const info of this.store.list('points/')) {
      if (info.key.endsWith(`/${pointId}/point.json`)) return parseJson(pointDescriptorSchema, await this.store.get(info.key), info.key);
    }
    throw new PointNotFoundError(pointId, this.store.description);
  }

  /** The newest committed point of a vApp, if any. */
  async latestPoint(vappId: string): Promise<PointDescriptor | undefined> {
    let latest: PointDescriptor | undefined;
    for await (const info of this.store.list(`points/${vappId}/`)) {
      if (!info.key.endsWith('/point.json')) continue;
      const p = parseJson(pointDescriptorSchema, await this.store.get(info.key), info.key);
      if (!latest || p.createdAt > latest.createdAt || (p.createdAt === latest.createdAt && p.pointId > latest.pointId)) latest = p;
    }
    return latest;
  }

  /** Deletes a point: `point.json` first (uncommitting it), then its indexes and vapp.json. Blocks stay for GC. */
  async deletePoint(vappId: string, pointId: string): Promise<void> {
    await this.store.deleteMany([pointKey(vappId, pointId)]);
    const rest: string[] = [];
    for await (const info of this.store.list(pointPrefix(vappId, pointId))) rest.push(info.key);
    await this.store.deleteMany(rest);
  }
}

function parseJson<T extends z.ZodType>(schema: T, raw: Buffer, what: string): z.infer<T> {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new RepositoryFormatError(`${what} is not valid JSON`, { cause: err });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new RepositoryFormatError(`${what} does not follow repository format ${FORMAT_VERSION}: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}
