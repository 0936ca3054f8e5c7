/**
 * The vCD side of restores (references/vcd-api.md §8): reads the target state the planner checks, and
 * re-creates (compose an empty vApp with its networks, then recompose with one CreateItem per VM) or
 * overwrites (inside maintenance mode) a vApp's configuration. Every step reads the current state first and
 * acts only when it differs, so a restore that stopped half-way is resumed by running it again.
 */
import { RESTORE_MARKER_KEY, type RestoreOptions, type RestorePlan, type RestoreReport, type RestoreTargetState, type TargetVApp } from '../domain/restore/index.js';
import type { Log } from '../log.js';
import type { TenantBinding } from '../services/ports.js';
import type { DiskTarget, RestoreTarget } from '../services/restore-ports.js';
import { resolveTenantOrg } from './tenant-org.js';
import type { DiskLocate } from './backup-gateway.js';
import { captureVApp } from './capture.js';
import { uuidOf } from './capture-mapping.js';
import type { VcdClient } from './client.js';
import { VcdApiError, VcdNotFoundError } from './errors.js';
import { enterMaintenanceModeQuiet, exitMaintenanceMode, withMaintenanceMode, type MaintenanceOptions } from './maintenance.js';
import type { MetadataEntry, VAppModel, VAppNetwork, VmNic } from './model.js';
import { escapeFilterValue, listNetworks, listStoragePolicies, listVApps, listVdcs, queryAll, type NetworkRecord, type VdcRecord } from './query.js';
import { attr, child, children, escapeXml as e } from './xml.js';

const V = 'http://www.vmware.com/vcloud/v1.5';
const OVF = 'http://schemas.dmtf.org/ovf/envelope/1';
const XSI = 'http://www.w3.org/2001/XMLSchema-instance';
const MEDIA = {
  compose: 'application/vnd.vmware.vcloud.composeVAppParams+xml',
  recompose: 'application/vnd.vmware.vcloud.recomposeVAppParams+xml',
  networkConfig: 'application/vnd.vmware.vcloud.networkConfigSection+xml',
  networkConnection: 'application/vnd.vmware.vcloud.networkConnectionSection+xml',
  lease: 'application/vnd.vmware.vcloud.leaseSettingsSection+xml',
  startup: 'application/vnd.vmware.vcloud.startupSection+xml',
  owner: 'application/vnd.vmware.vcloud.owner+xml',
  metadata: 'application/vnd.vmware.vcloud.metadata+xml',
} as const;

export interface VcdRestoreClientOptions {
  /** Where the agent writes a VM's disk (same convention as backups: `simDiskLocate(dataDir)` for the simulator). */
  readonly locate: DiskLocate;
  /** True when logged in as a system administrator (SYSTEM metadata, maintenance mode). @default true */
  readonly provider?: boolean;
  readonly maintenance?: MaintenanceOptions;
  readonly taskTimeoutMs?: number;
  readonly log?: Log;
}

export class VcdRestoreClient implements RestoreTarget {
  private readonly provider: boolean;

  constructor(
    private readonly client: VcdClient,
    private readonly options: VcdRestoreClientOptions,
  ) {
    this.provider = options.provider ?? true;
  }

  // ---- target state ------------------------------------------------------------------------------------

