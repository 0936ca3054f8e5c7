import { matchesNamePattern, type Scope } from '../domain/jobs/index.js';
import type { Log } from '../log.js';
import type { DiskLocator } from '../queue/messages.js';
import { BackupError } from '../errors.js';
import type { CapturedDisk, ScopeResolution, TenantBinding, VAppCapture, VcdGateway, VmSnapshot, VSphereGateway } from '../services/ports.js';
import { captureVApp, CaptureCache } from './capture.js';
import { uuidOf } from './capture-mapping.js';
import type { VcdClient } from './client.js';
import { withMaintenanceMode, type MaintenanceOptions } from './maintenance.js';
import type { VAppModel } from './model.js';
import { listVdcs } from './query.js';
import { resolveScopeInOrg, type JobScope } from './scope.js';
import { resolveTenantOrg } from './tenant-org.js';

/** Where the agent finds a VM's disk: local mode points at the simulator's image files. */
export type DiskLocate = (vm: { id: string; uuid: string; moref: string | null; name: string }, disk: { instanceId: number; index: number; sizeBytes: number }) => DiskLocator;

/** The simulator's convention: `<dataDir>/disks/<vmUuid>-<n>.img`, n counting the VM's disks from 0. */
export function simDiskLocate(dataDir: string): DiskLocate {
  return (vm, disk) => ({ kind: 'sim', path: `${dataDir}/disks/${vm.uuid}-${disk.index}.img`, sizeBytes: disk.sizeBytes });
}

/**
 * The backup service's view of vCD (VcdGateway) on top of the vCD client: scope resolution through the
 * query service, and capture under maintenance mode that is always released.
 */
export class VcdBackupGateway implements VcdGateway {
  private readonly cache = new CaptureCache();

  constructor(
    private readonly client: VcdClient,
    private readonly locate: DiskLocate,
    private readonly options: {
      log?: Log;
      maintenance?: MaintenanceOptions;
      /** With vSphere: VMs are snapshotted during capture and their disks read from the snapshots. */
      vsphere?: VSphereGateway;
      /** How agents read snapshot disks. @default 'https' */
      transport?: 'https' | 'nbd' | 'hotadd';
    } = {},
  ) {}

  async resolveScope(tenant: TenantBinding, scope: Scope): Promise<ScopeResolution> {
    const org = await resolveTenantOrg(this.client, tenant, { log: this.options.log });
    const include: { orgs: string[]; vdcs: string[]; vapps: string[]; vms: string[] } = { orgs: [], vdcs: [], vapps: [], vms: [] };
    const outside: string[] = [];
    let vdcsOfOrg: Promise<Set<string>> | undefined;
    for (const item of scope.include) {
      // A tenant's "whole instance" is its organization; another organization is not there at all.
      if (item.kind === 'instance') include.orgs.push(org.id);
      else if (item.kind === 'org') {
        if (uuidOf(item.orgId) === org.uuid) include.orgs.push(org.id);
        else outside.push(`organization ${item.orgId}`);
      } else if (item.kind === 'orgVdc') {
        vdcsOfOrg ??= listVdcs(this.client, { log: this.options.log }).then((vdcs) => new Set(vdcs.filter((v) => uuidOf(v.orgId) === org.uuid).map((v) => uuidOf(v.id)!)));
        if ((await vdcsOfOrg).has(uuidOf(item.vdcId) ?? '')) include.vdcs.push(item.vdcId);
        else outside.push(`org VDC ${item.vdcId}`);
      } else if (item.kind === 'vapp') include.vapps.push(item.vappId);
      else include.vms.push(item.vmId);
    }
    if (include.orgs.length + include.vdcs.length + include.vapps.length + include.vms.length === 0) return { vapps: [], outside };
    const exclude = {
      vapps: scope.exclude.flatMap((e) => (e.kind === 'vapp' ? [e.vappId] : [])),
      vms: scope.exclude.flatMap((e) => (e.kind === 'vm' ? [e.vmId] : [])),
    };
    const jobScope: JobScope = { include, exclude };
    const resolved = await resolveScopeInOrg(this.client, jobScope, org.uuid, { log: this.options.log });
    if (resolved.unknown.length > 0 || outside.length > 0) {
      this.options.log?.warn('scope names objects outside the tenant\'s organization (or deleted); they are skipped', { tenantId: tenant.tenantId, missing: [...outside, ...resolved.unknown].join(', ') });
    }
    // Name patterns are the job model's rule; apply them on what vCD returned.
    const patterns = scope.exclude.flatMap((e) => (e.kind === 'name' ? [e.pattern] : []));
    const vapps = resolved.vapps.filter((v) => !patterns.some((p) => matchesNamePattern(p, v.name))).map((v) => ({ id: v.id, name: v.name }));
    return { vapps, outside: [...outside, ...resolved.unknown] };
  }

