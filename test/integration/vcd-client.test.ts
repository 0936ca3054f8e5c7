import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryLogger } from '../../lib/log.js';
import { Secret } from '../../lib/secret.js';
import { VcdClient, type VcdClientOptions } from '../../lib/vcd/client.js';
import { VcdApiError, VcdAuthError, VcdBusyError, VcdNetworkError, VcdNotFoundError, VcdTaskError } from '../../lib/vcd/errors.js';
import { listOrgs, listStoragePolicies, listNetworks, listVApps, listVdcs, listVms, queryAll } from '../../lib/vcd/query.js';
import { startVcdSimulator, type VcdSimulator } from '../../lib/vcd/sim/index.js';
import type { SimInventoryInput } from '../../lib/vcd/sim/inventory.js';
import { UnsupportedVersionError } from '../../lib/vcd/versions.js';

const admin = { kind: 'password', user: 'administrator', org: 'System', password: new Secret('vmware') } as const;
const fast = { retries: 3, baseDelayMs: 5, maxDelayMs: 20 };

function bigInventory(vapps: number): SimInventoryInput {
  return {
    apiTokens: [
      { token: 'provider-token-123', org: 'System' },
      { token: 'tenant-token-456', org: 'org-a', user: 'ann' },
    ],
    orgs: [
      {
        name: 'org-a',
        users: [{ name: 'ann', password: 'ann-pw' }],
        vdcs: [
          {
            name: 'vdc-a',
            networks: [{ name: 'net-a' }],
            storagePolicies: [{ name: 'Gold', default: true }, { name: 'Silver' }],
            vapps: Array.from({ length: vapps }, (_, i) => ({
              name: `vapp-${String(i).padStart(4, '0')}`,
              vms: i < 3 ? [{ name: `vm-${i}`, disks: [{ sizeBytes: 1048576, path: `/tmp/d-${i}.img` }] }] : [],
            })),
          },
        ],
      },
      { name: 'org-b', vdcs: [{ name: 'vdc-b', vapps: [{ name: 'other' }] }] },
    ],
  };
}

let sim: VcdSimulator;
const clients: VcdClient[] = [];
const connect = async (options: Partial<VcdClientOptions> = {}) => {
  const c = await VcdClient.connect({ url: sim.url, credentials: admin, retry: fast, ...options });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  sim = await startVcdSimulator({ inventory: bigInventory(300) });
});
afterAll(async () => {
  await sim.stop();
});
afterEach(() => {
  sim.faults.clear();
  sim.setLatency(0);
  for (const c of clients.splice(0)) c.close();
});

