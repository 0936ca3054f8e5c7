import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException, type S3ClientConfig } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import {
  assertValidKey,
  assertValidPrefix,
  bodyLength,
  bodyParts,
  CreateOnlyViolationError,
  ObjectExistsError,
  ObjectNotFoundError,
  StoreAccessDeniedError,
  StoreError,
  StoreMissingError,
  type Body,
  type ByteRange,
  type ObjectInfo,
  type ObjectStore,
} from './object-store.js';

export interface S3StoreOptions {
  readonly bucket: string;
  /** Key prefix inside the bucket, without a leading slash; `''` for the bucket root. */
  readonly prefix?: string;
  /** A client to share (tests, local mode); otherwise one is built from `clientConfig`. */
  readonly client?: S3Client;
  readonly clientConfig?: S3ClientConfig;
  /** Parallel connections the client may open. @default 64 */
  readonly maxSockets?: number;
  /**
   * Create-only (the on-prem agent): every PUT carries `If-None-Match: *`, so S3 never replaces an existing
   * object, and `deleteMany` refuses without asking the server. The header is what the agent role's IAM
   * policy demands (lib/infra/agent-access.ts denies a PutObject without it); that policy, not this flag, is
   * what stops a compromised agent. A PUT that finds its key taken resolves: see `put`.
   * @default false
   */
  readonly createOnly?: boolean;
  /** Pause before retrying a 409 ConditionalRequestConflict (doubled per attempt). @default 100 */
  readonly conflictRetryDelayMs?: number;
}

/** Attempts of a conditional PUT that S3 answers 409 ConditionalRequestConflict (a racing write of the key). */
const CONFLICT_ATTEMPTS = 4;

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound']);
const ACCESS_DENIED = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden', 'ExpiredToken']);

/**
 * An ObjectStore on any S3-compatible endpoint. Retries with exponential backoff come from the SDK's standard
 * retry strategy (throttling, 5xx, network errors); what is left after the retries is mapped to typed errors.
 */
export class S3Store implements ObjectStore {
  readonly description: string;
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  readonly createOnly: boolean;
  private readonly conflictRetryDelayMs: number;

  constructor(options: S3StoreOptions) {
    this.bucket = options.bucket;
    this.prefix = normalisePrefix(options.prefix ?? '');
    this.createOnly = options.createOnly ?? false;
    this.conflictRetryDelayMs = options.conflictRetryDelayMs ?? 100;
    this.description = `s3://${this.bucket}/${this.prefix}${this.createOnly ? ' (create-only)' : ''}`;
    this.client = options.client ?? createS3Client(options.clientConfig ?? {}, options.maxSockets ?? 64);
  }

