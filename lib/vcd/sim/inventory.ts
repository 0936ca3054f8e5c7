/**
 * The simulator's inventory: what a JSON/YAML seed file describes (zod schema), and the mutable state the
 * server works on. Ids are deterministic (derived from names) unless the seed gives them, so the same seed
 * always yields the same URNs and morefs.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeIssues, InvalidInputError } from '../../errors.js';

const metadataInput = z.object({
  key: z.string().min(1),
  value: z.union([z.string(), z.number(), z.boolean()]),
  type: z.enum(['string', 'number', 'boolean', 'dateTime']).optional(),
  domain: z.enum(['GENERAL', 'SYSTEM']).default('GENERAL'),
  visibility: z.enum(['READWRITE', 'READONLY', 'PRIVATE']).default('READWRITE'),
});

const ipRange = z.object({ start: z.string(), end: z.string() });

const diskInput = z.object({
  sizeBytes: z.number().int().positive(),
  /** Local image file holding the disk's content (read by the agent's file DiskSource). */
  path: z.string().min(1),
  busType: z.number().int().default(6),
  busSubType: z.string().default('VirtualSCSI'),
  busNumber: z.number().int().min(0).default(0),
  unitNumber: z.number().int().min(0).optional(),
  storagePolicy: z.string().optional(),
});

const nicInput = z.object({
  network: z.string(),
  ipAddress: z.string().optional(),
  macAddress: z.string().optional(),
  allocationMode: z.enum(['POOL', 'DHCP', 'MANUAL', 'NONE']).default('POOL'),
  adapterType: z.string().default('VMXNET3'),
  connected: z.boolean().default(true),
});

const vmInput = z.object({
  id: z.string().uuid().optional(),
  name: z.string().min(1),
  description: z.string().optional(),
  computerName: z.string().optional(),
  cpus: z.number().int().positive().default(1),
  coresPerSocket: z.number().int().positive().default(1),
  memoryMiB: z.number().int().positive().default(1024),
  hardwareVersion: z.string().default('vmx-19'),
  osType: z.string().default('other5xLinux64Guest'),
  storagePolicy: z.string().optional(),
  moref: z.string().optional(),
  poweredOn: z.boolean().default(true),
  adminPassword: z.string().optional(),
  disks: z.array(diskInput).default([]),
  nics: z.array(nicInput).default([]),
  metadata: z.array(metadataInput).default([]),
});

const vappNetworkInput = z.object({
  name: z.string().min(1),
  fenceMode: z.enum(['bridged', 'natRouted', 'isolated']).default('bridged'),
  /** Org VDC network name (bridged / natRouted). */
  parentNetwork: z.string().optional(),
  gateway: z.string().optional(),
  netmask: z.string().optional(),
  prefixLength: z.number().int().optional(),
  dns1: z.string().optional(),
  dns2: z.string().optional(),
  ipRanges: z.array(ipRange).default([]),
});

const vappInput = z.object({
  id: z.string().uuid().optional(),
  name: z.string().min(1),
  description: z.string().optional(),
  owner: z.string().optional(),
  standalone: z.boolean().default(false),
  inMaintenanceMode: z.boolean().default(false),
  deploymentLeaseSeconds: z.number().int().min(0).default(0),
  storageLeaseSeconds: z.number().int().min(0).default(0),
  networks: z.array(vappNetworkInput).default([]),
  metadata: z.array(metadataInput).default([]),
  vms: z.array(vmInput).default([]),
});

const orgNetworkInput = z.object({
  name: z.string().min(1),
  id: z.string().uuid().optional(),
  linkType: z.enum(['routed', 'isolated', 'direct']).default('routed'),
  gateway: z.string().default('10.0.0.1'),
  netmask: z.string().default('255.255.255.0'),
  prefixLength: z.number().int().default(24),
  dns1: z.string().optional(),
  dns2: z.string().optional(),
  ipRanges: z.array(ipRange).default([]),
});

const storagePolicyInput = z.object({ name: z.string().min(1), id: z.string().uuid().optional(), default: z.boolean().default(false) });

const vdcInput = z.object({
  id: z.string().uuid().optional(),
  name: z.string().min(1),
  networks: z.array(orgNetworkInput).default([]),
  storagePolicies: z.array(storagePolicyInput).default([{ name: '*', default: true }]),
  vapps: z.array(vappInput).default([]),
});

