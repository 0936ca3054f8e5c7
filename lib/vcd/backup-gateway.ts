import { matchesNamePattern, type Scope } from '../domain/jobs/index.js';
import type { Log } from '../log.js';
import type { DiskLocator } from '../queue/messages.js';
import type { CapturedDisk, VAppCapture, VAppRef, VcdGateway } from '../services/ports.js';
import { captureVApp, CaptureCache } from './capture.js';
import { uuidOf } from './capture-mapping.js';
import type { VcdClient } from './client.js';
import { withMaintenanceMode, type MaintenanceOptions } from './maintenance.js';
import type { VAppModel } from './model.js';
import { resolveScope, type JobScope } from './scope.js';

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
    private readonly options: { log?: Log; maintenance?: MaintenanceOptions } = {},
  ) {}

  async resolveScope(_tenantId: string, scope: Scope): Promise<VAppRef[]> {
    const include: { instance?: boolean; orgs: string[]; vdcs: string[]; vapps: string[]; vms: string[] } = { orgs: [], vdcs: [], vapps: [], vms: [] };
    for (const item of scope.include) {
      if (item.kind === 'instance') include.instance = true;
      else if (item.kind === 'org') include.orgs.push(item.orgId);
      else if (item.kind === 'orgVdc') include.vdcs.push(item.vdcId);
      else if (item.kind === 'vapp') include.vapps.push(item.vappId);
      else include.vms.push(item.vmId);
    }
    const exclude = {
      vapps: scope.exclude.flatMap((e) => (e.kind === 'vapp' ? [e.vappId] : [])),
      vms: scope.exclude.flatMap((e) => (e.kind === 'vm' ? [e.vmId] : [])),
    };
    const jobScope: JobScope = { include, exclude };
    const resolved = await resolveScope(this.client, jobScope, { log: this.options.log });
    // Name patterns are the job model's rule; apply them on what vCD returned.
    const patterns = scope.exclude.flatMap((e) => (e.kind === 'name' ? [e.pattern] : []));
    const keep = new Set(resolved.filter((v) => !patterns.some((p) => matchesNamePattern(p, v.name))).map((v) => v.id));
    return resolved.filter((v) => keep.has(v.id)).map((v) => ({ id: v.id, name: v.name }));
  }

  async withCapture<T>(vappId: string, during: (capture: VAppCapture) => Promise<T>): Promise<T> {
    return withMaintenanceMode(
      this.client,
      vappId,
      async (ctx) => {
        const captured = await captureVApp(this.client, vappId, { cache: this.cache, vappDocument: ctx.vapp, log: this.options.log });
        return during({ vappId, vappName: captured.model.name ?? vappId, model: captured.model, disks: this.disksOf(captured.model) });
      },
      { ...this.options.maintenance, log: this.options.log },
    );
  }

  private disksOf(model: VAppModel): CapturedDisk[] {
    const out: CapturedDisk[] = [];
    for (const vm of model.vms) {
      const uuid = uuidOf(vm.id) ?? vm.id;
      const disks = [...vm.disks].sort((a, b) => a.instanceId - b.instanceId);
      disks.forEach((disk, index) => {
        const sizeBytes = disk.sizeBytes ?? 0;
        out.push({
          vmId: uuid,
          diskId: `${uuid}-${disk.instanceId}`,
          sizeBytes,
          locator: this.locate({ id: vm.id, uuid, moref: vm.moref, name: vm.name }, { instanceId: disk.instanceId, index, sizeBytes }),
        });
      });
    }
    return out;
  }
}
