import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InvalidKeyError, ObjectNotFoundError, type ObjectStore } from '../../lib/repository/object-store.js';

/**
 * The ObjectStore contract (restic's backend suite): every adapter runs exactly these tests.
 * `make` returns a fresh, empty store for each test.
 */
export function objectStoreContract(name: string, make: () => Promise<ObjectStore>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    it('stores and reads back an object byte for byte', async () => {
      const store = await make();
      const body = randomBytes(70_000);
      await store.put('blocks/ab/abcdef', body);
      expect(Buffer.compare(await store.get('blocks/ab/abcdef'), body)).toBe(0);
    });

    it('stores an object given in parts as their concatenation', async () => {
      const store = await make();
      const parts = [randomBytes(1000), randomBytes(0), randomBytes(70_000), randomBytes(3)];
      await store.put('parts/obj', parts);
      expect(Buffer.compare(await store.get('parts/obj'), Buffer.concat(parts))).toBe(0);
      expect((await store.stat('parts/obj'))?.size).toBe(71_003);
    });

    it('stores an empty object', async () => {
      const store = await make();
      await store.put('empty', Buffer.alloc(0));
      expect((await store.get('empty')).length).toBe(0);
      expect((await store.stat('empty'))?.size).toBe(0);
    });

    it('reads byte ranges, cutting a range that runs past the end', async () => {
      const store = await make();
      const body = Buffer.from('0123456789abcdef');
      await store.put('r/obj', body);
      expect((await store.get('r/obj', { offset: 3, length: 4 })).toString()).toBe('3456');
      expect((await store.get('r/obj', { offset: 12, length: 100 })).toString()).toBe('cdef');
      expect((await store.get('r/obj', { offset: 0, length: 0 })).length).toBe(0);
    });

    it('replaces an object on a second put', async () => {
      const store = await make();
      await store.put('k', Buffer.from('first'));
      await store.put('k', Buffer.from('second, longer'));
      expect((await store.get('k')).toString()).toBe('second, longer');
    });

    it('throws ObjectNotFoundError for a missing key and stat returns undefined', async () => {
      const store = await make();
      await expect(store.get('missing/key')).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(store.get('missing/key', { offset: 0, length: 0 })).rejects.toBeInstanceOf(ObjectNotFoundError);
      expect(await store.stat('missing/key')).toBeUndefined();
    });

    it('stat reports size and a modification time', async () => {
      const store = await make();
      await store.put('s/one', Buffer.alloc(1234, 7));
      const info = await store.stat('s/one');
      expect(info?.key).toBe('s/one');
      expect(info?.size).toBe(1234);
      expect(info?.lastModified.getTime()).toBeGreaterThan(0);
    });

    it('lists every key under a prefix exactly once, including partial segments', async () => {
      const store = await make();
      const keys = ['points/v1/p1/point.json', 'points/v1/p2/point.json', 'points/v2/p3/point.json', 'blocks/aa/1', 'blocks/ab/2', 'config.json'];
      for (const key of keys) await store.put(key, Buffer.from(key));
      const list = async (prefix: string) => {
        const out: string[] = [];
        for await (const info of store.list(prefix)) out.push(info.key);
        return out.sort();
      };
      expect(await list('points/')).toEqual(keys.filter((k) => k.startsWith('points/')).sort());
      expect(await list('points/v1/')).toEqual(['points/v1/p1/point.json', 'points/v1/p2/point.json']);
      expect(await list('blocks/a')).toEqual(['blocks/aa/1', 'blocks/ab/2']);
      expect(await list('')).toEqual([...keys].sort());
      expect(await list('nothing/')).toEqual([]);
    });

    it('lists sizes with the keys', async () => {
      const store = await make();
      await store.put('sz/a', Buffer.alloc(10));
      await store.put('sz/b', Buffer.alloc(20));
      const sizes: Record<string, number> = {};
      for await (const info of store.list('sz/')) sizes[info.key] = info.size;
      expect(sizes).toEqual({ 'sz/a': 10, 'sz/b': 20 });
    });

    it('lists past one page of results', async () => {
      const store = await make();
      const keys = Array.from({ length: 1100 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
      for (let i = 0; i < keys.length; i += 100) await Promise.all(keys.slice(i, i + 100).map((k) => store.put(k, Buffer.from('x'))));
      let count = 0;
      const seen = new Set<string>();
      for await (const info of store.list('many/')) {
        count++;
        seen.add(info.key);
      }
      expect(count).toBe(1100);
      expect(seen.size).toBe(1100);
    });

    it('deletes many keys, and deleting missing keys succeeds', async () => {
      const store = await make();
      await store.put('d/1', Buffer.from('1'));
      await store.put('d/2', Buffer.from('2'));
      await store.put('d/3', Buffer.from('3'));
      await store.deleteMany(['d/1', 'd/3', 'd/never-existed']);
      const left: string[] = [];
      for await (const info of store.list('d/')) left.push(info.key);
      expect(left).toEqual(['d/2']);
      await store.deleteMany([]);
    });

    it('rejects keys that could escape the store', async () => {
      const store = await make();
      for (const key of ['../etc/passwd', 'a/../../b', '/abs', 'a//b', 'a\\b', '', 'a/./b']) {
        await expect(store.put(key, Buffer.from('x')), key).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(store.get(key), key).rejects.toBeInstanceOf(InvalidKeyError);
      }
    });

    it('handles keys with spaces and non-ASCII characters', async () => {
      const store = await make();
      await store.put('names/vApp été 1/x.json', Buffer.from('é'));
      expect((await store.get('names/vApp été 1/x.json')).toString()).toBe('é');
    });

    it('serves concurrent puts and gets of different keys', async () => {
      const store = await make();
      const bodies = Array.from({ length: 32 }, () => randomBytes(4096));
      await Promise.all(bodies.map((b, i) => store.put(`c/${i}`, b)));
      const back = await Promise.all(bodies.map((_, i) => store.get(`c/${i}`)));
      back.forEach((b, i) => expect(Buffer.compare(b, bodies[i]!)).toBe(0));
    });
  });
}
