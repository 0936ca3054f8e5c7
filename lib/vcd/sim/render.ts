/**
 * Real-shaped vCD XML for the simulator, in the prefix style of 10.4–10.6 responses: v1.5 as the default
 * namespace, `ovf:`, `rasd:`, `vssd:`, `vmw:`, `vmext:`, and `ns10:` for the vcloud attributes of OVF
 * sections; links listed twice (`+xml` and `+json`); `xsi:nil` vssd fields.
 */
import { escapeXml as e } from '../xml.js';
import type { SimMetadataEntry, SimOrg, SimTask, SimUser, SimVApp, SimVdc, SimVm } from './inventory.js';

export const NS_DECL =
  'xmlns="http://www.vmware.com/vcloud/v1.5" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ' +
  'xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" ' +
  'xmlns:common="http://schemas.dmtf.org/wbem/wscim/1/common" ' +
  'xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" ' +
  'xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:ovfenv="http://schemas.dmtf.org/ovf/environment/1" ' +
  'xmlns:vmext="http://www.vmware.com/vcloud/extension/v1.5" xmlns:ns9="http://www.vmware.com/vcloud/versions" ' +
  'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';

const HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';

export interface RenderContext {
  readonly base: string;
  /** System administrators see VCloudExtension (morefs). */
  readonly admin: boolean;
  readonly now: number;
}

const MIB = 1024 * 1024;

export const href = {
  vapp: (c: RenderContext, id: string) => `${c.base}/api/vApp/vapp-${id}`,
  vm: (c: RenderContext, id: string) => `${c.base}/api/vApp/vm-${id}`,
  vdc: (c: RenderContext, id: string) => `${c.base}/api/vdc/${id}`,
  org: (c: RenderContext, id: string) => `${c.base}/api/org/${id}`,
  user: (c: RenderContext, id: string) => `${c.base}/api/admin/user/${id}`,
  task: (c: RenderContext, id: string) => `${c.base}/api/task/${id}`,
  network: (c: RenderContext, id: string) => `${c.base}/api/admin/network/${id}`,
  storagePolicy: (c: RenderContext, id: string) => `${c.base}/api/vdcStorageProfile/${id}`,
  vimServer: (c: RenderContext, id: string) => `${c.base}/api/admin/extension/vimServer/${id}`,
};

function link(rel: string, h: string, type?: string, name?: string): string {
  return `<Link rel="${e(rel)}" href="${e(h)}"${type ? ` type="${e(type)}"` : ''}${name ? ` name="${e(name)}"` : ''}/>`;
}

/** Both the +xml and the +json link, as 10.x does. */
function links2(rel: string, h: string, mediaBase: string, name?: string): string {
  return link(rel, h, `${mediaBase}+xml`, name) + link(rel, h, `${mediaBase}+json`, name);
}

export function renderVersions(versions: readonly string[], deprecated: readonly string[], base: string): string {
  const infos = versions
    .map(
      (v) =>
        `<VersionInfo deprecated="${deprecated.includes(v)}"><Version>${e(v)}</Version><LoginUrl>${e(base)}/cloudapi/1.0.0/sessions</LoginUrl>` +
        `<ProviderLoginUrl>${e(base)}/cloudapi/1.0.0/sessions/provider</ProviderLoginUrl></VersionInfo>`,
    )
    .join('');
  return `${HEAD}<SupportedVersions xmlns="http://www.vmware.com/vcloud/versions" xmlns:ns2="http://www.vmware.com/vcloud/v1.5">${infos}</SupportedVersions>`;
}

export function renderError(status: number, minor: string, message: string): string {
  return `${HEAD}<Error xmlns="http://www.vmware.com/vcloud/v1.5" majorErrorCode="${status}" minorErrorCode="${e(minor)}" message="${e(message)}" stackTrace="com.vmware.vcloud.api.presentation.service.SimulatedException: ${e(message)}"/>`;
}

export function taskStatus(task: SimTask, now: number): string {
  if (task.canceled) return 'canceled';
  if (now < task.doneAt) return now < task.startedAt + 5 ? 'queued' : 'running';
  return task.fail ? 'error' : 'success';
}

