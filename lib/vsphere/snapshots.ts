/**
 * Snapshots for backup: CreateSnapshot_Task without memory (a crash- or, with quiesce, application-consistent
 * disk state), RemoveSnapshot_Task with consolidate (the delta is merged back into the base disk).
 */
import { VsphereFaultError } from './errors.js';
import { el, moRefOf, type ManagedObjectReference } from './soap.js';
import type { VsphereSession } from './session.js';
import { waitForTask, type WaitOptions } from './tasks.js';

/** Every snapshot this product takes has a name starting with this, so the sweeper can recognise its own. */
export const SNAPSHOT_PREFIX = 'vcd-backup:';

export interface CreateSnapshotOptions extends WaitOptions {
  readonly name: string;
  readonly description?: string;
  /** Quiesce the guest file systems through VMware Tools. */
  readonly quiesce?: boolean;
  /**
   * With quiesce: when the quiesced snapshot fails (no Tools, VSS error), take a crash-consistent one
   * instead of failing the backup. `onFallback` learns why, for the run's events.
   */
  readonly quiesceFallback?: boolean;
  readonly onFallback?: (error: VsphereFaultError) => void;
}

/** The snapshot name for a backup run: recognisable by the sweeper, unique per run and VM. */
export function backupSnapshotName(runId: string, vmMoref: string): string {
  return `${SNAPSHOT_PREFIX}${runId}:${vmMoref}`;
}

export async function createSnapshot(session: VsphereSession, vm: ManagedObjectReference, options: CreateSnapshotOptions): Promise<ManagedObjectReference> {
  const quiesce = options.quiesce ?? false;
  try {
    return await createOnce(session, vm, options, quiesce);
  } catch (err) {
    if (!(quiesce && options.quiesceFallback && err instanceof VsphereFaultError)) throw err;
    options.onFallback?.(err);
    return createOnce(session, vm, options, false);
  }
}

async function createOnce(session: VsphereSession, vm: ManagedObjectReference, options: CreateSnapshotOptions, quiesce: boolean): Promise<ManagedObjectReference> {
  // Parameter order is the WSDL's: name, description, memory, quiesce.
  const response = await session.client.call(
    'CreateSnapshot_Task',
    vm,
    el('name', options.name) + (options.description === undefined ? '' : el('description', options.description)) + el('memory', false) + el('quiesce', quiesce),
  );
  const task = moRefOf(response.children.find((c) => c.name === 'returnval'), 'CreateSnapshot_Task');
  const result = await waitForTask(session, task, options);
  return moRefOf(result, `CreateSnapshot_Task ${task.value} result`);
}

export interface RemoveSnapshotOptions extends WaitOptions {
  readonly removeChildren?: boolean;
  readonly consolidate?: boolean;
}

export async function removeSnapshot(session: VsphereSession, snapshot: ManagedObjectReference, options: RemoveSnapshotOptions = {}): Promise<void> {
  const response = await session.client.call('RemoveSnapshot_Task', snapshot, el('removeChildren', options.removeChildren ?? false) + el('consolidate', options.consolidate ?? true));
  const task = moRefOf(response.children.find((c) => c.name === 'returnval'), 'RemoveSnapshot_Task');
  await waitForTask(session, task, options);
}

export function snapshotRef(moref: string): ManagedObjectReference {
  return { type: 'VirtualMachineSnapshot', value: moref };
}

