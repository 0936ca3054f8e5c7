/**
 * Tenant usage for quotas: the bytes a tenant's live restore points reference, as stored (after dedupe,
 * compression and encryption), each block counted once per tenant however many of its points share it.
 * Summing what each backup uploaded is wrong both ways: an unchanged incremental uploads nothing yet keeps
 * every block alive, and a deleted point's blocks may still be needed by later points. So usage is
 * recomputed by marking, as GC does: read every index of the tenant's points, collect the block names (a
 * tenant's blocks are named under its own keys, so no other tenant's block is ever counted), then add up
 * the stored sizes from one listing of `blocks/`.
 */
import type { Catalog } from '../catalog/catalog.js';
import type { RestorePoint, TenantUsage } from '../catalog/types.js';
import type { Clock } from '../domain/clock.js';
import type { Log } from '../log.js';
import type { RepositoryOpener } from './ports.js';

export interface UsageServiceDeps {
  readonly catalog: Catalog;
  readonly repositories: RepositoryOpener;
  readonly clock: Clock;
  readonly log: Log;
}

export class UsageService {
  constructor(private readonly deps: UsageServiceDeps) {}

  /** Recomputes and stores one tenant's usage. */
  async recompute(tenantId: string): Promise<TenantUsage> {
    const { catalog, clock } = this.deps;
    const points = await catalog.listRestorePoints({ tenantId });
    const byRepository = new Map<string, RestorePoint[]>();
    for (const p of points) byRepository.set(p.repositoryId, [...(byRepository.get(p.repositoryId) ?? []), p]);
    const repositories: TenantUsage['repositories'] = [];
    for (const [repositoryId, list] of [...byRepository].sort(([a], [b]) => a.localeCompare(b))) {
      repositories.push({ repositoryId, restorePoints: list.length, ...(await this.measure(repositoryId, tenantId, list)) });
    }
    const usage: TenantUsage = {
      tenantId,
      usedBytes: repositories.reduce((n, r) => n + r.usedBytes, 0),
      blocks: repositories.reduce((n, r) => n + r.blocks, 0),
      restorePoints: points.length,
      repositories,
      computedAt: clock.now().toISOString(),
    };
    await catalog.putTenantUsage(usage);
    this.deps.log.info('tenant usage recomputed', { tenantId, usedBytes: usage.usedBytes, blocks: usage.blocks, restorePoints: usage.restorePoints });
    return usage;
  }

  /** Like `recompute`, for callers that must not fail because usage could not be measured (commits). */
  async recomputeQuietly(tenantId: string): Promise<void> {
    try {
      await this.recompute(tenantId);
    } catch (err) {
      this.deps.log.warn('tenant usage could not be recomputed; the previous figure stays until the next commit', { tenantId, error: (err as Error).message });
    }
  }

  private async measure(repositoryId: string, tenantId: string, points: readonly RestorePoint[]): Promise<{ usedBytes: number; blocks: number }> {
    const { repository } = await this.deps.repositories.open(repositoryId, tenantId);
    const referenced = new Set<string>();
    for (const point of points) {
      for (const disk of point.disks) {
        let index;
        try {
          index = await repository.readIndexByKey(disk.indexKey);
        } catch (err) {
          // Deleted between the catalog read and now (retention racing): nothing of it to count.
          this.deps.log.warn('index of a restore point could not be read for usage', { tenantId, pointId: point.id, indexKey: disk.indexKey, error: (err as Error).message });
          continue;
        }
        for (const hash of index.entries()) if (hash !== null) referenced.add(repository.blockKeyOf(hash));
      }
    }
    let usedBytes = 0;
    let blocks = 0;
    if (referenced.size === 0) return { usedBytes, blocks };
    for await (const info of repository.store.list('blocks/')) {
      if (referenced.has(info.key)) {
        usedBytes += info.size;
        blocks++;
      }
    }
    return { usedBytes, blocks };
  }
}
