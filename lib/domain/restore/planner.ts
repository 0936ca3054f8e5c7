/**
 * The restore planner (pure): from a restore point's captured vApp model and the target vCD's current state,
 * either the ordered plan of a restore or EVERY non-conforming attribute at once, each with the option that
 * fixes it. Nothing here talks to vCD: the caller reads the target state first (lib/vcd/restore-client.ts)
 * and acts on the plan afterwards, so a plan that does not conform has changed nothing.
 */
import type { MetadataEntry, StartupItem, VAppModel, VmModel, VmNic } from '../../vcd/model.js';
import { RESTORE_MARKER_KEY } from './marker.js';
import type { RestoreMode, RestoreOptions } from './options.js';

export interface TargetRef {
  readonly id: string;
  readonly name: string;
  readonly href?: string;
}

export interface TargetVm {
  readonly id: string;
  readonly name: string;
  readonly disks: ReadonlyArray<{ readonly instanceId: number; readonly sizeBytes: number | null }>;
}

export interface TargetVApp extends TargetRef {
  readonly vdcId: string | null;
  /** VMs with their disks (needed to overwrite; may be empty for vApps only checked for their name). */
  readonly vms: readonly TargetVm[];
  /** The point id in the restore marker metadata: this vApp is an unfinished restore of that point. */
  readonly restoreOf: string | null;
}

/** What the target vCD looks like now, as far as a restore of one vApp cares. */
export interface RestoreTargetState {
  readonly org: TargetRef | null;
  readonly vdcs: readonly TargetRef[];
  /** Org VDC networks with the VDC they belong to. */
  readonly networks: ReadonlyArray<TargetRef & { readonly vdcId: string | null }>;
  readonly storagePolicies: ReadonlyArray<TargetRef & { readonly vdcId: string | null; readonly isDefault: boolean }>;
  /** vApps of the organization that matter: the backed-up id and every vApp with the target name. */
  readonly vapps: readonly TargetVApp[];
  /** Users of the organization (possible owners). */
  readonly users: readonly TargetRef[];
  /** System administrators can write SYSTEM-domain metadata; tenants cannot. */
  readonly canWriteSystemMetadata: boolean;
}

export interface RestoreProblem {
  /** Stable attribute kind: `vdc`, `network`, `storagePolicy`, `name`, `owner`, `vm`, `disk`, `target`, `option`. */
  readonly attribute: string;
  /** The backed-up (or requested) value that does not conform. */
  readonly value: string;
  readonly message: string;
  /** The option that fixes it, with an example value. */
  readonly fix: { readonly option: string; readonly example: unknown };
}

export interface PlannedDisk {
  /** Disk id in the repository (`<vmUuid>-<instanceId>`). */
  readonly diskId: string;
  readonly instanceId: number;
  readonly sizeBytes: number | null;
  readonly storagePolicy: string | null;
  readonly busType: number | null;
  readonly busSubType: string | null;
  readonly busNumber: number | null;
  readonly unitNumber: number | null;
}

export interface PlannedVm {
  readonly sourceVmId: string;
  readonly name: string;
  /** The VM written over (overwrite); null until created (new). */
  readonly targetVmId: string | null;
  readonly storagePolicy: string | null;
  readonly disks: readonly PlannedDisk[];
  readonly nics: readonly VmNic[];
  readonly metadata: readonly MetadataEntry[];
}

export interface PlannedNetwork {
  readonly name: string;
  readonly fenceMode: 'bridged' | 'natRouted' | 'isolated' | null;
  /** Backed-up org VDC network → target one; null for isolated networks. */
  readonly parentNetwork: { readonly from: string; readonly to: string; readonly href: string | null } | null;
}

export type RestoreStepKind =
  | 'enterMaintenance'
  | 'composeVApp'
  | 'createVm'
  | 'writeDisk'
  | 'networkConfig'
  | 'vmNetworkConnections'
  | 'lease'
  | 'startup'
  | 'owner'
  | 'metadata'
  | 'vmMetadata'
  | 'powerOn'
  | 'exitMaintenance';

export interface RestoreStep {
  readonly kind: RestoreStepKind;
  readonly detail: string;
}

export const RESTORE_PLAN_VERSION = 1;

