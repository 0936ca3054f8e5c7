import { z } from 'zod';
import { InvalidInputError, describeIssues } from '../errors.js';

/**
 * Changed areas as vSphere changed-block tracking reports them (QueryChangedDiskAreas): byte ranges of the
 * disk written since the previous backup. With them, an incremental reads only the blocks they touch.
 */
export const changedAreasSchema = z.array(
  z.object({
    start: z.number().int().nonnegative(),
    length: z.number().int().positive(),
  }),
);
export type ChangedArea = z.infer<typeof changedAreasSchema>[number];

export function parseChangedAreas(value: unknown, what: string): ChangedArea[] {
  const parsed = changedAreasSchema.safeParse(value);
  if (!parsed.success) {
    throw new InvalidInputError(`${what}: expected a JSON array of {"start": bytes, "length": bytes}: ${describeIssues(parsed.error.issues)}`);
  }
  return parsed.data;
}

/**
 * The set of block numbers the areas touch, as a bitmap (one bit per block) so a 2 TiB disk costs 256 KiB.
 * Areas past the end of the disk are an error: they mean the areas belong to another disk.
 */
export function changedBlocks(areas: readonly ChangedArea[], diskSize: number, blockSize: number): Uint8Array {
  const blockCount = Math.ceil(diskSize / blockSize);
  const bits = new Uint8Array(Math.ceil(blockCount / 8));
  for (const area of areas) {
    if (area.start + area.length > diskSize) {
      throw new InvalidInputError(`changed area at ${area.start} (+${area.length}) runs past the end of the disk (${diskSize} bytes): are these the areas of this disk?`);
    }
    const first = Math.floor(area.start / blockSize);
    const last = Math.floor((area.start + area.length - 1) / blockSize);
    for (let b = first; b <= last; b++) bits[b >> 3]! |= 1 << (b & 7);
  }
  return bits;
}

export function isMarked(bits: Uint8Array, block: number): boolean {
  return ((bits[block >> 3] ?? 0) & (1 << (block & 7))) !== 0;
}