export function renderTaskElement(c: RenderContext, task: SimTask, withNs: boolean): string {
  const status = taskStatus(task, c.now);
  const progress = status === 'success' ? 100 : status === 'running' ? Math.min(99, Math.floor(((c.now - task.startedAt) / Math.max(1, task.doneAt - task.startedAt)) * 100)) : 0;
  const end = status === 'success' || status === 'error' || status === 'canceled' ? ` endTime="${new Date(task.doneAt).toISOString()}"` : '';
  return (
    `<Task${withNs ? ' xmlns="http://www.vmware.com/vcloud/v1.5"' : ''} cancelRequested="${task.canceled}" expiryTime="${new Date(task.startedAt + 90 * 86_400_000).toISOString()}" ` +
    `operation="${e(task.operation)}" operationName="${e(task.operationName)}" serviceNamespace="com.vmware.vcloud" startTime="${new Date(task.startedAt).toISOString()}"${end} ` +
    `status="${status}" name="task" id="urn:vcloud:task:${task.id}" href="${href.task(c, task.id)}" type="application/vnd.vmware.vcloud.task+xml">` +
    link('task:cancel', `${href.task(c, task.id)}/action/cancel`) +
    `<Owner href="${e(task.ownerHref)}" name="${e(task.ownerName)}" type="${e(task.ownerType)}"/>` +
    (status === 'error' ? `<Error majorErrorCode="500" minorErrorCode="INTERNAL_SERVER_ERROR" message="${e(task.errorMessage)}"/>` : '') +
    (status === 'running' || status === 'queued' ? `<Progress>${progress}</Progress>` : '') +
    `<Details/></Task>`
  );
}

export function renderTask(c: RenderContext, task: SimTask): string {
  return HEAD + renderTaskElement(c, task, true);
}

function tasksBlock(c: RenderContext, tasks: readonly SimTask[]): string {
  const running = tasks.filter((t) => {
    const s = taskStatus(t, c.now);
    return s === 'running' || s === 'queued';
  });
  return running.length === 0 ? '' : `<Tasks>${running.map((t) => renderTaskElement(c, t, false)).join('')}</Tasks>`;
}

function networkConfig(c: RenderContext, vapp: SimVApp): string {
  return vapp.networks
    .map((n) => {
      const scope =
        n.gateway === null
          ? ''
          : `<IpScopes><IpScope><IsInherited>${n.fenceMode === 'bridged'}</IsInherited><Gateway>${e(n.gateway)}</Gateway><Netmask>${e(n.netmask ?? '')}</Netmask>` +
            (n.prefixLength === null ? '' : `<SubnetPrefixLength>${n.prefixLength}</SubnetPrefixLength>`) +
            (n.dns1 === null ? '' : `<Dns1>${e(n.dns1)}</Dns1>`) +
            (n.dns2 === null ? '' : `<Dns2>${e(n.dns2)}</Dns2>`) +
            `<IsEnabled>true</IsEnabled><IpRanges>${n.ipRanges.map((r) => `<IpRange><StartAddress>${e(r.start)}</StartAddress><EndAddress>${e(r.end)}</EndAddress></IpRange>`).join('')}</IpRanges></IpScope></IpScopes>`;
      const parent = n.parent === null ? '' : `<ParentNetwork href="${href.network(c, n.parent.id)}" id="${n.parent.id}" name="${e(n.parent.name)}"/>`;
      return (
        `<NetworkConfig networkName="${e(n.name)}"><Description/><Configuration>${scope}${parent}<FenceMode>${n.fenceMode}</FenceMode>` +
        `<RetainNetInfoAcrossDeployments>false</RetainNetInfoAcrossDeployments></Configuration><IsDeployed>true</IsDeployed></NetworkConfig>`
      );
    })
    .join('');
}

function vimRef(c: RenderContext, vm: SimVm, tag: string, moref: string, type: string): string {
  return (
    `<vmext:${tag}><vmext:VimServerRef href="${href.vimServer(c, vm.vcenter.id)}" name="${e(vm.vcenter.name)}" type="application/vnd.vmware.admin.vmwvirtualcenter+xml"/>` +
    `<vmext:MoRef>${e(moref)}</vmext:MoRef><vmext:VimObjectType>${type}</vmext:VimObjectType></vmext:${tag}>`
  );
}

