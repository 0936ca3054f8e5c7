import { describe, expect, it } from 'vitest';
import { parseRestoreOptions, parseRestorePlan, parseRestoreRunState, planRestore, RESTORE_MARKER_KEY, type RestoreTargetState } from '../../lib/domain/restore/index.js';
import type { VAppModel } from '../../lib/vcd/model.js';

const U = (n: number) => `0000000${n}-0000-4000-8000-000000000000`.slice(-36);
const vdcA = { id: `urn:vcloud:vdc:${U(1)}`, name: 'vdc-a' };
const vdcB = { id: `urn:vcloud:vdc:${U(2)}`, name: 'vdc-b' };
const vappId = `urn:vcloud:vapp:${U(3)}`;
const vm1 = `urn:vcloud:vm:${U(4)}`;
const vm2 = `urn:vcloud:vm:${U(5)}`;

const model: VAppModel = {
  id: vappId,
  name: 'erp',
  description: 'ERP',
  status: 4,
  deployed: true,
  org: { id: `urn:vcloud:org:${U(9)}`, name: 'acme' },
  vdc: vdcA,
  owner: { name: 'alice', href: null },
  lease: { deploymentLeaseSeconds: 0, storageLeaseSeconds: 3600 },
  startup: [
    { vmName: 'db', order: 0, startAction: 'powerOn', startDelaySeconds: 60, stopAction: 'guestShutdown', stopDelaySeconds: 30 },
    { vmName: 'app', order: 1, startAction: 'powerOn', startDelaySeconds: 0, stopAction: 'powerOff', stopDelaySeconds: 0 },
  ],
  networks: [
    { name: 'front', fenceMode: 'bridged', parentNetwork: 'Corp-Net', ipScopes: [] },
    { name: 'back', fenceMode: 'isolated', parentNetwork: null, ipScopes: [] },
  ],
  vms: [
    {
      id: vm1, name: 'db', description: null, computerName: 'db', moref: 'vm-1', vcenter: null, cpu: { count: 2, coresPerSocket: 1 }, memoryMiB: 2048, hardwareVersion: 'vmx-19', storageProfile: 'Gold',
      disks: [
        { instanceId: 2001, sizeBytes: 2048, busType: 6, busSubType: 'VirtualSCSI', busNumber: 0, unitNumber: 1, storageProfile: 'Fast' },
        { instanceId: 2000, sizeBytes: 1024, busType: 6, busSubType: 'VirtualSCSI', busNumber: 0, unitNumber: 0, storageProfile: 'Gold' },
      ],
      nics: [{ index: 0, network: 'front', connected: true, primary: true, ipAddress: null, macAddress: null, allocationMode: 'DHCP', adapterType: 'VMXNET3' }],
      guestCustomization: null,
      metadata: [{ key: 'role', value: 'db', type: 'string', domain: 'GENERAL', visibility: 'READWRITE' }],
    },
    {
      id: vm2, name: 'app', description: null, computerName: 'app', moref: 'vm-2', vcenter: null, cpu: { count: 1, coresPerSocket: 1 }, memoryMiB: 1024, hardwareVersion: 'vmx-19', storageProfile: 'Gold',
      disks: [{ instanceId: 2000, sizeBytes: 512, busType: 6, busSubType: 'VirtualSCSI', busNumber: 0, unitNumber: 0, storageProfile: null }],
      nics: [], guestCustomization: null, metadata: [],
    },
  ],
  metadata: [
    { key: 'tier', value: 1, type: 'number', domain: 'GENERAL', visibility: 'READWRITE' },
    { key: 'sys', value: true, type: 'boolean', domain: 'SYSTEM', visibility: 'PRIVATE' },
    { key: RESTORE_MARKER_KEY, value: 'old', type: 'string', domain: 'SYSTEM', visibility: 'PRIVATE' },
  ],
};

function target(overrides: Partial<RestoreTargetState> = {}): RestoreTargetState {
  return {
    org: { id: model.org.id!, name: 'acme' },
    vdcs: [vdcA, vdcB],
    networks: [
      { id: 'n1', name: 'Corp-Net', href: 'https://vcd/api/admin/network/n1', vdcId: vdcA.id },
      { id: 'n2', name: 'New-Net', href: 'https://vcd/api/admin/network/n2', vdcId: vdcA.id },
      { id: 'n3', name: 'B-Net', vdcId: vdcB.id },
    ],
    storagePolicies: [
      { id: 'p1', name: 'Gold', vdcId: vdcA.id, isDefault: true },
      { id: 'p2', name: 'Fast', vdcId: vdcA.id, isDefault: false },
      { id: 'p3', name: 'Silver', vdcId: vdcB.id, isDefault: true },
    ],
    vapps: [],
    users: [{ id: 'u1', name: 'alice' }, { id: 'u2', name: 'bob' }],
    canWriteSystemMetadata: true,
    ...overrides,
  };
}