  async readTargetState(input: { model: VAppModel; options: RestoreOptions; pointId: string; tenant?: TenantBinding }): Promise<RestoreTargetState> {
    const { model, options } = input;
    const [allVdcs, tenantOrg] = await Promise.all([this.vdcs(), input.tenant ? resolveTenantOrg(this.client, input.tenant, { log: this.options.log }) : Promise.resolve(undefined)]);
    const sourceVdc = allVdcs.find((v) => v.id === model.vdc.id || (model.vdc.id === null && v.name === model.vdc.name));
    // A tenant restores into its own organization only; the model's org decides only for the provider's CLI.
    const orgId = tenantOrg?.id ?? model.org.id ?? sourceVdc?.orgId ?? allVdcs.find((v) => v.orgName === model.org.name)?.orgId ?? null;
    const vdcs = allVdcs.filter((v) => orgId === null || v.orgId === orgId);
    const vdcIds = new Set(vdcs.map((v) => v.id));
    const [networks, policies, vapps, org] = await Promise.all([
      this.orgNetworks(),
      this.policies(),
      listVApps(this.client).catch(async (err: unknown) => {
        if (!(err instanceof VcdNotFoundError)) throw err;
        return (await queryAll(this.client, 'vApp')).map((r) => ({ id: `urn:vcloud:vapp:${uuidOf(r.attrs.href) ?? ''}`, href: r.attrs.href ?? '', name: r.attrs.name ?? '', vdcId: r.attrs.vdc ? `urn:vcloud:vdc:${uuidOf(r.attrs.vdc)}` : null }));
      }),
      orgId === null ? Promise.resolve(null) : this.readOrg(orgId),
    ]);
    const targetName = options.newName ?? model.name;
    const relevant = vapps.filter((a) => (a.vdcId === null || vdcIds.has(a.vdcId)) && (uuidOf(a.id) === uuidOf(model.id) || a.name === targetName));
    const detailed: TargetVApp[] = [];
    for (const a of relevant) {
      try {
        const captured = await captureVApp(this.client, a.id, { log: this.options.log });
        const marker = captured.model.metadata.find((m) => m.key === RESTORE_MARKER_KEY);
        detailed.push({
          id: captured.model.id,
          name: captured.model.name,
          href: a.href,
          vdcId: captured.model.vdc.id ?? a.vdcId,
          vms: captured.model.vms.map((vm) => ({ id: vm.id, name: vm.name, disks: vm.disks.map((d) => ({ instanceId: d.instanceId, sizeBytes: d.sizeBytes })) })),
          restoreOf: marker === undefined || marker.value === null ? null : String(marker.value),
        });
      } catch (err) {
        if (!(err instanceof VcdNotFoundError)) throw err; // deleted meanwhile
      }
    }
    return {
      org: org ?? (orgId === null ? null : { id: orgId, name: model.org.name ?? sourceVdc?.orgName ?? orgId }),
      vdcs: vdcs.map((v) => ({ id: v.id, name: v.name, href: v.href })),
      networks: networks.filter((n) => n.vdcId !== null && vdcIds.has(n.vdcId)).map((n) => ({ id: n.id, name: n.name, href: n.href, vdcId: n.vdcId })),
      storagePolicies: policies.filter((p) => p.vdcId !== null && vdcIds.has(p.vdcId) && p.isEnabled).map((p) => ({ id: p.id, name: p.name, href: p.href, vdcId: p.vdcId, isDefault: p.isDefault })),
      vapps: detailed,
      users: org?.users ?? [],
      canWriteSystemMetadata: this.provider,
    };
  }

  private async vdcs(): Promise<VdcRecord[]> {
    try {
      return await listVdcs(this.client);
    } catch (err) {
      if (!(err instanceof VcdNotFoundError)) throw err;
      return (await queryAll(this.client, 'orgVdc')).map((r) => ({
        id: `urn:vcloud:vdc:${uuidOf(r.attrs.href) ?? ''}`,
        href: r.attrs.href ?? '',
        name: r.attrs.name ?? '',
        orgId: r.attrs.org ? `urn:vcloud:org:${uuidOf(r.attrs.org)}` : null,
        orgName: r.attrs.orgName ?? null,
      }));
    }
  }

  private orgNetworks(): Promise<NetworkRecord[]> {
    return listNetworks(this.client);
  }

  private async policies() {
    try {
      return await listStoragePolicies(this.client);
    } catch (err) {
      if (!(err instanceof VcdNotFoundError)) throw err;
      return (await queryAll(this.client, 'orgVdcStorageProfile')).map((r) => ({
        id: `urn:vcloud:vdcstorageProfile:${uuidOf(r.attrs.href) ?? ''}`,
        href: r.attrs.href ?? '',
        name: r.attrs.name ?? '',
        vdcId: r.attrs.vdc ? `urn:vcloud:vdc:${uuidOf(r.attrs.vdc)}` : null,
        isEnabled: r.attrs.isEnabled !== 'false',
        isDefault: r.attrs.isDefaultStorageProfile === 'true',
      }));
    }
  }

