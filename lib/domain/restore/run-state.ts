/**
 * What a restore run keeps between its events (DESIGN §1): the run starts in the runs function and ends in
 * the agent-results function with the last disk result, so the plan, the target vApp and the steps done so
 * far are stored in the catalog and parsed back with this schema.
 */
import { z } from 'zod';
import { describeIssues, BackupError } from '../../errors.js';
import { restorePlanSchema } from './plan-schema.js';
import type { RestorePlan } from './planner.js';
import type { StepOutcome } from './report.js';

export const restoreRunStateSchema = z.object({
  version: z.literal(1),
  plan: restorePlanSchema,
  pointId: z.string().min(1),
  repositoryId: z.string().min(1),
  /** The backed-up vApp: the run's progress key and the vApp of the disk results. */
  sourceVappId: z.string().min(1),
  /** The vApp written to (created for `new`). */
  vappId: z.string().min(1),
  attempt: z.number().int().min(1),
  /** True once this run put the vApp into maintenance mode: it must take it out, whatever happens. */
  enteredMaintenance: z.boolean(),
  /** Task id of each disk of the current attempt: a result of another attempt is not counted. */
  tasks: z.record(z.string(), z.string()),
  steps: z.array(z.object({ kind: z.string(), detail: z.string(), status: z.enum(['done', 'unchanged', 'failed', 'not-run']), error: z.string().optional() })),
});
export type RestoreRunState = Omit<z.infer<typeof restoreRunStateSchema>, 'plan' | 'steps'> & { plan: RestorePlan; steps: StepOutcome[] };

export function parseRestoreRunState(raw: unknown, runId: string): RestoreRunState {
  const parsed = restoreRunStateSchema.safeParse(raw);
  if (!parsed.success) {
    throw new BackupError('RESTORE_STATE_INVALID', `the stored state of restore run ${runId} is not valid (${describeIssues(parsed.error.issues)}); start the restore again from a new plan`);
  }
  return parsed.data;
}
