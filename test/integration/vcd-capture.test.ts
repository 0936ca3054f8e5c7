import { execFileSync } from 'node:child_process';
import { cli } from '../helpers/cli.js';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryLogger } from '../../lib/log.js';
import { Secret } from '../../lib/secret.js';
import { CaptureCache, captureVApp } from '../../lib/vcd/capture.js';
import { VcdClient } from '../../lib/vcd/client.js';
import { MaintenanceExitError, VcdApiError, VcdNetworkError, VcdTimeoutError } from '../../lib/vcd/errors.js';
import { certificateFingerprint } from '../../lib/vcd/http.js';
import { captureWithMaintenance, withMaintenanceMode } from '../../lib/vcd/maintenance.js';
import type { VAppModel } from '../../lib/vcd/model.js';
import { resolveScope } from '../../lib/vcd/scope.js';
import { demoInventory, startVcdSimulator, type VcdSimulator } from '../../lib/vcd/sim/index.js';
import type { SimInventoryInput } from '../../lib/vcd/sim/inventory.js';

const GiB = 1024 ** 3;
const ids = {
  org: '0a0a0a0a-0000-4000-8000-000000000001',
  vdc: '0b0b0b0b-0000-4000-8000-000000000002',
  vapp: '11111111-1111-4111-8111-111111111111',
  vmA: '22222222-2222-4222-8222-222222222222',
  vmB: '33333333-3333-4333-8333-333333333333',
  vc: '44444444-4444-4444-8444-444444444444',
  solo: '55555555-5555-4555-8555-555555555555',
  other: '66666666-6666-4666-8666-666666666666',
};

const inventory: SimInventoryInput = {
  vcenters: [{ name: 'vc-1', id: ids.vc }],
  apiTokens: [{ token: 'provider-token-abc', org: 'System' }],
  orgs: [
    {
      id: ids.org,
      name: 'acme',
      users: [{ name: 'alice', password: 'alice-pw', storedVmQuota: 7, deployedVmQuota: 3 }],
      vdcs: [
        {
          id: ids.vdc,
          name: 'vdc-1',
          networks: [{ name: 'ext-net', gateway: '10.0.0.1', netmask: '255.255.255.0', prefixLength: 24, dns1: '10.0.0.2', ipRanges: [{ start: '10.0.0.10', end: '10.0.0.99' }] }],
          storagePolicies: [{ name: 'Gold', default: true }, { name: 'Fast' }],
          vapps: [
            {
              id: ids.vapp,
              name: 'app',
              description: 'Test app',
              owner: 'alice',
              storageLeaseSeconds: 86_400,
              networks: [
                { name: 'routed', fenceMode: 'natRouted', parentNetwork: 'ext-net', gateway: '192.168.1.1', netmask: '255.255.255.0', prefixLength: 24, ipRanges: [{ start: '192.168.1.10', end: '192.168.1.20' }] },
                { name: 'iso', fenceMode: 'isolated', gateway: '172.16.0.1', netmask: '255.255.0.0', prefixLength: 16 },
              ],
              metadata: [
                { key: 'n', value: 5 },
                { key: 's', value: '0012' },
                { key: 'b', value: true, domain: 'SYSTEM', visibility: 'PRIVATE' },
                { key: 'd', value: '2026-01-01T00:00:00.000Z', type: 'dateTime' },
              ],
              vms: [
                {
                  id: ids.vmA,
                  name: 'vm-a',
                  cpus: 4,
                  coresPerSocket: 2,
                  memoryMiB: 4096,
                  moref: 'vm-77',
                  adminPassword: 'pw-secret-123',
                  disks: [
                    { sizeBytes: 2 * GiB, path: '/x/a0.img' },
                    { sizeBytes: GiB, path: '/x/a1.img', busNumber: 1, busSubType: 'lsilogicsas', storagePolicy: 'Fast' },
                  ],
                  nics: [
                    { network: 'routed', ipAddress: '192.168.1.11', macAddress: '00:50:56:aa:bb:01' },
                    { network: 'iso', allocationMode: 'MANUAL', ipAddress: '172.16.0.5', macAddress: '00:50:56:aa:bb:02', adapterType: 'E1000E', connected: false },
                  ],
                  metadata: [{ key: 'role', value: 'db' }],
                },
                { id: ids.vmB, name: 'vm-b', computerName: 'VMB', memoryMiB: 512, poweredOn: false, disks: [{ sizeBytes: 512 * 1024 * 1024, path: '/x/b0.img' }] },
              ],
            },
            { id: ids.solo, name: 'solo', standalone: true, owner: 'alice', vms: [{ name: 'solo-vm', disks: [{ sizeBytes: GiB, path: '/x/s.img' }] }] },
          ],
        },
      ],
    },
    { name: 'globex', vdcs: [{ name: 'g-vdc', vapps: [{ id: ids.other, name: 'g-app', vms: [{ name: 'g-vm' }] }] }] },
  ],
};

