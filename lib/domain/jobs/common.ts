/**
 * Small field schemas that backup and copy jobs share: identifiers, names and encryption.
 */
import { z } from 'zod';

/** Catalog ids and vCD ids are opaque strings; we only insist they are non-empty and trimmed. */
export const idSchema = z.string().trim().min(1).max(256);

/**
 * A vCD entity id. vCD URNs carry their type (`urn:vcloud:vapp:<uuid>`); when the value is a URN, its type
 * must be the expected one, which catches the common mistake of pasting a VM id where a vApp id belongs.
 * Non-URN ids (hrefs' last segment, simulator ids) pass as they are.
 */
export function vcdIdSchema(type: 'vm' | 'vapp' | 'vdc' | 'org') {
  return idSchema.superRefine((value, ctx) => {
    const match = /^urn:vcloud:([a-z]+):/i.exec(value);
    if (match !== null && match[1]?.toLowerCase() !== type) {
      ctx.addIssue({
        code: 'custom',
        message: `is a ${match[1] ?? '?'} URN, but a ${type} id (urn:vcloud:${type}:...) belongs here, got ${JSON.stringify(value)}`,
      });
    }
  });
}

/** A job's display name: what operators see in run lists and alarms. */
export const jobNameSchema = z.string().trim().min(1).max(128);

/**
 * Encryption of what a job writes. `keyRef` names the key (a KMS key id/alias in AWS, a key file or
 * passphrase reference locally); it is required when encryption is on and refused when it is off, so a
 * half-configured job is never saved.
 */
export const encryptionSchema = z
  .strictObject({
    enabled: z.boolean(),
    keyRef: idSchema.optional(),
  })
  .superRefine((value, ctx) => {
    if (value.enabled && value.keyRef === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['keyRef'],
        message: 'is required when encryption is enabled; name the key (KMS key id or alias, or a local key reference)',
      });
    }
    if (!value.enabled && value.keyRef !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['keyRef'],
        message: 'is set but encryption is disabled; set enabled: true to encrypt, or remove keyRef',
      });
    }
  });

export type Encryption = z.output<typeof encryptionSchema>;

/**
 * Retention is owned by lib/domain/retention (short-term + GFS). The job only carries it: until that module
 * exports its `retentionPolicySchema`, we accept any JSON value here and the retention module validates it
 * when the policy is applied. Omitted = the retention module's default policy. Swap in the real schema in
 * one place: this constant.
 */
export const retentionFieldSchema = z.unknown().optional();
