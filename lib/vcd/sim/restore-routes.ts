/**
 * Restore endpoints of the vCD simulator (references/vcd-api.md §8), added with `sim.addRoute` so the core
 * server stays as it is:
 *
 * | endpoint | answer |
 * | --- | --- |
 * | `POST /api/vdc/<id>/action/composeVApp` (ComposeVAppParams) | `201` VApp (+ Task); `400 DUPLICATE_NAME`; `400` unknown network / bad element order |
 * | `POST /api/vApp/vapp-<id>/action/recomposeVApp` (RecomposeVAppParams with CreateItem / DeleteItem) | `202` Task; new VMs get disk image files |
 * | `DELETE /api/vApp/vapp-<id>` | `202` Task; `400` while a VM is powered on |
 * | `POST /api/vApp/vapp-<id>/action/undeploy`, `…/power/action/powerOn` | `202` Task |
 * | `PUT /api/vApp/vapp-<id>/{networkConfigSection,leaseSettingsSection,startupSection}/` | `202` Task |
 * | `PUT /api/vApp/vm-<id>/networkConnectionSection/` | `202` Task |
 * | `PUT /api/vApp/vapp-<id>/owner` | `204` |
 *
 * Request bodies are validated like vCD does: element order and names follow the XSD, namespaces are
 * checked, networks, storage policies and users must exist. Tenant writes to a vApp in maintenance mode get
 * `409 INVALID_STATE`. Disks of created VMs are sparse image files `<diskDir>/<vmUuid>-<n>.img` (n counts the
 * VM's disks from 0 by instance id): the convention of seeded VMs, so `simDiskLocate` finds both.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { BackupError } from '../../errors.js';
import { attr, boolOf, child, children, intOf, NS, nsAttr, parseXml, textOf, type XmlNode } from '../xml.js';
import type { SimOrgNetwork, SimStartupItem, SimStoragePolicy, SimUser, SimVApp, SimVAppNetwork, SimVdc, SimVm } from './inventory.js';
import { href, renderError, renderTask, renderVApp } from './render.js';
import type { SimRequestContext, SimResponse, VcdSimulator } from './server.js';

export interface RestoreRoutesOptions {
  /** Where disk images of created VMs go (default: `<tmpdir>/vcd-sim-disks`). */
  readonly diskDir: string;
}

const T = {
  VApp: 'application/vnd.vmware.vcloud.vApp+xml',
  Vm: 'application/vnd.vmware.vcloud.vm+xml',
  Task: 'application/vnd.vmware.vcloud.task+xml',
  Error: 'application/vnd.vmware.vcloud.error+xml',
} as const;

class SimBadRequest extends Error {
  constructor(
    readonly status: number,
    readonly minor: string,
    message: string,
  ) {
    super(message);
  }
}
const bad = (message: string, minor = 'BAD_REQUEST', status = 400) => new SimBadRequest(status, minor, message);
const vcdError = (status: number, minor: string, message: string): SimResponse => ({
  status,
  body: renderError(status, minor, `[ ${randomUUID()} ] ${message}`),
  contentType: T.Error,
});

/** Disk images of the VMs of a vApp (created ones included), for an agent to write. */
export function restoredDisks(sim: VcdSimulator, vappIdOrName: string): Array<{ vmId: string; vmName: string; moref: string; instanceId: number; sizeBytes: number; path: string }> {
  const vapp = sim.findVApp(vappIdOrName);
  if (vapp === undefined) throw new Error(`no vApp ${vappIdOrName} in the simulator`);
  return vapp.vms.flatMap((vm) => vm.disks.map((d) => ({ vmId: vm.id, vmName: vm.name, moref: vm.moref, instanceId: d.instanceId, sizeBytes: d.sizeBytes, path: d.path })));
}