const userInput = z.object({
  name: z.string().min(1),
  password: z.string().min(1),
  storedVmQuota: z.number().int().min(0).default(0),
  deployedVmQuota: z.number().int().min(0).default(0),
});

const orgInput = z.object({
  id: z.string().uuid().optional(),
  name: z.string().min(1),
  fullName: z.string().optional(),
  users: z.array(userInput).default([]),
  vdcs: z.array(vdcInput).default([]),
});

export const simInventorySchema = z.object({
  systemAdmin: z.object({ user: z.string(), password: z.string() }).default({ user: 'administrator', password: 'vmware' }),
  vcenters: z.array(z.object({ name: z.string(), id: z.string().uuid().optional() })).default([{ name: 'vc-sim-01' }]),
  /** API tokens (refresh tokens): `org` is `System` for provider tokens. */
  apiTokens: z.array(z.object({ token: z.string().min(8), org: z.string().default('System'), user: z.string().default('administrator') })).default([]),
  orgs: z.array(orgInput).default([]),
});

export type SimInventoryInput = z.input<typeof simInventorySchema>;
export type SimInventorySeed = z.output<typeof simInventorySchema>;

// ---- state --------------------------------------------------------------------------------------------

export interface SimMetadataEntry {
  key: string;
  value: string;
  type: 'string' | 'number' | 'boolean' | 'dateTime';
  domain: 'GENERAL' | 'SYSTEM';
  visibility: 'READWRITE' | 'READONLY' | 'PRIVATE';
}

export interface SimTask {
  id: string;
  operationName: string;
  operation: string;
  ownerHref: string;
  ownerName: string;
  ownerType: string;
  startedAt: number;
  doneAt: number;
  fail: boolean;
  errorMessage: string;
  canceled: boolean;
  /** Applied when the task succeeds (e.g. the metadata change). */
  apply?: () => void;
  applied: boolean;
}

export interface SimDisk {
  instanceId: number;
  sizeBytes: number;
  path: string;
  busType: number;
  busSubType: string;
  busNumber: number;
  unitNumber: number;
  storagePolicy: SimStoragePolicy;
}

export interface SimNic {
  index: number;
  network: string;
  ipAddress: string | null;
  macAddress: string;
  allocationMode: string;
  adapterType: string;
  connected: boolean;
}

export interface SimVm {
  id: string;
  name: string;
  description: string;
  computerName: string;
  cpus: number;
  coresPerSocket: number;
  memoryMiB: number;
  hardwareVersion: string;
  osType: string;
  storagePolicy: SimStoragePolicy;
  moref: string;
  vcenter: SimVCenter;
  poweredOn: boolean;
  adminPassword: string | null;
  disks: SimDisk[];
  nics: SimNic[];
  metadata: Map<string, SimMetadataEntry>;
  vapp: SimVApp;
}

export interface SimVAppNetwork {
  name: string;
  fenceMode: 'bridged' | 'natRouted' | 'isolated';
  parent: SimOrgNetwork | null;
  gateway: string | null;
  netmask: string | null;
  prefixLength: number | null;
  dns1: string | null;
  dns2: string | null;
  ipRanges: Array<{ start: string; end: string }>;
}

export interface SimVApp {
  id: string;
  name: string;
  description: string;
  owner: SimUser | null;
  standalone: boolean;
  inMaintenanceMode: boolean;
  deploymentLeaseSeconds: number;
  storageLeaseSeconds: number;
  networks: SimVAppNetwork[];
  metadata: Map<string, SimMetadataEntry>;
  vms: SimVm[];
  tasks: SimTask[];
  createdAt: string;
  vdc: SimVdc;
  /** StartupSection items once edited (restore); absent: derived from the VMs in order. */
  startup?: SimStartupItem[];
}

export interface SimStartupItem {
  vmName: string;
  order: number;
  startAction: string;
  startDelay: number;
  stopAction: string;
  stopDelay: number;
}

export interface SimOrgNetwork {
  id: string;
  name: string;
  linkType: string;
  gateway: string;
  netmask: string;
  prefixLength: number;
  dns1: string | null;
  dns2: string | null;
  ipRanges: Array<{ start: string; end: string }>;
  vdc: SimVdc;
}

export interface SimStoragePolicy {
  id: string;
  name: string;
  isDefault: boolean;
  vdc: SimVdc;
}

