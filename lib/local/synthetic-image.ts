import { createCipheriv, createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { ChangedArea } from '../agent/changed-areas.js';

/**
 * Deterministic synthetic disk images for tests and benchmarks: regions of zeros, text-like data (compresses
 * ~3-4×) and random data (does not compress), like a real VM disk's mix. Same seed → same bytes.
 */
const MiB = 1024 * 1024;
const WORDS = 'the of and to in is was for on that with as by at from this be are or it an which have not has were data backup restore virtual machine disk block network storage policy tenant organization cloud director vapp snapshot index chain copy retention weekly monthly yearly server service agent'.split(' ');

/** A keystream of pseudo-random bytes (AES-CTR over zeros): fast and reproducible. */
export class Prng {
  private readonly cipher;
  private readonly zeros = Buffer.alloc(MiB);
  constructor(seed: string) {
    const key = createHash('sha256').update(seed).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let done = 0; done < n; done += MiB) {
      const len = Math.min(MiB, n - done);
      this.cipher.update(this.zeros.subarray(0, len)).copy(out, done);
    }
    return out;
  }
  /** A number in [0, n). */
  below(n: number): number {
    return this.bytes(6).readUIntLE(0, 6) % n;
  }
}

function textPool(prng: Prng, size: number): Buffer {
  const parts: string[] = [];
  let length = 0;
  const picks = prng.bytes(size / 4);
  let i = 0;
  while (length < size) {
    let line = '';
    const words = 6 + (picks[i++ % picks.length]! % 10);
    for (let w = 0; w < words; w++) line += WORDS[picks[i++ % picks.length]! % WORDS.length] + ' ';
    line += `${picks[i++ % picks.length]! * 37}\n`;
    parts.push(line);
    length += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

export type RegionKind = 'zero' | 'text' | 'random';

/** The content of an image, region by region: `layout` cycles over the disk in `regionSize` steps. */
export async function writeSyntheticImage(
  file: string,
  size: number,
  options: { seed?: string; regionSize?: number; layout?: readonly RegionKind[] } = {},
): Promise<void> {
  const prng = new Prng(options.seed ?? 'vcd-backup');
  const regionSize = options.regionSize ?? 64 * MiB;
  const layout = options.layout ?? ['zero', 'text', 'random', 'text', 'zero', 'random'];
  const pool = textPool(prng, 4 * MiB);
  const handle = await open(file, 'w');
  try {
    await handle.truncate(size);
    const chunk = Math.min(MiB, regionSize);
    for (let offset = 0; offset < size; offset += chunk) {
      const kind = layout[Math.floor(offset / regionSize) % layout.length]!;
      const len = Math.min(chunk, size - offset);
      if (kind === 'zero') continue; // sparse
      let data: Buffer;
      if (kind === 'random') data = prng.bytes(len);
      else {
        const start = prng.below(pool.length - len);
        data = pool.subarray(start, start + len);
      }
      await handle.write(data, 0, len, offset);
    }
  } finally {
    await handle.close();
  }
}

/**
 * Overwrites `share` of the disk with random data in `writeSize`-aligned writes at distinct random places,
 * as a VM's scattered writes, and returns the areas it wrote (what CBT would report).
 */
export async function mutateImage(file: string, size: number, options: { seed?: string; share?: number; writeSize?: number } = {}): Promise<ChangedArea[]> {
  const prng = new Prng(`${options.seed ?? 'mutate'}`);
  const writeSize = options.writeSize ?? MiB;
  const slots = Math.floor(size / writeSize);
  const count = Math.max(1, Math.round(slots * (options.share ?? 0.05)));
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, slots)) chosen.add(prng.below(slots));
  const areas = [...chosen].sort((a, b) => a - b).map((slot) => ({ start: slot * writeSize, length: writeSize }));
  const handle = await open(file, 'r+');
  try {
    for (const area of areas) await handle.write(prng.bytes(area.length), 0, area.length, area.start);
  } finally {
    await handle.close();
  }
  return areas;
}