export function addRestoreRoutes(sim: VcdSimulator, options: RestoreRoutesOptions): void {
  const state = sim.state;
  const allVdcs = () => state.orgs.flatMap((o) => o.vdcs);
  const allVApps = () => allVdcs().flatMap((v) => v.vapps);
  const visible = (ctx: SimRequestContext, vdc: SimVdc) => ctx.session !== null && (ctx.session.org === null || ctx.session.org === vdc.org);
  const forbidden = (kind: string, id: string) => vcdError(403, 'ACCESS_TO_RESOURCE_IS_FORBIDDEN', `No access to entity "(com.vmware.vcloud.entity.${kind}:${id})".`);

  const handler =
    (fn: (ctx: SimRequestContext) => SimResponse | Promise<SimResponse>) =>
    async (ctx: SimRequestContext): Promise<SimResponse> => {
      try {
        return await fn(ctx);
      } catch (err) {
        if (err instanceof SimBadRequest) return vcdError(err.status, err.minor, err.message);
        if (err instanceof BackupError) return vcdError(400, 'BAD_REQUEST', err.message);
        throw err;
      }
    };

  const vappFor = (ctx: SimRequestContext): SimVApp => {
    const id = ctx.params[0] ?? '';
    const vapp = allVApps().find((v) => v.id === id);
    if (!vapp || !visible(ctx, vapp.vdc)) throw new SimBadRequest(403, 'ACCESS_TO_RESOURCE_IS_FORBIDDEN', `No access to entity "(com.vmware.vcloud.entity.vapp:${id})".`);
    return vapp;
  };
  const writable = (ctx: SimRequestContext, vapp: SimVApp) => {
    if (ctx.session?.org !== null && vapp.inMaintenanceMode) {
      throw bad(`The entity vApp ${vapp.name} (urn:vcloud:vapp:${vapp.id}) is undergoing maintenance operations.`, 'INVALID_STATE', 409);
    }
  };
  const body = (ctx: SimRequestContext, root: string, ns: string = NS.vcloud): XmlNode => {
    let doc: XmlNode;
    try {
      doc = parseXml(ctx.body);
    } catch (err) {
      throw bad(`Malformed request body: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (doc.name !== root || doc.ns !== ns) throw bad(`Expected a ${root} element in namespace ${ns}, got <${doc.name}> in ${doc.ns ?? 'no namespace'}.`);
    return doc;
  };
  const taskAnswer = (ctx: SimRequestContext, owner: { href: string; name: string; type: string }, op: string, what: string, apply: () => void, vapp?: SimVApp): SimResponse => {
    const task = sim.createTask(owner, op, what, apply);
    vapp?.tasks.push(task);
    return { status: 202, body: renderTask({ ...ctx.render, now: Date.now() }, task), contentType: T.Task, headers: { location: href.task(ctx.render, task.id) } };
  };
  const vappOwner = (ctx: SimRequestContext, vapp: SimVApp) => ({ href: href.vapp(ctx.render, vapp.id), name: vapp.name, type: T.VApp });

  // ---- AdminOrg with its users (owners are chosen among them) ------------------------------------------
  sim.addRoute(
    'GET',
    /^\/api\/admin\/org\/([0-9a-f-]+)$/,
    handler((ctx) => {
      const org = state.orgs.find((o) => o.id === ctx.params[0]);
      if (!org || ctx.session === null || (ctx.session.org !== null && ctx.session.org !== org)) return forbidden('org', ctx.params[0] ?? '');
      const e = (v: string) => v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
      return {
        status: 200,
        contentType: 'application/vnd.vmware.admin.organization+xml',
        body:
          `<?xml version="1.0" encoding="UTF-8"?>\n<AdminOrg xmlns="http://www.vmware.com/vcloud/v1.5" name="${e(org.name)}" id="urn:vcloud:org:${org.id}" href="${ctx.render.base}/api/admin/org/${org.id}" type="application/vnd.vmware.admin.organization+xml">` +
          `<Description/><FullName>${e(org.fullName)}</FullName><IsEnabled>true</IsEnabled><Users>` +
          org.users.map((u) => `<UserReference href="${href.user(ctx.render, u.id)}" name="${e(u.name)}" type="application/vnd.vmware.admin.user+xml"/>`).join('') +
          `</Users><Vdcs>` +
          org.vdcs.map((v) => `<Vdc href="${href.vdc(ctx.render, v.id)}" name="${e(v.name)}" type="application/vnd.vmware.vcloud.vdc+xml"/>`).join('') +
          `</Vdcs></AdminOrg>`,
      };
    }),
  );

  // ---- compose -----------------------------------------------------------------------------------------
  sim.addRoute(
    'POST',
    /^\/api\/vdc\/([0-9a-f-]+)\/action\/composeVApp$/,
    handler(async (ctx) => {
      const vdc = allVdcs().find((v) => v.id === ctx.params[0]);
      if (!vdc || !visible(ctx, vdc)) return forbidden('vdc', ctx.params[0] ?? '');
      const doc = body(ctx, 'ComposeVAppParams');
      checkOrder(doc, ['Description', 'VAppParent', 'InstantiationParams', 'SourcedItem', 'AllEULAsAccepted']);
      if (children(doc, 'SourcedItem').length > 0) throw bad('The simulator composes empty vApps only: add VMs with recomposeVApp CreateItem.');
      const name = attr(doc, 'name');
      if (name === undefined || name.trim() === '') throw bad('ComposeVAppParams needs a name attribute.');
      if (vdc.vapps.some((v) => v.name === name)) throw bad(`The VCD entity ${name} already exists.`, 'DUPLICATE_NAME');
      const params = child(doc, 'InstantiationParams');
      checkSections(params, ['NetworkConfigSection', 'LeaseSettingsSection', 'StartupSection']);
      const netSection = child(params, 'NetworkConfigSection');
      const lease = child(params, 'LeaseSettingsSection');
      const owner = ctx.session?.org === null ? (vdc.org.users[0] ?? null) : (vdc.org.users.find((u) => u.name === ctx.session?.user) ?? null);
      const vapp: SimVApp = {
        id: randomUUID(),
        name,
        description: textOf(doc, 'Description') ?? '',
        owner,
        standalone: false,
        inMaintenanceMode: false,
        deploymentLeaseSeconds: 0,
        storageLeaseSeconds: 0,
        networks: netSection === undefined ? [] : parseNetworkConfigSection(netSection, vdc),
        metadata: new Map(),
        vms: [],
        tasks: [],
        createdAt: new Date().toISOString(),
        vdc,
      };
      if (lease !== undefined) applyLease(vapp, parseLease(lease));
      vdc.vapps.push(vapp);
      const task = sim.createTask(vappOwner(ctx, vapp), 'vdcComposeVapp', `Creating Virtual Application ${name}(${vapp.id})`);
      vapp.tasks.push(task);
      return { status: 201, body: renderVApp({ ...ctx.render, now: Date.now() }, vapp).replace('<Description', taskXml(ctx, task) + '<Description'), contentType: T.VApp, headers: { location: href.vapp(ctx.render, vapp.id) } };
    }),
  );

  /** The Task inside a freshly composed vApp (as vCD embeds it), whatever its status. */
  const taskXml = (ctx: SimRequestContext, task: ReturnType<VcdSimulator['createTask']>) => {
    const xml = renderTask({ ...ctx.render, now: Date.now() }, task);
    const start = xml.indexOf('<Task');
    return `<Tasks>${xml.slice(start).replace(' xmlns="http://www.vmware.com/vcloud/v1.5"', '')}</Tasks>`;
  };

  // ---- recompose: create (and delete) VMs --------------------------------------------------------------
  sim.addRoute(
    'POST',
    /^\/api\/vApp\/vapp-([0-9a-f-]+)\/action\/recomposeVApp$/,
    handler(async (ctx) => {
      const vapp = vappFor(ctx);
      writable(ctx, vapp);
      const doc = body(ctx, 'RecomposeVAppParams');
      checkOrder(doc, ['Description', 'VAppParent', 'InstantiationParams', 'SourcedItem', 'CreateItem', 'DeleteItem', 'AllEULAsAccepted']);
      if (children(doc, 'SourcedItem').length > 0) throw bad('The simulator recomposes with CreateItem and DeleteItem only.');
      const created: SimVm[] = [];
      for (const item of children(doc, 'CreateItem')) created.push(await createVm(vapp, item, created));
      const deleted = children(doc, 'DeleteItem').map((d) => {
        const id = /vm-([0-9a-f-]+)/.exec(attr(d, 'href') ?? '')?.[1];
        const vm = vapp.vms.find((v) => v.id === id);
        if (vm === undefined) throw bad(`DeleteItem ${attr(d, 'href') ?? '?'} is not a VM of vApp ${vapp.name}.`);
        return vm;
      });
      return taskAnswer(ctx, vappOwner(ctx, vapp), 'vappRecompose', `Updating Virtual Application ${vapp.name}(${vapp.id})`, () => {
        vapp.vms = vapp.vms.filter((v) => !deleted.includes(v)).concat(created);
      }, vapp);
    }),
  );

  let morefCounter = 5000;
  const nextMoref = () => {
    const used = new Set(allVApps().flatMap((a) => a.vms.map((v) => v.moref)));
    while (used.has(`vm-${morefCounter}`)) morefCounter++;
    return `vm-${morefCounter++}`;
  };

  async function createVm(vapp: SimVApp, item: XmlNode, pending: readonly SimVm[]): Promise<SimVm> {
    checkOrder(item, ['Description', 'NetworkConnectionSection', 'GuestCustomizationSection', 'VAppScopedLocalId', 'StorageProfile', 'VmSpecSection', 'BootImage']);
    const name = attr(item, 'name');
    if (name === undefined || name.trim() === '') throw bad('CreateItem needs a name attribute.');
    if ([...vapp.vms, ...pending].some((v) => v.name === name)) throw bad(`The VCD entity ${name} already exists.`, 'DUPLICATE_NAME');
    const spec = child(item, 'VmSpecSection');
    if (spec === undefined) throw bad(`CreateItem ${name} needs a VmSpecSection.`);
    checkOrder(spec, ['Info', 'OsType', 'Firmware', 'NumCpus', 'NumCoresPerSocket', 'CpuResourceMhz', 'MemoryResourceMb', 'MediaSection', 'DiskSection', 'HardwareVersion', 'VmToolsVersion', 'VirtualCpuType', 'TimeSyncWithHost']);
    const vdc = vapp.vdc;
    const policyOf = (node: XmlNode | undefined, fallback: SimStoragePolicy): SimStoragePolicy => {
      if (node === undefined) return fallback;
      const id = /vdcStorageProfile\/([0-9a-f-]+)/.exec(attr(node, 'href') ?? '')?.[1];
      const found = vdc.storagePolicies.find((p) => p.id === id || (id === undefined && p.name === attr(node, 'name')));
      if (found === undefined) throw bad(`Storage policy ${attr(node, 'name') ?? attr(node, 'href') ?? '?'} is not available in VDC ${vdc.name}.`);
      return found;
    };
    const defaultPolicy = vdc.storagePolicies.find((p) => p.isDefault) ?? vdc.storagePolicies[0];
    if (defaultPolicy === undefined) throw bad(`VDC ${vdc.name} has no storage policy.`);
    const vmPolicy = policyOf(child(item, 'StorageProfile'), defaultPolicy);
    const id = randomUUID();
    const diskSettings = children(child(spec, 'DiskSection'), 'DiskSettings');
    const disks = diskSettings.map((d, i) => {
      checkOrder(d, ['DiskId', 'SizeMb', 'UnitNumber', 'BusNumber', 'AdapterType', 'ThinProvisioned', 'Disk', 'StorageProfile', 'overrideVmDefault', 'iops', 'IopsAllocation', 'VirtualQuantity', 'VirtualQuantityUnit']);
      const adapter = intOf(textOf(d, 'AdapterType'), 'AdapterType') ?? 5;
      const bus = ADAPTERS[adapter];
      if (bus === undefined) throw bad(`DiskSettings AdapterType ${adapter} is not one of 1-7.`);
      const bytes = intOf(textOf(d, 'VirtualQuantity'), 'VirtualQuantity') ?? (intOf(textOf(d, 'SizeMb'), 'SizeMb') ?? 0) * 1024 * 1024;
      if (bytes <= 0) throw bad(`DiskSettings of ${name} need SizeMb or VirtualQuantity.`);
      return {
        instanceId: intOf(textOf(d, 'DiskId'), 'DiskId') ?? 2000 + i,
        sizeBytes: bytes,
        path: '',
        busType: bus.busType,
        busSubType: bus.busSubType,
        busNumber: intOf(textOf(d, 'BusNumber'), 'BusNumber') ?? 0,
        unitNumber: intOf(textOf(d, 'UnitNumber'), 'UnitNumber') ?? i,
        storagePolicy: policyOf(child(d, 'StorageProfile'), vmPolicy),
      };
    });
    disks.sort((a, b) => a.instanceId - b.instanceId);
    await mkdir(options.diskDir, { recursive: true });
    for (const [n, d] of disks.entries()) {
      d.path = path.join(options.diskDir, `${id}-${n}.img`);
      const handle = await open(d.path, 'w');
      try {
        await handle.truncate(d.sizeBytes);
      } finally {
        await handle.close();
      }
    }
    const conn = child(item, 'NetworkConnectionSection');
    const vm: SimVm = {
      id,
      name,
      description: textOf(item, 'Description') ?? '',
      computerName: textOf(child(item, 'GuestCustomizationSection'), 'ComputerName') ?? name.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 15),
      cpus: intOf(textOf(spec, 'NumCpus'), 'NumCpus') ?? 1,
      coresPerSocket: intOf(textOf(spec, 'NumCoresPerSocket'), 'NumCoresPerSocket') ?? 1,
      memoryMiB: intOf(textOf(child(spec, 'MemoryResourceMb'), 'Configured'), 'MemoryResourceMb/Configured') ?? 1024,
      hardwareVersion: textOf(spec, 'HardwareVersion') ?? 'vmx-19',
      osType: textOf(spec, 'OsType') ?? 'otherGuest64',
      storagePolicy: vmPolicy,
      moref: nextMoref(),
      vcenter: state.vcenters[0]!,
      poweredOn: false,
      adminPassword: null,
      disks,
      nics: [],
      metadata: new Map(),
      vapp,
    };
    vm.nics = conn === undefined ? [] : parseNetworkConnections(conn, vapp);
    return vm;
  }

  // ---- delete, undeploy, power on ----------------------------------------------------------------------
  sim.addRoute(
    'DELETE',
    /^\/api\/vApp\/vapp-([0-9a-f-]+)$/,
    handler((ctx) => {
      const vapp = vappFor(ctx);
      writable(ctx, vapp);
      if (vapp.vms.some((v) => v.poweredOn)) throw bad(`vApp ${vapp.name} is running: undeploy it (power it off) before deleting it.`);
      return taskAnswer(ctx, vappOwner(ctx, vapp), 'vdcDeleteVapp', `Deleting Virtual Application ${vapp.name}(${vapp.id})`, () => {
        vapp.vdc.vapps = vapp.vdc.vapps.filter((v) => v !== vapp);
      });
    }),
  );
  sim.addRoute(
    'POST',
    /^\/api\/vApp\/vapp-([0-9a-f-]+)\/action\/undeploy$/,
    handler((ctx) => {
      const vapp = vappFor(ctx);
      writable(ctx, vapp);
      return taskAnswer(ctx, vappOwner(ctx, vapp), 'vappUndeployPowerOff', `Stopping Virtual Application ${vapp.name}(${vapp.id})`, () => {
        for (const vm of vapp.vms) vm.poweredOn = false;
      }, vapp);
    }),
  );
  sim.addRoute(
    'POST',
    /^\/api\/vApp\/vapp-([0-9a-f-]+)\/power\/action\/powerOn$/,
    handler((ctx) => {
      const vapp = vappFor(ctx);
      writable(ctx, vapp);
      return taskAnswer(ctx, vappOwner(ctx, vapp), 'vappDeploy', `Starting Virtual Application ${vapp.name}(${vapp.id})`, () => {
        for (const vm of vapp.vms) vm.poweredOn = true;
      }, vapp);
    }),
  );

  // ---- sections ----------------------------------------------------------------------------------------
  sim.addRoute(
    'PUT',
    /^\/api\/vApp\/vapp-([0-9a-f-]+)\/networkConfigSection\/?$/,
    handler((ctx) => {
      const vapp = vappFor(ctx);
      writable(ctx, vapp);
      const networks = parseNetworkConfigSection(body(ctx, 'NetworkConfigSection'), vapp.vdc);
      for (const vm of vapp.vms) {
        for (const nic of vm.nics) {
          if (nic.network !== 'none' && !networks.some((n) => n.name === nic.network)) {
            throw bad(`vApp network ${nic.network} is in use by VM ${vm.name} (NIC ${nic.index}); connect the NIC elsewhere first.`);
          }
        }
      }
      return taskAnswer(ctx, vappOwner(ctx, vapp), 'vappUpdateVApp', `Updating Virtual Application ${vapp.name}(${vapp.id})`, () => {
        vapp.networks = networks;
      }, vapp);
    }),
  );
  sim.addRoute(
    'PUT',
    /^\/api\/vApp\/vapp-([0-9a-f-]+)\/leaseSettingsSection\/?$/,
    handler((ctx) => {
      const vapp = vappFor(ctx);
      writable(ctx, vapp);
      const lease = parseLease(body(ctx, 'LeaseSettingsSection'));
      return taskAnswer(ctx, vappOwner(ctx, vapp), 'vappUpdateVApp', `Updating Virtual Application ${vapp.name}(${vapp.id})`, () => applyLease(vapp, lease), vapp);
    }),
  );
  sim.addRoute(
    'PUT',
    /^\/api\/vApp\/vapp-([0-9a-f-]+)\/startupSection\/?$/,
    handler((ctx) => {
      const vapp = vappFor(ctx);
      writable(ctx, vapp);
      const doc = body(ctx, 'StartupSection', NS.ovf);
      checkOrder(doc, ['Info', 'Item', 'Link']);
      const items: SimStartupItem[] = children(doc, 'Item').map((i) => {
        const get = (n: string) => nsAttr(i, n, NS.ovf) ?? attr(i, n);
        const vmName = get('id');
        if (vmName === undefined || !vapp.vms.some((v) => v.name === vmName)) throw bad(`StartupSection item ${vmName ?? '?'} does not name a VM of vApp ${vapp.name}.`);
        const num = (n: string) => intOf(get(n) ?? '0', `ovf:${n}`) ?? 0;
        const startAction = get('startAction') ?? 'powerOn';
        const stopAction = get('stopAction') ?? 'powerOff';
        if (!['powerOn', 'none'].includes(startAction)) throw bad(`ovf:startAction must be powerOn or none, got ${startAction}.`);
        if (!['powerOff', 'guestShutdown'].includes(stopAction)) throw bad(`ovf:stopAction must be powerOff or guestShutdown, got ${stopAction}.`);
        return { vmName, order: num('order'), startAction, startDelay: num('startDelay'), stopAction, stopDelay: num('stopDelay') };
      });
      return taskAnswer(ctx, vappOwner(ctx, vapp), 'vappUpdateVApp', `Updating Virtual Application ${vapp.name}(${vapp.id})`, () => {
        vapp.startup = items;
      }, vapp);
    }),
  );
  sim.addRoute(
    'PUT',
    /^\/api\/vApp\/vapp-([0-9a-f-]+)\/owner\/?$/,
    handler((ctx) => {
      const vapp = vappFor(ctx);
      writable(ctx, vapp);
      const doc = body(ctx, 'Owner');
      const userHref = attr(child(doc, 'User'), 'href') ?? '';
      const id = /\/admin\/user\/([0-9a-f-]+)/.exec(userHref)?.[1];
      const user: SimUser | undefined = vapp.vdc.org.users.find((u) => u.id === id);
      if (user === undefined) throw bad(`Owner User ${userHref || '(no href)'} is not a user of organization ${vapp.vdc.org.name}.`);
      vapp.owner = user;
      return { status: 204 };
    }),
  );
  sim.addRoute(
    'PUT',
    /^\/api\/vApp\/vm-([0-9a-f-]+)\/networkConnectionSection\/?$/,
    handler((ctx) => {
      const vm = allVApps()
        .flatMap((a) => a.vms)
        .find((v) => v.id === ctx.params[0]);
      if (!vm || !visible(ctx, vm.vapp.vdc)) return forbidden('vm', ctx.params[0] ?? '');
      writable(ctx, vm.vapp);
      const nics = parseNetworkConnections(body(ctx, 'NetworkConnectionSection'), vm.vapp);
      return taskAnswer(ctx, { href: href.vm(ctx.render, vm.id), name: vm.name, type: T.Vm }, 'vappUpdateVm', `Updating Virtual Machine ${vm.name}(${vm.id})`, () => {
        vm.nics = nics;
      }, vm.vapp);
    }),
  );
}

// ---- body parsing and validation ------------------------------------------------------------------------

const ADAPTERS: Record<number, { busType: number; busSubType: string }> = {
  1: { busType: 5, busSubType: 'ide' },
  2: { busType: 6, busSubType: 'buslogic' },
  3: { busType: 6, busSubType: 'lsilogic' },
  4: { busType: 6, busSubType: 'lsilogicsas' },
  5: { busType: 6, busSubType: 'VirtualSCSI' },
  6: { busType: 20, busSubType: 'vmware.sata.ahci' },
  7: { busType: 20, busSubType: 'vmware.nvme.controller' },
};

/** Children must be known elements, in schema order (repeats allowed). */
function checkOrder(node: XmlNode, order: readonly string[]): void {
  let last = -1;
  for (const c of node.children) {
    const i = order.indexOf(c.name);
    if (i < 0) throw bad(`Unexpected element <${c.name}> in <${node.name}>; expected one of ${order.join(', ')}.`);
    if (i < last) throw bad(`Element <${c.name}> is out of order in <${node.name}>: the schema order is ${order.join(', ')}.`);
    last = i;
  }
}

/** Sections (any order) of InstantiationParams: only known ones. */
function checkSections(node: XmlNode | undefined, allowed: readonly string[]): void {
  for (const c of node?.children ?? []) if (!allowed.includes(c.name)) throw bad(`Unexpected section <${c.name}> in <InstantiationParams>.`);
}

function parseLease(node: XmlNode): { deployment: number | null; storage: number | null } {
  checkOrder(node, ['Info', 'Link', 'DeploymentLeaseInSeconds', 'StorageLeaseInSeconds', 'DeploymentLeaseExpiration', 'StorageLeaseExpiration']);
  if (child(node, 'Info', NS.ovf) === undefined) throw bad('LeaseSettingsSection needs ovf:Info first.');
  const deployment = intOf(textOf(node, 'DeploymentLeaseInSeconds'), 'DeploymentLeaseInSeconds');
  const storage = intOf(textOf(node, 'StorageLeaseInSeconds'), 'StorageLeaseInSeconds');
  if ((deployment ?? 0) < 0 || (storage ?? 0) < 0) throw bad('Lease seconds must not be negative.');
  return { deployment, storage };
}

function applyLease(vapp: SimVApp, lease: { deployment: number | null; storage: number | null }): void {
  if (lease.deployment !== null) vapp.deploymentLeaseSeconds = lease.deployment;
  if (lease.storage !== null) vapp.storageLeaseSeconds = lease.storage;
}

function parseNetworkConfigSection(node: XmlNode, vdc: SimVdc): SimVAppNetwork[] {
  checkOrder(node, ['Info', 'Link', 'NetworkConfig']);
  const seen = new Set<string>();
  return children(node, 'NetworkConfig').map((nc) => {
    checkOrder(nc, ['Link', 'Description', 'Configuration', 'IsDeployed']);
    const name = attr(nc, 'networkName');
    if (name === undefined || name === '') throw bad('NetworkConfig needs a networkName.');
    if (seen.has(name)) throw bad(`vApp network ${name} is configured twice.`, 'DUPLICATE_NAME');
    seen.add(name);
    const conf = child(nc, 'Configuration');
    if (conf === undefined) throw bad(`NetworkConfig ${name} needs a Configuration.`);
    checkOrder(conf, ['IpScopes', 'ParentNetwork', 'FenceMode', 'RetainNetInfoAcrossDeployments', 'Features', 'SyslogServerSettings', 'RouterInfo', 'GuestVlanAllowed', 'DualStackNetwork']);
    const fenceMode = textOf(conf, 'FenceMode');
    if (fenceMode !== 'bridged' && fenceMode !== 'natRouted' && fenceMode !== 'isolated') throw bad(`NetworkConfig ${name}: FenceMode must be bridged, natRouted or isolated.`);
    const parentNode = child(conf, 'ParentNetwork');
    let parent: SimOrgNetwork | null = null;
    if (parentNode !== undefined) {
      const id = /\/network\/([0-9a-f-]+)/.exec(attr(parentNode, 'href') ?? '')?.[1];
      parent = vdc.networks.find((n) => n.id === id || (id === undefined && n.name === attr(parentNode, 'name'))) ?? null;
      if (parent === null) throw bad(`The network ${attr(parentNode, 'name') ?? attr(parentNode, 'href') ?? '?'} referenced by vApp network ${name} does not exist in VDC ${vdc.name}.`);
    }
    if (fenceMode !== 'isolated' && parent === null) throw bad(`NetworkConfig ${name}: a ${fenceMode} network needs a ParentNetwork.`);
    const scopeNode = children(child(conf, 'IpScopes'), 'IpScope')[0];
    if (scopeNode !== undefined) checkOrder(scopeNode, ['IsInherited', 'Gateway', 'Netmask', 'SubnetPrefixLength', 'Dns1', 'Dns2', 'DnsSuffix', 'IsEnabled', 'IpRanges', 'AllocatedIpAddresses', 'SubAllocations']);
    return {
      name,
      fenceMode,
      parent: fenceMode === 'isolated' ? null : parent,
      gateway: textOf(scopeNode, 'Gateway') ?? parent?.gateway ?? null,
      netmask: textOf(scopeNode, 'Netmask') ?? parent?.netmask ?? null,
      prefixLength: intOf(textOf(scopeNode, 'SubnetPrefixLength'), 'SubnetPrefixLength') ?? parent?.prefixLength ?? null,
      dns1: textOf(scopeNode, 'Dns1'),
      dns2: textOf(scopeNode, 'Dns2'),
      ipRanges: children(child(scopeNode, 'IpRanges'), 'IpRange').map((r) => ({ start: textOf(r, 'StartAddress') ?? '', end: textOf(r, 'EndAddress') ?? '' })),
    };
  });
}

let macCounter = 0x800000;
function parseNetworkConnections(node: XmlNode, vapp: SimVApp): SimVm['nics'] {
  checkOrder(node, ['Info', 'PrimaryNetworkConnectionIndex', 'NetworkConnection', 'Link']);
  return children(node, 'NetworkConnection')
    .map((c) => {
      checkOrder(c, ['NetworkConnectionIndex', 'IpAddress', 'IpType', 'SecondaryIpAddress', 'SecondaryIpType', 'ExternalIpAddress', 'IsConnected', 'MACAddress', 'IpAddressAllocationMode', 'SecondaryIpAddressAllocationMode', 'NetworkAdapterType']);
      const network = attr(c, 'network') ?? 'none';
      if (network !== 'none' && !vapp.networks.some((n) => n.name === network)) {
        throw bad(`NetworkConnection names vApp network ${network}, which vApp ${vapp.name} does not have (its networks: ${vapp.networks.map((n) => n.name).join(', ') || 'none'}).`);
      }
      const index = intOf(textOf(c, 'NetworkConnectionIndex'), 'NetworkConnectionIndex');
      if (index === null) throw bad('NetworkConnection needs a NetworkConnectionIndex.');
      const mode = textOf(c, 'IpAddressAllocationMode') ?? 'POOL';
      if (!['POOL', 'DHCP', 'MANUAL', 'NONE'].includes(mode)) throw bad(`IpAddressAllocationMode must be POOL, DHCP, MANUAL or NONE, got ${mode}.`);
      macCounter++;
      return {
        index,
        network,
        ipAddress: textOf(c, 'IpAddress'),
        macAddress: textOf(c, 'MACAddress') ?? `00:50:56:${((macCounter >> 16) & 0xff).toString(16).padStart(2, '0')}:${((macCounter >> 8) & 0xff).toString(16).padStart(2, '0')}:${(macCounter & 0xff).toString(16).padStart(2, '0')}`,
        allocationMode: mode,
        adapterType: textOf(c, 'NetworkAdapterType') ?? 'VMXNET3',
        connected: boolOf(textOf(c, 'IsConnected'), 'IsConnected') ?? true,
      };
    })
    .sort((a, b) => a.index - b.index);
}
