import type { Catalog } from '../catalog/catalog.js';
import { CatalogInputError } from '../catalog/errors.js';
import type { Log } from '../log.js';

/**
 * Keeps a committed point's captured model in the catalog, so the API plans restores without a repository
 * key. A model too large for a catalog item is left out: restores of that point are then planned by a
 * function that may open the repository (and the API says so).
 */
export async function storePointModel(catalog: Catalog, log: Log, point: { pointId: string; tenantId: string }, model: unknown): Promise<void> {
  if (model === undefined) return;
  try {
    await catalog.putPointModel({ pointId: point.pointId, tenantId: point.tenantId, model });
  } catch (err) {
    if (!(err instanceof CatalogInputError)) throw err;
    log.warn('the captured model is not kept in the catalog; restores of this point are planned from the repository', { pointId: point.pointId, error: err.message });
  }
}