function expectedModel(base: string, ownerId: string): VAppModel {
  const vc = `${base}/api/admin/extension/vimServer/${ids.vc}`;
  return {
    id: `urn:vcloud:vapp:${ids.vapp}`,
    name: 'app',
    description: 'Test app',
    status: 10,
    deployed: true,
    org: { id: `urn:vcloud:org:${ids.org}`, name: 'acme' },
    vdc: { id: `urn:vcloud:vdc:${ids.vdc}`, name: 'vdc-1' },
    owner: { name: 'alice', href: `${base}/api/admin/user/${ownerId}` },
    lease: { deploymentLeaseSeconds: 0, storageLeaseSeconds: 86_400 },
    startup: [
      { vmName: 'vm-a', order: 0, startAction: 'powerOn', startDelaySeconds: 0, stopAction: 'powerOff', stopDelaySeconds: 0 },
      { vmName: 'vm-b', order: 1, startAction: 'powerOn', startDelaySeconds: 0, stopAction: 'powerOff', stopDelaySeconds: 0 },
    ],
    networks: [
      { name: 'routed', fenceMode: 'natRouted', parentNetwork: 'ext-net', ipScopes: [{ gateway: '192.168.1.1', netmask: '255.255.255.0', subnetPrefixLength: 24, dns1: '10.0.0.2', dns2: null, ipRanges: [{ start: '192.168.1.10', end: '192.168.1.20' }] }] },
      { name: 'iso', fenceMode: 'isolated', parentNetwork: null, ipScopes: [{ gateway: '172.16.0.1', netmask: '255.255.0.0', subnetPrefixLength: 16, dns1: null, dns2: null, ipRanges: [] }] },
    ],
    vms: [
      {
        id: `urn:vcloud:vm:${ids.vmA}`,
        name: 'vm-a',
        description: null,
        computerName: 'vm-a',
        moref: 'vm-77',
        vcenter: vc,
        cpu: { count: 4, coresPerSocket: 2 },
        memoryMiB: 4096,
        hardwareVersion: 'vmx-19',
        storageProfile: 'Gold',
        disks: [
          { instanceId: 2000, sizeBytes: 2 * GiB, busType: 6, busSubType: 'VirtualSCSI', busNumber: 0, unitNumber: 0, storageProfile: 'Gold' },
          { instanceId: 2001, sizeBytes: GiB, busType: 6, busSubType: 'lsilogicsas', busNumber: 1, unitNumber: 0, storageProfile: 'Fast' },
        ],
        nics: [
          { index: 0, network: 'routed', connected: true, primary: true, ipAddress: '192.168.1.11', macAddress: '00:50:56:aa:bb:01', allocationMode: 'POOL', adapterType: 'VMXNET3' },
          { index: 1, network: 'iso', connected: false, primary: false, ipAddress: '172.16.0.5', macAddress: '00:50:56:aa:bb:02', allocationMode: 'MANUAL', adapterType: 'E1000E' },
        ],
        guestCustomization: { enabled: true, computerName: 'vm-a', adminPasswordSet: true },
        metadata: [{ key: 'role', value: 'db', type: 'string', domain: 'GENERAL', visibility: 'READWRITE' }],
      },
      {
        id: `urn:vcloud:vm:${ids.vmB}`,
        name: 'vm-b',
        description: null,
        computerName: 'VMB',
        moref: 'vm-1001',
        vcenter: vc,
        cpu: { count: 1, coresPerSocket: 1 },
        memoryMiB: 512,
        hardwareVersion: 'vmx-19',
        storageProfile: 'Gold',
        disks: [{ instanceId: 2000, sizeBytes: 512 * 1024 * 1024, busType: 6, busSubType: 'VirtualSCSI', busNumber: 0, unitNumber: 0, storageProfile: 'Gold' }],
        nics: [],
        guestCustomization: { enabled: true, computerName: 'VMB', adminPasswordSet: false },
        metadata: [],
      },
    ],
    metadata: [
      { key: 'n', value: 5, type: 'number', domain: 'GENERAL', visibility: 'READWRITE' },
      { key: 's', value: '0012', type: 'string', domain: 'GENERAL', visibility: 'READWRITE' },
      { key: 'b', value: true, type: 'boolean', domain: 'SYSTEM', visibility: 'PRIVATE' },
      { key: 'd', value: '2026-01-01T00:00:00.000Z', type: 'dateTime', domain: 'GENERAL', visibility: 'READWRITE' },
    ],
  };
}