describe('versions and login', () => {
  it('negotiates the highest non-deprecated version in 37.x–39.x, kept as a string', async () => {
    const c = await connect();
    expect(c.version).toBe('39.1');
    const forced = await connect({ apiVersion: '37.2' });
    expect(forced.version).toBe('37.2');
  });

  it('refuses a vCD that only speaks older versions, and a forced version it does not offer', async () => {
    const old = await startVcdSimulator({ inventory: {}, apiVersions: ['33.0', '35.0', '36.2', '5.10'] });
    try {
      await expect(VcdClient.connect({ url: old.url, credentials: admin })).rejects.toThrow(UnsupportedVersionError);
      await expect(VcdClient.connect({ url: old.url, credentials: admin })).rejects.toThrow(/10\.4 or later/);
    } finally {
      await old.stop();
    }
    await expect(connect({ apiVersion: '40.0' })).rejects.toThrow(/does not offer API version 40.0/);
  });

  it('logs in as provider, as tenant, and with provider and tenant API tokens', async () => {
    await expect(connect()).resolves.toBeInstanceOf(VcdClient);
    const tenant = await connect({ credentials: { kind: 'password', user: 'ann', org: 'org-a', password: new Secret('ann-pw') } });
    expect((await listOrgs(tenant, {})).length).toBe(1); // a tenant sees its own org only
    const token = await connect({ credentials: { kind: 'apiToken', token: new Secret('provider-token-123') } });
    expect((await listOrgs(token)).map((o) => o.name).sort()).toEqual(['org-a', 'org-b']);
    const tenantToken = await connect({ credentials: { kind: 'apiToken', org: 'org-a', token: new Secret('tenant-token-456') } });
    expect((await listOrgs(tenantToken)).map((o) => o.name)).toEqual(['org-a']);
  });

  it('fails with an authentication error that never echoes the password', async () => {
    const err = await connect({ credentials: { kind: 'password', user: 'administrator', org: 'System', password: new Secret('wrong-pw-xyz') } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VcdAuthError);
    expect(String((err as Error).message)).not.toContain('wrong-pw-xyz');
    await expect(connect({ credentials: { kind: 'apiToken', token: new Secret('not-a-token') } })).rejects.toThrow(VcdAuthError);
  });

  it('logs out', async () => {
    const c = await connect();
    sim.resetRequests();
    await c.logout();
    expect(sim.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(['DELETE /cloudapi/1.0.0/sessions/current 204']);
  });
});

describe('query service', () => {
  it('pages over 300 vApps with pageSize=128 following nextPage links', async () => {
    const c = await connect();
    sim.resetRequests();
    const vapps = await listVApps(c);
    expect(vapps).toHaveLength(301);
    expect(new Set(vapps.map((v) => v.id)).size).toBe(301);
    const pages = sim.requests.filter((r) => r.path.startsWith('/api/query'));
    expect(pages).toHaveLength(3);
    expect(pages.every((p) => p.path.includes('pageSize=128'))).toBe(true);
    expect(pages.map((p) => /page=(\d+)/.exec(p.path)?.[1])).toEqual(['1', '2', '3']);
  });

  it('lists org VDCs, VMs with moref and vCenter, networks and storage policies', async () => {
    const c = await connect();
    expect((await listVdcs(c)).map((v) => [v.name, v.orgName])).toEqual(expect.arrayContaining([['vdc-a', 'org-a'], ['vdc-b', 'org-b']]));
    const vms = await listVms(c);
    expect(vms).toHaveLength(3);
    expect(vms.every((v) => /^vm-\d+$/.test(v.moref ?? '') && v.vcenter?.includes('/api/admin/extension/vimServer/'))).toBe(true);
    expect((await listNetworks(c)).map((n) => n.name)).toEqual(['net-a']);
    const vdcA = (await listVdcs(c)).find((v) => v.name === 'vdc-a');
    expect((await listStoragePolicies(c)).filter((p) => p.vdcId === vdcA?.id).map((p) => [p.name, p.isDefault]).sort()).toEqual([['Gold', true], ['Silver', false]]);
  });

  it('tenants see no moref and cannot run admin queries', async () => {
    const tenant = await connect({ credentials: { kind: 'password', user: 'ann', org: 'org-a', password: new Secret('ann-pw') } });
    await expect(queryAll(tenant, 'adminVApp')).rejects.toThrow(VcdNotFoundError);
    const records = await queryAll(tenant, 'vm');
    expect(records.every((r) => r.attrs.moref === undefined)).toBe(true);
  });
});

describe('sessions', () => {
  it('logs in again when the token expires, once, and carries on', async () => {
    const log = createMemoryLogger();
    const c = await connect({ log });
    const vapp = sim.vapps()[0];
    sim.expireSessions();
    const { node } = await c.getXml(`/api/vApp/vapp-${vapp?.id}`);
    expect(node.name).toBe('VApp');
    expect(c.stats.logins).toBe(2);
    expect(log.lines.join('\n')).toMatch(/session expired/);
    expect(log.lines.join('\n')).not.toContain('vmware');
  });

  it('shares one re-login among concurrent requests', async () => {
    const c = await connect();
    sim.expireSessions();
    await Promise.all(sim.vapps().slice(0, 10).map((v) => c.getXml(`/api/vApp/vapp-${v.id}`)));
    expect(c.stats.logins).toBe(2);
  });
});

describe('retries and errors', () => {
  const vappPath = () => `/api/vApp/vapp-${sim.vapps()[0]?.id}`;

  it('retries 429 and 5xx with backoff, then succeeds', async () => {
    const c = await connect();
    sim.faults.add({ method: 'GET', path: vappPath(), status: 429, times: 1 });
    sim.faults.add({ method: 'GET', path: vappPath(), status: 503, times: 1 });
    sim.faults.add({ method: 'GET', path: vappPath(), status: 502, times: 1 });
    sim.resetRequests();
    await expect(c.getXml(vappPath())).resolves.toMatchObject({ status: 200 });
    expect(sim.requests.map((r) => r.status)).toEqual([429, 503, 502, 200]);
    expect(c.stats.retries).toBe(3);
  });

  it('retries a dropped connection', async () => {
    const c = await connect();
    sim.faults.add({ method: 'GET', path: vappPath(), reset: true, times: 1 });
    await expect(c.getXml(vappPath())).resolves.toMatchObject({ status: 200 });
    expect(c.stats.retries).toBe(1);
  });

  it('gives up after the configured retries with the vCD error fields', async () => {
    const c = await connect();
    sim.faults.add({ method: 'GET', path: vappPath(), status: 500 });
    sim.resetRequests();
    const err = await c.getXml(vappPath()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VcdApiError);
    expect(err).toMatchObject({ status: 500, majorErrorCode: '500', minorErrorCode: 'INTERNAL_SERVER_ERROR' });
    expect((err as VcdApiError).vcdMessage).toMatch(/Simulated 500/);
    expect(sim.requests).toHaveLength(1 + fast.retries);
  });

  it('never retries other 4xx, nor non-idempotent POSTs', async () => {
    const c = await connect();
    sim.faults.add({ method: 'GET', path: vappPath(), status: 400, times: 5 });
    sim.resetRequests();
    await expect(c.getXml(vappPath())).rejects.toThrow(VcdApiError);
    expect(sim.requests).toHaveLength(1);
    sim.faults.clear();
    sim.faults.add({ method: 'POST', path: '/metadata', status: 503, times: 5 });
    sim.resetRequests();
    await expect(c.requestXml('POST', `${vappPath()}/metadata`, { body: '<Metadata xmlns="http://www.vmware.com/vcloud/v1.5"/>', contentType: 'application/vnd.vmware.vcloud.metadata+xml' })).rejects.toThrow(VcdApiError);
    expect(sim.requests).toHaveLength(1);
  });

  it('maps 403 ACCESS_TO_RESOURCE_IS_FORBIDDEN to not found', async () => {
    const c = await connect();
    const err = await c.getXml('/api/vApp/vapp-00000000-0000-4000-8000-000000000000').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VcdNotFoundError);
    expect(err).toMatchObject({ status: 403, minorErrorCode: 'ACCESS_TO_RESOURCE_IS_FORBIDDEN', code: 'VCD_NOT_FOUND' });
  });

  it('times out a request that gets no answer and retries it', async () => {
    const c = await connect({ timeoutMs: 100 });
    sim.faults.add({ method: 'GET', path: vappPath(), latencyMs: 400, times: 1 });
    await expect(c.getXml(vappPath())).resolves.toMatchObject({ status: 200 });
    expect(c.stats.retries).toBe(1);
  });

  it('refuses to follow links to another origin', async () => {
    const c = await connect();
    await expect(c.getXml('https://evil.example.com/api/vApp/vapp-x')).rejects.toThrow(/refusing to follow/);
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    const c = await connect({ concurrency: 3 });
    sim.setLatency(60);
    const started = performance.now();
    await Promise.all(sim.vapps().slice(0, 12).map((v) => c.getXml(`/api/vApp/vapp-${v.id}`)));
    // 12 requests of ≥ 60 ms each, at most 3 at a time: at least 4 rounds.
    expect(performance.now() - started).toBeGreaterThanOrEqual(4 * 60 - 5);
  });
});

describe('tasks and maintenance-mode writes', () => {
  it('metadata writes answer with a task that the client follows to success', async () => {
    const c = await connect();
    sim.setTaskBehaviour({ durationMs: 150 });
    const vapp = sim.vapps()[1];
    const res = await c.requestXml('POST', `/api/vApp/vapp-${vapp?.id}/metadata`, {
      contentType: 'application/vnd.vmware.vcloud.metadata+xml',
      body: `<Metadata xmlns="http://www.vmware.com/vcloud/v1.5" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><MetadataEntry><Key>k</Key><TypedValue xsi:type="MetadataNumberValue"><Value>7</Value></TypedValue></MetadataEntry></Metadata>`,
    });
    expect(res.status).toBe(202);
    expect(res.node?.name).toBe('Task');
    expect(vapp?.metadata.has('GENERAL/k')).toBe(false);
    await c.waitForResponseTasks(res, { timeoutMs: 5_000 });
    expect(vapp?.metadata.get('GENERAL/k')).toMatchObject({ value: '7', type: 'number' });
    sim.setTaskBehaviour({ durationMs: 0 });
  });

  it('a failed task becomes a task error with its message', async () => {
    const c = await connect();
    sim.setTaskBehaviour({ durationMs: 50, failOperations: ['metadataUpdate'] });
    const vapp = sim.vapps()[1];
    const res = await c.requestXml('DELETE', `/api/vApp/vapp-${vapp?.id}/metadata/k`);
    const err = await c.waitForResponseTasks(res).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VcdTaskError);
    expect((err as VcdTaskError).vcdMessage).toMatch(/Simulated failure of metadataUpdate/);
    sim.setTaskBehaviour({ durationMs: 0, failOperations: 'none' });
  });

  it('tenant writes get 409 while the vApp is in maintenance mode', async () => {
    const tenant = await connect({ credentials: { kind: 'password', user: 'ann', org: 'org-a', password: new Secret('ann-pw') } });
    const vapp = sim.vapps()[2];
    sim.setMaintenance(vapp?.id ?? '', true);
    try {
      const err = await tenant
        .requestXml('PUT', `/api/vApp/vapp-${vapp?.id}/metadata/x`, {
          contentType: 'application/vnd.vmware.vcloud.metadata.value+xml',
          body: '<MetadataValue xmlns="http://www.vmware.com/vcloud/v1.5" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><TypedValue xsi:type="MetadataStringValue"><Value>v</Value></TypedValue></MetadataValue>',
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VcdBusyError);
      expect((err as VcdBusyError).vcdMessage).toMatch(/undergoing maintenance operations/);
      // and tenants cannot take it out of maintenance mode
      await expect(tenant.requestXml('POST', `/api/vApp/vapp-${vapp?.id}/action/exitMaintenanceMode`)).rejects.toThrow(VcdNotFoundError);
    } finally {
      sim.setMaintenance(vapp?.id ?? '', false);
    }
  });
});

describe('transport errors', () => {
  it('reports an unreachable vCD as a network error after retries', async () => {
    const closed = await startVcdSimulator({ inventory: {} });
    const url = closed.url;
    await closed.stop();
    const err = await VcdClient.connect({ url, credentials: admin, retry: { retries: 1, baseDelayMs: 1, maxDelayMs: 2 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VcdNetworkError);
    expect((err as Error).message).toMatch(/cannot reach vCD/);
  });
});
