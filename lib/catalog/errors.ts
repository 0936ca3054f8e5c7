import { BackupError } from '../errors.js';

/**
 * A write lost a race or broke an invariant the catalog guards with a condition: the item already exists,
 * its state moved on, a lease is held by someone else, a GFS period is already given. Callers either treat
 * it as "someone else did it" (idempotent paths) or report it; retrying the same write blindly won't help.
 */
export class ConflictError extends BackupError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'CATALOG_CONFLICT', message, { cause: options?.cause });
  }
}

/** The catalog has no such tenant, repository, job, run, vApp progress, restore point or lease. */
export class NotFoundError extends BackupError {
  constructor(what: string, id: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'CATALOG_NOT_FOUND', `${what} "${id}" does not exist in the catalog`, { cause: options?.cause });
  }
}

/**
 * An item read back from the store does not match its schema (written by a newer build, or edited by hand).
 * The message names the item key and the field; the repository stays the truth, so the catalog can be
 * rebuilt from it.
 */
export class CatalogDataError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CATALOG_ITEM_INVALID', message, { cause: options?.cause });
  }
}

/** Input to a catalog method failed validation; the message names the field. */
export class CatalogInputError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CATALOG_INPUT_INVALID', message, { cause: options?.cause });
  }
}

/** Conflict codes, stable for callers that branch on them. */
export const CONFLICT = {
  exists: 'CATALOG_CONFLICT',
  leaseHeld: 'LEASE_HELD',
  leaseLost: 'LEASE_LOST',
  periodGiven: 'GFS_PERIOD_GIVEN',
  state: 'RUN_STATE_CONFLICT',
} as const;
