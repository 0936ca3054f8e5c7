import { z } from 'zod';

/**
 * Repository formats 1 and 2: the key layout and the JSON objects. docs/repository-format.md is the prose
 * contract; this module is its executable form. Every object read back is parsed with these schemas.
 *
 * Format 2 keeps every binary object of format 1 (envelope, index) and changes only JSON: config.json gains
 * a naming salt and a MAC, key documents are version 2 (their AAD names the version, so a config.json
 * rewritten to format 1 is caught), and point.json names its tenant namespace and carries a MAC.
 */
/** The format this build writes. It reads `READABLE_FORMATS`. */
export const FORMAT_VERSION = 2;
export const READABLE_FORMATS = [1, 2] as const;
export type FormatVersion = (typeof READABLE_FORMATS)[number];

export const MIN_BLOCK_SIZE = 256 * 1024;
export const MAX_BLOCK_SIZE = 8 * 1024 * 1024;
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;

export const CONFIG_KEY = 'config.json';
export const keyFileKey = (keyId: string) => `keys/${keyId}.json`;
export const blockKey = (hashHex: string) => `blocks/${hashHex.slice(0, 2)}/${hashHex}`;
export const pointPrefix = (vappId: string, pointId: string) => `points/${vappId}/${pointId}/`;
export const pointKey = (vappId: string, pointId: string) => `${pointPrefix(vappId, pointId)}point.json`;
export const vappKey = (vappId: string, pointId: string) => `${pointPrefix(vappId, pointId)}vapp.json`;
export const indexKey = (vappId: string, pointId: string, diskId: string) => `${pointPrefix(vappId, pointId)}disks/${diskId}.idx`;
/** Written by the agent after a disk's index: what the commit needs to know of the disk. */
export const diskDescriptorKey = (vappId: string, pointId: string, diskId: string) => `${pointPrefix(vappId, pointId)}disks/${diskId}.json`;

/** Ids become key segments: keep them to a safe alphabet so no id can shape a key. */
export const idSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'use letters, digits, ".", "_", ":" and "-" only, starting with a letter or digit');

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

export const blockSizeSchema = z
  .number()
  .int()
  .refine((n) => isPowerOfTwo(n) && n >= MIN_BLOCK_SIZE && n <= MAX_BLOCK_SIZE, {
    message: `must be a power of two between ${MIN_BLOCK_SIZE} (256 KiB) and ${MAX_BLOCK_SIZE} (8 MiB)`,
  });

const repositoryConfigV1Schema = z.object({
  format: z.literal(1),
  repositoryId: z.string().min(1),
  created: z.iso.datetime(),
  /** `sha256` for plaintext repositories; `hmac-sha256` (keyed by the repository secret) when encrypted. */
  blockHash: z.enum(['sha256', 'hmac-sha256']),
  compression: z.object({ algorithm: z.literal('zstd'), level: z.number().int().min(-7).max(22) }),
  encryption: z.object({ scheme: z.literal('aes-256-gcm'), keyIds: z.array(z.string().min(1)).min(1) }).nullable(),
  defaultBlockSize: blockSizeSchema,
});

export const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');

const repositoryConfigV2Schema = repositoryConfigV1Schema.extend({
  format: z.literal(2),
  /**
   * Random, not secret: the input from which per-tenant block-naming keys of a PLAINTEXT repository are
   * derived, so tenants do not share block names. Encrypted repositories derive from the master keys instead.
   */
  namingSalt: b64,
  /** HMAC-SHA-256 of the canonical config (without `mac`) under a key derived from the master keys. Encrypted only. */
  mac: b64.optional(),
});

export const repositoryConfigSchema = z.discriminatedUnion('format', [repositoryConfigV1Schema, repositoryConfigV2Schema]);
export type RepositoryConfig = z.infer<typeof repositoryConfigSchema>;

export const keyDocumentSchema = z.object({
  /** 1 in format-1 repositories, 2 in format-2 ones; the version is part of the wrapping's AAD. */
  version: z.union([z.literal(1), z.literal(2)]),
  keyId: z.string().min(1),
  created: z.iso.datetime(),
  kdf: z.discriminatedUnion('name', [
    z.object({ name: z.literal('scrypt'), salt: b64, N: z.number().int().positive(), r: z.number().int().positive(), p: z.number().int().positive() }),
    z.object({ name: z.literal('key-file'), salt: b64 }),
  ]),
  /** The repository's master material (data key + MAC key), AES-256-GCM-wrapped by the key-encryption key. */
  wrapped: z.object({ nonce: b64, ciphertext: b64, tag: b64 }),
});
export type KeyDocument = z.infer<typeof keyDocumentSchema>;

export const pointDiskSchema = z.object({
  diskId: idSchema,
  vmId: z.string().nullable(),
  sizeBytes: z.number().int().nonnegative(),
  blockSize: blockSizeSchema,
  blocksTotal: z.number().int().nonnegative(),
  blocksZero: z.number().int().nonnegative(),
  /** Blocks this point uploaded (the rest were already in the repository). */
  blocksNew: z.number().int().nonnegative(),
  bytesUploaded: z.number().int().nonnegative(),
  /**
   * vSphere CBT: the virtual disk's device key and the `changeId` of the snapshot this point was read from.
   * The next backup asks QueryChangedDiskAreas from it and reads only what changed. Absent for disks not read
   * from a vSphere snapshot.
   */
  deviceKey: z.number().int().optional(),
  changeId: z.string().min(1).max(512).optional(),
});

/** A tenant namespace: the tenant id, or null for the repository's own (unbound) namespace. */
export const namespaceSchema = idSchema.nullable();

/**
 * A point as the code handles it. `format` and `tenantId` are what was read; on commit the repository writes
 * its own format and its view's namespace, so writers may leave `tenantId` out.
 */
export const pointDescriptorSchema = z.object({
  format: z.union([z.literal(1), z.literal(2)]),
  pointId: idSchema,
  vappId: idSchema,
  /** The tenant namespace the point's objects and blocks are named and sealed in (format 2). */
  tenantId: namespaceSchema.optional(),
  createdAt: z.iso.datetime(),
  parentPointId: idSchema.nullable(),
  /** Set on copies: the point this one was copied from (in another repository). */
  sourcePointId: idSchema.nullable(),
  hasVAppMetadata: z.boolean(),
  disks: z.array(pointDiskSchema),
});
export type PointDescriptor = z.infer<typeof pointDescriptorSchema>;

/** point.json as stored by format 1. */
export const storedPointV1Schema = pointDescriptorSchema.omit({ tenantId: true }).extend({ format: z.literal(1) });
/** point.json as stored by format 2: the namespace is always named, and the MAC when encrypted. */
export const storedPointV2Schema = pointDescriptorSchema
  .extend({ format: z.literal(2), tenantId: namespaceSchema, mac: b64.optional() });
export const storedPointSchema = z.discriminatedUnion('format', [storedPointV1Schema, storedPointV2Schema]);

/** The disk descriptor as the agent writes it: the point.json disk entry plus the namespace it was written in. */
export const diskDescriptorNamespaceSchema = z.object({ tenantId: namespaceSchema.optional() });
export type PointDisk = z.infer<typeof pointDiskSchema>;

/** Point ids sort by creation time: `20261122T213000Z-1a2b3c4d`. */
export function newPointId(at: Date, random: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  return `${stamp}-${random}`;
}
