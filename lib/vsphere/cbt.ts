/**
 * Changed block tracking: turning it on (ReconfigVM_Task) and asking which areas of a snapshot's disk
 * changed since an earlier changeId (QueryChangedDiskAreas, looped until the whole capacity is covered).
 */
import { children, textOf } from '../vcd/xml.js';
import { VsphereXmlError } from './errors.js';
import { el, moRef, moRefOf, raw, returnval, type ManagedObjectReference } from './soap.js';
import type { VsphereSession } from './session.js';
import { waitForTask, type WaitOptions } from './tasks.js';
import { intText } from './vm.js';

/** govmomi `types.DiskChangeExtent`. */
export interface DiskChangeExtent {
  readonly start: number;
  readonly length: number;
}

export interface ChangedAreas {
  readonly areas: readonly DiskChangeExtent[];
  readonly changedBytes: number;
  /** How many QueryChangedDiskAreas calls it took. */
  readonly calls: number;
}

/**
 * Enables CBT. It takes effect at the next stun (snapshot create or remove), so the first backup after this
 * has no usable changeId and reads everything.
 */
export async function enableChangeTracking(session: VsphereSession, vm: ManagedObjectReference, options: WaitOptions = {}): Promise<void> {
  const response = await session.client.call('ReconfigVM_Task', vm, raw('spec', el('changeTrackingEnabled', true)));
  await waitForTask(session, moRefOf(response.children.find((c) => c.name === 'returnval'), 'ReconfigVM_Task'), options);
}

/**
 * The areas of disk `deviceKey` in `snapshot` that changed since `changeId` (`"*"`: the allocated areas).
 * A FileFault means the changeId is no longer valid (CBT reset, disk resized): read the whole disk.
 */
export async function queryChangedDiskAreas(
  session: VsphereSession,
  vm: ManagedObjectReference,
  snapshot: ManagedObjectReference,
  deviceKey: number,
  changeId: string,
  capacityInBytes: number,
): Promise<ChangedAreas> {
  const areas: DiskChangeExtent[] = [];
  let offset = 0;
  let calls = 0;
  while (offset < capacityInBytes) {
    const response = await session.client.call(
      'QueryChangedDiskAreas',
      vm,
      moRef('snapshot', snapshot) + el('deviceKey', deviceKey) + el('startOffset', offset) + el('changeId', changeId),
    );
    calls++;
    const info = returnval(response, 'QueryChangedDiskAreas');
    const start = intText(textOf(info, 'startOffset'), 'DiskChangeInfo.startOffset');
    const length = intText(textOf(info, 'length'), 'DiskChangeInfo.length');
    // A reply that does not advance would loop forever; one that skips would silently lose changes.
    if (start !== offset || length <= 0) throw new VsphereXmlError(`QueryChangedDiskAreas from ${offset} answered startOffset ${start}, length ${length}`);
    const end = Math.min(start + length, capacityInBytes);
    for (const area of children(info, 'changedArea')) {
      const a = intText(textOf(area, 'start'), 'DiskChangeExtent.start');
      const l = intText(textOf(area, 'length'), 'DiskChangeExtent.length');
      const previous = areas[areas.length - 1];
      if (l <= 0 || a < start || a + l > end || (previous !== undefined && a < previous.start + previous.length)) {
        throw new VsphereXmlError(`QueryChangedDiskAreas: area ${a}+${l} is outside ${start}..${end} or out of order`);
      }
      if (previous !== undefined && previous.start + previous.length === a) areas[areas.length - 1] = { start: previous.start, length: previous.length + l };
      else areas.push({ start: a, length: l });
    }
    offset = end;
  }
  return { areas, changedBytes: areas.reduce((sum, a) => sum + a.length, 0), calls };
}