export function renderVmElement(c: RenderContext, vm: SimVm, withNs: boolean): string {
  const vh = href.vm(c, vm.id);
  const status = vm.poweredOn ? 4 : 8;
  const controllers = [...new Set(vm.disks.map((d) => `${d.busType}:${d.busNumber}:${d.busSubType}`))];
  let instance = 1;
  const nicItems = vm.nics.map(
    (n) =>
      `<ovf:Item><rasd:Address>${e(n.macAddress)}</rasd:Address><rasd:AddressOnParent>${n.index}</rasd:AddressOnParent><rasd:AutomaticAllocation>${n.connected}</rasd:AutomaticAllocation>` +
      `<rasd:Connection ns10:ipAddressingMode="${e(n.allocationMode)}" ns10:ipAddress="${e(n.ipAddress ?? '')}" ns10:primaryNetworkConnection="${n.index === 0}">${e(n.network)}</rasd:Connection>` +
      `<rasd:Description>${e(n.adapterType)} ethernet adapter on "${e(n.network)}"</rasd:Description><rasd:ElementName>Network adapter ${n.index}</rasd:ElementName>` +
      `<rasd:InstanceID>${instance++}</rasd:InstanceID><rasd:ResourceSubType>${e(n.adapterType)}</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></ovf:Item>`,
  );
  const controllerIds = new Map<string, number>();
  const controllerItems = controllers.map((key) => {
    const [busType, busNumber, subType] = key.split(':');
    const id = instance++;
    controllerIds.set(key, id);
    return (
      `<ovf:Item><rasd:Address>${busNumber}</rasd:Address><rasd:Description>${busType === '6' ? 'SCSI Controller' : busType === '5' ? 'IDE Controller' : 'SATA Controller'}</rasd:Description>` +
      `<rasd:ElementName>Controller ${busNumber}</rasd:ElementName><rasd:InstanceID>${id}</rasd:InstanceID><rasd:ResourceSubType>${e(subType ?? '')}</rasd:ResourceSubType>` +
      `<rasd:ResourceType>${busType}</rasd:ResourceType></ovf:Item>`
    );
  });
  const diskItems = vm.disks.map(
    (d) =>
      `<ovf:Item><rasd:AddressOnParent>${d.unitNumber}</rasd:AddressOnParent><rasd:Description>Hard disk</rasd:Description><rasd:ElementName>Hard disk ${d.instanceId - 1999}</rasd:ElementName>` +
      `<rasd:HostResource ns10:storageProfileHref="${href.storagePolicy(c, d.storagePolicy.id)}" ns10:busType="${d.busType}" ns10:busSubType="${e(d.busSubType)}" ns10:capacity="${Math.ceil(d.sizeBytes / MIB)}" ns10:iops="0" ns10:storageProfileOverrideVmDefault="${d.storagePolicy !== vm.storagePolicy}"></rasd:HostResource>` +
      `<rasd:InstanceID>${d.instanceId}</rasd:InstanceID><rasd:Parent>${controllerIds.get(`${d.busType}:${d.busNumber}:${d.busSubType}`)}</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType>` +
      `<rasd:VirtualQuantity>${d.sizeBytes}</rasd:VirtualQuantity><rasd:VirtualQuantityUnits>byte</rasd:VirtualQuantityUnits></ovf:Item>`,
  );
  const cpu =
    `<ovf:Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:Description>Number of Virtual CPUs</rasd:Description><rasd:ElementName>${vm.cpus} virtual CPU(s)</rasd:ElementName>` +
    `<rasd:InstanceID>${instance++}</rasd:InstanceID><rasd:Reservation>0</rasd:Reservation><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>${vm.cpus}</rasd:VirtualQuantity>` +
    `<rasd:Weight>0</rasd:Weight><vmw:CoresPerSocket ovf:required="false">${vm.coresPerSocket}</vmw:CoresPerSocket></ovf:Item>`;
  const mem =
    `<ovf:Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:Description>Memory Size</rasd:Description><rasd:ElementName>${vm.memoryMiB} MB of memory</rasd:ElementName>` +
    `<rasd:InstanceID>${instance++}</rasd:InstanceID><rasd:Reservation>0</rasd:Reservation><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>${vm.memoryMiB}</rasd:VirtualQuantity><rasd:Weight>0</rasd:Weight></ovf:Item>`;
  const ext = c.admin
    ? `<VCloudExtension required="false"><vmext:VmVimInfo>${vimRef(c, vm, 'VmVimObjectRef', vm.moref, 'VIRTUAL_MACHINE')}${vimRef(c, vm, 'DatastoreVimObjectRef', 'datastore-11', 'DATASTORE')}` +
      `${vimRef(c, vm, 'HostVimObjectRef', 'host-9', 'HOST')}<vmext:VirtualDisksMaxChainLength>1</vmext:VirtualDisksMaxChainLength></vmext:VmVimInfo></VCloudExtension>`
    : '';
  const adapterCode = (busType: number, sub: string) =>
    busType === 5 ? 1 : busType === 20 ? (sub.includes('nvme') ? 7 : 6) : sub === 'buslogic' ? 2 : sub === 'lsilogic' ? 3 : sub === 'lsilogicsas' ? 4 : 5;
  return (
    `<Vm${withNs ? ` ${NS_DECL}` : ''} needsCustomization="false" nestedHypervisorEnabled="false" deployed="${vm.poweredOn}" status="${status}" name="${e(vm.name)}" id="urn:vcloud:vm:${vm.id}" href="${vh}" type="application/vnd.vmware.vcloud.vm+xml">` +
    ext +
    links2(vm.poweredOn ? 'power:powerOff' : 'power:powerOn', `${vh}/power/action/${vm.poweredOn ? 'powerOff' : 'powerOn'}`, 'application/vnd.vmware.vcloud.task') +
    links2('down', `${vh}/metadata`, 'application/vnd.vmware.vcloud.metadata') +
    link('up', href.vapp(c, vm.vapp.id), 'application/vnd.vmware.vcloud.vApp+xml') +
    (vm.description === '' ? '<Description/>' : `<Description>${e(vm.description)}</Description>`) +
    `<ovf:VirtualHardwareSection xmlns:ns10="http://www.vmware.com/vcloud/v1.5" ovf:transport="" ns10:type="application/vnd.vmware.vcloud.virtualHardwareSection+xml" ns10:href="${vh}/virtualHardwareSection/">` +
    `<ovf:Info>Virtual hardware requirements</ovf:Info><ovf:System><vssd:AutomaticRecoveryAction xsi:nil="true"/><vssd:Caption xsi:nil="true"/><vssd:ElementName>Virtual Hardware Family</vssd:ElementName>` +
    `<vssd:InstanceID>0</vssd:InstanceID><vssd:VirtualSystemIdentifier>${e(vm.name)}</vssd:VirtualSystemIdentifier><vssd:VirtualSystemType>${e(vm.hardwareVersion)}</vssd:VirtualSystemType></ovf:System>` +
    nicItems.join('') +
    controllerItems.join('') +
    diskItems.join('') +
    cpu +
    mem +
    `</ovf:VirtualHardwareSection>` +
    `<ovf:OperatingSystemSection xmlns:ns10="http://www.vmware.com/vcloud/v1.5" ovf:id="101" ns10:type="application/vnd.vmware.vcloud.operatingSystemSection+xml" vmw:osType="${e(vm.osType)}"><ovf:Info>Specifies the operating system installed</ovf:Info></ovf:OperatingSystemSection>` +
    `<NetworkConnectionSection href="${vh}/networkConnectionSection/" type="application/vnd.vmware.vcloud.networkConnectionSection+xml" ovf:required="false"><ovf:Info>Specifies the available VM network connections</ovf:Info>` +
    (vm.nics.length > 0 ? `<PrimaryNetworkConnectionIndex>0</PrimaryNetworkConnectionIndex>` : '') +
    // 10.x may list NICs out of index order; the simulator does too.
    [...vm.nics]
      .reverse()
      .map(
        (n) =>
          `<NetworkConnection needsCustomization="false" network="${e(n.network)}"><NetworkConnectionIndex>${n.index}</NetworkConnectionIndex>` +
          (n.ipAddress === null ? '' : `<IpAddress>${e(n.ipAddress)}</IpAddress><IpType>IPV4</IpType>`) +
          `<IsConnected>${n.connected}</IsConnected><MACAddress>${e(n.macAddress)}</MACAddress><IpAddressAllocationMode>${e(n.allocationMode)}</IpAddressAllocationMode>` +
          `<SecondaryIpAddressAllocationMode>NONE</SecondaryIpAddressAllocationMode><NetworkAdapterType>${e(n.adapterType)}</NetworkAdapterType></NetworkConnection>`,
      )
      .join('') +
    link('edit', `${vh}/networkConnectionSection/`, 'application/vnd.vmware.vcloud.networkConnectionSection+xml') +
    `</NetworkConnectionSection>` +
    `<GuestCustomizationSection href="${vh}/guestCustomizationSection/" type="application/vnd.vmware.vcloud.guestCustomizationSection+xml" ovf:required="false"><ovf:Info>Specifies Guest OS Customization Settings</ovf:Info>` +
    `<Enabled>true</Enabled><ChangeSid>false</ChangeSid><VirtualMachineId>${vm.id}</VirtualMachineId><JoinDomainEnabled>false</JoinDomainEnabled><UseOrgSettings>false</UseOrgSettings>` +
    `<AdminPasswordEnabled>${vm.adminPassword !== null}</AdminPasswordEnabled><AdminPasswordAuto>false</AdminPasswordAuto>` +
    (vm.adminPassword === null ? '' : `<AdminPassword>${e(vm.adminPassword)}</AdminPassword>`) +
    `<AdminAutoLogonEnabled>false</AdminAutoLogonEnabled><AdminAutoLogonCount>0</AdminAutoLogonCount><ResetPasswordRequired>false</ResetPasswordRequired><ComputerName>${e(vm.computerName)}</ComputerName>` +
    `</GuestCustomizationSection>` +
    `<RuntimeInfoSection xmlns:ns10="http://www.vmware.com/vcloud/v1.5" ns10:type="application/vnd.vmware.vcloud.virtualHardwareSection+xml"><ovf:Info>Specifies Runtime info</ovf:Info><VMWareTools version="12352"/></RuntimeInfoSection>` +
    `<DateCreated>${vm.vapp.createdAt}</DateCreated><VAppScopedLocalId>${e(vm.name)}</VAppScopedLocalId>` +
    `<VmCapabilities><MemoryHotAddEnabled>false</MemoryHotAddEnabled><CpuHotAddEnabled>false</CpuHotAddEnabled></VmCapabilities>` +
    `<StorageProfile href="${href.storagePolicy(c, vm.storagePolicy.id)}" id="urn:vcloud:vdcstorageProfile:${vm.storagePolicy.id}" name="${e(vm.storagePolicy.name)}" type="application/vnd.vmware.vcloud.vdcStorageProfile+xml"/>` +
    `<BootOptions><BootDelay>0</BootDelay><EnterBIOSSetup>false</EnterBIOSSetup><EfiSecureBootEnabled>false</EfiSecureBootEnabled></BootOptions>` +
    `<VmSpecSection Modified="false"><ovf:Info>The configuration parameters for logical networks</ovf:Info><OsType>${e(vm.osType)}</OsType><NumCpus>${vm.cpus}</NumCpus>` +
    `<NumCoresPerSocket>${vm.coresPerSocket}</NumCoresPerSocket><CpuResourceMhz><Configured>0</Configured></CpuResourceMhz><MemoryResourceMb><Configured>${vm.memoryMiB}</Configured></MemoryResourceMb>` +
    `<DiskSection>${vm.disks
      .map(
        (d) =>
          `<DiskSettings><DiskId>${d.instanceId}</DiskId><SizeMb>${Math.ceil(d.sizeBytes / MIB)}</SizeMb><UnitNumber>${d.unitNumber}</UnitNumber><BusNumber>${d.busNumber}</BusNumber>` +
          `<AdapterType>${adapterCode(d.busType, d.busSubType)}</AdapterType><ThinProvisioned>true</ThinProvisioned>` +
          `<StorageProfile href="${href.storagePolicy(c, d.storagePolicy.id)}" id="urn:vcloud:vdcstorageProfile:${d.storagePolicy.id}" name="${e(d.storagePolicy.name)}" type="application/vnd.vmware.vcloud.vdcStorageProfile+xml"/>` +
          `<overrideVmDefault>${d.storagePolicy !== vm.storagePolicy}</overrideVmDefault><VirtualQuantityUnit>byte</VirtualQuantityUnit></DiskSettings>`,
      )
      .join('')}</DiskSection>` +
    `<HardwareVersion href="${href.vdc(c, vm.vapp.vdc.id)}/hwv/${e(vm.hardwareVersion)}" type="application/vnd.vmware.vcloud.virtualHardwareVersion+xml">${e(vm.hardwareVersion)}</HardwareVersion>` +
    `<VmToolsVersion>12352</VmToolsVersion><VirtualCpuType>VM64</VirtualCpuType><TimeSyncWithHost>false</TimeSyncWithHost></VmSpecSection>` +
    tasksBlock(c, []) +
    `</Vm>`
  );
}

