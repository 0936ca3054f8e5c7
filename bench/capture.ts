/**
 * Capture benchmark (`npm run bench -- capture`): 1000 vApps × 3 VMs from the vCD simulator with 20 ms of
 * latency on every request; the full backup path per vApp (enter maintenance mode, wait for tasks, capture
 * vApp + metadata + access + VM metadata, exit). Prints vApps/s and API calls per vApp.
 * Aim: ≥ 20 vApps/s and ≤ 4 + 2 × VMs calls per vApp.
 */
import { Secret } from '../lib/secret.js';
import { CaptureCache } from '../lib/vcd/capture.js';
import { Limiter } from '../lib/limiter.js';
import { VcdClient } from '../lib/vcd/client.js';
import { captureWithMaintenance } from '../lib/vcd/maintenance.js';
import { resolveScope } from '../lib/vcd/scope.js';
import { startVcdSimulator } from '../lib/vcd/sim/index.js';
import type { SimInventoryInput } from '../lib/vcd/sim/inventory.js';

const VAPPS = 1000;
const VMS_PER_VAPP = 3;
const LATENCY_MS = 20;
/** vApps captured at once; the client itself caps requests in flight. */
const PARALLEL_VAPPS = 16;
const CLIENT_CONCURRENCY = 48;

function inventory(): SimInventoryInput {
  const perOrg = VAPPS / 4;
  return {
    orgs: Array.from({ length: 4 }, (_, o) => ({
      name: `bench-org-${o}`,
      users: [{ name: `owner-${o}`, password: 'x-bench-pw', storedVmQuota: 100, deployedVmQuota: 50 }],
      vdcs: [
        {
          name: `bench-vdc-${o}`,
          networks: [{ name: `ext-${o}`, ipRanges: [{ start: '10.0.0.10', end: '10.0.0.250' }] }],
          storagePolicies: [{ name: 'Gold', default: true }],
          vapps: Array.from({ length: perOrg }, (_, a) => ({
            name: `vapp-${o}-${String(a).padStart(4, '0')}`,
            networks: [{ name: 'net', fenceMode: 'natRouted' as const, parentNetwork: `ext-${o}`, gateway: '192.168.0.1', netmask: '255.255.255.0', prefixLength: 24 }],
            metadata: [{ key: 'tier', value: a % 3 }, { key: 'env', value: 'prod' }],
            vms: Array.from({ length: VMS_PER_VAPP }, (_, v) => ({
              name: `vm-${v}`,
              cpus: 2,
              memoryMiB: 2048,
              disks: [{ sizeBytes: 16 * 1024 ** 3, path: `/bench/disks/${o}-${a}-${v}-0.img` }],
              nics: [{ network: 'net' }],
              metadata: [{ key: 'role', value: `r${v}` }],
            })),
          })),
        },
      ],
    })),
  };
}

export async function benchCapture(): Promise<void> {
  const sim = await startVcdSimulator({ inventory: inventory(), latencyMs: LATENCY_MS });
  const client = await VcdClient.connect({
    url: sim.url,
    credentials: { kind: 'password', user: 'administrator', org: 'System', password: new Secret('vmware') },
    concurrency: CLIENT_CONCURRENCY,
  });
  try {
    const started = performance.now();
    const requestsBefore = sim.requests.length;
    const vapps = await resolveScope(client, { include: { instance: true } });
    const scopeCalls = sim.requests.length - requestsBefore;
    const cache = new CaptureCache();
    const limit = new Limiter(PARALLEL_VAPPS);
    let vms = 0;
    const captureStart = sim.requests.length;
    await Promise.all(
      vapps.map((v) =>
        limit.run(async () => {
          const captured = await captureWithMaintenance(client, v.id, { alreadyInMaintenance: v.inMaintenanceMode, cache });
          vms += captured.model.vms.length;
        }),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const captureCalls = sim.requests.length - captureStart;
    const perVApp = captureCalls / vapps.length;
    const budget = 4 + 2 * VMS_PER_VAPP;
    const leaked = sim.vapps().filter((v) => v.inMaintenanceMode).length;
    console.log(`capture: ${vapps.length} vApps × ${VMS_PER_VAPP} VMs (${vms} VMs), ${LATENCY_MS} ms latency per request`);
    console.log(`  ${(vapps.length / seconds).toFixed(1)} vApps/s (${seconds.toFixed(2)} s, scope resolution included: ${scopeCalls} query calls)`);
    console.log(`  ${perVApp.toFixed(2)} API calls per vApp (budget ${budget}: ${perVApp <= budget ? 'ok' : 'OVER'}), ${client.stats.retries} retries`);
    console.log(`  aim ≥ 20 vApps/s: ${vapps.length / seconds >= 20 ? 'ok' : 'MISSED'}; vApps left in maintenance mode: ${leaked}`);
  } finally {
    await client.logout();
    await sim.stop();
  }
}