  private async readOrg(orgId: string): Promise<{ id: string; name: string; users: Array<{ id: string; name: string; href: string }> } | null> {
    const uuid = uuidOf(orgId);
    try {
      const { node } = await this.client.getXml(`/api/admin/org/${uuid}`);
      return {
        id: orgId,
        name: attr(node, 'name') ?? orgId,
        users: children(child(node, 'Users'), 'UserReference').map((u) => ({ id: `urn:vcloud:user:${uuidOf(attr(u, 'href')) ?? ''}`, name: attr(u, 'name') ?? '', href: attr(u, 'href') ?? '' })),
      };
    } catch (err) {
      if (err instanceof VcdNotFoundError) return null;
      throw err;
    }
  }

  // ---- re-create ---------------------------------------------------------------------------------------

  async createVApp(input: { plan: RestorePlan; model: VAppModel; report: RestoreReport }): Promise<string> {
    const { plan, model, report } = input;
    const vdcUuid = uuidOf(plan.target.vdc.id);
    let vappId: string | null = null;
    await report.step('composeVApp', plan.target.name, async () => {
      const existing = await this.findVApp(plan.target.name, plan.target.vdc.id);
      if (existing !== null) {
        const marker = await this.markerOf(existing);
        if (marker !== plan.source.pointId) {
          throw new VcdApiError(
            { status: 400, majorErrorCode: '400', minorErrorCode: 'DUPLICATE_NAME', vcdMessage: `vApp ${plan.target.name} exists and is not an unfinished restore of point ${plan.source.pointId}`, method: 'POST', path: `/api/vdc/${vdcUuid}/action/composeVApp` },
            { code: 'RESTORE_NAME_TAKEN', message: `a vApp named "${plan.target.name}" already exists in VDC "${plan.target.vdc.name}" and is not an unfinished restore of point ${plan.source.pointId}; plan again and give newName` },
          );
        }
        vappId = existing;
        return false;
      }
      const body =
        `<ComposeVAppParams xmlns="${V}" xmlns:ovf="${OVF}" name="${e(plan.target.name)}" deploy="false" powerOn="false">` +
        (model.description === null ? '' : `<Description>${e(model.description)}</Description>`) +
        `<InstantiationParams>${this.networkConfigXml(plan, model)}${this.leaseXml(plan)}</InstantiationParams>` +
        `<AllEULAsAccepted>true</AllEULAsAccepted></ComposeVAppParams>`;
      const res = await this.client.requestXml('POST', `/api/vdc/${vdcUuid}/action/composeVApp`, { body, contentType: MEDIA.compose });
      vappId = `urn:vcloud:vapp:${uuidOf(attr(res.node ?? undefined, 'id') ?? attr(res.node ?? undefined, 'href'))}`;
      await this.client.waitForResponseTasks(res, { timeoutMs: this.options.taskTimeoutMs });
      // The marker first: a rerun recognises this vApp as its own unfinished restore.
      await this.postMetadata(`/api/vApp/vapp-${uuidOf(vappId)}`, [this.marker(plan.source.pointId)]);
      return true;
    });
    const id = vappId as string | null;
    if (id === null) throw new Error('unreachable: composeVApp step set no vApp id');
    const path = `/api/vApp/vapp-${uuidOf(id)}`;
    await report.step('createVm', `${plan.vms.length} VM(s)`, async () => {
      const current = await captureVApp(this.client, id);
      const missing = plan.vms.filter((vm) => !current.model.vms.some((v) => v.name === vm.name));
      if (missing.length === 0) return false;
      const items = missing.map((vm) => this.createItemXml(plan, model, vm.sourceVmId)).join('');
      const res = await this.client.requestXml('POST', `${path}/action/recomposeVApp`, {
        body: `<RecomposeVAppParams xmlns="${V}" xmlns:ovf="${OVF}" name="${e(plan.target.name)}">${items}<AllEULAsAccepted>true</AllEULAsAccepted></RecomposeVAppParams>`,
        contentType: MEDIA.recompose,
      });
      await this.client.waitForResponseTasks(res, { timeoutMs: this.options.taskTimeoutMs });
      return true;
    });
    return id;
  }

