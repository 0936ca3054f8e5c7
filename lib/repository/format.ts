import { z } from 'zod';

/**
 * Repository format 1: the key layout and the JSON objects. docs/repository-format.md is the prose contract;
 * this module is its executable form. Every object read back is parsed with these schemas.
 */
export const FORMAT_VERSION = 1;

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

export const repositoryConfigSchema = z.object({
  format: z.literal(FORMAT_VERSION),
  repositoryId: z.string().min(1),
  created: z.iso.datetime(),
  /** `sha256` for plaintext repositories; `hmac-sha256` (keyed by the repository secret) when encrypted. */
  blockHash: z.enum(['sha256', 'hmac-sha256']),
  compression: z.object({ algorithm: z.literal('zstd'), level: z.number().int().min(-7).max(22) }),
  encryption: z.object({ scheme: z.literal('aes-256-gcm'), keyIds: z.array(z.string().min(1)).min(1) }).nullable(),
  defaultBlockSize: blockSizeSchema,
});
export type RepositoryConfig = z.infer<typeof repositoryConfigSchema>;

export const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');

export const keyDocumentSchema = z.object({
  version: z.literal(1),
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
});

export const pointDescriptorSchema = z.object({
  format: z.literal(FORMAT_VERSION),
  pointId: idSchema,
  vappId: idSchema,
  createdAt: z.iso.datetime(),
  parentPointId: idSchema.nullable(),
  /** Set on copies: the point this one was copied from (in another repository). */
  sourcePointId: idSchema.nullable(),
  hasVAppMetadata: z.boolean(),
  disks: z.array(pointDiskSchema),
});
export type PointDescriptor = z.infer<typeof pointDescriptorSchema>;
export type PointDisk = z.infer<typeof pointDiskSchema>;

/** Point ids sort by creation time: `20261122T213000Z-1a2b3c4d`. */
export function newPointId(at: Date, random: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  return `${stamp}-${random}`;
}
