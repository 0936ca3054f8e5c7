import { matchesNamePattern, type Scope } from '../domain/jobs/index.js';
import type { Log } from '../log.js';
import type { DiskLocator } from '../queue/messages.js';
import type { CapturedDisk, ScopeResolution, TenantBinding, VAppCapture, VcdGateway } from '../services/ports.js';
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
    private readonly options: { log?: Log; maintenance?: MaintenanceOptions } = {},
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