export function renderVm(c: RenderContext, vm: SimVm): string {
  return HEAD + renderVmElement(c, vm, true);
}

export function renderVApp(c: RenderContext, vapp: SimVApp): string {
  const h = href.vapp(c, vapp.id);
  const deployed = vapp.vms.some((v) => v.poweredOn);
  const status = vapp.vms.length === 0 ? 8 : vapp.vms.every((v) => v.poweredOn) ? 4 : vapp.vms.some((v) => v.poweredOn) ? 10 : 8;
  return (
    HEAD +
    `<VApp ${NS_DECL} ovfDescriptorUploaded="true" deployed="${deployed}" status="${status}" name="${e(vapp.name)}" id="urn:vcloud:vapp:${vapp.id}" href="${h}" type="application/vnd.vmware.vcloud.vApp+xml">` +
    (vapp.inMaintenanceMode ? link('exitMaintenanceMode', `${h}/action/exitMaintenanceMode`) : link('enterMaintenanceMode', `${h}/action/enterMaintenanceMode`)) +
    links2('up', href.vdc(c, vapp.vdc.id), 'application/vnd.vmware.vcloud.vdc', vapp.vdc.name) +
    links2('down', `${h}/owner`, 'application/vnd.vmware.vcloud.owner') +
    links2('down', `${h}/metadata`, 'application/vnd.vmware.vcloud.metadata') +
    link('controlAccess', `${h}/action/controlAccess`, 'application/vnd.vmware.vcloud.controlAccess+xml') +
    (vapp.description === '' ? '<Description/>' : `<Description>${e(vapp.description)}</Description>`) +
    tasksBlock(c, vapp.tasks) +
    `<LeaseSettingsSection href="${h}/leaseSettingsSection/" type="application/vnd.vmware.vcloud.leaseSettingsSection+xml" ovf:required="false"><ovf:Info>Lease settings section</ovf:Info>` +
    link('edit', `${h}/leaseSettingsSection/`, 'application/vnd.vmware.vcloud.leaseSettingsSection+xml') +
    `<DeploymentLeaseInSeconds>${vapp.deploymentLeaseSeconds}</DeploymentLeaseInSeconds><StorageLeaseInSeconds>${vapp.storageLeaseSeconds}</StorageLeaseInSeconds></LeaseSettingsSection>` +
    `<ovf:StartupSection xmlns:ns10="http://www.vmware.com/vcloud/v1.5" ns10:type="application/vnd.vmware.vcloud.startupSection+xml" ns10:href="${h}/startupSection/"><ovf:Info>VApp startup section</ovf:Info>` +
    (vapp.startup ?? vapp.vms.map((vm, i) => ({ vmName: vm.name, order: i, startAction: 'powerOn', startDelay: 0, stopAction: 'powerOff', stopDelay: 0 })))
      .map((s) => `<ovf:Item ovf:id="${e(s.vmName)}" ovf:order="${s.order}" ovf:startAction="${e(s.startAction)}" ovf:startDelay="${s.startDelay}" ovf:stopAction="${e(s.stopAction)}" ovf:stopDelay="${s.stopDelay}"/>`)
      .join('') +
    link('edit', `${h}/startupSection/`, 'application/vnd.vmware.vcloud.startupSection+xml') +
    `</ovf:StartupSection>` +
    `<ovf:NetworkSection xmlns:ns10="http://www.vmware.com/vcloud/v1.5" ns10:type="application/vnd.vmware.vcloud.networkSection+xml" ns10:href="${h}/networkSection/"><ovf:Info>The list of logical networks</ovf:Info>` +
    vapp.networks.map((n) => `<ovf:Network ovf:name="${e(n.name)}"><ovf:Description/></ovf:Network>`).join('') +
    `</ovf:NetworkSection>` +
    `<NetworkConfigSection href="${h}/networkConfigSection/" type="application/vnd.vmware.vcloud.networkConfigSection+xml" ovf:required="false"><ovf:Info>The configuration parameters for logical networks</ovf:Info>` +
    link('edit', `${h}/networkConfigSection/`, 'application/vnd.vmware.vcloud.networkConfigSection+xml') +
    networkConfig(c, vapp) +
    `</NetworkConfigSection>` +
    `<DateCreated>${vapp.createdAt}</DateCreated>` +
    (vapp.owner === null
      ? ''
      : `<Owner type="application/vnd.vmware.vcloud.owner+xml"><User href="${href.user(c, vapp.owner.id)}" name="${e(vapp.owner.name)}" type="application/vnd.vmware.admin.user+xml"/></Owner>`) +
    `<autoNature>${vapp.standalone}</autoNature><InMaintenanceMode>${vapp.inMaintenanceMode}</InMaintenanceMode>` +
    `<Children>${vapp.vms.map((vm) => renderVmElement(c, vm, false)).join('')}</Children>` +
    `</VApp>`
  );
}

