import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { InvalidInputError, describeIssues } from '../errors.js';
import { BlockCodec } from './block-codec.js';
import { DiskIndexReader } from './disk-index.js';
import {
  BlockMissingError,
  PointNotFoundError,
  RepositoryExistsError,
  RepositoryFormatError,
  RepositoryIntegrityError,
  RepositoryKeyError,
  RepositoryNotFoundError,
} from './errors.js';
import {
  CONFIG_KEY,
  DEFAULT_BLOCK_SIZE,
  FORMAT_VERSION,
  blockKey,
  blockSizeSchema,
  diskDescriptorKey,
  diskDescriptorNamespaceSchema,
  idSchema,
  indexKey,
  keyDocumentSchema,
  keyFileKey,
  pointDescriptorSchema,
  pointDiskSchema,
  pointKey,
  pointPrefix,
  repositoryConfigSchema,
  storedPointSchema,
  vappKey,
  type PointDescriptor,
  type PointDisk,
  type RepositoryConfig,
} from './format.js';
import {
  deriveMetadataMacKey,
  deriveTenantKeys,
  deriveTenantNamingKey,
  generateMasterKeys,
  macMatches,
  objectMac,
  unwrapMasterKeys,
  wrapMasterKeys,
  type KeySource,
  type MasterKeys,
} from './keys.js';
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

/** What every namespace view of one opened repository shares. */
interface Root {
  readonly store: ObjectStore;
  readonly config: RepositoryConfig;
  readonly master: MasterKeys | undefined;
  /** Authenticates point.json (format 2, encrypted). */
  readonly pointMacKey: Buffer | undefined;
  readonly views: Map<string, Repository>;
  unbound?: Repository;
}

/** `points/{vappId}/{pointId}/point.json` → its ids, or undefined for any other key. */
function pointKeyIds(key: string): { vappId: string; pointId: string } | undefined {
  const m = /^points\/([^/]+)\/([^/]+)\/point\.json$/.exec(key);
  return m ? { vappId: m[1]!, pointId: m[2]! } : undefined;
}

export type ScannedPoint = { readonly key: string; readonly point: PointDescriptor; readonly error?: undefined } | { readonly key: string; readonly point?: undefined; readonly error: RepositoryIntegrityError | RepositoryFormatError };

/**
 * A repository on an ObjectStore: what the objects mean, in which order they are written, and how they are
 * checked when read. Upper layers (the agent's pipeline, copy, retention, GC) use this and never build keys or
 * parse objects themselves.
 *
 * An instance is a **view** of one tenant namespace (format 2): `forTenant(id)` names and seals blocks,
 * indexes and vapp.json under that tenant's derived keys, writes points that record the tenant, and sees
 * only that tenant's points. The unbound view (what `open` returns) uses the repository-level keys, writes
 * points of no tenant, and sees every point: tools that work across tenants (GC, verify, the CLI) switch to
 * the right namespace per point with `viewFor(point)`.
 */
export class Repository {
  readonly codec: BlockCodec;
  readonly store: ObjectStore;
  readonly config: RepositoryConfig;
  /** This namespace's data and naming keys (encrypted repositories). */
  readonly keys: MasterKeys | undefined;
  /** This namespace's block-naming key (plaintext repositories opened for a tenant). */
  readonly namingKey: Buffer | undefined;
  /** The tenant namespace of this view; null: the repository's own (no tenant). */
  readonly tenantId: string | null;

  private constructor(
    private readonly root: Root,
    tenantId: string | null,
  ) {
    this.store = root.store;
    this.config = root.config;
    this.tenantId = tenantId;
    if (tenantId === null) this.keys = root.master;
    else if (root.master) this.keys = deriveTenantKeys(root.master, tenantId);
    else if (root.config.format === 2) this.namingKey = deriveTenantNamingKey(Buffer.from(root.config.namingSalt, 'base64'), tenantId);
    this.codec = new BlockCodec({ compressionLevel: root.config.compression.level, keys: this.keys, namingKey: this.namingKey });
  }

  private static create(store: ObjectStore, config: RepositoryConfig, master: MasterKeys | undefined): Repository {
    const root: Root = { store, config, master, pointMacKey: master && config.format === 2 ? deriveMetadataMacKey(master, 'point') : undefined, views: new Map() };
    const repository = new Repository(root, null);
    root.unbound = repository;
    return repository;
  }

  get encrypted(): boolean {
    return this.config.encryption !== null;
  }

