/**
 * Scope resolution (DESIGN.md §6 "Job scope"): a job's VMs, vApps, org VDCs, organizations or the whole
 * instance, minus exclusions, become the list of vApps to back up. A standalone VM lives in a vApp of its
 * own (vCD's `autoNature` wrapper), so it resolves to that vApp. Ids may be uuids, URNs, `vapp-<uuid>` /
 * `vm-<uuid>` or hrefs.
 *
 * The inventory is read with two paged queries (adminVApp, and adminVM when VMs are named), then filtered
 * here: exact-match filters on hrefs are fragile across vCD versions, in-memory filtering is not.
 */
import { InvalidInputError } from '../errors.js';
import type { Log } from '../log.js';
import { uuidOf } from './capture-mapping.js';
import type { VcdClient } from './client.js';
import { listVApps, listVms, type VAppRecord, type VmRecord } from './query.js';

export interface ScopeSelection {
  readonly instance?: boolean;
  readonly orgs?: readonly string[];
  readonly vdcs?: readonly string[];
  readonly vapps?: readonly string[];
  readonly vms?: readonly string[];
}

export interface JobScope {
  readonly include: ScopeSelection;
  readonly exclude?: Omit<ScopeSelection, 'instance'>;
}

export interface ResolvedVApp {
  readonly id: string;
  readonly href: string;
  readonly name: string;
  readonly orgId: string | null;
  readonly vdcId: string | null;
  readonly standalone: boolean;
  readonly inMaintenanceMode: boolean;
  /** VMs of this vApp excluded by the job (their disks are skipped). */
  readonly excludedVmIds: readonly string[];
  /** Why the vApp is in scope. */
  readonly reason: 'instance' | 'org' | 'vdc' | 'vapp' | 'vm';
}

export interface Inventory {
  readonly vapps: readonly VAppRecord[];
  readonly vms: readonly VmRecord[];
}

function uuids(kind: string, ids: readonly string[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const id of ids ?? []) {
    const u = uuidOf(id);
    if (u === null) throw new InvalidInputError(`scope: "${id}" is not a ${kind} id (give a uuid, URN or href)`);
    out.add(u);
  }
  return out;
}

/** Pure part: applies a scope to an inventory. */
export function applyScope(scope: JobScope, inventory: Inventory): { vapps: ResolvedVApp[]; unknown: string[] } {
  const inc = scope.include;
  const orgs = uuids('organization', inc.orgs);
  const vdcs = uuids('org VDC', inc.vdcs);
  const vapps = uuids('vApp', inc.vapps);
  const vms = uuids('VM', inc.vms);
  const exOrgs = uuids('organization', scope.exclude?.orgs);
  const exVdcs = uuids('org VDC', scope.exclude?.vdcs);
  const exVapps = uuids('vApp', scope.exclude?.vapps);
  const exVms = uuids('VM', scope.exclude?.vms);
  if (!inc.instance && orgs.size + vdcs.size + vapps.size + vms.size === 0) {
    throw new InvalidInputError('scope: nothing selected; name VMs, vApps, org VDCs, organizations, or the whole instance');
  }

  const vmByUuid = new Map(inventory.vms.map((vm) => [uuidOf(vm.id) ?? '', vm]));
  const vappsWithVms = new Map<string, string[]>();
  for (const vm of inventory.vms) {
    const va = uuidOf(vm.vappId);
    if (va === null) continue;
    const list = vappsWithVms.get(va) ?? [];
    list.push(uuidOf(vm.id) ?? '');
    vappsWithVms.set(va, list);
  }
  const vmsInScope = new Set<string>();
  for (const vm of vms) {
    const record = vmByUuid.get(vm);
    const va = uuidOf(record?.vappId);
    if (va !== null) vmsInScope.add(va);
  }

  const out: ResolvedVApp[] = [];
  const seen = new Set<string>();
  for (const record of inventory.vapps) {
    const id = uuidOf(record.id) ?? '';
    const org = uuidOf(record.orgId) ?? '';
    const vdc = uuidOf(record.vdcId) ?? '';
    const reason: ResolvedVApp['reason'] | null = vapps.has(id)
      ? 'vapp'
      : vmsInScope.has(id)
        ? 'vm'
        : vdcs.has(vdc)
          ? 'vdc'
          : orgs.has(org)
            ? 'org'
            : inc.instance
              ? 'instance'
              : null;
    if (reason === null || seen.has(id)) continue;
    if (exVapps.has(id) || exVdcs.has(vdc) || exOrgs.has(org)) continue;
    const members = vappsWithVms.get(id) ?? [];
    const excluded = members.filter((vm) => exVms.has(vm));
    // A vApp whose every VM is excluded has nothing to back up.
    if (members.length > 0 && excluded.length === members.length) continue;
    seen.add(id);
    out.push({
      id: record.id,
      href: record.href,
      name: record.name,
      orgId: record.orgId,
      vdcId: record.vdcId,
      standalone: record.isAutoNature,
      inMaintenanceMode: record.inMaintenanceMode,
      excludedVmIds: excluded.map((u) => `urn:vcloud:vm:${u}`),
      reason,
    });
  }
  const known = new Set(inventory.vapps.map((v) => uuidOf(v.id)));
  const unknown = [
    ...[...vapps].filter((u) => !known.has(u)).map((u) => `vApp ${u}`),
    ...[...vms].filter((u) => !vmByUuid.has(u)).map((u) => `VM ${u}`),
  ];
  return { vapps: out.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id)), unknown };
}

/**
 * Resolves a scope inside one organization: the inventory is cut to that organization's vApps (and their
 * VMs) before the scope is applied, so ids of other organizations come back in `unknown`, exactly like ids
 * that do not exist. `instance` means the whole organization.
 */
export async function resolveScopeInOrg(client: VcdClient, scope: JobScope, orgUuid: string, options: { log?: Log } = {}): Promise<{ vapps: ResolvedVApp[]; unknown: string[] }> {
  const needVms = (scope.include.vms?.length ?? 0) > 0 || (scope.exclude?.vms?.length ?? 0) > 0;
  const [allVApps, allVms] = await Promise.all([listVApps(client, { log: options.log }), needVms ? listVms(client, { log: options.log }) : Promise.resolve([])]);
  const vapps = allVApps.filter((v) => uuidOf(v.orgId) === orgUuid);
  const inOrg = new Set(vapps.map((v) => uuidOf(v.id)));
  const vms = allVms.filter((vm) => inOrg.has(uuidOf(vm.vappId)));
  return applyScope(scope, { vapps, vms });
}

/** Reads the inventory through the query service and applies the scope. Unknown named ids are logged. */
export async function resolveScope(client: VcdClient, scope: JobScope, options: { log?: Log } = {}): Promise<ResolvedVApp[]> {
  const needVms = (scope.include.vms?.length ?? 0) > 0 || (scope.exclude?.vms?.length ?? 0) > 0;
  const [vapps, vms] = await Promise.all([listVApps(client, { log: options.log }), needVms ? listVms(client, { log: options.log }) : Promise.resolve([])]);
  const result = applyScope(scope, { vapps, vms });
  if (result.unknown.length > 0) {
    options.log?.warn('scope names objects vCD does not show (deleted, or not visible to these credentials)', { missing: result.unknown.join(', ') });
  }
  return result.vapps;
}
