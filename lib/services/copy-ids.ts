import { createHash } from 'node:crypto';

/**
 * Ids of copy runs, copied points, batches and leases (issue 7). Derived, never random, so that every
 * redelivery of a message names the same run, the same batch and the same point.
 *
 * A copied point keeps its source point's id **in the repository** (copy-point.ts), but the catalog keys
 * restore points by id across all repositories, so in the catalog a copy is `<pointId>@<repositoryId>`.
 * Backup points keep their repository id in the catalog. `repositoryPointId` maps back.
 */

/** The catalog id of the copy of repository point `pointId` in repository `repositoryId`. */
export function copyPointCatalogId(pointId: string, repositoryId: string): string {
  return `${pointId}@${repositoryId}`;
}

/** The id of a catalog restore point inside its repository (point ids never contain '@'). */
export function repositoryPointId(catalogPointId: string): string {
  const at = catalogPointId.indexOf('@');
  return at < 0 ? catalogPointId : catalogPointId.slice(0, at);
}

/** The catalog id of the point `pointId` of a source repository written by a job of kind `kind`. */
export function sourcePointCatalogId(kind: 'backup' | 'copy', pointId: string, repositoryId: string): string {
  return kind === 'backup' ? pointId : copyPointCatalogId(pointId, repositoryId);
}

/**
 * The lease that protects a restore point (by catalog id) from retention while a copy reads it. Shared:
 * any number of copies may hold it; retention skips a point with an unexpired lease.
 */
export function pointLeaseResource(catalogPointId: string): string {
  return `point:${catalogPointId}`;
}

const digest = (...parts: string[]) => createHash('sha256').update(parts.join('\n')).digest('hex');

/** The run of an immediate-mode copy of one source point: the same for every notice of that commit. */
export function immediateCopyRunId(jobId: string, sourcePointId: string): string {
  return `run-${jobId}-copy-${digest(jobId, sourcePointId).slice(0, 16)}`;
}

/** A batch of a vApp's attempt: `<attempt>.<index>.<vappId>` (vApp ids may contain dots; they come last). */
export function copyBatchId(vappId: string, attempt: number, index: number): string {
  return `${attempt}.${index}.${vappId}`;
}

export function parseCopyBatchId(batchId: string | undefined): { vappId: string; attempt: number; index: number } | undefined {
  const m = batchId === undefined ? null : /^(\d+)\.(\d+)\.(.+)$/.exec(batchId);
  if (!m) return undefined;
  return { attempt: Number(m[1]), index: Number(m[2]), vappId: m[3]! };
}
