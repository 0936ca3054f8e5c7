/**
 * vCD XML documents → the captured vApp model (model.ts). Pure: no I/O. Tolerates the shapes of API 37–39
 * responses and of old 1.5/5.x documents (prefixes, `IpScope` directly under `Configuration`, metadata
 * without `TypedValue`, unprefixed `HostResource` attributes); anything present but malformed is a
 * VcdXmlError naming the field, never a silent guess.
 */
import { describeIssues } from '../errors.js';
import { VcdXmlError } from './errors.js';
import {
  SENSITIVE_PROPERTY_KEY,
  vappModelSchema,
  type IpScope,
  type MetadataEntry,
  type StartupItem,
  type VAppModel,
  type VAppNetwork,
  type VmDisk,
  type VmModel,
  type VmNic,
} from './model.js';
import {
  attr,
  blankToNull,
  boolOf,
  child,
  children,
  descendants,
  intOf,
  isNil,
  localValue,
  NS,
  nsAttr,
  path,
  rawTextOf,
  textOf,
  type XmlNode,
} from './xml.js';

export interface CaptureContext {
  /** The vApp's organization, when the caller knows it (the vApp document does not name it). */
  readonly org?: { id: string | null; name: string | null };
  /** Overrides the VDC read from the vApp's `up` link (e.g. to add the name, which the link may lack). */
  readonly vdc?: { id: string | null; name: string | null };
}