export interface SimVdc {
  id: string;
  name: string;
  networks: SimOrgNetwork[];
  storagePolicies: SimStoragePolicy[];
  vapps: SimVApp[];
  org: SimOrg;
}

export interface SimUser {
  id: string;
  name: string;
  password: string;
  storedVmQuota: number;
  deployedVmQuota: number;
  org: SimOrg;
}

export interface SimOrg {
  id: string;
  name: string;
  fullName: string;
  users: SimUser[];
  vdcs: SimVdc[];
}

export interface SimVCenter {
  id: string;
  name: string;
}

export interface SimState {
  systemAdmin: { user: string; password: string };
  apiTokens: Array<{ token: string; org: string; user: string }>;
  vcenters: SimVCenter[];
  orgs: SimOrg[];
  tasks: Map<string, SimTask>;
}

/** A uuid derived from a name path, stable across runs. */
export function stableUuid(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  const variant = ((Number.parseInt(h[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function parseInventory(input: unknown): SimInventorySeed {
  const parsed = simInventorySchema.safeParse(input);
  if (!parsed.success) throw new InvalidInputError(`vCD simulator inventory: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

/** Reads a JSON or YAML inventory file. */
export async function loadInventoryFile(file: string): Promise<SimInventorySeed> {
  const text = await readFile(file, 'utf8');
  let data: unknown;
  try {
    data = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new InvalidInputError(`vCD simulator inventory ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return parseInventory(data);
}

function inferType(value: string | number | boolean): SimMetadataEntry['type'] {
  return typeof value === 'number' ? 'number' : typeof value === 'boolean' ? 'boolean' : 'string';
}

function metadataMap(entries: ReadonlyArray<z.output<typeof metadataInput>>): Map<string, SimMetadataEntry> {
  return new Map(
    entries.map((m) => [
      `${m.domain}/${m.key}`,
      { key: m.key, value: String(m.value), type: m.type ?? inferType(m.value), domain: m.domain, visibility: m.domain === 'GENERAL' ? 'READWRITE' : m.visibility },
    ]),
  );
}

/** Builds the mutable state from a validated seed. Throws InvalidInputError for dangling names. */
export function buildState(seed: SimInventorySeed): SimState {
  const vcenters = seed.vcenters.map((vc) => ({ id: vc.id ?? stableUuid('vcenter', vc.name), name: vc.name }));
  const defaultVc = vcenters[0];
  if (defaultVc === undefined) throw new InvalidInputError('vCD simulator inventory: at least one vCenter is needed');
  let morefCounter = 1000;
  let macCounter = 0;
  const state: SimState = { systemAdmin: seed.systemAdmin, apiTokens: seed.apiTokens, vcenters, orgs: [], tasks: new Map() };
  for (const o of seed.orgs) {
    const org: SimOrg = { id: o.id ?? stableUuid('org', o.name), name: o.name, fullName: o.fullName ?? o.name, users: [], vdcs: [] };
    org.users = o.users.map((u) => ({ ...u, id: stableUuid('user', o.name, u.name), org }));
    for (const v of o.vdcs) {
      const vdc: SimVdc = { id: v.id ?? stableUuid('vdc', o.name, v.name), name: v.name, networks: [], storagePolicies: [], vapps: [], org };
      vdc.networks = v.networks.map((n) => ({
        id: n.id ?? stableUuid('network', o.name, v.name, n.name),
        name: n.name,
        linkType: n.linkType,
        gateway: n.gateway,
        netmask: n.netmask,
        prefixLength: n.prefixLength,
        dns1: n.dns1 ?? null,
        dns2: n.dns2 ?? null,
        ipRanges: n.ipRanges,
        vdc,
      }));
      vdc.storagePolicies = v.storagePolicies.map((p, i) => ({
        id: p.id ?? stableUuid('storagePolicy', o.name, v.name, p.name),
        name: p.name,
        isDefault: p.default || (i === 0 && !v.storagePolicies.some((q) => q.default)),
        vdc,
      }));
      const policy = (name: string | undefined, where: string): SimStoragePolicy => {
        const found = name === undefined ? vdc.storagePolicies.find((p) => p.isDefault) : vdc.storagePolicies.find((p) => p.name === name);
        if (found === undefined) throw new InvalidInputError(`vCD simulator inventory: ${where}: storage policy "${name ?? '(default)'}" is not in VDC ${v.name}`);
        return found;
      };
      for (const a of v.vapps) {
        const owner = a.owner === undefined ? (org.users[0] ?? null) : (org.users.find((u) => u.name === a.owner) ?? null);
        if (a.owner !== undefined && owner === null) throw new InvalidInputError(`vCD simulator inventory: vApp ${a.name}: owner "${a.owner}" is not a user of ${o.name}`);
        const vapp: SimVApp = {
          id: a.id ?? stableUuid('vapp', o.name, v.name, a.name),
          name: a.name,
          description: a.description ?? '',
          owner,
          standalone: a.standalone,
          inMaintenanceMode: a.inMaintenanceMode,
          deploymentLeaseSeconds: a.deploymentLeaseSeconds,
          storageLeaseSeconds: a.storageLeaseSeconds,
          networks: [],
          metadata: metadataMap(a.metadata),
          vms: [],
          tasks: [],
          createdAt: '2026-01-05T10:00:00.000Z',
          vdc,
        };
        vapp.networks = a.networks.map((n) => {
          const parent = n.parentNetwork === undefined ? null : (vdc.networks.find((x) => x.name === n.parentNetwork) ?? null);
          if (n.parentNetwork !== undefined && parent === null) {
            throw new InvalidInputError(`vCD simulator inventory: vApp ${a.name}: network ${n.name}: org network "${n.parentNetwork}" is not in VDC ${v.name}`);
          }
          return {
            name: n.name,
            fenceMode: n.fenceMode,
            parent,
            gateway: n.gateway ?? parent?.gateway ?? null,
            netmask: n.netmask ?? parent?.netmask ?? null,
            prefixLength: n.prefixLength ?? parent?.prefixLength ?? null,
            dns1: n.dns1 ?? parent?.dns1 ?? null,
            dns2: n.dns2 ?? parent?.dns2 ?? null,
            ipRanges: n.ipRanges.length > 0 ? n.ipRanges : (parent?.ipRanges ?? []),
          };
        });
        vapp.vms = a.vms.map((m) => {
          const vmPolicy = policy(m.storagePolicy, `VM ${m.name}`);
          const units = new Map<number, number>();
          const vm: SimVm = {
            id: m.id ?? stableUuid('vm', o.name, v.name, a.name, m.name),
            name: m.name,
            description: m.description ?? '',
            computerName: m.computerName ?? m.name.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 15),
            cpus: m.cpus,
            coresPerSocket: m.coresPerSocket,
            memoryMiB: m.memoryMiB,
            hardwareVersion: m.hardwareVersion,
            osType: m.osType,
            storagePolicy: vmPolicy,
            moref: m.moref ?? `vm-${++morefCounter}`,
            vcenter: defaultVc,
            poweredOn: m.poweredOn,
            adminPassword: m.adminPassword ?? null,
            disks: m.disks.map((d, i) => {
              const unit = d.unitNumber ?? units.get(d.busNumber) ?? 0;
              units.set(d.busNumber, unit + 1);
              return {
                instanceId: 2000 + i,
                sizeBytes: d.sizeBytes,
                path: d.path,
                busType: d.busType,
                busSubType: d.busSubType,
                busNumber: d.busNumber,
                unitNumber: unit,
                storagePolicy: d.storagePolicy === undefined ? vmPolicy : policy(d.storagePolicy, `VM ${m.name} disk ${i}`),
              };
            }),
            nics: m.nics.map((n, i) => {
              if (n.network !== 'none' && !vapp.networks.some((x) => x.name === n.network)) {
                throw new InvalidInputError(`vCD simulator inventory: VM ${m.name}: NIC ${i} names vApp network "${n.network}", which vApp ${a.name} does not have`);
              }
              macCounter++;
              return {
                index: i,
                network: n.network,
                ipAddress: n.ipAddress ?? null,
                macAddress: n.macAddress ?? `00:50:56:${hex2(macCounter >> 16)}:${hex2(macCounter >> 8)}:${hex2(macCounter)}`,
                allocationMode: n.allocationMode,
                adapterType: n.adapterType,
                connected: n.connected,
              };
            }),
            metadata: metadataMap(m.metadata),
            vapp,
          };
          return vm;
        });
        vdc.vapps.push(vapp);
      }
      org.vdcs.push(vdc);
    }
    state.orgs.push(org);
  }
  return state;
}

function hex2(n: number): string {
  return (n & 0xff).toString(16).padStart(2, '0');
}
