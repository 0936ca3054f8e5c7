/**
 * The demo inventory for local mode (`npm start`): two organizations, a few vApps of 2–3 VMs each, with
 * NAT-routed, bridged and isolated vApp networks, several storage policies and metadata of every type.
 * Disk images are referenced as `<dataDir>/disks/<vmId>-<n>.img`; creating them is the local stack's job.
 */
import path from 'node:path';
import { stableUuid, type SimInventoryInput } from './inventory.js';

const MIB = 1024 * 1024;

export interface DemoDisk {
  readonly vmId: string;
  readonly index: number;
  readonly path: string;
  readonly sizeBytes: number;
}

export function demoInventory(dataDir: string): SimInventoryInput {
  const disk = (org: string, vdc: string, vapp: string, vm: string, n: number, sizeMiB: number, extra: Record<string, unknown> = {}) => {
    const vmId = stableUuid('vm', org, vdc, vapp, vm);
    return { sizeBytes: sizeMiB * MIB, path: path.join(dataDir, 'disks', `${vmId}-${n}.img`), ...extra };
  };
  return {
    systemAdmin: { user: 'administrator', password: 'vmware' },
    vcenters: [{ name: 'vc-demo-01' }],
    apiTokens: [
      { token: 'demo-provider-api-token-0001', org: 'System', user: 'administrator' },
      { token: 'demo-acme-api-token-0001', org: 'acme', user: 'alice' },
    ],
    orgs: [
      {
        name: 'acme',
        fullName: 'ACME Corporation',
        users: [
          { name: 'alice', password: 'alice-demo', storedVmQuota: 20, deployedVmQuota: 10 },
          { name: 'bob', password: 'bob-demo', storedVmQuota: 5, deployedVmQuota: 5 },
        ],
        vdcs: [
          {
            name: 'acme-vdc-01',
            networks: [
              { name: 'acme-routed', linkType: 'routed', gateway: '10.10.0.1', netmask: '255.255.255.0', prefixLength: 24, dns1: '10.10.0.53', ipRanges: [{ start: '10.10.0.100', end: '10.10.0.199' }] },
              { name: 'acme-direct', linkType: 'direct', gateway: '172.20.0.1', netmask: '255.255.0.0', prefixLength: 16, ipRanges: [{ start: '172.20.1.10', end: '172.20.1.250' }] },
            ],
            storagePolicies: [{ name: 'Gold', default: true }, { name: 'Silver' }],
            vapps: [
              {
                name: 'web-shop',
                description: 'Customer-facing shop: two web servers and a database',
                owner: 'alice',
                storageLeaseSeconds: 2_592_000,
                networks: [
                  { name: 'shop-net', fenceMode: 'natRouted', parentNetwork: 'acme-routed', gateway: '192.168.50.1', netmask: '255.255.255.0', prefixLength: 24, dns1: '10.10.0.53', ipRanges: [{ start: '192.168.50.10', end: '192.168.50.50' }] },
                  { name: 'shop-backend', fenceMode: 'isolated', gateway: '192.168.60.1', netmask: '255.255.255.0', prefixLength: 24 },
                ],
                metadata: [
                  { key: 'cost-center', value: '0042' },
                  { key: 'tier', value: 1 },
                  { key: 'backup', value: true, domain: 'SYSTEM', visibility: 'READONLY' },
                  { key: 'go-live', value: '2025-03-01T08:00:00.000Z', type: 'dateTime' },
                ],
                vms: [
                  { name: 'web-01', cpus: 2, coresPerSocket: 2, memoryMiB: 2048, disks: [disk('acme', 'acme-vdc-01', 'web-shop', 'web-01', 0, 64)], nics: [{ network: 'shop-net', ipAddress: '192.168.50.11' }], metadata: [{ key: 'role', value: 'web' }] },
                  { name: 'web-02', cpus: 2, coresPerSocket: 2, memoryMiB: 2048, disks: [disk('acme', 'acme-vdc-01', 'web-shop', 'web-02', 0, 64)], nics: [{ network: 'shop-net', ipAddress: '192.168.50.12' }], metadata: [{ key: 'role', value: 'web' }] },
                  {
                    name: 'db-01',
                    cpus: 4,
                    coresPerSocket: 2,
                    memoryMiB: 8192,
                    adminPassword: 'demo-db-admin',
                    disks: [disk('acme', 'acme-vdc-01', 'web-shop', 'db-01', 0, 64), disk('acme', 'acme-vdc-01', 'web-shop', 'db-01', 1, 128, { busNumber: 1, busSubType: 'lsilogicsas', storagePolicy: 'Silver' })],
                    nics: [{ network: 'shop-net', ipAddress: '192.168.50.20' }, { network: 'shop-backend', allocationMode: 'MANUAL', ipAddress: '192.168.60.20' }],
                    metadata: [{ key: 'role', value: 'database' }, { key: 'replicas', value: 2 }],
                  },
                ],
              },
              {
                name: 'build-farm',
                owner: 'bob',
                networks: [{ name: 'acme-direct', fenceMode: 'bridged', parentNetwork: 'acme-direct' }],
                metadata: [{ key: 'ephemeral', value: false }],
                vms: [
                  { name: 'runner-01', cpus: 4, memoryMiB: 4096, disks: [disk('acme', 'acme-vdc-01', 'build-farm', 'runner-01', 0, 96)], nics: [{ network: 'acme-direct', allocationMode: 'DHCP' }] },
                  { name: 'runner-02', cpus: 4, memoryMiB: 4096, poweredOn: false, disks: [disk('acme', 'acme-vdc-01', 'build-farm', 'runner-02', 0, 96)], nics: [{ network: 'acme-direct', allocationMode: 'DHCP' }] },
                ],
              },
            ],
          },
        ],
      },
      {
        name: 'globex',
        fullName: 'Globex Inc.',
        users: [{ name: 'hank', password: 'hank-demo', storedVmQuota: 0, deployedVmQuota: 0 }],
        vdcs: [
          {
            name: 'globex-vdc-01',
            networks: [{ name: 'globex-routed', gateway: '10.30.0.1', netmask: '255.255.255.0', prefixLength: 24, ipRanges: [{ start: '10.30.0.10', end: '10.30.0.90' }] }],
            storagePolicies: [{ name: 'Standard', default: true }],
            vapps: [
              {
                name: 'crm',
                description: 'CRM application',
                owner: 'hank',
                deploymentLeaseSeconds: 604_800,
                storageLeaseSeconds: 2_592_000,
                networks: [{ name: 'globex-routed', fenceMode: 'bridged', parentNetwork: 'globex-routed' }],
                metadata: [{ key: 'owner-team', value: 'sales-it' }],
                vms: [
                  { name: 'crm-app', cpus: 2, memoryMiB: 4096, disks: [disk('globex', 'globex-vdc-01', 'crm', 'crm-app', 0, 64)], nics: [{ network: 'globex-routed', ipAddress: '10.30.0.21' }] },
                  { name: 'crm-db', cpus: 2, memoryMiB: 4096, disks: [disk('globex', 'globex-vdc-01', 'crm', 'crm-db', 0, 64), disk('globex', 'globex-vdc-01', 'crm', 'crm-db', 1, 64, { unitNumber: 1 })], nics: [{ network: 'globex-routed', ipAddress: '10.30.0.22' }] },
                ],
              },
              {
                name: 'jumphost',
                owner: 'hank',
                standalone: true,
                networks: [{ name: 'globex-routed', fenceMode: 'bridged', parentNetwork: 'globex-routed' }],
                vms: [{ name: 'jumphost', cpus: 1, memoryMiB: 1024, disks: [disk('globex', 'globex-vdc-01', 'jumphost', 'jumphost', 0, 32)], nics: [{ network: 'globex-routed', allocationMode: 'POOL' }] }],
              },
            ],
          },
        ],
      },
    ],
  };
}

/** The disk images a demo inventory references, for whoever creates them. */
export function demoDisks(inventory: SimInventoryInput): DemoDisk[] {
  const out: DemoDisk[] = [];
  for (const org of inventory.orgs ?? []) {
    for (const vdc of org.vdcs ?? []) {
      for (const vapp of vdc.vapps ?? []) {
        for (const vm of vapp.vms ?? []) {
          const vmId = vm.id ?? stableUuid('vm', org.name, vdc.name, vapp.name, vm.name);
          (vm.disks ?? []).forEach((d, index) => out.push({ vmId, index, path: d.path, sizeBytes: d.sizeBytes }));
        }
      }
    }
  }
  return out;
}