export interface CaptureDocuments {
  readonly vapp: XmlNode;
  /** The vApp's `Metadata` document; null when not captured (the model then has an empty list). */
  readonly metadata?: XmlNode | null;
  /** VM `Metadata` documents keyed by VM id (uuid, `vm-<uuid>` or URN all work). */
  readonly vmMetadata?: ReadonlyMap<string, XmlNode> | Readonly<Record<string, XmlNode>>;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** The uuid inside an id, href or URN (`urn:vcloud:vm:<uuid>`, `…/api/vApp/vm-<uuid>`, `vm-<uuid>`). */
export function uuidOf(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const m = UUID.exec(value);
  return m ? m[0].toLowerCase() : null;
}

/** `urn:vcloud:<kind>:<uuid>` from an `id` attribute or, failing that, an href. */
function urnOf(kind: string, id: string | undefined, href: string | undefined): string | null {
  if (id !== undefined && id.startsWith('urn:')) return id;
  const uuid = uuidOf(href) ?? uuidOf(id);
  return uuid === null ? null : `urn:vcloud:${kind}:${uuid}`;
}

/** Maps the documents of one vApp to the validated model. */
export function mapVApp(docs: CaptureDocuments, context: CaptureContext = {}): VAppModel {
  const vapp = docs.vapp;
  if (vapp.name !== 'VApp') throw new VcdXmlError(`expected a VApp document, got <${vapp.name}>`);
  const name = attr(vapp, 'name');
  if (name === undefined) throw new VcdXmlError('VApp has no name attribute');
  const id = urnOf('vapp', attr(vapp, 'id'), attr(vapp, 'href'));
  if (id === null) throw new VcdXmlError(`VApp "${name}" has neither an id nor an href with a uuid`);

  const vmMeta = normaliseVmMetadata(docs.vmMetadata);
  const vmNodes = children(child(vapp, 'Children'), 'Vm');
  const vms = vmNodes.map((vm) => mapVm(vm, vmMeta));

  const vdcLink = children(vapp, 'Link').find((l) => attr(l, 'rel') === 'up' && (attr(l, 'type') ?? '').includes('vdc+'));
  const orgLink = children(vapp, 'Link').find((l) => attr(l, 'rel') === 'up' && (attr(l, 'type') ?? '').includes('.org+'));
  const ownerUser = path(vapp, 'Owner', 'User');
  const lease = child(vapp, 'LeaseSettingsSection');

  const model: VAppModel = {
    id,
    name,
    description: rawTextOrNull(vapp, 'Description'),
    status: intOf(attr(vapp, 'status'), 'VApp@status'),
    deployed: boolOf(attr(vapp, 'deployed'), 'VApp@deployed'),
    org: context.org ?? {
      id: orgLink ? urnOf('org', undefined, attr(orgLink, 'href')) : null,
      name: blankToNull(attr(orgLink, 'name')),
    },
    vdc: context.vdc ?? {
      id: vdcLink ? urnOf('vdc', undefined, attr(vdcLink, 'href')) : null,
      name: blankToNull(attr(vdcLink, 'name')),
    },
    owner: { name: blankToNull(attr(ownerUser, 'name')), href: blankToNull(attr(ownerUser, 'href')) },
    lease: {
      deploymentLeaseSeconds: intOf(textOf(lease, 'DeploymentLeaseInSeconds'), 'DeploymentLeaseInSeconds'),
      storageLeaseSeconds: intOf(textOf(lease, 'StorageLeaseInSeconds'), 'StorageLeaseInSeconds'),
    },
    startup: mapStartup(child(vapp, 'StartupSection')),
    networks: children(child(vapp, 'NetworkConfigSection'), 'NetworkConfig').map(mapNetwork),
    vms,
    metadata: docs.metadata ? mapMetadata(docs.metadata) : [],
  };
  const parsed = vappModelSchema.safeParse(model);
  if (!parsed.success) throw new VcdXmlError(`captured vApp "${name}" does not fit the model: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

function normaliseVmMetadata(input: CaptureDocuments['vmMetadata']): Map<string, XmlNode> {
  const out = new Map<string, XmlNode>();
  if (input === undefined) return out;
  const entries = input instanceof Map ? [...input.entries()] : Object.entries(input as Record<string, XmlNode>);
  for (const [key, node] of entries) {
    const uuid = uuidOf(key);
    out.set(uuid ?? key, node);
  }
  return out;
}

function rawTextOrNull(node: XmlNode, name: string): string | null {
  const value = rawTextOf(node, name);
  return value === null || value.trim() === '' ? null : value;
}

function mapStartup(section: XmlNode | undefined): StartupItem[] {
  return children(section, 'Item').map((item) => {
    const vmName = attr(item, 'id');
    if (vmName === undefined) throw new VcdXmlError('StartupSection Item has no ovf:id');
    return {
      vmName,
      order: intOf(attr(item, 'order'), `StartupSection ${vmName} order`),
      startAction: blankToNull(attr(item, 'startAction')),
      startDelaySeconds: intOf(attr(item, 'startDelay'), `StartupSection ${vmName} startDelay`),
      stopAction: blankToNull(attr(item, 'stopAction')),
      stopDelaySeconds: intOf(attr(item, 'stopDelay'), `StartupSection ${vmName} stopDelay`),
    };
  });
}

const FENCE_MODES = new Set(['bridged', 'natRouted', 'isolated']);

function mapNetwork(config: XmlNode): VAppNetwork {
  const name = attr(config, 'networkName');
  if (name === undefined) throw new VcdXmlError('NetworkConfig has no networkName');
  const configuration = child(config, 'Configuration');
  const fenceMode = textOf(configuration, 'FenceMode');
  if (fenceMode !== null && !FENCE_MODES.has(fenceMode)) {
    throw new VcdXmlError(`network "${name}": unknown FenceMode "${fenceMode}" (expected bridged, natRouted or isolated)`);
  }
  // API ≥ 5.1: Configuration/IpScopes/IpScope*; API 1.5: a single Configuration/IpScope.
  const scopes = [...children(child(configuration, 'IpScopes'), 'IpScope'), ...children(configuration, 'IpScope')];
  const parent = child(configuration, 'ParentNetwork');
  return {
    name,
    fenceMode: fenceMode as VAppNetwork['fenceMode'],
    parentNetwork: parent ? blankToNull(attr(parent, 'name')) : null,
    ipScopes: scopes.map((scope): IpScope => ({
      gateway: textOf(scope, 'Gateway'),
      netmask: textOf(scope, 'Netmask'),
      subnetPrefixLength: intOf(textOf(scope, 'SubnetPrefixLength'), `network "${name}" SubnetPrefixLength`),
      dns1: textOf(scope, 'Dns1'),
      dns2: textOf(scope, 'Dns2'),
      ipRanges: children(child(scope, 'IpRanges'), 'IpRange').map((range) => ({
        start: textOf(range, 'StartAddress'),
        end: textOf(range, 'EndAddress'),
      })),
    })),
  };
}

// ---- VMs ------------------------------------------------------------------------------------------------

interface RasdItem {
  readonly resourceType: number | null;
  readonly instanceId: number | null;
  readonly parent: number | null;
  readonly addressOnParent: string | null;
  readonly address: string | null;
  readonly subType: string | null;
  readonly node: XmlNode;
}

function rasd(item: XmlNode, what: string): RasdItem {
  return {
    resourceType: intOf(textOf(item, 'ResourceType'), `${what} ResourceType`),
    instanceId: intOf(textOf(item, 'InstanceID'), `${what} InstanceID`),
    parent: intOf(textOf(item, 'Parent'), `${what} Parent`),
    addressOnParent: textOf(item, 'AddressOnParent'),
    address: textOf(item, 'Address'),
    subType: textOf(item, 'ResourceSubType'),
    node: item,
  };
}

/** DiskSettings/AdapterType codes → HostResource bus type and subtype. */
const ADAPTER_TYPES: Record<string, { busType: number; busSubType: string }> = {
  '1': { busType: 5, busSubType: 'ide' },
  '2': { busType: 6, busSubType: 'buslogic' },
  '3': { busType: 6, busSubType: 'lsilogic' },
  '4': { busType: 6, busSubType: 'lsilogicsas' },
  '5': { busType: 6, busSubType: 'VirtualSCSI' },
  '6': { busType: 20, busSubType: 'vmware.sata.ahci' },
  '7': { busType: 20, busSubType: 'vmware.nvme.controller' },
};

const MIB = 1024 * 1024;

function mapVm(vm: XmlNode, vmMeta: ReadonlyMap<string, XmlNode>): VmModel {
  const name = attr(vm, 'name');
  if (name === undefined) throw new VcdXmlError('Vm has no name attribute');
  const id = urnOf('vm', attr(vm, 'id'), attr(vm, 'href'));
  if (id === null) throw new VcdXmlError(`Vm "${name}" has neither an id nor an href with a uuid`);
  const what = `VM "${name}"`;

  const hardware = child(vm, 'VirtualHardwareSection');
  const items = children(hardware, 'Item').map((item) => rasd(item, what));
  const spec = child(vm, 'VmSpecSection');
  const vimInfo = path(vm, 'VCloudExtension', 'VmVimInfo');
  const vmRef = child(vimInfo, 'VmVimObjectRef');
  const environment = child(vm, 'Environment');
  const guest = child(vm, 'GuestCustomizationSection');
  const vmProfile = child(vm, 'StorageProfile');

  // CPU and memory: the VmSpecSection when present (10.x), else the OVF hardware items.
  const cpuItem = items.find((i) => i.resourceType === 3);
  const memItem = items.find((i) => i.resourceType === 4);
  const cpuCount =
    intOf(textOf(spec, 'NumCpus'), `${what} NumCpus`) ?? intOf(textOf(cpuItem?.node, 'VirtualQuantity'), `${what} CPU VirtualQuantity`);
  const cores =
    intOf(textOf(spec, 'NumCoresPerSocket'), `${what} NumCoresPerSocket`) ??
    intOf(textOf(cpuItem?.node, 'CoresPerSocket'), `${what} CoresPerSocket`);
  const memoryMiB =
    intOf(textOf(path(spec, 'MemoryResourceMb'), 'Configured'), `${what} MemoryResourceMb`) ?? memoryFromItem(memItem, what);

  const profiles = new Map<string, string>();
  const vmProfileHref = attr(vmProfile, 'href');
  const vmProfileName = blankToNull(attr(vmProfile, 'name'));
  if (vmProfileHref !== undefined && vmProfileName !== null) profiles.set(vmProfileHref, vmProfileName);
  for (const settings of children(child(spec, 'DiskSection'), 'DiskSettings')) {
    const p = child(settings, 'StorageProfile');
    const href = attr(p, 'href');
    const pname = blankToNull(attr(p, 'name'));
    if (href !== undefined && pname !== null) profiles.set(href, pname);
  }

  return {
    id,
    name,
    description: rawTextOrNull(vm, 'Description'),
    computerName: textOf(guest, 'ComputerName'),
    moref: textOf(vmRef, 'MoRef') ?? blankToNull(nsAttr(environment, 'vCenterId', NS.ve) ?? attr(environment, 'vCenterId')),
    vcenter: blankToNull(attr(child(vmRef, 'VimServerRef'), 'href')),
    cpu: { count: cpuCount, coresPerSocket: cores },
    memoryMiB,
    hardwareVersion: textOf(spec, 'HardwareVersion') ?? textOf(child(hardware, 'System'), 'VirtualSystemType'),
    storageProfile: vmProfileName,
    disks: mapDisks(items, spec, profiles, what),
    nics: mapNics(vm, items, what),
    guestCustomization: guest
      ? {
          enabled: boolOf(textOf(guest, 'Enabled'), `${what} GuestCustomizationSection/Enabled`),
          computerName: textOf(guest, 'ComputerName'),
          adminPasswordSet: textOf(guest, 'AdminPassword') !== null,
        }
      : null,
    metadata: (() => {
      const uuid = uuidOf(id);
      const doc = uuid === null ? undefined : vmMeta.get(uuid);
      return doc ? mapMetadata(doc) : [];
    })(),
  };
}

function memoryFromItem(item: RasdItem | undefined, what: string): number | null {
  if (item === undefined) return null;
  const quantity = intOf(textOf(item.node, 'VirtualQuantity'), `${what} memory VirtualQuantity`);
  if (quantity === null) return null;
  const units = (textOf(item.node, 'AllocationUnits') ?? 'byte * 2^20').replace(/\s+/g, '');
  if (units === 'byte*2^20') return quantity;
  if (units === 'byte*2^30') return quantity * 1024;
  if (units === 'byte') return Math.floor(quantity / MIB);
  throw new VcdXmlError(`${what}: unknown memory AllocationUnits "${units}"`);
}

function mapDisks(items: readonly RasdItem[], spec: XmlNode | undefined, profiles: ReadonlyMap<string, string>, what: string): VmDisk[] {
  const controllers = new Map<number, RasdItem>();
  for (const item of items) {
    if ((item.resourceType === 5 || item.resourceType === 6 || item.resourceType === 20) && item.instanceId !== null) {
      controllers.set(item.instanceId, item);
    }
  }
  const settingsById = new Map<number, XmlNode>();
  for (const settings of children(child(spec, 'DiskSection'), 'DiskSettings')) {
    const diskId = intOf(textOf(settings, 'DiskId'), `${what} DiskSettings/DiskId`);
    if (diskId !== null) settingsById.set(diskId, settings);
  }

  const disks = new Map<number, VmDisk>();
  for (const item of items) {
    if (item.resourceType !== 17) continue;
    if (item.instanceId === null) throw new VcdXmlError(`${what}: a hard disk item has no InstanceID`);
    const d = `${what} disk ${item.instanceId}`;
    const host = child(item.node, 'HostResource');
    const controller = item.parent === null ? undefined : controllers.get(item.parent);
    const settings = settingsById.get(item.instanceId);
    const quantity = intOf(textOf(item.node, 'VirtualQuantity'), `${d} VirtualQuantity`);
    const quantityUnits = textOf(item.node, 'VirtualQuantityUnits');
    const capacityMb = intOf(attr(host, 'capacity', NS.vcloud), `${d} capacity`);
    const settingsMb = intOf(textOf(settings, 'SizeMb'), `${d} SizeMb`);
    const sizeBytes =
      quantity !== null && (quantityUnits === null || quantityUnits === 'byte')
        ? quantity
        : capacityMb !== null
          ? capacityMb * MIB
          : settingsMb !== null
            ? settingsMb * MIB
            : null;
    const profileHref = attr(host, 'storageProfileHref', NS.vcloud);
    disks.set(item.instanceId, {
      instanceId: item.instanceId,
      sizeBytes,
      busType: intOf(attr(host, 'busType', NS.vcloud), `${d} busType`) ?? controller?.resourceType ?? adapter(settings)?.busType ?? null,
      busSubType: blankToNull(attr(host, 'busSubType', NS.vcloud)) ?? controller?.subType ?? adapter(settings)?.busSubType ?? null,
      busNumber: intOf(controller?.address, `${d} controller Address`) ?? intOf(textOf(settings, 'BusNumber'), `${d} BusNumber`),
      unitNumber: intOf(item.addressOnParent, `${d} AddressOnParent`) ?? intOf(textOf(settings, 'UnitNumber'), `${d} UnitNumber`),
      storageProfile:
        blankToNull(attr(child(settings, 'StorageProfile'), 'name')) ?? (profileHref === undefined ? null : (profiles.get(profileHref) ?? null)),
    });
  }
  // Disks only listed in the VmSpecSection (documents without OVF disk items).
  for (const [diskId, settings] of settingsById) {
    if (disks.has(diskId)) continue;
    const d = `${what} disk ${diskId}`;
    const sizeMb = intOf(textOf(settings, 'SizeMb'), `${d} SizeMb`);
    disks.set(diskId, {
      instanceId: diskId,
      sizeBytes: sizeMb === null ? null : sizeMb * MIB,
      busType: adapter(settings)?.busType ?? null,
      busSubType: adapter(settings)?.busSubType ?? null,
      busNumber: intOf(textOf(settings, 'BusNumber'), `${d} BusNumber`),
      unitNumber: intOf(textOf(settings, 'UnitNumber'), `${d} UnitNumber`),
      storageProfile: blankToNull(attr(child(settings, 'StorageProfile'), 'name')),
    });
  }
  return [...disks.values()].sort((a, b) => a.instanceId - b.instanceId);
}

function adapter(settings: XmlNode | undefined): { busType: number; busSubType: string } | undefined {
  const code = textOf(settings, 'AdapterType');
  return code === null ? undefined : ADAPTER_TYPES[code];
}

function mapNics(vm: XmlNode, items: readonly RasdItem[], what: string): VmNic[] {
  const nicItems = new Map<number, RasdItem>();
  for (const item of items) {
    if (item.resourceType !== 10) continue;
    const index = intOf(item.addressOnParent, `${what} NIC AddressOnParent`);
    if (index !== null) nicItems.set(index, item);
  }
  const section = child(vm, 'NetworkConnectionSection');
  const nics: VmNic[] = [];
  if (section) {
    const primaryIndex = intOf(textOf(section, 'PrimaryNetworkConnectionIndex'), `${what} PrimaryNetworkConnectionIndex`);
    for (const conn of children(section, 'NetworkConnection')) {
      const index = intOf(textOf(conn, 'NetworkConnectionIndex'), `${what} NetworkConnectionIndex`);
      if (index === null) throw new VcdXmlError(`${what}: a NetworkConnection has no NetworkConnectionIndex`);
      nics.push({
        index,
        network: blankToNull(attr(conn, 'network')),
        connected: boolOf(textOf(conn, 'IsConnected'), `${what} NIC ${index} IsConnected`),
        primary: primaryIndex === null ? null : primaryIndex === index,
        ipAddress: textOf(conn, 'IpAddress'),
        macAddress: textOf(conn, 'MACAddress'),
        allocationMode: textOf(conn, 'IpAddressAllocationMode'),
        adapterType: textOf(conn, 'NetworkAdapterType') ?? nicItems.get(index)?.subType ?? null,
      });
    }
  } else {
    for (const [index, item] of nicItems) {
      const connection = child(item.node, 'Connection');
      nics.push({
        index,
        network: textOf(connection),
        connected: boolOf(textOf(item.node, 'AutomaticAllocation'), `${what} NIC ${index} AutomaticAllocation`),
        primary: boolOf(attr(connection, 'primaryNetworkConnection', NS.vcloud), `${what} NIC ${index} primaryNetworkConnection`),
        ipAddress: blankToNull(attr(connection, 'ipAddress', NS.vcloud)),
        macAddress: item.address,
        allocationMode: blankToNull(attr(connection, 'ipAddressingMode', NS.vcloud)),
        adapterType: item.subType,
      });
    }
  }
  return nics.sort((a, b) => a.index - b.index);
}

// ---- metadata -------------------------------------------------------------------------------------------

const TYPED: Record<string, MetadataEntry['type']> = {
  MetadataStringValue: 'string',
  MetadataNumberValue: 'number',
  MetadataBooleanValue: 'boolean',
  MetadataDateTimeValue: 'dateTime',
};

/** Maps a `Metadata` document (API 1.5 `Key`/`Value` entries included) to model entries, in document order. */
export function mapMetadata(doc: XmlNode): MetadataEntry[] {
  if (doc.name !== 'Metadata') throw new VcdXmlError(`expected a Metadata document, got <${doc.name}>`);
  return children(doc, 'MetadataEntry').map((entry) => {
    const key = rawTextOf(entry, 'Key');
    if (key === null || key === '') throw new VcdXmlError('MetadataEntry has no Key');
    const domainNode = child(entry, 'Domain');
    const domain = (textOf(domainNode) ?? 'GENERAL') as MetadataEntry['domain'];
    if (domain !== 'GENERAL' && domain !== 'SYSTEM') throw new VcdXmlError(`metadata "${key}": unknown Domain "${domain}"`);
    const visibility = (blankToNull(attr(domainNode, 'visibility')) ?? 'READWRITE') as MetadataEntry['visibility'];
    if (!['READWRITE', 'READONLY', 'PRIVATE'].includes(visibility)) {
      throw new VcdXmlError(`metadata "${key}": unknown visibility "${visibility}"`);
    }
    const typed = child(entry, 'TypedValue');
    if (typed === undefined) {
      // API 1.5: MetadataEntry/{Key, Value}, strings only.
      return { key, value: rawTextOf(entry, 'Value'), type: 'string', domain, visibility };
    }
    const xsiType = localValue(nsAttr(typed, 'type', NS.xsi) ?? attr(typed, 'type'));
    const type = xsiType === null ? undefined : TYPED[xsiType];
    if (type === undefined) throw new VcdXmlError(`metadata "${key}": unknown TypedValue type "${xsiType ?? '(none)'}"`);
    const valueNode = child(typed, 'Value');
    const raw = valueNode === undefined || isNil(valueNode) ? null : valueNode.text;
    return { key, value: convertMetadataValue(key, type, raw), type, domain, visibility };
  });
}

function convertMetadataValue(key: string, type: MetadataEntry['type'], raw: string | null): MetadataEntry['value'] {
  if (raw === null) return null;
  switch (type) {
    case 'string':
      return raw;
    case 'dateTime': {
      const v = raw.trim();
      if (v === '') return null;
      if (Number.isNaN(Date.parse(v))) throw new VcdXmlError(`metadata "${key}": "${v}" is not a date-time`);
      return v;
    }
    case 'number': {
      const v = raw.trim();
      if (v === '') return null;
      if (!/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(v)) throw new VcdXmlError(`metadata "${key}": "${v}" is not a number`);
      return Number(v);
    }
    case 'boolean':
      return boolOf(raw, `metadata "${key}"`);
  }
}

// ---- secrets --------------------------------------------------------------------------------------------

/** Where a vApp document carries secrets (for flags and logs; never the values). */
export function findSensitive(vapp: XmlNode): string[] {
  const found: string[] = [];
  for (const vm of children(child(vapp, 'Children'), 'Vm')) {
    const name = attr(vm, 'name') ?? '?';
    const guest = child(vm, 'GuestCustomizationSection');
    if (textOf(guest, 'AdminPassword') !== null) found.push(`vm "${name}" GuestCustomizationSection/AdminPassword`);
    if (textOf(guest, 'DomainUserPassword') !== null) found.push(`vm "${name}" GuestCustomizationSection/DomainUserPassword`);
    for (const property of descendants(vm, 'Property')) {
      const key = attr(property, 'key') ?? '';
      if (SENSITIVE_PROPERTY_KEY.test(key)) found.push(`vm "${name}" property ${key}`);
    }
  }
  return found;
}

/** A copy of an XML document with password elements and password properties blanked, for display and logs. */
export function redactXml(xml: string): string {
  return xml
    .replace(
      /(<(?:[\w.-]+:)?(AdminPassword|DomainUserPassword)\b[^>]*>)([\s\S]*?)(<\/(?:[\w.-]+:)?\2\s*>)/g,
      (_m, open: string, _n: string, _v: string, close: string) => `${open}***${close}`,
    )
    .replace(/<(?:[\w.-]+:)?Property\b[^>]*>/g, (tag) => {
      const key = /\s(?:[\w.-]+:)?key\s*=\s*"([^"]*)"/.exec(tag)?.[1] ?? '';
      if (!SENSITIVE_PROPERTY_KEY.test(key)) return tag;
      return tag.replace(/(\s(?:[\w.-]+:)?value\s*=\s*")([^"]*)(")/, '$1***$3');
    });
}
