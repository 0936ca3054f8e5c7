/**
 * The restore plan as data (DESIGN §1): a plan travels from the API function to the runs function in
 * StartRestoreRun and is kept in the catalog for the agent-results function, so every reader parses it with
 * this schema instead of trusting its shape. The schema and the `RestorePlan` interface are checked against
 * each other at compile time below: a field added to one and not the other fails the build.
 */
import { z } from 'zod';
import { describeIssues, InvalidInputError } from '../../errors.js';
import { metadataEntrySchema, nicSchema, startupItemSchema } from '../../vcd/model.js';
import { RESTORE_MODES } from './options.js';
import { RESTORE_PLAN_VERSION, type RestorePlan } from './planner.js';

const Text = z.string();
const targetRefSchema = z.object({ id: Text.min(1), name: Text, href: Text.optional() });
const nint = z.number().int().nullable();

export const RESTORE_STEP_KINDS = [
  'enterMaintenance',
  'composeVApp',
  'createVm',
  'writeDisk',
  'networkConfig',
  'vmNetworkConnections',
  'lease',
  'startup',
  'owner',
  'metadata',
  'vmMetadata',
  'powerOn',
  'exitMaintenance',
] as const;

export const restorePlanSchema = z.object({
  version: z.literal(RESTORE_PLAN_VERSION),
  mode: z.enum(RESTORE_MODES),
  source: z.object({ vappId: Text.min(1), vappName: Text, pointId: Text.min(1), repositoryId: Text.min(1).nullable() }),
  target: z.object({
    org: targetRefSchema.nullable(),
    vdc: targetRefSchema,
    name: Text.min(1),
    vappId: Text.min(1).nullable(),
    resumes: z.boolean(),
  }),
  networks: z.array(
    z.object({
      name: Text,
      fenceMode: z.enum(['bridged', 'natRouted', 'isolated']).nullable(),
      parentNetwork: z.object({ from: Text, to: Text, href: Text.nullable() }).nullable(),
    }),
  ),
  storagePolicyMap: z.record(Text, Text),
  storagePolicyHrefs: z.record(Text, Text.nullable()),
  owner: targetRefSchema.nullable(),
  lease: z.object({ deploymentLeaseSeconds: nint, storageLeaseSeconds: nint }),
  startup: z.array(startupItemSchema),
  powerOn: z.boolean(),
  restoreMetadata: z.boolean(),
  metadata: z.array(metadataEntrySchema),
  partial: z.boolean(),
  vms: z.array(
    z.object({
      sourceVmId: Text.min(1),
      name: Text,
      targetVmId: Text.min(1).nullable(),
      storagePolicy: Text.nullable(),
      disks: z.array(
        z.object({
          diskId: Text.min(1),
          instanceId: z.number().int(),
          sizeBytes: nint,
          storagePolicy: Text.nullable(),
          busType: nint,
          busSubType: Text.nullable(),
          busNumber: nint,
          unitNumber: nint,
        }),
      ),
      nics: z.array(nicSchema),
      metadata: z.array(metadataEntrySchema),
    }),
  ),
  overwrites: z.array(Text),
  warnings: z.array(Text),
  steps: z.array(z.object({ kind: z.enum(RESTORE_STEP_KINDS), detail: Text })),
});

// Both directions must hold: the schema accepts exactly what the planner produces.
type Parsed = z.output<typeof restorePlanSchema>;
type Agree<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const planTypesAgree: Agree<Parsed, DeepMutable<RestorePlan>> = true;
void planTypesAgree;
type DeepMutable<T> = T extends ReadonlyArray<infer U> ? DeepMutable<U>[] : T extends object ? { -readonly [K in keyof T]: DeepMutable<T[K]> } : T;

/**
 * Parses a plan that crossed a boundary (a queue message, a catalog record). `where` says which, so the
 * error names both the carrier and every bad field.
 */
export function parseRestorePlan(raw: unknown, where: string): RestorePlan {
  const parsed = restorePlanSchema.safeParse(raw);
  if (!parsed.success) {
    throw new InvalidInputError(
      `${where} carries no valid restore plan of version ${RESTORE_PLAN_VERSION}: ${describeIssues(parsed.error.issues)}. Plan the restore again (POST /v1/restores/plan) and start it from that plan`,
      { code: 'RESTORE_PLAN_INVALID' },
    );
  }
  return parsed.data;
}