  async withCapture<T>(vappId: string, during: (capture: VAppCapture) => Promise<T>, snapshot?: { name: string; description: string }): Promise<T> {
    return withMaintenanceMode(
      this.client,
      vappId,
      async (ctx) => {
        const captured = await captureVApp(this.client, vappId, { cache: this.cache, vappDocument: ctx.vapp, log: this.options.log });
        // Snapshots while the vApp is in maintenance mode: the disks then match the captured configuration.
        const snapshots = snapshot && this.options.vsphere ? await this.snapshotVms(captured.model, snapshot) : [];
        try {
          return await during({ vappId, vappName: captured.model.name ?? vappId, model: captured.model, disks: this.disksOf(captured.model, snapshots), snapshots });
        } catch (err) {
          // Nothing was handed to the agent (or what was will fail and be retried): the snapshots go now.
          await this.removeSnapshots(snapshots);
          throw err;
        }
      },
      { ...this.options.maintenance, log: this.options.log },
    );
  }

  /** One snapshot per VM with a vSphere identity; if one fails, those already taken are removed. */
  private async snapshotVms(model: VAppModel, snapshot: { name: string; description: string }): Promise<VmSnapshot[]> {
    const vsphere = this.options.vsphere!;
    const taken: VmSnapshot[] = [];
    try {
      for (const vm of model.vms) {
        if (!vm.moref || !vm.vcenter) continue; // not on vSphere as far as vCD knows: read as the locator says
        taken.push(await vsphere.snapshotVm({ vcenter: vm.vcenter, moref: vm.moref }, `${snapshot.name}:${vm.moref}`, snapshot.description));
      }
      return taken;
    } catch (err) {
      await this.removeSnapshots(taken);
      throw err;
    }
  }

  private async removeSnapshots(snapshots: readonly VmSnapshot[]): Promise<void> {
    for (const s of snapshots) {
      await this.options.vsphere?.removeSnapshot(s).catch((err: unknown) => {
        // The sweeper removes it later; the backup's outcome does not depend on it.
        this.options.log?.warn('a snapshot could not be removed; the sweeper will', { vm: s.vm, snapshot: s.snapshot, error: (err as Error).message });
      });
    }
  }

  private disksOf(model: VAppModel, snapshots: readonly VmSnapshot[]): CapturedDisk[] {
    const out: CapturedDisk[] = [];
    for (const vm of model.vms) {
      const uuid = uuidOf(vm.id) ?? vm.id;
      const disks = [...vm.disks].sort((a, b) => a.instanceId - b.instanceId);
      const snap = snapshots.find((s) => s.vm === vm.moref && s.vcenter === vm.vcenter);
      const snapDisks = snap ? [...snap.disks].sort((a, b) => a.deviceKey - b.deviceKey) : [];
      if (snap && snapDisks.length !== disks.length) {
        throw new BackupError('VSPHERE_DISKS_MISMATCH', `VM ${vm.name} (${vm.moref}) has ${snapDisks.length} disk(s) in vSphere but ${disks.length} in vCD; the VM changed during the capture: run the backup again`);
      }
      disks.forEach((disk, index) => {
        const sizeBytes = disk.sizeBytes ?? 0;
        const snapDisk = snapDisks[index];
        out.push({
          vmId: uuid,
          diskId: `${uuid}-${disk.instanceId}`,
          sizeBytes: snapDisk?.sizeBytes ?? sizeBytes,
          locator:
            snap && snapDisk
              ? { kind: 'vsphere', sizeBytes: snapDisk.sizeBytes, vsphere: { vcenter: snap.vcenter, vm: snap.vm, snapshot: snap.snapshot, deviceKey: snapDisk.deviceKey, fileName: snapDisk.fileName, transport: this.options.transport ?? 'https' } }
              : this.locate({ id: vm.id, uuid, moref: vm.moref, name: vm.name }, { instanceId: disk.instanceId, index, sizeBytes }),
          ...(snap && snapDisk ? { snapshot: { of: snap, disk: snapDisk } } : {}),
        });
      });
    }
    return out;
  }
}
