import type { Catalog } from '../catalog/catalog.js';
import { ConflictError } from '../catalog/errors.js';
import type { RestorePoint } from '../catalog/types.js';
import { assignFlags, type RetentionFlag, type RetentionPolicy } from '../domain/retention/index.js';

/**
 * Commits a restore point to the catalog with the GFS flags its chain still has to give (backups and copies
 * alike). Flags and the periods they use are written in one transaction; a racing commit that took a period
 * first makes this one re-read the chain's periods and try again.
 */
export async function commitWithGfsFlags(catalog: Catalog, point: RestorePoint, policy: RetentionPolicy | undefined): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const given = (await catalog.listChainPeriods(point.repositoryId, point.vappId)).map((p) => p.period);
    const flags = policy ? assignFlags(policy, given, point.createdAt) : { flags: [] as RetentionFlag[], newlyGiven: [] as string[] };
    try {
      await catalog.commitRestorePoint({ ...point, flags: [...flags.flags] }, flags.newlyGiven);
      return;
    } catch (err) {
      if (!(err instanceof ConflictError) || err.code !== 'GFS_PERIOD_GIVEN' || attempt >= 3) throw err;
    }
  }
}
