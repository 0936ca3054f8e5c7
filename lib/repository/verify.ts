import { Limiter } from '../limiter.js';
import { BlockCorruptError, BlockMissingError } from './errors.js';
import type { Repository } from './repository.js';

export interface VerifyOptions {
  /** Re-read only this share of the referenced blocks (chosen at random); missing blocks are always found. */
  readonly samplePercent?: number;
  readonly concurrency?: number;
  readonly random?: () => number;
  readonly onProgress?: (checked: number, total: number) => void;
}

export interface BlockProblem {
  /** A block's hash, `index <diskId>`, or (for `tampered`) the object key of the point.json. */
  readonly block: string;
  /** `tampered`: a point.json that fails its integrity check (swapped, replayed, edited) or does not parse. */
  readonly problem: 'missing' | 'corrupt' | 'tampered';
  readonly reason: string;
  /** `vappId/pointId` of every point whose disks need the block. */
  readonly points: string[];
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly points: number;
  readonly indexes: number;
  readonly blocksReferenced: number;
  readonly blocksChecked: number;
  readonly bytesChecked: number;
  readonly problems: BlockProblem[];
  /** Points that cannot be fully restored. */
  readonly damagedPoints: string[];
}

/**
 * Checks that every committed point can be restored: each point.json passes its integrity check, each index
 * opens, each block it names exists, and each checked block decodes and hashes to its name. Problems name the
 * object and every point that needs it. Each point is read in its own tenant namespace.
 */
export async function verifyRepository(repository: Repository, options: VerifyOptions = {}): Promise<VerifyReport> {
  // block hex → points referring to it (indexes into `pointNames` to keep the map small)
  const refs = new Map<string, number[]>();
  // block hex → the namespace view that names it (names of different namespaces never collide)
  const viewOf = new Map<string, Repository>();
  const pointNames: string[] = [];
  const problems: BlockProblem[] = [];
  let indexes = 0;
  for await (const entry of repository.scanPoints()) {
    if (entry.error) {
      const m = /^points\/([^/]+)\/([^/]+)\/point\.json$/.exec(entry.key);
      const name = m ? `${m[1]}/${m[2]}` : entry.key;
      pointNames.push(name);
      problems.push({ block: entry.key, problem: 'tampered', reason: entry.error.message, points: [name] });
      continue;
    }
    const point = entry.point;
    const view = repository.viewFor(point);
    const name = `${point.vappId}/${point.pointId}`;
    const n = pointNames.push(name) - 1;
    for (const disk of point.disks) {
      let index;
      try {
        index = await view.readIndex(point.vappId, point.pointId, disk.diskId);
      } catch (err) {
        problems.push({ block: `index ${disk.diskId}`, problem: 'corrupt', reason: (err as Error).message, points: [name] });
        continue;
      }
      indexes++;
      for (const hash of index.entries()) {
        if (!hash) continue;
        const hex = hash.toString('hex');
        const list = refs.get(hex);
        if (!list) {
          refs.set(hex, [n]);
          viewOf.set(hex, view);
        }
        else if (list[list.length - 1] !== n) list.push(n);
      }
    }
  }

  const present = new Set<string>();
  for await (const info of repository.store.list('blocks/')) present.add(info.key.slice(info.key.lastIndexOf('/') + 1));

  const toCheck: string[] = [];
  const random = options.random ?? Math.random;
  const share = (options.samplePercent ?? 100) / 100;
  for (const [hex, pts] of refs) {
    if (!present.has(hex)) {
      problems.push({ block: hex, problem: 'missing', reason: new BlockMissingError(hex).message, points: pts.map((i) => pointNames[i]!) });
    } else if (share >= 1 || random() < share) {
      toCheck.push(hex);
    }
  }

  const limiter = new Limiter(options.concurrency ?? 16);
  let checked = 0;
  let bytesChecked = 0;
  await Promise.all(
    toCheck.map((hex) =>
      limiter.run(async () => {
        try {
          const plain = await viewOf.get(hex)!.getBlock(Buffer.from(hex, 'hex'));
          bytesChecked += plain.length;
        } catch (err) {
          const problem = err instanceof BlockMissingError ? 'missing' : 'corrupt';
          const reason = err instanceof BlockCorruptError ? err.message : (err as Error).message;
          problems.push({ block: hex, problem, reason, points: refs.get(hex)!.map((i) => pointNames[i]!) });
        }
        checked++;
        options.onProgress?.(checked, toCheck.length);
      }),
    ),
  );

  const damaged = new Set(problems.flatMap((p) => p.points));
  return {
    ok: problems.length === 0,
    points: pointNames.length,
    indexes,
    blocksReferenced: refs.size,
    blocksChecked: checked,
    bytesChecked,
    problems: problems.sort((a, b) => a.block.localeCompare(b.block)),
    damagedPoints: [...damaged].sort(),
  };
}
