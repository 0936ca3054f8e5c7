import type { Clock } from '../domain/clock.js';
import { systemClock } from '../system-clock.js';
import { assertValidKey, bodyParts, type Body, assertValidPrefix, clampRange, ObjectNotFoundError, type ByteRange, type ObjectInfo, type ObjectStore } from './object-store.js';

/** An in-memory ObjectStore, for tests and for benchmarks that leave storage out. */
export class MemoryStore implements ObjectStore {
  readonly description = 'memory store';
  private readonly objects = new Map<string, { body: Buffer; lastModified: Date }>();

  constructor(private readonly clock: Clock = systemClock) {}

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    assertValidKey(key);
    const entry = this.objects.get(key);
    if (!entry) throw new ObjectNotFoundError(key, this.description);
    const { start, end } = clampRange(entry.body.length, range);
    return Buffer.from(entry.body.subarray(start, end));
  }

  async put(key: string, body: Body): Promise<void> {
    assertValidKey(key);
    // Copy: callers may reuse their buffers, and stored objects are immutable.
    this.objects.set(key, { body: Buffer.concat(bodyParts(body)), lastModified: this.clock.now() });
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    const entry = this.objects.get(key);
    return entry ? { key, size: entry.body.length, lastModified: entry.lastModified } : undefined;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    assertValidPrefix(prefix);
    for (const [key, entry] of [...this.objects.entries()]) {
      if (key.startsWith(prefix)) yield { key, size: entry.body.length, lastModified: entry.lastModified };
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    for (const key of keys) assertValidKey(key);
    for (const key of keys) this.objects.delete(key);
  }

  /** Test hook: overwrite stored bytes in place (to simulate bit rot). */
  tamper(key: string, mutate: (body: Buffer) => void): void {
    const entry = this.objects.get(key);
    if (!entry) throw new ObjectNotFoundError(key, this.description);
    mutate(entry.body);
  }
}