const existing = {
  id: vappId,
  name: 'erp',
  vdcId: vdcA.id,
  restoreOf: null,
  vms: [
    { id: vm1, name: 'db', disks: [{ instanceId: 2000, sizeBytes: 1024 }, { instanceId: 2001, sizeBytes: 2048 }] },
    { id: vm2, name: 'app', disks: [{ instanceId: 2000, sizeBytes: 512 }] },
  ],
};

const plan = (t: RestoreTargetState, options: Record<string, unknown> = {}) => planRestore(model, t, parseRestoreOptions(options), { pointId: 'p-1', repositoryId: 'repo' });

describe('restore planner', () => {
  it('reports every non-conforming attribute at once, each with the option that fixes it', () => {
    const t = target({
      networks: [{ id: 'n2', name: 'New-Net', vdcId: vdcA.id }],
      storagePolicies: [{ id: 'p1', name: 'Gold', vdcId: vdcA.id, isDefault: true }],
      users: [{ id: 'u2', name: 'bob' }],
      vapps: [{ ...existing, id: `urn:vcloud:vapp:${U(7)}` }],
    });
    const before = JSON.stringify({ model, t });
    const result = plan(t);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const byAttr = Object.fromEntries(result.problems.map((p) => [p.attribute, p]));
    expect(Object.keys(byAttr).sort()).toEqual(['name', 'network', 'owner', 'storagePolicy']);
    expect(byAttr.network!.message).toContain('network "Corp-Net" (parent of vApp network "front") does not exist in VDC "vdc-a"; map it with networkMap {"Corp-Net": "<target>"}');
    expect(byAttr.network!.fix).toEqual({ option: 'networkMap', example: { 'Corp-Net': 'New-Net' } });
    expect(byAttr.storagePolicy!.fix.option).toBe('storagePolicyMap');
    expect(byAttr.storagePolicy!.value).toBe('Fast');
    expect(byAttr.name!.fix).toEqual({ option: 'newName', example: 'erp-restored' });
    expect(byAttr.owner!.fix).toEqual({ option: 'owner', example: 'bob' });
    // nothing changed: inputs untouched
    expect(JSON.stringify({ model, t })).toBe(before);
  });

  it.each([
    ['missing VDC → targetVdc', target({ vdcs: [vdcB] }), {}, 'vdc', 'targetVdc'],
    ['mapped network that does not exist', target(), { networkMap: { 'Corp-Net': 'Nope' } }, 'network', 'networkMap'],
    ['networkMap key that is no network of the vApp', target(), { networkMap: { Other: 'New-Net' } }, 'option', 'networkMap'],
    ['storage policy of another VDC', target(), { targetVdc: 'vdc-b', networkMap: { 'Corp-Net': 'B-Net' } }, 'storagePolicy', 'storagePolicyMap'],
    ['owner that is not a user', target(), { owner: 'mallory' }, 'owner', 'owner'],
    ['overwrite without a vApp', target(), { mode: 'overwrite' }, 'target', 'mode'],
    ['unknown VM in the selection', target({ vapps: [existing] }), { mode: 'overwrite', vmSelection: ['nope'] }, 'vm', 'vmSelection'],
    ['overwrite when a disk shrank', target({ vapps: [{ ...existing, vms: [{ ...existing.vms[0]!, disks: [{ instanceId: 2000, sizeBytes: 10 }, { instanceId: 2001, sizeBytes: 2048 }] }, existing.vms[1]!] }] }), { mode: 'overwrite' }, 'disk', 'mode'],
  ] as const)('%s', (_name, t, options, attribute, option) => {
    const result = plan(t, options);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.find((p) => p.attribute === attribute)?.fix.option).toBe(option);
  });

  it('a remapped plan succeeds, with the mappings, ordered steps and disks in instance order', () => {
    const t = target({ networks: [{ id: 'n2', name: 'New-Net', href: 'h2', vdcId: vdcA.id }], storagePolicies: [{ id: 'p1', name: 'Gold', href: 'ph', vdcId: vdcA.id, isDefault: true }] });
    const result = plan(t, { networkMap: { 'Corp-Net': 'New-Net' }, storagePolicyMap: { Fast: 'Gold' }, owner: 'bob', newName: 'erp-2', lease: { storageLeaseSeconds: 0 } });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const p = result.plan;
    expect(p.mode).toBe('new');
    expect(p.target).toMatchObject({ name: 'erp-2', vdc: vdcA, vappId: null, resumes: false });
    expect(p.networks).toEqual([
      { name: 'front', fenceMode: 'bridged', parentNetwork: { from: 'Corp-Net', to: 'New-Net', href: 'h2' } },
      { name: 'back', fenceMode: 'isolated', parentNetwork: null },
    ]);
    expect(p.storagePolicyMap).toEqual({ Gold: 'Gold', Fast: 'Gold' });
    expect(p.owner?.name).toBe('bob');
    expect(p.lease).toEqual({ deploymentLeaseSeconds: 0, storageLeaseSeconds: 0 });
    expect(p.vms[0]!.disks.map((d) => [d.diskId, d.storagePolicy])).toEqual([[`${U(4)}-2000`, 'Gold'], [`${U(4)}-2001`, 'Gold']]);
    expect(p.steps.map((s) => s.kind)).toEqual(['composeVApp', 'createVm', 'createVm', 'writeDisk', 'writeDisk', 'writeDisk', 'networkConfig', 'vmNetworkConnections', 'lease', 'startup', 'owner', 'metadata', 'vmMetadata']);
    expect(p.metadata.map((m) => m.key)).toEqual(['tier', 'sys']); // the restore marker never comes back
  });

  it('overwrite targets the existing vApp, maps VMs by id, and runs inside maintenance mode', () => {
    const result = plan(target({ vapps: [existing] }), { mode: 'overwrite', powerOn: true });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const p = result.plan;
    expect(p.target.vappId).toBe(vappId);
    expect(p.vms.map((v) => v.targetVmId)).toEqual([vm1, vm2]);
    expect(p.steps[0]!.kind).toBe('enterMaintenance');
    expect(p.steps.at(-1)!.kind).toBe('exitMaintenance');
    expect(p.steps.map((s) => s.kind)).toContain('powerOn');
    expect(p.overwrites.join(' ')).toContain('network configuration');
  });

  it('new mode with the same name is refused, and suggests overwrite for the same vApp', () => {
    const result = plan(target({ vapps: [existing] }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]!.message).toContain('mode "overwrite"');
  });

  it('resumes an unfinished re-create of the same point instead of reporting the name', () => {
    const result = plan(target({ vapps: [{ ...existing, id: `urn:vcloud:vapp:${U(8)}`, restoreOf: 'p-1' }] }));
    expect(result.ok && result.plan.target.resumes).toBe(true);
  });

  it('VM selection restores some VMs into the existing vApp and leaves vApp-level settings alone', () => {
    const result = plan(target({ vapps: [existing] }), { mode: 'overwrite', vmSelection: ['app'] });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.plan.partial).toBe(true);
    expect(result.plan.vms.map((v) => v.name)).toEqual(['app']);
    expect(result.plan.steps.map((s) => s.kind)).toEqual(['enterMaintenance', 'writeDisk', 'vmNetworkConnections', 'vmMetadata', 'exitMaintenance']);
  });

  it('tenants skip SYSTEM metadata with a warning; restoreMetadata false skips all metadata', () => {
    const tenant = plan(target({ canWriteSystemMetadata: false }));
    expect(tenant.ok && tenant.plan.metadata.map((m) => m.key)).toEqual(['tier']);
    expect(tenant.ok && tenant.plan.warnings.join(' ')).toContain('SYSTEM-domain');
    const none = plan(target(), { restoreMetadata: false });
    expect(none.ok && none.plan.metadata).toEqual([]);
    expect(none.ok && none.plan.steps.some((s) => s.kind === 'metadata')).toBe(false);
  });

  it('rejects unknown or malformed options naming the field', () => {
    expect(() => parseRestoreOptions({ mode: 'replace' })).toThrow(/mode/);
    expect(() => parseRestoreOptions({ networkmap: {} })).toThrow(/networkmap/);
  });
});