  private async findVApp(name: string, vdcId: string): Promise<string | null> {
    const records = await listVApps(this.client, { filter: `name==${escapeFilterValue(name)}` }).catch(async (err: unknown) => {
      if (!(err instanceof VcdNotFoundError)) throw err;
      return (await queryAll(this.client, 'vApp', { filter: `name==${escapeFilterValue(name)}` })).map((r) => ({ id: `urn:vcloud:vapp:${uuidOf(r.attrs.href)}`, vdcId: `urn:vcloud:vdc:${uuidOf(r.attrs.vdc)}` }));
    });
    return records.find((r) => uuidOf(r.vdcId) === uuidOf(vdcId))?.id ?? null;
  }

  private async markerOf(vappId: string): Promise<string | null> {
    const { node } = await this.client.getXml(`/api/vApp/vapp-${uuidOf(vappId)}/metadata`);
    const entry = children(node, 'MetadataEntry').find((m) => child(m, 'Key')?.text === RESTORE_MARKER_KEY);
    return entry === undefined ? null : (child(child(entry, 'TypedValue'), 'Value')?.text ?? null);
  }

  private marker(pointId: string): MetadataEntry {
    return this.provider
      ? { key: RESTORE_MARKER_KEY, value: pointId, type: 'string', domain: 'SYSTEM', visibility: 'PRIVATE' }
      : { key: RESTORE_MARKER_KEY, value: pointId, type: 'string', domain: 'GENERAL', visibility: 'READWRITE' };
  }

  private createItemXml(plan: RestorePlan, model: VAppModel, sourceVmId: string): string {
    const vm = model.vms.find((v) => v.id === sourceVmId);
    const planned = plan.vms.find((v) => v.sourceVmId === sourceVmId);
    if (vm === undefined || planned === undefined) throw new Error(`VM ${sourceVmId} is not in the plan`);
    const policyRef = (name: string | null) => (name === null ? '' : `<StorageProfile name="${e(name)}"${this.policyHref(plan, name)}/>`);
    const disks = planned.disks
      .map(
        (d) =>
          `<DiskSettings><DiskId>${d.instanceId}</DiskId><SizeMb>${Math.ceil((d.sizeBytes ?? 0) / 1048576)}</SizeMb><UnitNumber>${d.unitNumber ?? 0}</UnitNumber>` +
          `<BusNumber>${d.busNumber ?? 0}</BusNumber><AdapterType>${adapterType(d.busType, d.busSubType)}</AdapterType><ThinProvisioned>true</ThinProvisioned>` +
          policyRef(d.storagePolicy) +
          `<overrideVmDefault>${d.storagePolicy !== planned.storagePolicy}</overrideVmDefault>` +
          (d.sizeBytes === null ? '' : `<VirtualQuantity>${d.sizeBytes}</VirtualQuantity><VirtualQuantityUnit>byte</VirtualQuantityUnit>`) +
          `</DiskSettings>`,
      )
      .join('');
    return (
      `<CreateItem name="${e(vm.name)}">` +
      (vm.description === null ? '' : `<Description>${e(vm.description)}</Description>`) +
      this.networkConnectionXml(vm.nics) +
      (vm.computerName === null ? '' : `<GuestCustomizationSection><ovf:Info>Guest customization</ovf:Info><Enabled>${vm.guestCustomization?.enabled ?? false}</Enabled><ComputerName>${e(vm.computerName)}</ComputerName></GuestCustomizationSection>`) +
      policyRef(planned.storagePolicy) +
      `<VmSpecSection Modified="true"><ovf:Info>Virtual Machine specification</ovf:Info><OsType>otherGuest64</OsType>` +
      `<NumCpus>${vm.cpu.count ?? 1}</NumCpus><NumCoresPerSocket>${vm.cpu.coresPerSocket ?? 1}</NumCoresPerSocket>` +
      `<CpuResourceMhz><Configured>0</Configured></CpuResourceMhz><MemoryResourceMb><Configured>${vm.memoryMiB ?? 1024}</Configured></MemoryResourceMb>` +
      `<DiskSection>${disks}</DiskSection>` +
      (vm.hardwareVersion === null ? '' : `<HardwareVersion>${e(vm.hardwareVersion)}</HardwareVersion>`) +
      `</VmSpecSection></CreateItem>`
    );
  }

