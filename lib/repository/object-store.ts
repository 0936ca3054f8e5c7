import { BackupError } from '../errors.js';

/**
 * The storage port under a repository: dumb, immutable-object storage addressed by keys (restic's
 * "backend"). Everything with meaning (blocks, indexes, points) lives above it, in the repository layer.
 *
 * Contract, checked by test/contracts/object-store.contract.ts for every adapter:
 * - keys are relative, `/`-separated, with no empty, `.` or `..` segments and no backslashes;
 * - `put` replaces the whole object atomically: a reader sees the old object or the new one, never a part;
 * - `get` of a missing key throws `ObjectNotFoundError`; a range past the end is cut at the end;
 * - `list` yields every key starting with the prefix exactly once, in no promised order;
 * - `deleteMany` of keys that do not exist succeeds (deletion is idempotent).
 * - a store opened create-only (S3Store `createOnly`, CreateOnlyStore) never replaces or deletes: `put` of an
 *   existing key leaves the stored object as it is and resolves, `deleteMany` throws CreateOnlyViolationError.
 */
export interface ObjectStore {
  /** Where this store points, for messages (never includes credentials). */
  readonly description: string;
  get(key: string, range?: ByteRange): Promise<Buffer>;
  /** `body` may be given in parts, written in order, so large objects need not be joined in memory. */
  put(key: string, body: Body): Promise<void>;
  stat(key: string): Promise<ObjectInfo | undefined>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  deleteMany(keys: readonly string[]): Promise<void>;
}

export type Body = Uint8Array | readonly Uint8Array[];

export function bodyParts(body: Body): readonly Uint8Array[] {
  return body instanceof Uint8Array ? [body] : body;
}

export function bodyLength(body: Body): number {
  return bodyParts(body).reduce((n, part) => n + part.byteLength, 0);
}

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date;
}

export class ObjectNotFoundError extends BackupError {
  readonly key: string;
  constructor(key: string, where: string, options?: { cause?: unknown }) {
    super('OBJECT_NOT_FOUND', `object "${key}" does not exist in ${where}`, options);
    this.key = key;
  }
}

export class InvalidKeyError extends BackupError {
  constructor(key: string, reason: string) {
    super('INVALID_OBJECT_KEY', `invalid object key "${key}": ${reason}`);
  }
}

/** The store refused the credentials or the operation. */
export class StoreAccessDeniedError extends BackupError {
  constructor(where: string, options?: { cause?: unknown }) {
    super('STORE_ACCESS_DENIED', `access denied by ${where}: check the credentials and the bucket policy`, { ...options, userFacing: true });
  }
}

/** The bucket or directory behind the store does not exist. */
export class StoreMissingError extends BackupError {
  constructor(where: string, options?: { cause?: unknown }) {
    super('STORE_MISSING', `${where} does not exist: create the bucket or directory, or fix the repository URL`, { ...options, userFacing: true });
  }
}

/**
 * A create-only write found the key taken (S3 answered 412 PreconditionFailed to `If-None-Match: *`). A
 * create-only `put` treats this as done (see S3Store); it surfaces only to callers that ask for it.
 */
export class ObjectExistsError extends BackupError {
  readonly key: string;
  constructor(key: string, where: string, options?: { cause?: unknown }) {
    super('OBJECT_EXISTS', `object "${key}" already exists in ${where} and this store never overwrites (create-only)`, options);
    this.key = key;
  }
}

/**
 * A create-only store (the on-prem agent's) was asked to delete or overwrite. The agent never needs to:
 * deletions (retention, GC, `repo forget`) run in the service or the CLI with their own credentials.
 */
export class CreateOnlyViolationError extends BackupError {
  constructor(operation: string, where: string) {
    super(
      'STORE_CREATE_ONLY',
      `${operation} refused: ${where} is opened create-only (it may add objects, never delete or replace them); run deletions from the service or \`vcd-backup repo\` with a store that is not create-only`,
      { userFacing: true },
    );
  }
}

/** Any other storage failure, after retries. */
export class StoreError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_ERROR', message, options);
  }
}

const SEGMENT_FORBIDDEN = new Set(['', '.', '..']);

/** Throws unless `key` is a safe relative key; adapters call it so a key can never escape their root. */
export function assertValidKey(key: string): void {
  if (key.length === 0) throw new InvalidKeyError(key, 'it is empty');
  if (key.length > 1024) throw new InvalidKeyError(key.slice(0, 40) + '…', 'it is longer than 1024 characters');
  if (key.includes('\\')) throw new InvalidKeyError(key, 'backslashes are not allowed');
  if (key.includes('\0')) throw new InvalidKeyError(key, 'NUL characters are not allowed');
  if (key.startsWith('/')) throw new InvalidKeyError(key, 'keys are relative and cannot start with "/"');
  for (const segment of key.split('/')) {
    if (SEGMENT_FORBIDDEN.has(segment)) throw new InvalidKeyError(key, `segment "${segment}" is not allowed`);
  }
}

/** Prefixes may end with `/` or be empty, but otherwise follow the key rules. */
export function assertValidPrefix(prefix: string): void {
  if (prefix === '') return;
  assertValidKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}

/** Cuts a range to an object of `size` bytes, like S3 does for a range past the end. */
export function clampRange(size: number, range?: ByteRange): { start: number; end: number } {
  if (!range) return { start: 0, end: size };
  if (range.offset < 0 || range.length < 0 || !Number.isInteger(range.offset) || !Number.isInteger(range.length)) {
    throw new StoreError(`invalid byte range offset=${range.offset} length=${range.length}`);
  }
  const start = Math.min(range.offset, size);
  return { start, end: Math.min(size, start + range.length) };
}
