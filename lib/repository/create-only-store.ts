import { CreateOnlyViolationError, type Body, type ByteRange, type ObjectInfo, type ObjectStore } from './object-store.js';

/**
 * The create-only rule (see S3Store `createOnly`) for stores without conditional writes: local directories
 * and memory. `put` of an existing key leaves it as it is; `deleteMany` refuses. The check before the write
 * is not atomic, and needs not be: it keeps an agent's behaviour the same on every store (tests, local mode),
 * while the protection that matters, against a compromised agent, is the IAM policy on the S3 bucket; a
 * process that can write a local directory can also delete from it.
 */
export class CreateOnlyStore implements ObjectStore {
  readonly description: string;

  constructor(private readonly inner: ObjectStore) {
    this.description = `${inner.description} (create-only)`;
  }

  get(key: string, range?: ByteRange): Promise<Buffer> {
    return this.inner.get(key, range);
  }

  async put(key: string, body: Body): Promise<void> {
    // Immutable by key in the repository format, so an object already there is the one we would write.
    if (await this.inner.stat(key)) return;
    await this.inner.put(key, body);
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key);
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) throw new CreateOnlyViolationError(`deleting ${keys.length} object(s) (first "${keys[0]}")`, this.description);
  }
}
