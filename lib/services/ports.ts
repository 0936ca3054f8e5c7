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

/** A disk of a captured vApp, with where the agent finds it. */
export interface CapturedDisk {
  readonly vmId: string;
  /** Unique inside the vApp (a VM's disk instance id qualified by the VM). */
  readonly diskId: string;
  readonly sizeBytes: number;
  readonly locator: DiskLocator;
}

export interface VAppCapture {
  readonly vappId: string;
  readonly vappName: string;
  /** The captured vApp model (lib/vcd/model.ts), stored as vapp.json. */
  readonly model: unknown;
  readonly disks: readonly CapturedDisk[];
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
  withCapture<T>(vappId: string, during: (capture: VAppCapture) => Promise<T>): Promise<T>;
}

/**
 * Opens the repositories the catalog knows, with their keys; the adapter caches open repositories. The
 * repository comes back bound to `tenantId`: blocks are named and encrypted under that tenant's keys, so
 * tenants sharing a repository never deduplicate against (or read) each other's data.
 */
export interface RepositoryOpener {
  open(repositoryId: string, tenantId: string): Promise<{ repository: Repository; ref: RepositoryRef }>;
}