  private fullKey(key: string): string {
    assertValidKey(key);
    return this.prefix + key;
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    assertValidKey(key);
    if (range && range.length === 0) {
      // S3 cannot express an empty range; the answer is known without asking.
      if (!(await this.stat(key))) throw new ObjectNotFoundError(key, this.description);
      return Buffer.alloc(0);
    }
    const fullKey = this.fullKey(key);
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: fullKey,
          Range: range ? `bytes=${range.offset}-${range.offset + range.length - 1}` : undefined,
        }),
      );
      const bytes = await res.Body!.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      if (range && errorCode(err) === 'InvalidRange') return Buffer.alloc(0);
      throw this.mapError(err, key);
    }
  }

  /**
   * Writes the object. In create-only mode the PUT is conditional and an existing object is left as it is:
   * when S3 answers 412 the call resolves, because in the repository format a key names immutable content
   * (blocks are content-addressed; an index, a disk descriptor or vapp.json is written once for its point,
   * and a redelivered task writes the same bytes again), so "it exists" means "done". Callers that must know
   * use `create`. A 409 ConditionalRequestConflict (another write of the key in flight) is retried as AWS
   * advises: treating it as "exists" could record a block whose racing upload then failed.
   */
  async put(key: string, body: Body): Promise<void> {
    assertValidKey(key); // outside the try below: a bad key is the caller's error, not the store's
    if (this.createOnly) {
      await this.create(key, body);
      return;
    }
    try {
      await this.send(key, body, false);
    } catch (err) {
      throw this.mapError(err, key);
    }
  }

  /**
   * A conditional PUT (`If-None-Match: *`) in any mode: `'created'`, or `'exists'` when the key was taken
   * (the stored object is unchanged). Servers without conditional writes (fauxqs 1.9.2) always create.
   */
  async create(key: string, body: Body): Promise<'created' | 'exists'> {
    assertValidKey(key);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.send(key, body, true);
        return 'created';
      } catch (err) {
        const mapped = this.mapError(err, key);
        if (mapped instanceof ObjectExistsError) return 'exists';
        if (errorCode(err) !== 'ConditionalRequestConflict') throw mapped;
        if (attempt >= CONFLICT_ATTEMPTS) {
          throw new StoreError(`writing "${key}" to ${this.description} conflicted with another write of the same key ${attempt} times (409 ConditionalRequestConflict); retry the task`, { cause: err });
        }
        await delay(this.conflictRetryDelayMs * 2 ** (attempt - 1));
      }
    }
  }

  private async send(key: string, body: Body, ifAbsent: boolean): Promise<void> {
    const parts = bodyParts(body);
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.fullKey(key),
        // A single part goes as is (retries can resend it); several parts stream without being joined.
        Body: parts.length === 1 ? parts[0] : Readable.from(parts),
        ContentLength: bodyLength(body),
        ...(ifAbsent ? { IfNoneMatch: '*' } : {}),
      }),
    );
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const fullKey = this.fullKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: fullKey }));
      return { key, size: res.ContentLength ?? 0, lastModified: res.LastModified ?? new Date(0) };
    } catch (err) {
      const mapped = this.mapError(err, key);
      if (mapped instanceof ObjectNotFoundError) return undefined;
      throw mapped;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertValidPrefix(prefix);
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token }));
      } catch (err) {
        throw this.mapError(err, prefix);
      }
      for (const obj of res.Contents ?? []) {
        if (!obj.Key) continue;
        yield { key: obj.Key.slice(this.prefix.length), size: obj.Size ?? 0, lastModified: obj.LastModified ?? new Date(0) };
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    // Refused here, before any request, so the agent fails with a clear message instead of the server's
    // AccessDenied (and even against a server or a policy that would let it through).
    if (this.createOnly && keys.length > 0) throw new CreateOnlyViolationError(`deleting ${keys.length} object(s) (first "${keys[0]}")`, this.description);
    const full = keys.map((k) => this.fullKey(k));
    for (let i = 0; i < full.length; i += 1000) {
      const chunk = full.slice(i, i + 1000);
      let res;
      try {
        res = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true } }));
      } catch (err) {
        throw this.mapError(err, chunk[0] ?? '');
      }
      const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const first = failed[0]!;
        throw new StoreError(`could not delete ${failed.length} object(s) from ${this.description}, first "${first.Key}": ${first.Code} ${first.Message ?? ''}`.trim());
      }
    }
  }

  private mapError(err: unknown, key: string): Error {
    const code = errorCode(err);
    const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
    if (code === 'NoSuchBucket') return new StoreMissingError(`bucket "${this.bucket}"`, { cause: err });
    if ((code && NOT_FOUND.has(code)) || status === 404) return new ObjectNotFoundError(key, this.description, { cause: err });
    if (code === 'PreconditionFailed' || status === 412) return new ObjectExistsError(key, this.description, { cause: err });
    if ((code && ACCESS_DENIED.has(code)) || status === 403) return new StoreAccessDeniedError(this.description, { cause: err });
    const message = err instanceof Error ? err.message : String(err);
    return new StoreError(`S3 request for "${key}" in ${this.description} failed${code ? ` (${code})` : ''}: ${message}`, { cause: err });
  }
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { name?: unknown; Code?: unknown };
  return typeof e.Code === 'string' ? e.Code : typeof e.name === 'string' ? e.name : undefined;
}

function normalisePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+/, '');
  if (trimmed === '') return '';
  assertValidPrefix(trimmed);
  return trimmed.endsWith('/') ? trimmed : trimmed + '/';
}

/** An S3 client tuned for many small parallel objects: keep-alive sockets and the standard retry strategy. */
export function createS3Client(config: S3ClientConfig, maxSockets = 64): S3Client {
  return new S3Client({
    region: 'us-east-1',
    maxAttempts: 5,
    retryMode: 'standard',
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    forcePathStyle: config.endpoint !== undefined,
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
    }),
    ...config,
  });
}
