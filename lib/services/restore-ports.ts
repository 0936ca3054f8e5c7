/**
 * Ports of the restore service (lib/services/restore-service.ts). The vCD side is implemented by
 * lib/vcd/restore-client.ts; disks go to the agent as DiskRestoreTasks (DiskTaskSender, the service) or are
 * written in process (DiskWriter, lib/services/restore-local-disk-writer.ts).
 */
import type { RestoreOptions, RestorePlan, RestoreReport, RestoreTargetState } from '../domain/restore/index.js';
import type { DiskLocator, DiskRestoreTask, RepositoryRef } from '../queue/messages.js';
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
  /**
   * Puts the vApp into maintenance mode and waits for the tasks already running on it. False when it was in
   * maintenance mode before (then the restore leaves it so). The restore exits it again with its last disk
   * result, in another event (another function in AWS), so entering and exiting are two calls.
   */
  enterMaintenance(vappId: string): Promise<boolean>;
  /** Takes the vApp out of maintenance mode (also when it is not in it); MaintenanceExitError when vCD refuses. */
  exitMaintenance(vappId: string): Promise<void>;
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

/** Writes one disk of a restore point to its target in this process, and resolves when it is written. */
export interface DiskWriter {
  writeDisk(request: DiskWriteRequest): Promise<{ bytesWritten: number }>;
}

/**
 * Hands disks to the on-prem agent (the service): the restore run returns once they are sent, and each
 * agent TaskResult advances it through `RestoreService.onTaskResult`.
 */
export interface DiskTaskSender {
  sendDiskTasks(tasks: readonly DiskRestoreTask[]): Promise<void>;
}

/** How a restore writes its disks: in process (CLI, tests) or through the agent (the service). */
export type RestoreDisks = DiskWriter | DiskTaskSender;

export function sendsTasks(disks: RestoreDisks): disks is DiskTaskSender {
  return 'sendDiskTasks' in disks;
}
