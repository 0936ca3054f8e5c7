import { z } from 'zod';
import type { DiskOutcome, PointFilter } from './catalog.js';
import { ConflictError, CONFLICT } from './errors.js';
import { Id, IsoTime, VAppState, validateInput, type RestorePoint, type VAppProgress } from './types.js';

/** Rules both catalog adapters share, so they cannot drift apart. */

export function chainKey(repositoryId: string, vappId: string): string {
  return `${repositoryId}#${vappId}`;
}

export function outcomeOf(p: VAppProgress, outcome: 'done' | 'failed'): DiskOutcome {
  const completedVApp = outcome === 'done' && p.disksDone === p.disksTotal;
  const settledVApp = p.disksDone + p.disksFailed === p.disksTotal;
  return { duplicate: false, completedVApp, settledVApp, progress: structuredClone(p) };
}

export function periodConflict(p: RestorePoint, period: string, holder: string): ConflictError {
  return new ConflictError(
    `GFS period ${period} of vApp ${p.vappId} in repository ${p.repositoryId} is already given to point ${holder}; restore point ${p.id} was not committed: assign it only periods not yet given`,
    { code: CONFLICT.periodGiven },
  );
}

export function validateAttempt(attempt: { attempt: number; disksTotal: number; pointId?: string }): void {
  validateInput(
    z.object({ attempt: z.number().int().min(1), disksTotal: z.number().int().nonnegative(), pointId: Id.optional() }),
    attempt,
    'vApp attempt',
  );
}

export function validatePatch(patch: { state?: string; error?: string | null; retryAt?: string | null; pointId?: string | null }): void {
  validateInput(
    z.object({ state: VAppState.optional(), error: z.string().nullable().optional(), retryAt: IsoTime.nullable().optional(), pointId: Id.nullable().optional() }),
    patch,
    'vApp progress update',
  );
}

export function pointMatcher(filter: PointFilter): (p: RestorePoint) => boolean {
  if ('tenantId' in filter) return (p) => p.tenantId === filter.tenantId;
  if ('jobId' in filter) return (p) => p.jobId === filter.jobId;
  const { repositoryId, vappId } = filter;
  return (p) => (repositoryId === undefined || p.repositoryId === repositoryId) && (vappId === undefined || p.vappId === vappId);
}

