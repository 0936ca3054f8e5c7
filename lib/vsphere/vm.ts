/**
 * What the backup reads from a VM and from a snapshot's config: disks (govmomi `types.VirtualDisk` with a
 * file backing), `runtime.powerState`, `config.changeTrackingEnabled` and the snapshot tree.
 */
import { child, children, textOf, type XmlNode } from '../vcd/xml.js';
import { VsphereXmlError } from './errors.js';
import { retrieveObject } from './property-collector.js';
import { moRefOf, xsiType, type ManagedObjectReference } from './soap.js';
import type { VsphereSession } from './session.js';

export type VirtualMachinePowerState = 'poweredOn' | 'poweredOff' | 'suspended';

/** A VirtualDisk device as the backup needs it. */
export interface VirtualDiskInfo {
  readonly key: number;
  readonly label: string | null;
  readonly capacityInBytes: number;
  /** The backing's vim25 type: VirtualDiskFlatVer2BackingInfo, VirtualDiskSparseVer2BackingInfo, ... */
  readonly backingType: string;
  /** `[datastore] dir/disk.vmdk` */
  readonly fileName: string;
  readonly datastore: ManagedObjectReference | null;
  /** CBT id of the disk's state (in a snapshot's config: as of that snapshot); null when CBT is off. */
  readonly changeId: string | null;
  readonly uuid: string | null;
  /** True when the backing has a parent: the disk is a delta in a snapshot chain. */
  readonly hasParent: boolean;
}

/** govmomi `types.VirtualMachineSnapshotTree`, flattened with each snapshot's parent. */
export interface SnapshotTreeEntry {
  readonly snapshot: ManagedObjectReference;
  readonly vm: ManagedObjectReference;
  readonly name: string;
  readonly description: string;
  readonly createTime: Date;
  readonly quiesced: boolean;
  readonly parent: ManagedObjectReference | null;
}

export interface VirtualMachineInfo {
  readonly vm: ManagedObjectReference;
  readonly name: string;
  readonly powerState: VirtualMachinePowerState;
  readonly changeTrackingEnabled: boolean;
  readonly disks: readonly VirtualDiskInfo[];
  readonly snapshots: readonly SnapshotTreeEntry[];
  readonly currentSnapshot: ManagedObjectReference | null;
}

export function vmRef(moref: string): ManagedObjectReference {
  return { type: 'VirtualMachine', value: moref };
}

export async function readVirtualMachine(session: VsphereSession, vm: ManagedObjectReference): Promise<VirtualMachineInfo> {
  const props = await retrieveObject(session.client, session.content.propertyCollector, vm, [
    'name',
    'runtime.powerState',
    'config.changeTrackingEnabled',
    'config.hardware.device',
    'snapshot',
  ]);
  const power = textOf(props.get('runtime.powerState'));
  if (power !== 'poweredOn' && power !== 'poweredOff' && power !== 'suspended') throw new VsphereXmlError(`${vm.value}: runtime.powerState "${power ?? ''}" is not a power state`);
  const snapshotInfo = props.get('snapshot');
  const current = child(snapshotInfo, 'currentSnapshot');
  return {
    vm,
    name: textOf(props.get('name')) ?? vm.value,
    powerState: power,
    changeTrackingEnabled: textOf(props.get('config.changeTrackingEnabled')) === 'true',
    disks: parseDisks(props.get('config.hardware.device'), vm.value),
    snapshots: flattenTree(children(snapshotInfo, 'rootSnapshotList'), null),
    currentSnapshot: current === undefined ? null : moRefOf(current, `${vm.value} snapshot.currentSnapshot`),
  };
}

/** The disks as they were when the snapshot was taken (`snapshot.config.hardware.device`). */
export async function readSnapshotDisks(session: VsphereSession, snapshot: ManagedObjectReference): Promise<VirtualDiskInfo[]> {
  const props = await retrieveObject(session.client, session.content.propertyCollector, snapshot, ['config.hardware.device']);
  return parseDisks(props.get('config.hardware.device'), snapshot.value);
}

export function parseDisks(devices: XmlNode | undefined, owner: string): VirtualDiskInfo[] {
  const out: VirtualDiskInfo[] = [];
  for (const device of devices?.children ?? []) {
    if (xsiType(device) !== 'VirtualDisk') continue;
    const what = `${owner} disk`;
    const key = intText(textOf(device, 'key'), `${what} key`);
    const backing = child(device, 'backing');
    const fileName = textOf(backing, 'fileName');
    if (backing === undefined || fileName === null) throw new VsphereXmlError(`${what} ${key}: no file backing`);
    const bytes = textOf(device, 'capacityInBytes');
    const capacityInBytes = bytes !== null ? intText(bytes, `${what} ${key} capacityInBytes`) : intText(textOf(device, 'capacityInKB'), `${what} ${key} capacityInKB`) * 1024;
    const ds = child(backing, 'datastore');
    out.push({
      key,
      label: textOf(child(device, 'deviceInfo'), 'label'),
      capacityInBytes,
      backingType: xsiType(backing) ?? 'unknown',
      fileName,
      datastore: ds === undefined ? null : moRefOf(ds, `${what} ${key} datastore`),
      changeId: textOf(backing, 'changeId'),
      uuid: textOf(backing, 'uuid'),
      hasParent: child(backing, 'parent') !== undefined,
    });
  }
  return out;
}

function flattenTree(nodes: XmlNode[], parent: ManagedObjectReference | null): SnapshotTreeEntry[] {
  const out: SnapshotTreeEntry[] = [];
  for (const node of nodes) {
    const snapshot = moRefOf(child(node, 'snapshot'), 'snapshot tree');
    const created = new Date(textOf(node, 'createTime') ?? '');
    if (Number.isNaN(created.getTime())) throw new VsphereXmlError(`snapshot ${snapshot.value}: createTime is not a date`);
    out.push({
      snapshot,
      vm: moRefOf(child(node, 'vm'), 'snapshot tree vm'),
      name: textOf(node, 'name') ?? '',
      description: textOf(node, 'description') ?? '',
      createTime: created,
      quiesced: textOf(node, 'quiesced') === 'true',
      parent,
    });
    out.push(...flattenTree(children(node, 'childSnapshotList'), snapshot));
  }
  return out;
}

function intText(value: string | null, what: string): number {
  if (value === null || !/^-?\d+$/.test(value)) throw new VsphereXmlError(`${what}: expected an integer, got "${value ?? ''}"`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new VsphereXmlError(`${what}: ${value} is too large`);
  return n;
}
export { intText };