export interface RestorePlan {
  readonly version: typeof RESTORE_PLAN_VERSION;
  readonly mode: RestoreMode;
  readonly source: { readonly vappId: string; readonly vappName: string; readonly pointId: string; readonly repositoryId: string | null };
  readonly target: {
    readonly org: TargetRef | null;
    readonly vdc: TargetRef;
    readonly name: string;
    /** The vApp overwritten, or an unfinished restore resumed (new); null when a vApp will be created. */
    readonly vappId: string | null;
    readonly resumes: boolean;
  };
  readonly networks: readonly PlannedNetwork[];
  readonly storagePolicyMap: Readonly<Record<string, string>>;
  /** Target storage policy name → its href in the target VDC. */
  readonly storagePolicyHrefs: Readonly<Record<string, string | null>>;
  readonly owner: TargetRef | null;
  readonly lease: { readonly deploymentLeaseSeconds: number | null; readonly storageLeaseSeconds: number | null };
  readonly startup: readonly StartupItem[];
  readonly powerOn: boolean;
  readonly restoreMetadata: boolean;
  readonly metadata: readonly MetadataEntry[];
  /** Only some VMs (vmSelection): vApp-level settings of an overwritten vApp are left as they are. */
  readonly partial: boolean;
  readonly vms: readonly PlannedVm[];
  /** What an overwrite replaces, in words. */
  readonly overwrites: readonly string[];
  readonly warnings: readonly string[];
  readonly steps: readonly RestoreStep[];
}

export type PlanResult = { readonly ok: true; readonly plan: RestorePlan } | { readonly ok: false; readonly problems: readonly RestoreProblem[] };

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
export function uuidIn(value: string | null | undefined): string | null {
  const m = value ? UUID.exec(value) : null;
  return m ? m[0].toLowerCase() : null;
}

/** The repository disk id of a VM disk (the backup's convention: `<vmUuid>-<instanceId>`). */
export function diskIdOf(vmId: string, instanceId: number): string {
  return `${uuidIn(vmId) ?? vmId}-${instanceId}`;
}

const sameId = (a: string | null | undefined, b: string | null | undefined) => {
  const ua = uuidIn(a);
  return ua !== null && ua === uuidIn(b);
};
const list = (names: readonly string[]) => (names.length === 0 ? 'none' : names.map((n) => `"${n}"`).join(', '));

/**
 * Plans the restore of `model` (from point `source.pointId`) into `target` with `options`. Returns every
 * problem at once, or the plan.
 */
