import path from 'node:path';
import { InvalidInputError } from '../errors.js';
import { CreateOnlyStore } from './create-only-store.js';
import { LocalDirStore } from './local-dir-store.js';
import type { ObjectStore } from './object-store.js';
import { S3Store } from './s3-store.js';

export type RepositoryLocation =
  | { readonly kind: 'file'; readonly dir: string }
  | { readonly kind: 's3'; readonly bucket: string; readonly prefix: string };

/** Parses `file:///absolute/dir` or `s3://bucket/prefix`. */
export function parseRepositoryUrl(url: string): RepositoryLocation {
  if (url.startsWith('file://')) {
    const dir = decodeURIComponent(url.slice('file://'.length));
    if (!path.isAbsolute(dir)) throw new InvalidInputError(`repository URL ${url}: use an absolute path, e.g. file:///var/backups/repo`);
    return { kind: 'file', dir };
  }
  if (url.startsWith('s3://')) {
    const rest = url.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new InvalidInputError(`repository URL ${url}: "${bucket}" is not a valid bucket name`);
    return { kind: 's3', bucket, prefix };
  }
  throw new InvalidInputError(`repository URL "${url}" is not supported: use file:///absolute/dir or s3://bucket/prefix`);
}

export interface StoreOptions {
  /** S3 endpoint for S3-compatible services (MinIO, Ceph, Wasabi, a local fauxqs). */
  readonly endpoint?: string;
  readonly region?: string;
  /** Static credentials; otherwise the standard AWS chain (environment, profile, instance role). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /**
   * Add objects, never replace or delete them (the on-prem agent): S3 PUTs are conditional (`If-None-Match:
   * *`, required by the agent role's IAM policy) and deletions are refused; see S3Store `createOnly`.
   * @default false
   */
  readonly createOnly?: boolean;
}

export function openStore(url: string, options: StoreOptions = {}): ObjectStore {
  const location = parseRepositoryUrl(url);
  if (location.kind === 'file') return options.createOnly ? new CreateOnlyStore(new LocalDirStore(location.dir)) : new LocalDirStore(location.dir);
  return new S3Store({
    bucket: location.bucket,
    prefix: location.prefix,
    createOnly: options.createOnly ?? false,
    clientConfig: {
      ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
      ...(options.region ? { region: options.region } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    },
  });
}