  /** Whether point.json objects are authenticated (format 2 and encrypted: plaintext has no secret to MAC with). */
  get authenticatesPoints(): boolean {
    return this.root.pointMacKey !== undefined;
  }

  /**
   * The view of `tenantId`'s namespace. From a tenant's view only that tenant's own view is reachable, so a
   * view handed to tenant-scoped code cannot be widened by it.
   */
  forTenant(tenantId: string): Repository {
    if (this.tenantId === tenantId) return this;
    if (this.tenantId !== null) throw new InvalidInputError(`this repository view belongs to tenant ${this.tenantId}; it cannot open tenant ${tenantId}'s namespace`, { code: 'REPOSITORY_TENANT' });
    return this.namespace(tenantId);
  }

  /** Any namespace's view, for code that works across tenants (GC, verify, copy by an unbound caller). */
  private namespace(tenantId: string | null): Repository {
    if (tenantId === null) return this.root.unbound!;
    const cached = this.root.views.get(tenantId);
    if (cached) return cached;
    if (!idSchema.safeParse(tenantId).success) throw new InvalidInputError(`"${tenantId}" is not a tenant id: use letters, digits, ".", "_", ":" and "-" only`, { code: 'REPOSITORY_TENANT' });
    if (this.config.format === 1) {
      throw new RepositoryFormatError(
        `${this.store.description} is a format-1 repository, which cannot keep tenants apart: create a new repository (format 2) and copy the points into it with \`vcd-backup repo copy\``,
      );
    }
    const view = new Repository(this.root, tenantId);
    this.root.views.set(tenantId, view);
    return view;
  }

  /** The view in which `point`'s objects and blocks are named and sealed. A tenant view reaches only its own points. */
  viewFor(point: Pick<PointDescriptor, 'tenantId' | 'pointId'>): Repository {
    const ns = point.tenantId ?? null;
    if (ns === this.tenantId) return this;
    if (this.tenantId !== null) throw new PointNotFoundError(point.pointId, this.store.description);
    return this.namespace(ns);
  }

  /** The unbound view with every namespace reachable (GC, verify). */
  allNamespaces(): { unbound: Repository; view(tenantId: string | null): Repository } {
    return { unbound: this.root.unbound!, view: (tenantId) => this.namespace(tenantId) };
  }