describe('the restore plan schema (a plan crossing a queue or read back from the catalog)', () => {
  it('accepts every plan the planner makes, after a JSON round trip', () => {
    let parsed = 0;
    for (const options of [{}, { mode: 'overwrite' }, { newName: 'copy', powerOn: true, restoreMetadata: false }]) {
      const result = plan(target(), options);
      if (!result.ok) continue;
      expect(parseRestorePlan(JSON.parse(JSON.stringify(result.plan)), 'test')).toEqual(result.plan);
      parsed++;
    }
    expect(parsed).toBeGreaterThan(1);
  });

  it('refuses a plan of another shape, naming every bad field and where it came from', () => {
    const result = plan(target());
    if (!result.ok) throw new Error('expected a plan');
    const bad = { ...JSON.parse(JSON.stringify(result.plan)), mode: 'recreate', vms: [{ sourceVmId: '' }] };
    expect(() => parseRestorePlan(bad, 'StartRestoreRun of run r-1')).toThrow(expect.objectContaining({ code: 'RESTORE_PLAN_INVALID', message: expect.stringMatching(/^StartRestoreRun of run r-1 .*mode: .*vms\.0\.sourceVmId: /) }));
    expect(() => parseRestorePlan({ mode: 'new' }, 'x')).toThrow(/version: /);
  });

  it('refuses a stored run state whose plan does not parse', () => {
    expect(() => parseRestoreRunState({ version: 1, plan: {} }, 'r-1')).toThrow(expect.objectContaining({ code: 'RESTORE_STATE_INVALID' }));
  });
});
