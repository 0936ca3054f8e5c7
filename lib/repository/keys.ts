import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Secret } from '../secret.js';
import { RepositoryKeyError } from './errors.js';
import type { KeyDocument } from './format.js';

const scrypt = promisify(scryptCb) as (password: Buffer | string, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

/** The repository's secrets: AES-256-GCM data key and the HMAC key that names blocks. Never logged. */
export interface MasterKeys {
  readonly dataKey: Buffer;
  readonly macKey: Buffer;
}

/**
 * Where the key-encryption key comes from. The port behind which KMS will sit in AWS; locally a passphrase
 * (scrypt) or a key file. The passphrase is a `Secret` so it cannot reach a log line.
 */
export type KeySource =
  | { readonly kind: 'passphrase'; readonly passphrase: Secret; readonly scrypt?: { N: number; r: number; p: number } }
  | { readonly kind: 'key-file'; readonly keyMaterial: Secret };

/**
 * scrypt cost of new key documents: N=2^17 (128 MiB, measured ~0.3 s on one core of the build machine, see
 * docs/repository-format.md). Opening a repository costs it once; guessing passphrases costs it per guess.
 * Existing key documents keep the N they were written with.
 */
export const DEFAULT_SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;

/** New passphrases shorter than this are refused: scrypt slows guessing, it cannot save a short secret. */
export const MIN_PASSPHRASE_LENGTH = 12;

/** Per-purpose keys derived from the master material (format 2). Never logged. */
export interface TenantCodecKeys {
  /** For encrypted repositories: the namespace's data and block-naming keys. */
  readonly keys?: MasterKeys;
  /** For plaintext repositories: the namespace's block-naming key (from the public naming salt). */
  readonly namingKey?: Buffer;
}

const HKDF_SALT = Buffer.from('vcd-backup repository format 2');

function derive(ikm: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, HKDF_SALT, Buffer.from(info), 32));
}

function masterMaterial(keys: MasterKeys): Buffer {
  return Buffer.concat([keys.dataKey, keys.macKey]);
}

/**
 * A tenant's data key and MAC (block-naming) key: HKDF-SHA-256 of the master material with the tenant id and
 * the purpose in `info`, so one tenant's keys say nothing about another's and never open its objects.
 */
export function deriveTenantKeys(master: MasterKeys, tenantId: string): MasterKeys {
  const ikm = masterMaterial(master);
  return { dataKey: derive(ikm, `tenant-data\0${tenantId}`), macKey: derive(ikm, `tenant-mac\0${tenantId}`) };
}

/** A tenant's block-naming key in a plaintext repository: keyed by the public salt, so it separates tenants, not secrets. */
export function deriveTenantNamingKey(namingSalt: Buffer, tenantId: string): Buffer {
  return derive(namingSalt, `tenant-naming\0${tenantId}`);
}

/** The key that authenticates config.json and point.json (format 2, encrypted repositories). */
export function deriveMetadataMacKey(master: MasterKeys, purpose: 'config' | 'point'): Buffer {
  return derive(masterMaterial(master), `${purpose}-mac`);
}

/** JSON with object keys sorted at every level: the bytes a MAC is computed over, whatever the writer's key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** HMAC-SHA-256 of an object (without its `mac` member) bound to the object key it is stored under. */
export function objectMac(key: Buffer, objectKey: string, doc: Record<string, unknown>): Buffer {
  const { mac: _mac, ...rest } = doc;
  return createHmac('sha256', key).update(`vcd-backup ${objectKey}\n`).update(canonicalJson(rest)).digest();
}

export function macMatches(expected: Buffer, given: string | undefined): boolean {
  if (given === undefined) return false;
  const buf = Buffer.from(given, 'base64');
  return buf.length === expected.length && timingSafeEqual(buf, expected);
}

export function generateMasterKeys(): MasterKeys {
  return { dataKey: randomBytes(32), macKey: randomBytes(32) };
}

async function deriveKek(source: KeySource, kdf: KeyDocument['kdf']): Promise<Buffer> {
  const salt = Buffer.from(kdf.salt, 'base64');
  if (source.kind === 'passphrase') {
    if (kdf.name !== 'scrypt') throw new RepositoryKeyError('this repository key is opened with a key file (--key-file), not a passphrase');
    return scrypt(source.passphrase.reveal(), salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * 1024 * 1024 });
  }
  if (kdf.name !== 'key-file') throw new RepositoryKeyError('this repository key is opened with a passphrase (--passphrase-env VAR), not a key file');
  const material = Buffer.from(source.keyMaterial.reveal().trim(), 'utf8');
  if (material.length < 32) throw new RepositoryKeyError('the key file is too short: it must hold at least 32 characters of random data (e.g. `openssl rand -base64 48 > repo.key`)');
  return Buffer.from(hkdfSync('sha256', material, salt, 'vcd-backup key-file kek v1', 32));
}

function wrapAad(version: KeyDocument['version'], keyId: string): Buffer {
  // Version 2 names itself in the AAD: a format-2 master key cannot be presented as a format-1 one.
  return Buffer.from(version === 1 ? `vcd-backup key ${keyId}` : `vcd-backup key v2 ${keyId}`);
}

/** Wraps fresh master keys under the key source, producing `keys/{keyId}.json` (version 2 unless told). */
export async function wrapMasterKeys(keys: MasterKeys, source: KeySource, keyId: string, created: Date, version: KeyDocument['version'] = 2): Promise<KeyDocument> {
  if (source.kind === 'passphrase' && source.passphrase.reveal().length < MIN_PASSPHRASE_LENGTH) {
    throw new RepositoryKeyError(`the passphrase is too short: use at least ${MIN_PASSPHRASE_LENGTH} characters (a few random words are easiest)`);
  }
  const salt = randomBytes(16).toString('base64');
  const kdf: KeyDocument['kdf'] = source.kind === 'passphrase' ? { name: 'scrypt', salt, ...(source.scrypt ?? DEFAULT_SCRYPT) } : { name: 'key-file', salt };
  const kek = await deriveKek(source, kdf);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(wrapAad(version, keyId));
  const ciphertext = Buffer.concat([cipher.update(Buffer.concat([keys.dataKey, keys.macKey])), cipher.final()]);
  return {
    version,
    keyId,
    created: created.toISOString(),
    kdf,
    wrapped: { nonce: nonce.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') },
  };
}

/** Unwraps the master keys; a wrong passphrase or key file fails the GCM tag and says so. */
export async function unwrapMasterKeys(doc: KeyDocument, source: KeySource): Promise<MasterKeys> {
  const kek = await deriveKek(source, doc.kdf);
  const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(doc.wrapped.nonce, 'base64'));
  decipher.setAAD(wrapAad(doc.version, doc.keyId));
  decipher.setAuthTag(Buffer.from(doc.wrapped.tag, 'base64'));
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(Buffer.from(doc.wrapped.ciphertext, 'base64')), decipher.final()]);
  } catch (err) {
    throw new RepositoryKeyError(`the ${source.kind === 'passphrase' ? 'passphrase' : 'key file'} does not open this repository (key ${doc.keyId}): check it and try again`, { cause: err });
  }
  if (plain.length !== 64) throw new RepositoryKeyError(`key ${doc.keyId} has an unexpected length`);
  return { dataKey: plain.subarray(0, 32), macKey: plain.subarray(32, 64) };
}

export function sameKeys(a: MasterKeys, b: MasterKeys): boolean {
  return timingSafeEqual(a.dataKey, b.dataKey) && timingSafeEqual(a.macKey, b.macKey);
}
