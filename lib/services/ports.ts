import type { Scope } from '../domain/jobs/index.js';
import type { DiskLocator, RepositoryRef } from '../queue/messages.js';
import type { Repository } from '../repository/repository.js';

/** Who a job or run belongs to: the tenant and the vCD organization it is (its id when vcdOrg is absent). */
export interface TenantBinding {
  readonly tenantId: string;
  readonly vcdOrg?: string;
}

/** A scope resolved inside one tenant's organization. */
export interface ScopeResolution {
  readonly vapps: readonly VAppRef[];
  /** Scope items not found in the tenant's organization, e.g. `vApp urn:vcloud:vapp:…`. */
  readonly outside: readonly string[];
}

/** A vApp a job's scope resolved to. */
export interface VAppRef {
  readonly id: string;
  readonly name: string;
}

/** A VM's vSphere identity, as vCD records it (VCloudExtension VmVimInfo). */
export interface VmIdentity {
  readonly vcenter: string;
  readonly moref: string;
}

/** A disk of a VM snapshot: what the agent reads and what the next incremental asks changes from. */
export interface SnapshotDisk {
  readonly deviceKey: number;
  readonly sizeBytes: number;
  /** `[datastore] dir/disk.vmdk` */
  readonly fileName: string;
  /** The disk's CBT changeId as of the snapshot; null when CBT is off. */
  readonly changeId: string | null;
}

export interface VmSnapshot {
  readonly vcenter: string;
  readonly vm: string;
  readonly snapshot: string;
  readonly disks: readonly SnapshotDisk[];
}

/**
 * What the orchestrator needs from vSphere (DESIGN §1): snapshots of a vApp's VMs taken while it is in
 * maintenance mode, the changed areas of a disk since the previous point (CBT), snapshot removal, and a
 * sweeper for snapshots a crash left behind.
 */
export interface VSphereGateway {
  /** Snapshots the VM (enabling CBT first when it is off), named for the run; its disks as of the snapshot. */
  snapshotVm(vm: VmIdentity, name: string, description: string): Promise<VmSnapshot>;
  /** Areas of `disk` changed since `sinceChangeId`, or why everything must be read. */
  changedAreas(snapshot: VmSnapshot, disk: SnapshotDisk, sinceChangeId: string): Promise<{ areas: Array<{ offset: number; length: number }>; changedBytes: number } | { fullRead: string }>;
  removeSnapshot(snapshot: Pick<VmSnapshot, 'vcenter' | 'vm' | 'snapshot'>): Promise<void>;
  /** Removes this product's snapshots older than `olderThanMs` on every configured vCenter. */
  sweep(olderThanMs: number): Promise<{ removed: number; failed: number }>;
}

/** A disk of a captured vApp, with where the agent finds it. */
export interface CapturedDisk {
  readonly vmId: string;
  /** Unique inside the vApp (a VM's disk instance id qualified by the VM). */
  readonly diskId: string;
  readonly sizeBytes: number;
  readonly locator: DiskLocator;
  /** The VM snapshot the disk is read from (vSphere), with the disk as of that snapshot. */
  readonly snapshot?: { readonly of: VmSnapshot; readonly disk: SnapshotDisk };
}

export interface VAppCapture {
  readonly vappId: string;
  readonly vappName: string;
  /** The captured vApp model (lib/vcd/model.ts), stored as vapp.json. */
  readonly model: unknown;
  readonly disks: readonly CapturedDisk[];
  /** The VM snapshots taken for this capture (empty without vSphere); removed once the disks are in. */
  readonly snapshots: readonly VmSnapshot[];
}

/**
 * What the backup service needs from vCD. The adapter owns maintenance mode: `withCapture` enters it, waits
 * for running tasks, captures, runs `during` (which writes vapp.json and fans out the disk tasks) and always
 * exits maintenance mode, also when `during` throws.
 */
export interface VcdGateway {
  /**
   * The vApps of `scope` inside the tenant's vCD organization. Ids the scope names that are not in that
   * organization (another tenant's, or deleted) are left out and listed in `outside`, never touched.
   */
  resolveScope(tenant: TenantBinding, scope: Scope): Promise<ScopeResolution>;
  /** With `snapshot`, the vApp's VMs are snapshotted (in maintenance mode) under that name and description. */
  withCapture<T>(vappId: string, during: (capture: VAppCapture) => Promise<T>, snapshot?: { name: string; description: string }): Promise<T>;
}

/**
 * Opens the repositories the catalog knows, with their keys; the adapter caches open repositories. The
 * repository comes back bound to `tenantId`: blocks are named and encrypted under that tenant's keys, so
 * tenants sharing a repository never deduplicate against (or read) each other's data.
 */
export interface RepositoryOpener {
  open(repositoryId: string, tenantId: string): Promise<{ repository: Repository; ref: RepositoryRef }>;
}

/**
 * Opens a repository for upkeep that works across tenants (GC): without a tenant the view is the
 * repository's own namespace, and GC reads every tenant namespace from it. Separate from RepositoryOpener,
 * whose callers must always act for a tenant.
 */
export interface UpkeepRepositoryOpener {
  open(repositoryId: string, tenantId?: string): Promise<{ repository: Repository; ref: RepositoryRef }>;
}