  private policyHref(plan: RestorePlan, name: string): string {
    const h = plan.storagePolicyHrefs[name];
    return h ? ` href="${e(h)}"` : '';
  }

  // ---- disks -------------------------------------------------------------------------------------------

  async diskTargets(input: { plan: RestorePlan; vappId: string }): Promise<DiskTarget[]> {
    const { plan, vappId } = input;
    const current = await captureVApp(this.client, vappId);
    const out: DiskTarget[] = [];
    for (const vm of plan.vms) {
      const target = current.model.vms.find((v) => (vm.targetVmId !== null && uuidOf(v.id) === uuidOf(vm.targetVmId)) || v.name === vm.name);
      if (target === undefined) throw new VcdApiError({ status: 404, majorErrorCode: null, minorErrorCode: null, vcdMessage: `VM ${vm.name} is missing`, method: 'GET', path: `/api/vApp/vapp-${uuidOf(vappId)}` }, { code: 'RESTORE_VM_MISSING', message: `VM "${vm.name}" is not in vApp ${vappId}; run the restore again (it creates missing VMs) or plan again` });
      const sorted = [...target.disks].sort((a, b) => a.instanceId - b.instanceId);
      const uuid = uuidOf(target.id) ?? target.id;
      for (const d of vm.disks) {
        const index = sorted.findIndex((x) => x.instanceId === d.instanceId);
        const td = sorted[index];
        if (td === undefined) throw new VcdApiError({ status: 404, majorErrorCode: null, minorErrorCode: null, vcdMessage: `disk ${d.instanceId} is missing`, method: 'GET', path: `/api/vApp/vm-${uuid}` }, { code: 'RESTORE_DISK_MISSING', message: `VM "${vm.name}" has no disk ${d.instanceId}; plan the restore again` });
        out.push({
          diskId: d.diskId,
          vmId: uuid,
          instanceId: d.instanceId,
          target: this.options.locate({ id: target.id, uuid, moref: target.moref, name: target.name }, { instanceId: d.instanceId, index, sizeBytes: td.sizeBytes ?? d.sizeBytes ?? 0 }),
        });
      }
    }
    return out;
  }

  withMaintenance<T>(vappId: string, work: () => Promise<T>): Promise<T> {
    return withMaintenanceMode(this.client, vappId, () => work(), { ...this.options.maintenance, log: this.options.log });
  }

  enterMaintenance(vappId: string): Promise<boolean> {
    return enterMaintenanceModeQuiet(this.client, vappId, { ...this.options.maintenance, log: this.options.log });
  }

  exitMaintenance(vappId: string): Promise<void> {
    return exitMaintenanceMode(this.client, vappId, { ...this.options.maintenance, log: this.options.log });
  }

  // ---- configuration -----------------------------------------------------------------------------------

