import type { Repository } from './repository.js';

export interface RepositoryStats {
  readonly repositoryId: string;
  readonly encrypted: boolean;
  readonly points: number;
  readonly vapps: number;
  /** Sum of the disk sizes of every point: what restoring every point would write. */
  readonly logicalBytes: number;
  readonly blocksStored: number;
  readonly storedBytes: number;
  /** logicalBytes / storedBytes: what dedupe, zero skipping and compression save together. */
  readonly reductionRatio: number | null;
}

export async function repositoryStats(repository: Repository): Promise<RepositoryStats> {
  let points = 0;
  let logicalBytes = 0;
  const vapps = new Set<string>();
  for await (const point of repository.listPoints()) {
    points++;
    vapps.add(point.vappId);
    for (const disk of point.disks) logicalBytes += disk.sizeBytes;
  }
  let blocksStored = 0;
  let storedBytes = 0;
  for await (const info of repository.store.list('blocks/')) {
    blocksStored++;
    storedBytes += info.size;
  }
  return {
    repositoryId: repository.config.repositoryId,
    encrypted: repository.encrypted,
    points,
    vapps: vapps.size,
    logicalBytes,
    blocksStored,
    storedBytes,
    reductionRatio: storedBytes > 0 ? Math.round((logicalBytes / storedBytes) * 100) / 100 : null,
  };
}
