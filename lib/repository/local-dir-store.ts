import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { assertValidKey, bodyParts, type Body, assertValidPrefix, clampRange, InvalidKeyError, ObjectNotFoundError, StoreError, StoreMissingError, type ByteRange, type ObjectInfo, type ObjectStore } from './object-store.js';

const TEMP_PREFIX = '.tmp-';

/**
 * An ObjectStore on a local directory (a NAS mount, a USB disk, a test folder). Writes go to a temporary file
 * in the target directory and are renamed into place, so a crash never leaves a partial object under its key.
 * Keys are checked and resolved inside the root, so no key can escape it.
 */
export class LocalDirStore implements ObjectStore {
  readonly description: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.description = `directory ${this.root}`;
  }

  private pathOf(key: string): string {
    assertValidKey(key);
    const full = path.resolve(this.root, ...key.split('/'));
    if (!full.startsWith(this.root + path.sep)) throw new InvalidKeyError(key, 'it resolves outside the repository directory');
    return full;
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const file = this.pathOf(key);
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      throw this.mapError(err, key);
    }
    try {
      const { size } = await handle.stat();
      const { start, end } = clampRange(size, range);
      const buf = Buffer.allocUnsafe(end - start);
      let done = 0;
      while (done < buf.length) {
        const { bytesRead } = await handle.read(buf, done, buf.length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === buf.length ? buf : buf.subarray(0, done);
    } finally {
      await handle.close();
    }
  }

  async put(key: string, body: Body): Promise<void> {
    const file = this.pathOf(key);
    const dir = path.dirname(file);
    const temp = path.join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      await mkdir(dir, { recursive: true });
      const handle = await open(temp, 'w');
      try {
        for (const part of bodyParts(body)) await handle.write(part);
      } finally {
        await handle.close();
      }
      await rename(temp, file);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw this.mapError(err, key);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const file = this.pathOf(key);
    try {
      const s = await stat(file);
      return s.isFile() ? { key, size: s.size, lastModified: s.mtime } : undefined;
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
      throw this.mapError(err, key);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertValidPrefix(prefix);
    await this.assertRootExists();
    // Walk only the deepest directory the prefix names; filter the rest by string prefix.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const start = dirKey === '' ? this.root : path.join(this.root, ...dirKey.split('/'));
    yield* this.walk(start, dirKey, prefix);
  }

  private async *walk(dir: string, dirKey: string, prefix: string): AsyncIterable<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return;
      throw this.mapError(err, dirKey);
    }
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_PREFIX)) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        // Descend only where keys below can still match the prefix.
        if (prefix.startsWith(key + '/') || (key + '/').startsWith(prefix) || key.startsWith(prefix)) {
          yield* this.walk(path.join(dir, entry.name), key, prefix);
        }
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const s = await stat(path.join(dir, entry.name)).catch(() => undefined);
        if (s) yield { key, size: s.size, lastModified: s.mtime };
      }
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    const files = keys.map((k) => this.pathOf(k));
    for (const file of files) await rm(file, { force: true });
  }

  private async assertRootExists(): Promise<void> {
    try {
      const s = await stat(this.root);
      if (!s.isDirectory()) throw new StoreMissingError(this.description);
    } catch (err) {
      if (err instanceof StoreMissingError) throw err;
      throw new StoreMissingError(this.description, { cause: err });
    }
  }

  private mapError(err: unknown, key: string): Error {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return new ObjectNotFoundError(key, this.description, { cause: err });
    if (isErrno(err, 'EACCES') || isErrno(err, 'EPERM')) return new StoreError(`permission denied on "${key}" in ${this.description}`, { cause: err });
    return new StoreError(`cannot access "${key}" in ${this.description}: ${(err as Error).message}`, { cause: err });
  }
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