export function renderMetadata(c: RenderContext, ownerHref: string, ownerType: string, entries: Iterable<SimMetadataEntry>): string {
  const xsiType = { string: 'MetadataStringValue', number: 'MetadataNumberValue', boolean: 'MetadataBooleanValue', dateTime: 'MetadataDateTimeValue' } as const;
  const body = [...entries]
    .filter((m) => c.admin || m.visibility !== 'PRIVATE')
    .map((m) => {
      const entryHref = `${ownerHref}/metadata/${m.domain === 'SYSTEM' ? 'SYSTEM/' : ''}${encodeURIComponent(m.key)}`;
      return (
        `<MetadataEntry href="${e(entryHref)}" type="application/vnd.vmware.vcloud.metadata.value+xml">` +
        link('edit', entryHref, 'application/vnd.vmware.vcloud.metadata.value+xml') +
        `<Domain visibility="${m.visibility}">${m.domain}</Domain><Key>${e(m.key)}</Key>` +
        `<TypedValue xsi:type="${xsiType[m.type]}"><Value>${e(m.value)}</Value></TypedValue></MetadataEntry>`
      );
    })
    .join('');
  return (
    HEAD +
    `<Metadata xmlns="http://www.vmware.com/vcloud/v1.5" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" href="${e(ownerHref)}/metadata" type="application/vnd.vmware.vcloud.metadata+xml">` +
    link('up', ownerHref, ownerType) +
    link('add', `${ownerHref}/metadata`, 'application/vnd.vmware.vcloud.metadata+xml') +
    body +
    `</Metadata>`
  );
}