export function planRestore(
  model: VAppModel,
  target: RestoreTargetState,
  options: RestoreOptions,
  source: { pointId: string; repositoryId?: string | null },
): PlanResult {
  const problems: RestoreProblem[] = [];
  const warnings: string[] = [];
  const problem = (attribute: string, value: string, message: string, option: string, example: unknown) =>
    problems.push({ attribute, value, message, fix: { option, example } });

  // ---- VDC
  const vdcKey = options.targetVdc ?? model.vdc.name ?? model.vdc.id ?? '';
  const vdc =
    target.vdcs.find((v) => v.name === vdcKey || sameId(v.id, vdcKey)) ??
    (options.targetVdc === undefined ? target.vdcs.find((v) => sameId(v.id, model.vdc.id)) : undefined);
  const orgName = target.org?.name ?? model.org.name ?? '?';
  if (vdc === undefined) {
    problem(
      'vdc',
      vdcKey,
      `VDC "${vdcKey}" does not exist in organization "${orgName}"; choose one with targetVdc (available: ${list(target.vdcs.map((v) => v.name))})`,
      'targetVdc',
      target.vdcs[0]?.name ?? '<vdc>',
    );
  }
  const vdcName = vdc?.name ?? vdcKey;
  const inVdc = <T extends { vdcId: string | null }>(items: readonly T[]) => (vdc === undefined ? [] : items.filter((i) => sameId(i.vdcId, vdc.id)));
  const vdcNetworks = inVdc(target.networks);
  const vdcPolicies = inVdc(target.storagePolicies);

  // ---- VM selection
  let vms: readonly VmModel[] = model.vms;
  if (options.vmSelection !== undefined) {
    const picked: VmModel[] = [];
    for (const key of options.vmSelection) {
      const vm = model.vms.find((v) => v.name === key || v.id === key || sameId(v.id, key));
      if (vm === undefined) {
        problem('vm', key, `VM "${key}" is not in the backed-up vApp "${model.name}"; vmSelection takes VM names or ids (its VMs: ${list(model.vms.map((v) => v.name))})`, 'vmSelection', model.vms.slice(0, 1).map((v) => v.name));
      } else if (!picked.includes(vm)) picked.push(vm);
    }
    vms = picked;
  }

  // ---- networks
  const usedParents = new Set<string>();
  const networks: PlannedNetwork[] = model.networks.map((n) => {
    if (n.parentNetwork === null || n.fenceMode === 'isolated') return { name: n.name, fenceMode: n.fenceMode, parentNetwork: null };
    usedParents.add(n.parentNetwork);
    const to = options.networkMap[n.parentNetwork] ?? n.parentNetwork;
    const found = vdcNetworks.find((x) => x.name === to);
    if (found === undefined && vdc !== undefined) {
      const mapped = to !== n.parentNetwork;
      problem(
        'network',
        n.parentNetwork,
        mapped
          ? `networkMap maps "${n.parentNetwork}" to "${to}", which does not exist in VDC "${vdcName}" (its networks: ${list(vdcNetworks.map((x) => x.name))})`
          : `network "${n.parentNetwork}" (parent of vApp network "${n.name}") does not exist in VDC "${vdcName}"; map it with networkMap {"${n.parentNetwork}": "<target>"} (available: ${list(vdcNetworks.map((x) => x.name))})`,
        'networkMap',
        { [n.parentNetwork]: vdcNetworks[0]?.name ?? '<target>' },
      );
    }
    return { name: n.name, fenceMode: n.fenceMode, parentNetwork: { from: n.parentNetwork, to, href: found?.href ?? null } };
  });
  for (const key of Object.keys(options.networkMap)) {
    if (!usedParents.has(key)) {
      problem('option', `networkMap.${key}`, `networkMap names "${key}", which is not a network of the backed-up vApp (its org VDC networks: ${list([...usedParents])}); remove it`, 'networkMap', Object.fromEntries([...usedParents].map((p) => [p, p])));
    }
  }

  // ---- storage policies
  const usedPolicies = new Set<string>();
  const checkedPolicies = new Set<string>();
  const policyOf = (p: string | null, where: string): string | null => {
    if (p === null) return null;
    usedPolicies.add(p);
    const to = options.storagePolicyMap[p] ?? p;
    if (vdc !== undefined && !vdcPolicies.some((x) => x.name === to) && !checkedPolicies.has(p)) {
      checkedPolicies.add(p);
      problem(
        'storagePolicy',
        p,
        to !== p
          ? `storagePolicyMap maps "${p}" to "${to}", which is not a storage policy of VDC "${vdcName}" (its policies: ${list(vdcPolicies.map((x) => x.name))})`
          : `storage policy "${p}" (${where}) does not exist in VDC "${vdcName}"; map it with storagePolicyMap {"${p}": "<target>"} (available: ${list(vdcPolicies.map((x) => x.name))})`,
        'storagePolicyMap',
        { [p]: vdcPolicies.find((x) => x.isDefault)?.name ?? vdcPolicies[0]?.name ?? '<target>' },
      );
    }
    return to;
  };
  const plannedVms = vms.map((vm) => ({
    vm,
    storagePolicy: policyOf(vm.storageProfile, `VM "${vm.name}"`),
    disks: [...vm.disks]
      .sort((a, b) => a.instanceId - b.instanceId)
      .map((d) => ({
        diskId: diskIdOf(vm.id, d.instanceId),
        instanceId: d.instanceId,
        sizeBytes: d.sizeBytes,
        storagePolicy: policyOf(d.storageProfile ?? vm.storageProfile, `disk ${d.instanceId} of VM "${vm.name}"`),
        busType: d.busType,
        busSubType: d.busSubType,
        busNumber: d.busNumber,
        unitNumber: d.unitNumber,
      })),
  }));
  for (const key of Object.keys(options.storagePolicyMap)) {
    if (!usedPolicies.has(key)) {
      problem('option', `storagePolicyMap.${key}`, `storagePolicyMap names "${key}", which no VM or disk of the backed-up vApp uses (it uses: ${list([...usedPolicies])}); remove it`, 'storagePolicyMap', {});
    }
  }

  // ---- name and the target vApp
  const targetName = options.newName ?? model.name;
  const inTargetVdc = (a: TargetVApp) => vdc !== undefined && sameId(a.vdcId, vdc.id);
  let targetVApp: TargetVApp | undefined;
  let resumes = false;
  if (options.mode === 'new') {
    const taken = target.vapps.find((a) => a.name === targetName && inTargetVdc(a));
    if (taken !== undefined && taken.restoreOf === source.pointId) {
      targetVApp = taken;
      resumes = true;
      warnings.push(`vApp "${targetName}" (${taken.id}) is an unfinished restore of point ${source.pointId}: the restore continues in it`);
    } else if (taken !== undefined) {
      const sameVApp = sameId(taken.id, model.id);
      problem(
        'name',
        targetName,
        `a vApp named "${targetName}" already exists in VDC "${vdcName}" (${taken.id}); give the restored vApp another name with newName${sameVApp ? ', or restore over it with mode "overwrite"' : ''}`,
        'newName',
        `${targetName}-restored`,
      );
    }
  } else {
    targetVApp =
      (options.newName === undefined ? target.vapps.find((a) => sameId(a.id, model.id)) : undefined) ??
      target.vapps.find((a) => a.name === targetName && inTargetVdc(a));
    if (targetVApp === undefined) {
      problem(
        'target',
        targetName,
        `there is no vApp "${targetName}"${options.newName === undefined ? ` (${model.id})` : ''} in VDC "${vdcName}" to overwrite; re-create it with mode "new"${options.newName === undefined ? ', or name the vApp to overwrite with newName' : ''}`,
        'mode',
        'new',
      );
    }
  }

  // ---- VMs and disks of an overwritten vApp
  const vmTargets = new Map<VmModel, TargetVm | null>();
  for (const { vm } of plannedVms) {
    if (options.mode !== 'overwrite' || targetVApp === undefined) {
      vmTargets.set(vm, resumes ? (targetVApp?.vms.find((t) => t.name === vm.name) ?? null) : null);
      continue;
    }
    const tvm = targetVApp.vms.find((t) => sameId(t.id, vm.id)) ?? targetVApp.vms.find((t) => t.name === vm.name);
    vmTargets.set(vm, tvm ?? null);
    if (tvm === undefined) {
      problem(
        'vm',
        vm.name,
        `VM "${vm.name}" is no longer in vApp "${targetVApp.name}", so its disks cannot be written over; leave it out with vmSelection, or re-create the whole vApp with mode "new"`,
        'vmSelection',
        targetVApp.vms.map((t) => t.name),
      );
      continue;
    }
    for (const d of vm.disks) {
      const td = tvm.disks.find((x) => x.instanceId === d.instanceId);
      if (td === undefined) {
        problem('disk', `${vm.name}/${d.instanceId}`, `VM "${vm.name}" of vApp "${targetVApp.name}" has no disk ${d.instanceId} any more; re-create the vApp with mode "new" (or leave the VM out with vmSelection)`, 'mode', 'new');
      } else if (td.sizeBytes !== null && d.sizeBytes !== null && td.sizeBytes < d.sizeBytes) {
        problem(
          'disk',
          `${vm.name}/${d.instanceId}`,
          `disk ${d.instanceId} of VM "${vm.name}" is ${td.sizeBytes} bytes now, smaller than the backed-up ${d.sizeBytes}; grow it in vCD first, or re-create the vApp with mode "new"`,
          'mode',
          'new',
        );
      }
    }
  }

  // ---- owner
  const ownerName = options.owner ?? model.owner.name;
  let owner: TargetRef | null = null;
  if (ownerName !== null) {
    owner = target.users.find((u) => u.name === ownerName) ?? null;
    if (owner === null) {
      problem(
        'owner',
        ownerName,
        `owner "${ownerName}" is not a user of organization "${orgName}"${options.owner === undefined ? ' any more' : ''}; choose the owner with owner (users: ${list(target.users.map((u) => u.name))})`,
        'owner',
        target.users[0]?.name ?? '<user>',
      );
    }
  }

  if (problems.length > 0) return { ok: false, problems };

  // ---- metadata
  const keepMetadata = (entries: readonly MetadataEntry[], where: string): MetadataEntry[] => {
    if (!options.restoreMetadata) return [];
    const out = entries.filter((m) => m.key !== RESTORE_MARKER_KEY);
    if (target.canWriteSystemMetadata) return out;
    const system = out.filter((m) => m.domain === 'SYSTEM');
    if (system.length > 0) warnings.push(`${system.length} SYSTEM-domain metadata entr${system.length === 1 ? 'y' : 'ies'} of ${where} are skipped: only a system administrator can write them`);
    return out.filter((m) => m.domain !== 'SYSTEM');
  };

  const partial = options.vmSelection !== undefined && options.mode === 'overwrite';
  const selectedNames = new Set(vms.map((v) => v.name));
  const lease = {
    deploymentLeaseSeconds: options.lease?.deploymentLeaseSeconds ?? model.lease.deploymentLeaseSeconds,
    storageLeaseSeconds: options.lease?.storageLeaseSeconds ?? model.lease.storageLeaseSeconds,
  };
  const planned: PlannedVm[] = plannedVms.map(({ vm, storagePolicy, disks }) => ({
    sourceVmId: vm.id,
    name: vm.name,
    targetVmId: vmTargets.get(vm)?.id ?? null,
    storagePolicy,
    disks,
    nics: vm.nics,
    metadata: keepMetadata(vm.metadata, `VM "${vm.name}"`),
  }));
  const vdcRef = vdc!;
  const steps: RestoreStep[] = [];
  const overwrites: string[] = [];
  const diskCount = planned.reduce((s, v) => s + v.disks.length, 0);
  if (options.mode === 'overwrite') {
    steps.push({ kind: 'enterMaintenance', detail: `put vApp "${targetVApp!.name}" in maintenance mode` });
    for (const vm of planned) {
      overwrites.push(`the ${vm.disks.length} disk(s) of VM "${vm.name}" (${vm.targetVmId})`);
      for (const d of vm.disks) steps.push({ kind: 'writeDisk', detail: `write disk ${d.instanceId} of VM "${vm.name}" from ${d.diskId}` });
    }
    if (!partial) {
      overwrites.push('the vApp network configuration', 'the lease', 'the startup order', 'the owner');
      if (options.restoreMetadata) overwrites.push('the vApp metadata entries present in the backup (other entries stay)');
    }
  } else {
    steps.push({ kind: 'composeVApp', detail: `create vApp "${targetName}" in VDC "${vdcRef.name}" with ${networks.length} network(s)` });
    for (const vm of planned) steps.push({ kind: 'createVm', detail: `create VM "${vm.name}" with ${vm.disks.length} disk(s)` });
    for (const vm of planned) for (const d of vm.disks) steps.push({ kind: 'writeDisk', detail: `write disk ${d.instanceId} of VM "${vm.name}" from ${d.diskId}` });
  }
  if (!partial) steps.push({ kind: 'networkConfig', detail: `vApp networks: ${networks.map((n) => (n.parentNetwork ? `${n.name} → ${n.parentNetwork.to}` : `${n.name} (isolated)`)).join(', ') || 'none'}` });
  steps.push({ kind: 'vmNetworkConnections', detail: `NICs of ${planned.length} VM(s)` });
  if (!partial) {
    steps.push({ kind: 'lease', detail: `deployment ${lease.deploymentLeaseSeconds ?? 'unchanged'} s, storage ${lease.storageLeaseSeconds ?? 'unchanged'} s` });
    steps.push({ kind: 'startup', detail: `${model.startup.length} startup item(s)` });
    if (owner !== null) steps.push({ kind: 'owner', detail: `owner ${owner.name}` });
  }
  const metadata = partial ? [] : keepMetadata(model.metadata, `vApp "${model.name}"`);
  if (options.restoreMetadata) {
    if (!partial) steps.push({ kind: 'metadata', detail: `${metadata.length} vApp metadata entr${metadata.length === 1 ? 'y' : 'ies'}` });
    steps.push({ kind: 'vmMetadata', detail: `metadata of ${planned.length} VM(s)` });
  }
  if (options.powerOn) steps.push({ kind: 'powerOn', detail: 'power the vApp on' });
  if (options.mode === 'overwrite') steps.push({ kind: 'exitMaintenance', detail: 'take the vApp out of maintenance mode (always, also on failure)' });
  if (diskCount === 0) warnings.push('the restore point has no disks to write');

  return {
    ok: true,
    plan: {
      version: RESTORE_PLAN_VERSION,
      mode: options.mode,
      source: { vappId: model.id, vappName: model.name, pointId: source.pointId, repositoryId: source.repositoryId ?? null },
      target: { org: target.org, vdc: vdcRef, name: options.mode === 'overwrite' ? targetVApp!.name : targetName, vappId: targetVApp?.id ?? null, resumes },
      networks,
      storagePolicyMap: Object.fromEntries([...usedPolicies].map((p) => [p, options.storagePolicyMap[p] ?? p])),
      storagePolicyHrefs: Object.fromEntries(vdcPolicies.map((p) => [p.name, p.href ?? null])),
      owner,
      lease,
      startup: partial ? [] : model.startup.filter((s) => selectedNames.has(s.vmName)),
      powerOn: options.powerOn,
      restoreMetadata: options.restoreMetadata,
      metadata,
      partial,
      vms: planned,
      overwrites,
      warnings,
      steps,
    },
  };
}

/** One line per problem, for people: `- network "Corp-Net": … (fix: networkMap {"Corp-Net":"…"})`. */
export function describeProblems(problems: readonly RestoreProblem[]): string {
  return problems.map((p) => `- ${p.attribute} "${p.value}": ${p.message} (fix: ${p.fix.option} ${JSON.stringify(p.fix.example)})`).join('\n');
}
