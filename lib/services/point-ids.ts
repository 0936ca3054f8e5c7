import { createHash } from 'node:crypto';
import { newPointId } from '../repository/format.js';

/**
 * The point id of a vApp's attempt in a run: derived, not random, so a redelivered StartBackupRun writes the
 * same point and never a second one. Sorts by the run's start like every point id.
 */
export function pointIdFor(runStartedAt: Date, runId: string, vappId: string, attempt: number): string {
  const digest = createHash('sha256').update(`${runId}\n${vappId}\n${attempt}`).digest('hex').slice(0, 8);
  return newPointId(runStartedAt, digest);
}

export function diskTaskId(runId: string, vappId: string, diskId: string, attempt: number): string {
  return createHash('sha256').update(`${runId}\n${vappId}\n${diskId}\n${attempt}`).digest('hex').slice(0, 24);
}