const admin = { kind: 'password', user: 'administrator', org: 'System', password: new Secret('vmware') } as const;
let sim: VcdSimulator;
let client: VcdClient;
const ownerId = () => sim.state.orgs[0]?.users[0]?.id ?? '';
const fastExit = { exitAttempts: 2, exitBackoffMs: 5 };

beforeAll(async () => {
  sim = await startVcdSimulator({ inventory });
  client = await VcdClient.connect({ url: sim.url, credentials: admin, retry: { retries: 2, baseDelayMs: 5, maxDelayMs: 10 } });
});
afterAll(async () => {
  await client.logout();
  await sim.stop();
});
afterEach(() => {
  sim.faults.clear();
  for (const v of sim.vapps()) {
    v.inMaintenanceMode = false;
    v.tasks.length = 0;
  }
});

const requestLines = () => sim.requests.map((r) => `${r.method} ${r.path.replace(sim.url, '')}`);

describe('capture', () => {
  it('captures a vApp into exactly the expected model, in maintenance mode, with few calls', async () => {
    const cache = new CaptureCache();
    sim.resetRequests();
    const captured = await captureWithMaintenance(client, ids.vapp, { alreadyInMaintenance: false, cache });
    expect(captured.model).toEqual(expectedModel(sim.url, ownerId()));
    expect(captured.enteredMaintenance).toBe(true);
    expect(captured.inMaintenanceMode).toBe(true); // as seen during capture
    expect(sim.findVApp(ids.vapp)?.inMaintenanceMode).toBe(false); // and released
    expect(requestLines()[0]).toMatch(/enterMaintenanceMode$/);
    expect(requestLines().at(-1)).toMatch(/exitMaintenanceMode$/);
    expect(captured.ownerQuotas).toEqual({ storedVmQuota: 7, deployedVmQuota: 3 });
    expect(captured.access?.settings[0]).toMatchObject({ subjectName: 'alice', accessLevel: 'FullControl' });
    expect(captured.sensitive).toEqual(['vm "vm-a" GuestCustomizationSection/AdminPassword']);
    expect(JSON.stringify(captured)).not.toContain('pw-secret-123'); // raw documents are Secrets
    expect(captured.raw.vapp.reveal()).toContain('pw-secret-123');

    // With the run's cache warm (VDC, org, owner), a vApp costs enter + vApp + metadata + access + 1 per VM + exit.
    sim.resetRequests();
    await captureWithMaintenance(client, ids.vapp, { alreadyInMaintenance: false, cache });
    expect(sim.requests).toHaveLength(4 + 2 + 1);
    expect(sim.requests.length).toBeLessThanOrEqual(4 + 2 * 2);
  });

  it('captures as a tenant without morefs or owner quotas', async () => {
    const tenant = await VcdClient.connect({ url: sim.url, credentials: { kind: 'password', user: 'alice', org: 'acme', password: new Secret('alice-pw') } });
    try {
      const captured = await captureVApp(tenant, `urn:vcloud:vapp:${ids.vapp}`);
      expect(captured.model.vms.map((v) => [v.moref, v.vcenter])).toEqual([[null, null], [null, null]]);
      expect(captured.ownerQuotas).toBeNull();
      expect(captured.model.metadata.map((m) => m.key)).toEqual(['n', 's', 'd']); // PRIVATE is hidden from tenants
    } finally {
      await tenant.logout();
    }
  });

  it('waits for tasks already running on the vApp before capturing', async () => {
    const task = sim.startTask(ids.vapp, { durationMs: 400 });
    const started = performance.now();
    sim.resetRequests();
    await captureWithMaintenance(client, ids.vapp, { alreadyInMaintenance: false });
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    expect(requestLines()).toContain(`GET /api/task/${task.id}`);
    expect(sim.findVApp(ids.vapp)?.inMaintenanceMode).toBe(false);
  });
});

