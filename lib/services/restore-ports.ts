/**
 * Ports of the restore service (lib/services/restore-service.ts). The vCD side is implemented by
 * lib/vcd/restore-client.ts; disks are written by a DiskWriter (the agent through DiskRestoreTasks in the
 * service, or in process with lib/services/restore-local-disk-writer.ts).
 */
import type { RestoreOptions, RestorePlan, RestoreReport, RestoreTargetState } from '../domain/restore/index.js';
import type { DiskLocator, RepositoryRef } from '../queue/messages.js';
import type { Repository } from '../repository/repository.js';
import type { VAppModel } from '../vcd/model.js';
import type { TenantBinding } from './ports.js';

/** Where one planned disk goes in the target vApp. */
export interface DiskTarget {
  /** Repository disk id (`<vmUuid>-<instanceId>` of the backed-up VM). */
  readonly diskId: string;
  /** uuid of the target VM. */
  readonly vmId: string;
  readonly instanceId: number;
  readonly target: DiskLocator;
}

/** What the restore needs from vCD. Every method is idempotent: it looks before it acts. */
export interface RestoreTarget {
  /**
   * The target state the planner checks (org, VDCs, networks, storage policies, vApps by id and name, users).
   * With `tenant`, all of it is read inside the tenant's vCD organization only, whatever the captured model
   * or the options name: another organization's VDCs, networks and vApps are simply not there.
   */
  readTargetState(input: { model: VAppModel; options: RestoreOptions; pointId: string; tenant?: TenantBinding }): Promise<RestoreTargetState>;
  /** `new`: creates (or finds, when resuming) the vApp with its networks and VMs, so the disks exist; returns its id. */
  createVApp(input: { plan: RestorePlan; model: VAppModel; report: RestoreReport }): Promise<string>;
  /** Where each planned disk is in the target vApp. */
  diskTargets(input: { plan: RestorePlan; vappId: string }): Promise<DiskTarget[]>;
  /** Runs `work` with the vApp in maintenance mode, and always leaves it again (unless it was in it before). */
  withMaintenance<T>(vappId: string, work: () => Promise<T>): Promise<T>;
  /** Re-applies networks, NICs, lease, startup, owner and metadata (what differs only). */
  applyConfiguration(input: { plan: RestorePlan; model: VAppModel; vappId: string; report: RestoreReport }): Promise<void>;
  /** Last steps: drops the restore marker, powers on when the plan says so. */
  finish(input: { plan: RestorePlan; vappId: string; report: RestoreReport }): Promise<void>;
}

export interface DiskWriteRequest {
  readonly repository: Repository;
  readonly repositoryRef: RepositoryRef;
  readonly tenantId: string;
  readonly runId: string;
  /** Backed-up vApp and point the disk comes from. */
  readonly vappId: string;
  readonly pointId: string;
  readonly diskId: string;
  /** Index of the disk in the repository. */
  readonly indexKey: string;
  /** Target VM uuid and where to write. */
  readonly vmId: string;
  readonly target: DiskLocator;
}

/** Writes one disk of a restore point to its target, and resolves when it is written. */
export interface DiskWriter {
  writeDisk(request: DiskWriteRequest): Promise<{ bytesWritten: number }>;
}