  async applyConfiguration(input: { plan: RestorePlan; model: VAppModel; vappId: string; report: RestoreReport }): Promise<void> {
    const { plan, model, vappId, report } = input;
    const path = `/api/vApp/vapp-${uuidOf(vappId)}`;
    const current = async () => (await captureVApp(this.client, vappId, { log: this.options.log })).model;
    const put = async (p: string, body: string, contentType: string) => {
      const res = await this.client.requestXml('PUT', p, { body, contentType });
      await this.client.waitForResponseTasks(res, { timeoutMs: this.options.taskTimeoutMs });
    };

    if (!plan.partial) {
      await report.step('networkConfig', `${plan.networks.length} vApp network(s)`, async () => {
        const now = await current();
        if (sameNetworks(now.networks, desiredNetworks(plan, model))) return false;
        await put(`${path}/networkConfigSection/`, this.networkConfigXml(plan, model), MEDIA.networkConfig);
        return true;
      });
    }
    for (const vm of plan.vms) {
      await report.step('vmNetworkConnections', vm.name, async () => {
        const now = (await current()).vms.find((v) => (vm.targetVmId !== null && uuidOf(v.id) === uuidOf(vm.targetVmId)) || v.name === vm.name);
        if (now === undefined) throw new Error(`VM ${vm.name} is not in the vApp`);
        if (sameNics(now.nics, vm.nics)) return false;
        await put(`/api/vApp/vm-${uuidOf(now.id)}/networkConnectionSection/`, this.networkConnectionXml(vm.nics), MEDIA.networkConnection);
        return true;
      });
    }
    if (!plan.partial) {
      await report.step('lease', '', async () => {
        const now = await current();
        const want = plan.lease;
        if ((want.deploymentLeaseSeconds ?? now.lease.deploymentLeaseSeconds) === now.lease.deploymentLeaseSeconds && (want.storageLeaseSeconds ?? now.lease.storageLeaseSeconds) === now.lease.storageLeaseSeconds) return false;
        await put(`${path}/leaseSettingsSection/`, this.leaseXml(plan), MEDIA.lease);
        return true;
      });
      await report.step('startup', `${plan.startup.length} item(s)`, async () => {
        const now = await current();
        const want = plan.startup.filter((s) => now.vms.some((v) => v.name === s.vmName));
        if (JSON.stringify(now.startup) === JSON.stringify(want) || want.length === 0) return false;
        const items = want
          .map(
            (s) =>
              `<ovf:Item ovf:id="${e(s.vmName)}" ovf:order="${s.order ?? 0}" ovf:startAction="${e(s.startAction ?? 'powerOn')}" ovf:startDelay="${s.startDelaySeconds ?? 0}" ` +
              `ovf:stopAction="${e(s.stopAction ?? 'powerOff')}" ovf:stopDelay="${s.stopDelaySeconds ?? 0}"/>`,
          )
          .join('');
        await put(`${path}/startupSection/`, `<ovf:StartupSection xmlns:ovf="${OVF}" xmlns:vcloud="${V}"><ovf:Info>VApp startup section</ovf:Info>${items}</ovf:StartupSection>`, MEDIA.startup);
        return true;
      });
      if (plan.owner !== null) {
        const owner = plan.owner;
        await report.step('owner', owner.name, async () => {
          const now = await current();
          if (now.owner.name === owner.name) return false;
          await this.client.requestXml('PUT', `${path}/owner`, { body: `<Owner xmlns="${V}"><User href="${e(owner.href ?? '')}" type="application/vnd.vmware.admin.user+xml"/></Owner>`, contentType: MEDIA.owner });
          return true;
        });
      }
    }
    if (plan.restoreMetadata) {
      if (!plan.partial) {
        await report.step('metadata', `${plan.metadata.length} entr${plan.metadata.length === 1 ? 'y' : 'ies'}`, async () => {
          const missing = missingMetadata((await current()).metadata, plan.metadata);
          if (missing.length === 0) return false;
          await this.postMetadata(path, missing);
          return true;
        });
      }
      for (const vm of plan.vms) {
        await report.step('vmMetadata', vm.name, async () => {
          const now = (await current()).vms.find((v) => (vm.targetVmId !== null && uuidOf(v.id) === uuidOf(vm.targetVmId)) || v.name === vm.name);
          if (now === undefined) throw new Error(`VM ${vm.name} is not in the vApp`);
          const missing = missingMetadata(now.metadata, vm.metadata);
          if (missing.length === 0) return false;
          await this.postMetadata(`/api/vApp/vm-${uuidOf(now.id)}`, missing);
          return true;
        });
      }
    }
  }

