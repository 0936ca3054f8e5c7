/**
 * Restore options (DESIGN §6 "Restore"): what a user may change when a restore point goes back into vCD.
 * Every option has a CLI flag (`vcd-backup restore plan|run`) and an API body field of the same name.
 */
import { z } from 'zod';
import { describeIssues, InvalidInputError } from '../../errors.js';

const name = z.string().trim().min(1).max(128);

export const RESTORE_MODES = ['overwrite', 'new'] as const;
export type RestoreMode = (typeof RESTORE_MODES)[number];

export const restoreOptionsSchema = z
  .object({
    /** `new` re-creates the vApp (after deletion, or as a copy); `overwrite` writes over an existing vApp. */
    mode: z.enum(RESTORE_MODES).default('new'),
    /** Name of the restored vApp (default: the backed-up name). In overwrite mode: the vApp to overwrite. */
    newName: name.optional(),
    /** Org VDC to restore into, by name or id (default: the backed-up VDC). */
    targetVdc: name.optional(),
    /** Backed-up org VDC network name → target org VDC network name. */
    networkMap: z.record(name, name).default({}),
    /** Backed-up storage policy name → target storage policy name. */
    storagePolicyMap: z.record(name, name).default({}),
    /** Owner (user name in the target organization; default: the backed-up owner). */
    owner: name.optional(),
    /** Lease override in seconds (0 = never expires); default: the backed-up lease. */
    lease: z
      .object({ deploymentLeaseSeconds: z.number().int().min(0).optional(), storageLeaseSeconds: z.number().int().min(0).optional() })
      .strict()
      .optional(),
    /** Power the vApp on after the restore. */
    powerOn: z.boolean().default(false),
    /** Re-apply the user-defined metadata of the vApp and its VMs. */
    restoreMetadata: z.boolean().default(true),
    /** Restore only these VMs (ids, URNs or names); with overwrite: into the existing vApp, leaving the others alone. */
    vmSelection: z.array(name).min(1).optional(),
  })
  .strict();

export type RestoreOptionsInput = z.input<typeof restoreOptionsSchema>;
export type RestoreOptions = z.output<typeof restoreOptionsSchema>;

/** Validates restore options; an InvalidInputError names every bad field. */
export function parseRestoreOptions(input: unknown): RestoreOptions {
  const parsed = restoreOptionsSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new InvalidInputError(
      `invalid restore options: ${describeIssues(parsed.error.issues)}. Options: mode (overwrite|new), newName, targetVdc, networkMap, storagePolicyMap, owner, lease, powerOn, restoreMetadata, vmSelection`,
      { code: 'RESTORE_OPTIONS_INVALID' },
    );
  }
  return parsed.data;
}