describe('maintenance mode is released on every failure path', () => {
  const inMm = () => sim.findVApp(ids.vapp)?.inMaintenanceMode;

  it('when the work throws', async () => {
    await expect(withMaintenanceMode(client, ids.vapp, async () => Promise.reject(new Error('boom')), { alreadyInMaintenance: false })).rejects.toThrow('boom');
    expect(inMm()).toBe(false);
  });

  it('when a capture call keeps failing', async () => {
    sim.faults.add({ method: 'GET', path: `/api/vApp/vm-${ids.vmB}/metadata`, status: 500 });
    await expect(captureWithMaintenance(client, ids.vapp, { alreadyInMaintenance: false })).rejects.toThrow(VcdApiError);
    expect(inMm()).toBe(false);
  });

  it('when running tasks do not drain in time', async () => {
    sim.startTask(ids.vapp, { durationMs: 3_000 });
    await expect(captureWithMaintenance(client, ids.vapp, { taskTimeoutMs: 200 })).rejects.toThrow(VcdTimeoutError);
    expect(inMm()).toBe(false);
  });

  it('when the work times out', async () => {
    const err = await withMaintenanceMode(client, ids.vapp, () => sleep(600), { alreadyInMaintenance: false, workTimeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VcdTimeoutError);
    expect(inMm()).toBe(false);
  });

  it('when entering answers 503 once (retried)', async () => {
    sim.faults.add({ method: 'POST', path: 'enterMaintenanceMode', status: 503, times: 1 });
    await expect(captureWithMaintenance(client, ids.vapp, { alreadyInMaintenance: false })).resolves.toMatchObject({ enteredMaintenance: true });
    expect(inMm()).toBe(false);
  });

  it('retries exiting, and raises an alert when it cannot', async () => {
    sim.faults.add({ method: 'POST', path: 'exitMaintenanceMode', status: 503, times: 2 });
    await captureWithMaintenance(client, ids.vapp, { alreadyInMaintenance: false, ...fastExit });
    expect(inMm()).toBe(false);

    const log = createMemoryLogger();
    sim.faults.add({ method: 'POST', path: 'exitMaintenanceMode', status: 500 });
    const err = await captureWithMaintenance(client, ids.vapp, { alreadyInMaintenance: false, log, ...fastExit }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MaintenanceExitError);
    expect((err as MaintenanceExitError).alert).toBe(true);
    expect(log.lines.join('\n')).toMatch(/ALERT: vApp .* could not be taken out of maintenance mode/);
    expect(inMm()).toBe(true); // the simulator really kept it: that is what the alert is for
  });

  it('reports both the work error and the exit failure', async () => {
    sim.faults.add({ method: 'POST', path: 'exitMaintenanceMode', status: 500 });
    const err = await withMaintenanceMode(client, ids.vapp, async () => Promise.reject(new Error('work failed')), { alreadyInMaintenance: false, ...fastExit }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MaintenanceExitError);
    expect(((err as MaintenanceExitError).workError as Error).message).toBe('work failed');
  });

  it('leaves a vApp that was already in maintenance mode as it was', async () => {
    sim.setMaintenance(ids.vapp, true);
    sim.resetRequests();
    const captured = await captureWithMaintenance(client, ids.vapp);
    expect(captured.enteredMaintenance).toBe(false);
    expect(requestLines().some((l) => l.includes('MaintenanceMode'))).toBe(false);
    expect(inMm()).toBe(true);
  });
});

describe('scope resolution', () => {
  it('resolves instance, orgs, VDCs, vApps and VMs minus exclusions', async () => {
    const names = async (scope: Parameters<typeof resolveScope>[1]) => (await resolveScope(client, scope)).map((v) => v.name);
    expect(await names({ include: { instance: true } })).toEqual(['app', 'g-app', 'solo']);
    expect(await names({ include: { orgs: [`urn:vcloud:org:${ids.org}`] } })).toEqual(['app', 'solo']);
    expect(await names({ include: { vdcs: [ids.vdc] }, exclude: { vapps: [`vapp-${ids.vapp}`] } })).toEqual(['solo']);
    expect(await names({ include: { instance: true }, exclude: { orgs: [ids.org] } })).toEqual(['g-app']);
    const byVm = await resolveScope(client, { include: { vms: [`${sim.url}/api/vApp/vm-${ids.vmB}`] } });
    expect(byVm.map((v) => [v.name, v.reason])).toEqual([['app', 'vm']]);
    const solo = sim.findVApp('solo')?.vms[0]?.id ?? '';
    const standalone = await resolveScope(client, { include: { vms: [solo] } });
    expect(standalone.map((v) => [v.name, v.standalone])).toEqual([['solo', true]]);
    const partial = await resolveScope(client, { include: { vapps: [ids.vapp] }, exclude: { vms: [ids.vmB] } });
    expect(partial[0]?.excludedVmIds).toEqual([`urn:vcloud:vm:${ids.vmB}`]);
    expect(await names({ include: { vapps: [ids.solo] }, exclude: { vms: [solo] } })).toEqual([]);
  });
});

describe('TLS', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vcdb-tls-'));
  let tlsSim: VcdSimulator | undefined;
  let certPem = '';
  const haveOpenssl = (() => {
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
      certPem = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
      return true;
    } catch {
      return false;
    }
  })();
  afterAll(async () => {
    await tlsSim?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // A missing openssl fails this test loudly (.ci/run installs it): TLS pinning must never go untested.
  it('refuses an untrusted certificate, accepts a CA bundle or a pinned fingerprint, rejects a wrong pin before sending credentials', async () => {
    if (!haveOpenssl) throw new Error('this test makes its certificate with openssl: apt-get install -y openssl');
    tlsSim = await startVcdSimulator({ inventory, tls: { key: readFileSync(path.join(dir, 'key.pem')), cert: certPem } });
    const base = { url: tlsSim.url, credentials: admin, retry: { retries: 0 } };
    const untrusted = await VcdClient.connect(base).catch((e: unknown) => e);
    expect(untrusted).toBeInstanceOf(VcdNetworkError);
    expect(untrusted).toMatchObject({ code: 'VCD_TLS_UNTRUSTED' });

    const withCa = await VcdClient.connect({ ...base, tls: { ca: certPem } });
    expect(withCa.version).toBe('39.1');
    withCa.close();

    const fingerprint = certificateFingerprint(certPem).match(/../g)?.join(':') ?? '';
    const pinned = await VcdClient.connect({ ...base, tls: { fingerprint } });
    expect(pinned.version).toBe('39.1');
    pinned.close();

    tlsSim.resetRequests();
    const wrong = await VcdClient.connect({ ...base, tls: { fingerprint: 'ab'.repeat(32) } }).catch((e: unknown) => e);
    expect(wrong).toMatchObject({ code: 'VCD_TLS_PIN_MISMATCH' });
    expect(tlsSim.requests).toHaveLength(0);
  });
});

describe('vcd capture CLI', () => {
  const run = (args: string[], env: Record<string, string> = {}) => cli(args, env);

  it('prints the model of a live vApp, with a password login or an API token', async () => {
    const r = await run(['vcd', 'capture', '--url', sim.url, '--user', 'administrator', '--org', 'System', '--password-env', 'VCD_PW', '--vapp', ids.vapp, '--json'], { VCD_PW: 'vmware' });
    expect(r.stderr).not.toContain('vmware');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(expectedModel(sim.url, ownerId()));
    expect(sim.findVApp(ids.vapp)?.inMaintenanceMode).toBe(false);

    const raw = mkdtempSync(path.join(tmpdir(), 'vcdb-raw-'));
    try {
      const t = await run(['vcd', 'capture', '--url', sim.url, '--token-env', 'TOK', '--vapp', `vapp-${ids.vapp}`, '--json', '--full', '--raw-dir', raw], { TOK: 'provider-token-abc' });
      expect(t.code).toBe(0);
      const full = JSON.parse(t.stdout) as { model: VAppModel; ownerQuotas: unknown; sensitive: string[] };
      expect(full.model.name).toBe('app');
      expect(full.ownerQuotas).toEqual({ storedVmQuota: 7, deployedVmQuota: 3 });
      expect(t.stdout).not.toContain('pw-secret-123');
      expect(readFileSync(path.join(raw, 'vapp.xml'), 'utf8')).toContain('<VApp');
      expect(statSync(path.join(raw, 'vapp.xml')).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(raw, { recursive: true, force: true });
    }
  });

  it('exits 2 with a fix-it message for missing credentials or a bad id, 1 for a wrong password', async () => {
    const noEnv = await run(['vcd', 'capture', '--url', sim.url, '--user', 'a', '--org', 'System', '--password-env', 'NOPE', '--vapp', ids.vapp]);
    expect(noEnv.code).toBe(2);
    expect(noEnv.stderr).toMatch(/NOPE is not set/);
    const noCreds = await run(['vcd', 'capture', '--url', sim.url, '--vapp', ids.vapp]);
    expect(noCreds.code).toBe(2);
    expect(noCreds.stderr).toMatch(/--password-env VAR/);
    const badId = await run(['vcd', 'capture', '--url', sim.url, '--token-env', 'TOK', '--vapp', 'web-shop'], { TOK: 'x'.repeat(10) });
    expect(badId.code).toBe(2);
    const badFp = await run(['vcd', 'capture', '--url', sim.url, '--token-env', 'TOK', '--vapp', ids.vapp, '--fingerprint', 'zz'], { TOK: 'x'.repeat(10) });
    expect(badFp.code).toBe(2);
    const wrong = await run(['vcd', 'capture', '--url', sim.url, '--user', 'administrator', '--org', 'System', '--password-env', 'PW', '--vapp', ids.vapp], { PW: 'wrong-secret' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/rejected the login/);
    expect(wrong.stderr).not.toContain('wrong-secret');
  });
});

describe('demo inventory', () => {
  it('seeds two organizations with vApps of 2–3 VMs that capture cleanly', async () => {
    const demo = await startVcdSimulator({ inventory: demoInventory('/data') });
    try {
      const c = await VcdClient.connect({ url: demo.url, credentials: admin });
      const vapps = await resolveScope(c, { include: { instance: true } });
      expect(vapps.length).toBeGreaterThanOrEqual(4);
      const orgs = new Set(vapps.map((v) => v.orgId));
      expect(orgs.size).toBe(2);
      for (const v of vapps) {
        const captured = await captureWithMaintenance(c, v.id, { alreadyInMaintenance: v.inMaintenanceMode });
        expect(captured.model.vms.length).toBeGreaterThanOrEqual(1);
        for (const vm of captured.model.vms) {
          expect(demo.disksOf(vm.moref ?? '').every((d) => d.path.startsWith('/data/disks/') && d.path.endsWith('.img'))).toBe(true);
        }
      }
      await c.logout();
    } finally {
      await demo.stop();
    }
  });
});