export function renderControlAccess(vapp: SimVApp, c: RenderContext): string {
  const owner = vapp.owner;
  return (
    HEAD +
    `<ControlAccessParams xmlns="http://www.vmware.com/vcloud/v1.5"><IsSharedToEveryone>false</IsSharedToEveryone>` +
    (owner === null
      ? ''
      : `<AccessSettings><AccessSetting><Subject href="${href.user(c, owner.id)}" name="${e(owner.name)}" type="application/vnd.vmware.admin.user+xml"/><AccessLevel>FullControl</AccessLevel></AccessSetting></AccessSettings>`) +
    `</ControlAccessParams>`
  );
}

export function renderUser(c: RenderContext, user: SimUser): string {
  return (
    HEAD +
    `<User xmlns="http://www.vmware.com/vcloud/v1.5" name="${e(user.name)}" id="urn:vcloud:user:${user.id}" href="${href.user(c, user.id)}" type="application/vnd.vmware.admin.user+xml">` +
    link('up', `${c.base}/api/admin/org/${user.org.id}`, 'application/vnd.vmware.admin.organization+xml') +
    `<FullName>${e(user.name)}</FullName><IsEnabled>true</IsEnabled><IsLocked>false</IsLocked><IsExternal>false</IsExternal>` +
    `<DeployedVmQuota>${user.deployedVmQuota}</DeployedVmQuota><StoredVmQuota>${user.storedVmQuota}</StoredVmQuota></User>`
  );
}