  async finish(input: { plan: RestorePlan; vappId: string; report: RestoreReport }): Promise<void> {
    const { plan, vappId, report } = input;
    const path = `/api/vApp/vapp-${uuidOf(vappId)}`;
    if (plan.mode === 'new') {
      await report.step('removeMarker', '', async () => {
        if ((await this.markerOf(vappId)) === null) return false;
        const res = await this.client.requestXml('DELETE', `${path}/metadata/${this.provider ? 'SYSTEM/' : ''}${encodeURIComponent(RESTORE_MARKER_KEY)}`);
        await this.client.waitForResponseTasks(res, { timeoutMs: this.options.taskTimeoutMs });
        return true;
      });
    }
    if (plan.powerOn) {
      await report.step('powerOn', '', async () => {
        const { node } = await this.client.getXml(path);
        if (attr(node, 'status') === '4') return false;
        const res = await this.client.requestXml('POST', `${path}/power/action/powerOn`);
        await this.client.waitForResponseTasks(res, { timeoutMs: this.options.taskTimeoutMs });
        return true;
      });
    }
  }

  // ---- XML ---------------------------------------------------------------------------------------------

  private async postMetadata(entityPath: string, entries: readonly MetadataEntry[]): Promise<void> {
    const xsiType = { string: 'MetadataStringValue', number: 'MetadataNumberValue', boolean: 'MetadataBooleanValue', dateTime: 'MetadataDateTimeValue' } as const;
    const body =
      `<Metadata xmlns="${V}" xmlns:xsi="${XSI}">` +
      entries
        .map(
          (m) =>
            `<MetadataEntry><Domain visibility="${m.visibility}">${m.domain}</Domain><Key>${e(m.key)}</Key>` +
            `<TypedValue xsi:type="${xsiType[m.type]}"><Value>${e(m.value === null ? '' : String(m.value))}</Value></TypedValue></MetadataEntry>`,
        )
        .join('') +
      `</Metadata>`;
    const res = await this.client.requestXml('POST', `${entityPath}/metadata`, { body, contentType: MEDIA.metadata });
    await this.client.waitForResponseTasks(res, { timeoutMs: this.options.taskTimeoutMs });
  }

  private networkConfigXml(plan: RestorePlan, model: VAppModel): string {
    const configs = desiredNetworks(plan, model)
      .map((n) => {
        const planned = plan.networks.find((p) => p.name === n.name);
        const scopes = n.ipScopes
          .map(
            (s) =>
              `<IpScope><IsInherited>false</IsInherited>${s.gateway === null ? '' : `<Gateway>${e(s.gateway)}</Gateway>`}${s.netmask === null ? '' : `<Netmask>${e(s.netmask)}</Netmask>`}` +
              `${s.subnetPrefixLength === null ? '' : `<SubnetPrefixLength>${s.subnetPrefixLength}</SubnetPrefixLength>`}${s.dns1 === null ? '' : `<Dns1>${e(s.dns1)}</Dns1>`}${s.dns2 === null ? '' : `<Dns2>${e(s.dns2)}</Dns2>`}` +
              `<IsEnabled>true</IsEnabled><IpRanges>${s.ipRanges.map((r) => `<IpRange><StartAddress>${e(r.start ?? '')}</StartAddress><EndAddress>${e(r.end ?? '')}</EndAddress></IpRange>`).join('')}</IpRanges></IpScope>`,
          )
          .join('');
        const parent = planned?.parentNetwork;
        return (
          `<NetworkConfig networkName="${e(n.name)}"><Configuration>${scopes === '' ? '' : `<IpScopes>${scopes}</IpScopes>`}` +
          (parent ? `<ParentNetwork${parent.href ? ` href="${e(parent.href)}"` : ''} name="${e(parent.to)}"/>` : '') +
          `<FenceMode>${n.fenceMode ?? (parent ? 'bridged' : 'isolated')}</FenceMode><RetainNetInfoAcrossDeployments>false</RetainNetInfoAcrossDeployments></Configuration></NetworkConfig>`
        );
      })
      .join('');
    return `<NetworkConfigSection xmlns="${V}" xmlns:ovf="${OVF}"><ovf:Info>The configuration parameters for logical networks</ovf:Info>${configs}</NetworkConfigSection>`;
  }

