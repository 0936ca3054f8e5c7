/**
 * The captured vApp model: the stable JSON shape written to `vapp.json` and printed by `vcd-backup vcd
 * inspect|capture --json` (documented in docs/vapp-model.md). Every key is always present; a value the vCD
 * documents do not give is `null`, never guessed. Numbers are JSON numbers.
 *
 * Sensitive data (guest-customization admin and domain passwords, `ovfenv` password properties) is never
 * copied into this model: it only records *whether* a password is set. The raw XML documents, which do
 * contain those secrets, travel next to the model as `Secret`s (see capture.ts) and are flagged in
 * `SENSITIVE_XML_ELEMENTS`.
 */
import { z } from 'zod';

const str = z.string();
const nstr = z.string().nullable();
const nint = z.number().int().nullable();
const nbool = z.boolean().nullable();

export const METADATA_TYPES = ['string', 'number', 'boolean', 'dateTime'] as const;
export const METADATA_DOMAINS = ['GENERAL', 'SYSTEM'] as const;
export const METADATA_VISIBILITIES = ['READWRITE', 'READONLY', 'PRIVATE'] as const;

export const metadataEntrySchema = z
  .object({
    key: str.min(1),
    value: z.union([z.string(), z.number(), z.boolean()]).nullable(),
    type: z.enum(METADATA_TYPES),
    domain: z.enum(METADATA_DOMAINS),
    visibility: z.enum(METADATA_VISIBILITIES),
  })
  .strict()
  .superRefine((entry, ctx) => {
    if (entry.value === null) return;
    const ok =
      (entry.type === 'number' && typeof entry.value === 'number') ||
      (entry.type === 'boolean' && typeof entry.value === 'boolean') ||
      ((entry.type === 'string' || entry.type === 'dateTime') && typeof entry.value === 'string');
    if (!ok) ctx.addIssue({ code: 'custom', message: `a ${entry.type} entry cannot hold a ${typeof entry.value} value` });
  });

export const refSchema = z.object({ id: nstr, name: nstr }).strict();

export const startupItemSchema = z
  .object({
    vmName: str,
    order: nint,
    startAction: nstr,
    startDelaySeconds: nint,
    stopAction: nstr,
    stopDelaySeconds: nint,
  })
  .strict();

export const ipScopeSchema = z
  .object({
    gateway: nstr,
    netmask: nstr,
    subnetPrefixLength: nint,
    dns1: nstr,
    dns2: nstr,
    ipRanges: z.array(z.object({ start: nstr, end: nstr }).strict()),
  })
  .strict();

export const networkSchema = z
  .object({
    name: str,
    fenceMode: z.enum(['bridged', 'natRouted', 'isolated']).nullable(),
    /** Name of the org VDC network this vApp network connects to; null for isolated networks. */
    parentNetwork: nstr,
    ipScopes: z.array(ipScopeSchema),
  })
  .strict();

export const diskSchema = z
  .object({
    instanceId: z.number().int(),
    sizeBytes: nint,
    /** rasd:HostResource busType code: 5 IDE, 6 SCSI, 20 SATA or NVMe. */
    busType: nint,
    busSubType: nstr,
    busNumber: nint,
    unitNumber: nint,
    storageProfile: nstr,
  })
  .strict();

export const nicSchema = z
  .object({
    index: z.number().int(),
    network: nstr,
    connected: nbool,
    primary: nbool,
    ipAddress: nstr,
    macAddress: nstr,
    allocationMode: nstr,
    adapterType: nstr,
  })
  .strict();

export const guestCustomizationSchema = z
  .object({
    enabled: nbool,
    computerName: nstr,
    /** True when the document carries an admin password (the password itself is never in the model). */
    adminPasswordSet: nbool,
  })
  .strict();

export const vmSchema = z
  .object({
    id: str,
    name: str,
    description: nstr,
    computerName: nstr,
    /** vSphere managed object reference (`vm-123`); null when the credentials are not a system administrator. */
    moref: nstr,
    /** href of the vCenter (`…/api/admin/extension/vimServer/<uuid>`), as in the adminVM query's `vc`. */
    vcenter: nstr,
    cpu: z.object({ count: nint, coresPerSocket: nint }).strict(),
    memoryMiB: nint,
    hardwareVersion: nstr,
    storageProfile: nstr,
    disks: z.array(diskSchema),
    nics: z.array(nicSchema),
    guestCustomization: guestCustomizationSchema.nullable(),
    metadata: z.array(metadataEntrySchema),
  })
  .strict();

export const vappModelSchema = z
  .object({
    id: str,
    name: str,
    description: nstr,
    /** VApp@status integer (4 powered on, 8 powered off, …). */
    status: nint,
    deployed: nbool,
    org: refSchema,
    vdc: refSchema,
    owner: z.object({ name: nstr, href: nstr }).strict(),
    lease: z.object({ deploymentLeaseSeconds: nint, storageLeaseSeconds: nint }).strict(),
    startup: z.array(startupItemSchema),
    networks: z.array(networkSchema),
    vms: z.array(vmSchema),
    metadata: z.array(metadataEntrySchema),
  })
  .strict();

export type MetadataEntry = z.infer<typeof metadataEntrySchema>;
export type StartupItem = z.infer<typeof startupItemSchema>;
export type VAppNetwork = z.infer<typeof networkSchema>;
export type IpScope = z.infer<typeof ipScopeSchema>;
export type VmDisk = z.infer<typeof diskSchema>;
export type VmNic = z.infer<typeof nicSchema>;
export type VmModel = z.infer<typeof vmSchema>;
export type VAppModel = z.infer<typeof vappModelSchema>;

/**
 * Elements of the raw vCD documents that may carry secrets. They are never copied into the model, and
 * `redactXml` blanks them before a document is shown or logged.
 */
export const SENSITIVE_XML_ELEMENTS = ['AdminPassword', 'DomainUserPassword'] as const;
/** ovfenv / ProductSection property keys that hold passwords (matched case-insensitively). */
export const SENSITIVE_PROPERTY_KEY = /pass(word|wd)?|secret|token/i;
