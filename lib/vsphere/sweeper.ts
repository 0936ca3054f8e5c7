/**
 * The stale-snapshot sweeper: finds snapshots this product created (name prefix) that are older than a
 * threshold, in every VM the account can see, and removes them. Crashed agents and orchestrators leave such
 * snapshots behind, and a snapshot left alone grows its delta until the datastore fills.
 */
import type { Clock } from '../domain/clock.js';
import { systemClock } from '../system-clock.js';
import { el, moRef, moRefOf, raw, returnval, type ManagedObjectReference } from './soap.js';
import { retrievePropertiesEx } from './property-collector.js';
import type { VsphereSession } from './session.js';
import { removeSnapshot, SNAPSHOT_PREFIX } from './snapshots.js';
import type { WaitOptions } from './tasks.js';
import { readVirtualMachine, type SnapshotTreeEntry } from './vm.js';

export interface SweepOptions extends WaitOptions {
  /** Snapshots younger than this are left alone: a running backup may still be reading them. */
  readonly olderThanMs: number;
  readonly prefix?: string;
  readonly clock?: Clock;
  /** Limit the sweep to these VMs; default: every VM in the inventory. */
  readonly vms?: readonly ManagedObjectReference[];
  /** List only, remove nothing. */
  readonly dryRun?: boolean;
}

export interface SweepReport {
  readonly removed: readonly SnapshotTreeEntry[];
  readonly failed: ReadonlyArray<{ readonly snapshot: SnapshotTreeEntry; readonly error: Error }>;
  /** Ours but too young. */
  readonly kept: readonly SnapshotTreeEntry[];
}

/** Every snapshot of ours (by prefix) on the given VMs, or on all VMs. */
export async function listProductSnapshots(session: VsphereSession, options: { prefix?: string; vms?: readonly ManagedObjectReference[] } = {}): Promise<SnapshotTreeEntry[]> {
  const prefix = options.prefix ?? SNAPSHOT_PREFIX;
  const vms = options.vms ?? (await listVirtualMachines(session));
  const out: SnapshotTreeEntry[] = [];
  for (const vm of vms) {
    const info = await readVirtualMachine(session, vm);
    out.push(...info.snapshots.filter((s) => s.name.startsWith(prefix)));
  }
  return out;
}

export async function sweepStaleSnapshots(session: VsphereSession, options: SweepOptions): Promise<SweepReport> {
  const clock = options.clock ?? systemClock;
  const cutoff = clock.now().getTime() - options.olderThanMs;
  const removed: SnapshotTreeEntry[] = [];
  const kept: SnapshotTreeEntry[] = [];
  const failed: Array<{ snapshot: SnapshotTreeEntry; error: Error }> = [];
  for (const snapshot of await listProductSnapshots(session, options)) {
    if (snapshot.createTime.getTime() > cutoff) {
      kept.push(snapshot);
      continue;
    }
    if (options.dryRun) {
      removed.push(snapshot);
      continue;
    }
    try {
      await removeSnapshot(session, snapshot.snapshot, { ...options, consolidate: true, removeChildren: false });
      removed.push(snapshot);
    } catch (err) {
      // One stuck VM must not keep the others' snapshots alive: report it and go on.
      failed.push({ snapshot, error: err as Error });
    }
  }
  return { removed, kept, failed };
}

/** All VMs under the root folder, through a ContainerView (destroyed afterwards). */
export async function listVirtualMachines(session: VsphereSession): Promise<ManagedObjectReference[]> {
  const { client, content } = session;
  const view = moRefOf(
    returnval(await client.call('CreateContainerView', content.viewManager, moRef('container', content.rootFolder) + el('type', 'VirtualMachine') + el('recursive', true)), 'CreateContainerView'),
    'CreateContainerView',
  );
  try {
    const traversal = raw('selectSet', el('name', 'view') + el('type', 'ContainerView') + el('path', 'view') + el('skip', false), 'TraversalSpec');
    const objects = await retrievePropertiesEx(client, content.propertyCollector, {
      type: 'VirtualMachine',
      pathSet: [],
      objects: [{ obj: view, skip: true, selectSet: traversal }],
    });
    return objects.map((o) => o.obj);
  } finally {
    await client.call('DestroyView', view).catch(() => undefined);
  }
}