  private sees(namespace: string | null | undefined): boolean {
    return this.tenantId === null || (namespace ?? null) === this.tenantId;
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
      const doc = await wrapMasterKeys(keys, options.keySource, keyId, created, 2);
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
      namingSalt: randomBytes(32).toString('base64'),
    };
    if (keys) config.mac = objectMac(deriveMetadataMacKey(keys, 'config'), CONFIG_KEY, config).toString('base64');
    // config.json last: until it exists there is no repository, so a failed init can simply be rerun.
    await store.put(CONFIG_KEY, Buffer.from(JSON.stringify(config, null, 2)));
    return Repository.create(store, config, keys);
  }

  /**
   * Opens a repository. With a key, config.json must be authentic: a config that claims no encryption (a
   * downgrade), a format-1 config over format-2 keys, or a config whose MAC fails is refused.
   */
  static async open(store: ObjectStore, keySource?: KeySource): Promise<Repository> {
    let raw: Buffer;
    try {
      raw = await store.get(CONFIG_KEY);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) throw new RepositoryNotFoundError(store.description);
      throw err;
    }
    const value = parseJsonValue(raw, `${store.description}/${CONFIG_KEY}`);
    const config = parseJson(repositoryConfigSchema, value, `${store.description}/${CONFIG_KEY}`);
    if (!config.encryption) {
      // Whoever holds a key expects an encrypted repository: writing plaintext into it would leak every block.
      if (keySource) throw new RepositoryIntegrityError(CONFIG_KEY, 'it says the repository is not encrypted, but a key was given (a downgrade of an encrypted repository?); refusing to read or write plaintext');
      return Repository.create(store, config, undefined);
    }
    if (!keySource) throw new RepositoryKeyError('this repository is encrypted: pass --passphrase-env VAR (the name of a variable holding the passphrase) or --key-file FILE');
    let lastError: unknown;
    for (const keyId of config.encryption.keyIds) {
      const doc = parseJson(keyDocumentSchema, parseJsonValue(await store.get(keyFileKey(keyId)), keyFileKey(keyId)), keyFileKey(keyId));
      let keys: MasterKeys;
      try {
        keys = await unwrapMasterKeys(doc, keySource);
      } catch (err) {
        lastError = err;
        continue;
      }
      if (config.format === 1 && doc.version !== 1) throw new RepositoryIntegrityError(CONFIG_KEY, `it says format 1, but key ${keyId} belongs to a format-2 repository (a downgrade that would drop authentication)`);
      if (config.format === 2) {
        if (doc.version !== 2) throw new RepositoryIntegrityError(keyFileKey(keyId), 'a format-2 repository must use version-2 key documents');
        if (!macMatches(objectMac(deriveMetadataMacKey(keys, 'config'), CONFIG_KEY, value as Record<string, unknown>), config.mac)) {
          throw new RepositoryIntegrityError(CONFIG_KEY, config.mac ? 'its MAC does not match its content (edited)' : 'it has no MAC although the repository is encrypted');
        }
      }
      return Repository.create(store, config, keys);
    }
    throw lastError instanceof Error ? lastError : new RepositoryKeyError('no key of this repository opens with the given secret');
  }

  /** A codec of the same settings for another thread (see the agent's codec pool). */
  codecSettings(): { compressionLevel: number; keys?: MasterKeys; namingKey?: Buffer } {
    return { compressionLevel: this.config.compression.level, keys: this.keys, namingKey: this.namingKey };
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
    // The namespace lets GC read this disk's index before the point is committed.
    const doc = this.config.format === 1 ? valid : { ...valid, tenantId: this.tenantId };
    await this.store.put(diskDescriptorKey(vappId, pointId, valid.diskId), Buffer.from(JSON.stringify(doc, null, 2)));
  }

  /** The disk descriptors written so far for a point in this view's namespace, by disk id. */
  async readDiskDescriptors(vappId: string, pointId: string): Promise<Map<string, PointDisk>> {
    const out = new Map<string, PointDisk>();
    for await (const info of this.store.list(`${pointPrefix(vappId, pointId)}disks/`)) {
      if (!info.key.endsWith('.json')) continue;
      const value = parseJsonValue(await this.store.get(info.key), info.key);
      const disk = parseJson(pointDiskSchema, value, info.key);
      // Another namespace's disk (format 2 records it) is not part of a point this view can commit.
      const ns = diskDescriptorNamespaceSchema.safeParse(value);
      if (ns.success && ns.data.tenantId !== undefined && ns.data.tenantId !== this.tenantId) continue;
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
   * its presence is what makes the point exist. Written in the repository's format, in this view's
   * namespace, with a MAC bound to its key when the repository is encrypted (format 2).
   */
  async commitPoint(point: PointDescriptor): Promise<void> {
    const valid = pointDescriptorSchema.parse(point);
    if (valid.tenantId !== undefined && valid.tenantId !== this.tenantId) {
      throw new InvalidInputError(`point ${valid.pointId} belongs to ${valid.tenantId === null ? 'no tenant' : `tenant ${valid.tenantId}`} but is committed through the view of ${this.tenantId === null ? 'no tenant' : `tenant ${this.tenantId}`}`, { code: 'REPOSITORY_TENANT' });
    }
    const key = pointKey(valid.vappId, valid.pointId);
    const { tenantId: _tenant, format: _format, ...fields } = valid;
    let doc: Record<string, unknown>;
    if (this.config.format === 1) doc = { format: 1, ...fields };
    else {
      const { pointId, vappId, ...rest } = fields;
      doc = { format: 2, pointId, vappId, tenantId: this.tenantId, ...rest };
      if (this.root.pointMacKey) doc.mac = objectMac(this.root.pointMacKey, key, doc).toString('base64');
    }
    await this.store.put(key, Buffer.from(JSON.stringify(doc, null, 2)));
  }

  /**
   * Parses and checks a point.json read from `key`: its ids must be the ones its key names and, in an
   * encrypted format-2 repository, its MAC (bound to the key) must match. A failure names the object.
   */
  private parsePoint(raw: Buffer, key: string): PointDescriptor {
    const value = parseJsonValue(raw, key);
    const doc = parseJson(storedPointSchema, value, key);
    if (this.config.format === 2 && doc.format === 1) throw new RepositoryIntegrityError(key, 'it is a format-1 point.json (no tenant, no MAC) in a format-2 repository');
    if (this.config.format === 1 && doc.format === 2) throw new RepositoryFormatError(`${key} is a format-2 point in a format-1 repository`);
    const where = pointKeyIds(key);
    if (!where || where.vappId !== doc.vappId || where.pointId !== doc.pointId) {
      throw new RepositoryIntegrityError(key, `it describes point ${doc.vappId}/${doc.pointId}, not the point its key names (swapped or replayed)`);
    }
    if (doc.format === 1) return { ...doc, tenantId: null };
    if (this.root.pointMacKey && !macMatches(objectMac(this.root.pointMacKey, key, value as Record<string, unknown>), doc.mac)) {
      throw new RepositoryIntegrityError(key, doc.mac ? 'its MAC does not match (edited, or replayed from another key)' : 'it has no MAC although the repository is encrypted');
    }
    const { mac: _mac, ...point } = doc;
    return point;
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
    const point = this.parsePoint(raw, key);
    // Another tenant's point is indistinguishable from a missing one.
    if (!this.sees(point.tenantId)) throw new PointNotFoundError(pointId, this.store.description);
    return point;
  }

  /**
   * Every point.json under `prefix` that this view sees, checked, with integrity and format failures
   * reported per object instead of thrown (for `repo verify`). A failed one cannot be attributed to a
   * namespace, so every view reports it.
   */
  async *scanPoints(prefix = 'points/'): AsyncIterable<ScannedPoint> {
    for await (const info of this.store.list(prefix)) {
      if (!info.key.endsWith('/point.json')) continue;
      let raw: Buffer;
      try {
        raw = await this.store.get(info.key);
      } catch (err) {
        if (err instanceof ObjectNotFoundError) continue; // deleted since listed
        throw err;
      }
      let point: PointDescriptor;
      try {
        point = this.parsePoint(raw, info.key);
      } catch (err) {
        if (err instanceof RepositoryIntegrityError || err instanceof RepositoryFormatError) {
          yield { key: info.key, error: err };
          continue;
        }
        throw err;
      }
      if (this.sees(point.tenantId)) yield { key: info.key, point };
    }
  }

  /** Every committed point this view sees; objects of uncommitted points (no point.json) are not points. */
  async *listPoints(): AsyncIterable<PointDescriptor> {
    for await (const entry of this.scanPoints()) {
      if (entry.error) throw entry.error;
      yield entry.point;
    }
  }

  /** Finds a committed point by id alone (ids are unique in a repository). */
  async findPoint(pointId: string, vappId?: string): Promise<PointDescriptor> {
    if (vappId) return this.readPoint(vappId, pointId);
    for await (const info of this.store.list('points/')) {
      if (!info.key.endsWith(`/${pointId}/point.json`)) continue;
      const point = this.parsePoint(await this.store.get(info.key), info.key);
      if (this.sees(point.tenantId)) return point;
    }
    throw new PointNotFoundError(pointId, this.store.description);
  }

  /** The newest committed point of a vApp in this view, if any. */
  async latestPoint(vappId: string): Promise<PointDescriptor | undefined> {
    let latest: PointDescriptor | undefined;
    for await (const entry of this.scanPoints(`points/${vappId}/`)) {
      if (entry.error) throw entry.error;
      const p = entry.point;
      if (!latest || p.createdAt > latest.createdAt || (p.createdAt === latest.createdAt && p.pointId > latest.pointId)) latest = p;
    }
    return latest;
  }

  /**
   * Deletes a point: `point.json` first (uncommitting it), then its indexes and vapp.json. Blocks stay for GC.
   * A tenant's view refuses another tenant's point (as not found).
   */
  async deletePoint(vappId: string, pointId: string): Promise<void> {
    const key = pointKey(vappId, pointId);
    if (this.tenantId !== null) {
      const raw = await this.store.get(key).catch((err: unknown) => {
        if (err instanceof ObjectNotFoundError) return undefined;
        throw err;
      });
      if (raw && !this.sees(this.parsePoint(raw, key).tenantId)) throw new PointNotFoundError(pointId, this.store.description);
    }
    await this.store.deleteMany([key]);
    const rest: string[] = [];
    for await (const info of this.store.list(pointPrefix(vappId, pointId))) rest.push(info.key);
    await this.store.deleteMany(rest);
  }
}

function parseJsonValue(raw: Buffer, what: string): unknown {
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch (err) {
    throw new RepositoryFormatError(`${what} is not valid JSON`, { cause: err });
  }
}

function parseJson<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new RepositoryFormatError(`${what} does not follow repository format 1 or 2: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}
