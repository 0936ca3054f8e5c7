import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
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

/** scrypt cost: ~100 ms and 32 MiB on a current core, the usual interactive setting. */
export const DEFAULT_SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const;

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

/** Wraps fresh master keys under the key source, producing `keys/{keyId}.json`. */
export async function wrapMasterKeys(keys: MasterKeys, source: KeySource, keyId: string, created: Date): Promise<KeyDocument> {
  const salt = randomBytes(16).toString('base64');
  const kdf: KeyDocument['kdf'] = source.kind === 'passphrase' ? { name: 'scrypt', salt, ...(source.scrypt ?? DEFAULT_SCRYPT) } : { name: 'key-file', salt };
  const kek = await deriveKek(source, kdf);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(Buffer.from(`vcd-backup key ${keyId}`));
  const ciphertext = Buffer.concat([cipher.update(Buffer.concat([keys.dataKey, keys.macKey])), cipher.final()]);
  return {
    version: 1,
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
  decipher.setAAD(Buffer.from(`vcd-backup key ${doc.keyId}`));
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