  private leaseXml(plan: RestorePlan): string {
    const { deploymentLeaseSeconds: d, storageLeaseSeconds: s } = plan.lease;
    return (
      `<LeaseSettingsSection xmlns="${V}" xmlns:ovf="${OVF}"><ovf:Info>Lease settings section</ovf:Info>` +
      (d === null ? '' : `<DeploymentLeaseInSeconds>${d}</DeploymentLeaseInSeconds>`) +
      (s === null ? '' : `<StorageLeaseInSeconds>${s}</StorageLeaseInSeconds>`) +
      `</LeaseSettingsSection>`
    );
  }

  private networkConnectionXml(nics: readonly VmNic[]): string {
    const primary = nics.find((n) => n.primary === true) ?? nics[0];
    return (
      `<NetworkConnectionSection xmlns="${V}" xmlns:ovf="${OVF}"><ovf:Info>Network connections</ovf:Info>` +
      (primary === undefined ? '' : `<PrimaryNetworkConnectionIndex>${primary.index}</PrimaryNetworkConnectionIndex>`) +
      [...nics]
        .sort((a, b) => a.index - b.index)
        .map(
          (n) =>
            `<NetworkConnection network="${e(n.network ?? 'none')}"><NetworkConnectionIndex>${n.index}</NetworkConnectionIndex>` +
            (n.ipAddress === null ? '' : `<IpAddress>${e(n.ipAddress)}</IpAddress>`) +
            `<IsConnected>${n.connected ?? true}</IsConnected>` +
            (n.macAddress === null ? '' : `<MACAddress>${e(n.macAddress)}</MACAddress>`) +
            `<IpAddressAllocationMode>${e(n.allocationMode ?? 'POOL')}</IpAddressAllocationMode>` +
            (n.adapterType === null ? '' : `<NetworkAdapterType>${e(n.adapterType)}</NetworkAdapterType>`) +
            `</NetworkConnection>`,
        )
        .join('') +
      `</NetworkConnectionSection>`
    );
  }
}

// ---- comparisons ----------------------------------------------------------------------------------------

/** The model's vApp networks with their parents remapped as planned. */
function desiredNetworks(plan: RestorePlan, model: VAppModel): VAppNetwork[] {
  return model.networks.map((n) => {
    const planned = plan.networks.find((p) => p.name === n.name);
    return { ...n, parentNetwork: planned?.parentNetwork?.to ?? null };
  });
}

function sameNetworks(a: readonly VAppNetwork[], b: readonly VAppNetwork[]): boolean {
  const key = (list: readonly VAppNetwork[]) =>
    JSON.stringify(
      [...list]
        .sort((x, y) => x.name.localeCompare(y.name))
        .map((n) => ({ name: n.name, fenceMode: n.fenceMode, parent: n.parentNetwork, scopes: n.ipScopes.map((s) => ({ g: s.gateway, m: s.netmask, r: s.ipRanges })) })),
    );
  return key(a) === key(b);
}

function sameNics(a: readonly VmNic[], b: readonly VmNic[]): boolean {
  const key = (list: readonly VmNic[]) =>
    JSON.stringify([...list].sort((x, y) => x.index - y.index).map((n) => [n.index, n.network, n.ipAddress, n.macAddress, n.allocationMode, n.adapterType, n.connected]));
  return key(a) === key(b);
}

/** Entries of `want` that `have` lacks or holds with another value, type or visibility. */
function missingMetadata(have: readonly MetadataEntry[], want: readonly MetadataEntry[]): MetadataEntry[] {
  return want.filter((w) => {
    const h = have.find((x) => x.key === w.key && x.domain === w.domain);
    return h === undefined || h.value !== w.value || h.type !== w.type || h.visibility !== w.visibility;
  });
}

/** DiskSettings/AdapterType from the captured bus: 1 IDE, 2 BusLogic, 3 LSI Logic, 4 LSI SAS, 5 paravirtual, 6 SATA, 7 NVMe. */
function adapterType(busType: number | null, busSubType: string | null): number {
  if (busType === 5) return 1;
  if (busType === 20) return (busSubType ?? '').includes('nvme') ? 7 : 6;
  switch (busSubType) {
    case 'buslogic':
      return 2;
    case 'lsilogic':
      return 3;
    case 'lsilogicsas':
      return 4;
    default:
      return 5;
  }
}
