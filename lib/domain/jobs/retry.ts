/**
 * Retries (DESIGN §6): a run that fails for some vApps tries those vApps again, `count` more times, waiting
 * `waitMinutes` after each failure. Only failed vApps retry: vApps that succeeded keep their restore point
 * and are not backed up (or copied) again in the same run. A failure the caller marks not retryable (the vApp
 * was deleted, the input is invalid) is permanent at once, since trying again cannot fix it.
 *
 * Attempts are counted from 1: attempt 1 is the scheduled try, attempts 2…count+1 are retries.
 */
import { z } from 'zod';
import { MS_PER_MINUTE } from './calendar.js';

export const DEFAULT_RETRIES = { count: 3, waitMinutes: 10 } as const;

export const retriesSchema = z
  .strictObject({
    /** Retries after the first attempt; 0 disables retrying. */
    count: z.number().int().min(0).max(10),
    /** Wait after a failure before the next attempt, in minutes (up to a day). */
    waitMinutes: z.number().int().min(0).max(1440),
  })
  .default({ ...DEFAULT_RETRIES });

export type Retries = z.output<typeof retriesSchema>;

/**
 * When attempt number `attempt + 1` may start after attempt `attempt` failed at `failedAt`; undefined when
 * the retries are used up.
 */
export function nextRetryAt(retries: Retries, attempt: number, failedAt: Date): Date | undefined {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError(`nextRetryAt: attempt must be an integer ≥ 1, got ${attempt}`);
  if (attempt > retries.count) return undefined;
  return new Date(failedAt.getTime() + retries.waitMinutes * MS_PER_MINUTE);
}

/** How one vApp's attempt ended. */
export interface VAppAttempt {
  vappId: string;
  status: 'succeeded' | 'failed';
  /** Which attempt this was (1 = first). */
  attempt: number;
  finishedAt: Date;
  /** False when retrying cannot help (e.g. the vApp no longer exists). Default true. */
  retryable?: boolean;
  /** The failure's reason, kept for the permanent-failure record. */
  reason?: string;
}

export type RetryDecision =
  | { vappId: string; action: 'done' }
  | { vappId: string; action: 'retry'; attempt: number; at: Date }
  | { vappId: string; action: 'give-up'; attempts: number; reason: string };

/** Decides, per vApp, whether the run is done with it, retries it (when), or records a permanent failure. */
export function decideRetries(retries: Retries, attempts: ReadonlyArray<VAppAttempt>): RetryDecision[] {
  return attempts.map((a): RetryDecision => {
    if (a.status === 'succeeded') return { vappId: a.vappId, action: 'done' };
    const reason = a.reason ?? 'failed';
    if (a.retryable === false) return { vappId: a.vappId, action: 'give-up', attempts: a.attempt, reason: `${reason} (not retryable)` };
    const at = nextRetryAt(retries, a.attempt, a.finishedAt);
    if (at === undefined) {
      return { vappId: a.vappId, action: 'give-up', attempts: a.attempt, reason: `${reason} (after ${a.attempt} attempt${a.attempt === 1 ? '' : 's'})` };
    }
    return { vappId: a.vappId, action: 'retry', attempt: a.attempt + 1, at };
  });
}