export function renderVdc(c: RenderContext, vdc: SimVdc): string {
  return (
    HEAD +
    `<Vdc xmlns="http://www.vmware.com/vcloud/v1.5" status="1" name="${e(vdc.name)}" id="urn:vcloud:vdc:${vdc.id}" href="${href.vdc(c, vdc.id)}" type="application/vnd.vmware.vcloud.vdc+xml">` +
    links2('up', href.org(c, vdc.org.id), 'application/vnd.vmware.vcloud.org') +
    `<AllocationModel>Flex</AllocationModel><ResourceEntities>` +
    vdc.vapps.map((v) => `<ResourceEntity href="${href.vapp(c, v.id)}" id="urn:vcloud:vapp:${v.id}" name="${e(v.name)}" type="application/vnd.vmware.vcloud.vApp+xml"/>`).join('') +
    `</ResourceEntities><AvailableNetworks>` +
    vdc.networks.map((n) => `<Network href="${href.network(c, n.id)}" id="urn:vcloud:network:${n.id}" name="${e(n.name)}" type="application/vnd.vmware.vcloud.network+xml"/>`).join('') +
    `</AvailableNetworks><VdcStorageProfiles>` +
    vdc.storagePolicies.map((p) => `<VdcStorageProfile href="${href.storagePolicy(c, p.id)}" id="urn:vcloud:vdcstorageProfile:${p.id}" name="${e(p.name)}" type="application/vnd.vmware.vcloud.vdcStorageProfile+xml"/>`).join('') +
    `</VdcStorageProfiles><IsEnabled>true</IsEnabled></Vdc>`
  );
}

