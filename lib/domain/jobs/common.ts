import { RetentionPolicySchema } from '../retention/policy.js';
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
 * Retention is owned by lib/domain/retention (short-term + GFS); the job carries the policy document and
 * validates it with that module's schema, so a bad policy is refused when the job is saved, not when the
 * first point expires. Omitted = keep every point (no retention run deletes anything).
 */
export const retentionFieldSchema = RetentionPolicySchema.optional();