export function renderOrg(c: RenderContext, org: SimOrg): string {
  return (
    HEAD +
    `<Org xmlns="http://www.vmware.com/vcloud/v1.5" name="${e(org.name)}" id="urn:vcloud:org:${org.id}" href="${href.org(c, org.id)}" type="application/vnd.vmware.vcloud.org+xml">` +
    org.vdcs.map((v) => link('down', href.vdc(c, v.id), 'application/vnd.vmware.vcloud.vdc+xml', v.name)).join('') +
    `<Description/><FullName>${e(org.fullName)}</FullName><IsEnabled>true</IsEnabled></Org>`
  );
}

export function renderOrgList(c: RenderContext, orgs: readonly SimOrg[]): string {
  return (
    HEAD +
    `<OrgList xmlns="http://www.vmware.com/vcloud/v1.5" href="${c.base}/api/org/" type="application/vnd.vmware.vcloud.orgList+xml">` +
    orgs.map((o) => `<Org href="${href.org(c, o.id)}" name="${e(o.name)}" type="application/vnd.vmware.vcloud.org+xml"/>`).join('') +
    `</OrgList>`
  );
}

export function renderQuery(
  c: RenderContext,
  q: { type: string; recordElement: string; page: number; pageSize: number; total: number; records: ReadonlyArray<Record<string, string>>; query: URLSearchParams },
): string {
  const pageHref = (p: number) => {
    const params = new URLSearchParams(q.query);
    params.set('page', String(p));
    params.set('pageSize', String(q.pageSize));
    return `${c.base}/api/query?${params.toString()}`;
  };
  const lastPage = Math.max(1, Math.ceil(q.total / q.pageSize));
  const linkType = 'application/vnd.vmware.vcloud.query.records+xml';
  const pageLinks =
    q.total > q.pageSize
      ? link('firstPage', pageHref(1), linkType) +
        (q.page > 1 ? link('previousPage', pageHref(q.page - 1), linkType) : '') +
        (q.page < lastPage ? link('nextPage', pageHref(q.page + 1), linkType) : '') +
        link('lastPage', pageHref(lastPage), linkType)
      : '';
  const records = q.records.map((r) => `<${q.recordElement} ${Object.entries(r).map(([k, v]) => `${k}="${e(v)}"`).join(' ')}/>`).join('');
  return (
    HEAD +
    `<QueryResultRecords xmlns="http://www.vmware.com/vcloud/v1.5" total="${q.total}" pageSize="${q.pageSize}" page="${q.page}" name="${e(q.type)}" ` +
    `type="${linkType}" href="${e(pageHref(q.page))}">` +
    pageLinks +
    link('alternate', pageHref(q.page).replace('format=records', 'format=references'), 'application/vnd.vmware.vcloud.query.references+xml') +
    records +
    `</QueryResultRecords>`
  );
}
