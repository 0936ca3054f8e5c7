import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CodecPool } from '../../lib/agent/codec-pool.js';
import { backupSingleDisk } from '../../lib/agent/disk-jobs.js';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import type { RestorePoint } from '../../lib/catalog/types.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { createMemoryLogger } from '../../lib/log.js';
import { parseMessage } from '../../lib/queue/messages.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import { indexKey } from '../../lib/repository/format.js';
import { LocalDirStore } from '../../lib/repository/local-dir-store.js';
import { Repository } from '../../lib/repository/repository.js';
import { Secret } from '../../lib/secret.js';
import { AgentDiskLocator } from '../../lib/agent/disk-locator.js';
import { runDiskRestoreTask } from '../../lib/agent/task-runner.js';
import { createAgentResultsHandler } from '../../lib/handlers/agent-results.js';
import { encodeMessage, type StartRestoreRun, type TaskResult } from '../../lib/queue/messages.js';
import { AgentDiskTasks } from '../../lib/services/catalog-disk-writer.js';
import { LocalDiskWriter } from '../../lib/services/restore-local-disk-writer.js';
import { RestoreService, type PlanView } from '../../lib/services/restore-service.js';
import { simDiskLocate } from '../../lib/vcd/backup-gateway.js';
import { captureVApp } from '../../lib/vcd/capture.js';
import { VcdClient } from '../../lib/vcd/client.js';
import type { VAppModel } from '../../lib/vcd/model.js';
import { listVApps } from '../../lib/vcd/query.js';
import { VcdRestoreClient } from '../../lib/vcd/restore-client.js';
import { startVcdSimulator, type VcdSimulator } from '../../lib/vcd/sim/index.js';
import { addRestoreRoutes, restoredDisks } from '../../lib/vcd/sim/restore-routes.js';
import { mutateImage, writeSyntheticImage } from '../helpers/synthetic-image.js';

const MiB = 1024 * 1024;
const ids = {
  org: '0a0a0a0a-0000-4000-8000-00000000000a',
  vdc: '0b0b0b0b-0000-4000-8000-00000000000b',
  vapp: '11111111-1111-4111-8111-11111111111a',
  vmA: '22222222-2222-4222-8222-22222222222a',
  vmB: '33333333-3333-4333-8333-33333333333a',
};

let dir: string;
let sim: VcdSimulator;
let client: VcdClient;
let service: RestoreService;
let queue: MemoryQueue;
let catalog: MemoryCatalog;
let captured: VAppModel;
let point: RestorePoint;
let pool: CodecPool;
const sha = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');
const diskFile = (vm: string, n: number) => path.join(dir, 'disks', `${vm}-${n}.img`);
const originals = new Map<string, string>();

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vcdb-restore-'));
  const inventory = {
    orgs: [
      {
        id: ids.org,
        name: 'acme',
        users: [{ name: 'alice', password: 'a-pw' }, { name: 'bob', password: 'b-pw' }],
        vdcs: [
          {
            id: ids.vdc,
            name: 'vdc-1',
            networks: [{ name: 'ext-net', gateway: '10.0.0.1' }, { name: 'ext-net-2', gateway: '10.0.2.1' }],
            storagePolicies: [{ name: 'Gold', default: true }, { name: 'Fast' }],
            vapps: [
              {
                id: ids.vapp,
                name: 'app',
                description: 'the app',
                owner: 'bob',
                deploymentLeaseSeconds: 7200,
                storageLeaseSeconds: 86_400,
                networks: [
                  { name: 'routed', fenceMode: 'natRouted' as const, parentNetwork: 'ext-net', gateway: '192.168.1.1', netmask: '255.255.255.0', prefixLength: 24, ipRanges: [{ start: '192.168.1.10', end: '192.168.1.20' }] },
                  { name: 'iso', fenceMode: 'isolated' as const, gateway: '172.16.0.1', netmask: '255.255.0.0', prefixLength: 16 },
                ],
                metadata: [
                  { key: 'tier', value: 2 },
                  { key: 'owner-team', value: 'payments' },
                  { key: 'backup', value: true, domain: 'SYSTEM' as const, visibility: 'READONLY' as const },
                ],
                vms: [
                  {
                    id: ids.vmA,
                    name: 'vm-a',
                    cpus: 2,
                    coresPerSocket: 2,
                    memoryMiB: 2048,
                    poweredOn: false,
                    disks: [
                      { sizeBytes: 4 * MiB, path: diskFile(ids.vmA, 0) },
                      { sizeBytes: 2 * MiB, path: diskFile(ids.vmA, 1), busNumber: 1, busSubType: 'lsilogicsas', storagePolicy: 'Fast' },
                    ],
                    nics: [
                      { network: 'routed', ipAddress: '192.168.1.11', macAddress: '00:50:56:aa:bb:01' },
                      { network: 'iso', allocationMode: 'MANUAL' as const, ipAddress: '172.16.0.5', macAddress: '00:50:56:aa:bb:02', adapterType: 'E1000E' },
                    ],
                    metadata: [{ key: 'role', value: 'db' }],
                  },
                  { id: ids.vmB, name: 'vm-b', poweredOn: false, disks: [{ sizeBytes: 3 * MiB, path: diskFile(ids.vmB, 0) }], nics: [{ network: 'routed', allocationMode: 'DHCP' as const, macAddress: '00:50:56:aa:bb:03' }] },
                ],
              },
            ],
          },
        ],
      },
    ],
  };
  const { mkdir } = await import('node:fs/promises');
  await mkdir(path.join(dir, 'disks'), { recursive: true });
  for (const [vm, n, size] of [[ids.vmA, 0, 4 * MiB], [ids.vmA, 1, 2 * MiB], [ids.vmB, 0, 3 * MiB]] as const) {
    await writeSyntheticImage(diskFile(vm, n), size, { seed: `${vm}-${n}`, regionSize: MiB });
    originals.set(`${vm}-${n}`, await sha(diskFile(vm, n)));
  }
  sim = await startVcdSimulator({ inventory });
  addRestoreRoutes(sim, { diskDir: path.join(dir, 'disks') });
  sim.findVApp('app')!.startup = [
    { vmName: 'vm-b', order: 0, startAction: 'powerOn', startDelay: 30, stopAction: 'guestShutdown', stopDelay: 60 },
    { vmName: 'vm-a', order: 1, startAction: 'none', startDelay: 0, stopAction: 'powerOff', stopDelay: 10 },
  ];
  client = await VcdClient.connect({ url: sim.url, credentials: { kind: 'password', user: 'administrator', org: 'System', password: new Secret('vmware') }, retry: { retries: 1, baseDelayMs: 5 } });
  captured = (await captureVApp(client, ids.vapp)).model;

  // A restore point of the vApp: its three disks (one backup each, gathered into one point) and vapp.json.
  const clock = new ManualClock('2026-03-01T10:00:00.000Z');
  const repository = await Repository.init(new LocalDirStore(path.join(dir, 'repo')), { clock, blockSize: 256 * 1024 });
  pool = new CodecPool(repository.codecSettings(), 2);
  const disks = [];
  for (const [vm, n, instanceId] of [[ids.vmA, 0, 2000], [ids.vmA, 1, 2001], [ids.vmB, 0, 2000]] as const) {
    const r = await backupSingleDisk({ repository, clock, sourcePath: diskFile(vm, n), vappId: captured.id, diskId: `${vm}-${instanceId}`, pool });
    disks.push({ diskId: `${vm}-${instanceId}`, vmId: vm, pointId: r.pointId });
  }
  const pointId = disks[0]!.pointId;
  const all = await Promise.all(disks.map(async (d) => (await repository.readPoint(captured.id, d.pointId)).disks[0]!));
  // Copy the other disks' indexes into the first point, so one point holds every disk (as a backup run's would).
  for (const d of disks.slice(1)) await repository.putIndex(captured.id, pointId, d.diskId, await repository.store.get(indexKey(captured.id, d.pointId, d.diskId)));
  await repository.putVAppMetadata(captured.id, pointId, captured);
  const descriptor = await repository.readPoint(captured.id, pointId);
  await repository.commitPoint({ ...descriptor, hasVAppMetadata: true, disks: all });
  catalog = new MemoryCatalog(clock);
  point = {
    id: pointId,
    vappId: captured.id,
    vappName: 'app',
    tenantId: 'acme',
    jobId: 'job-1',
    repositoryId: 'repo-1',
    createdAt: clock.now().toISOString(),
    sizeBytes: 9 * MiB,
    flags: [],
    disks: all.map((d) => ({ diskId: d.diskId, vmId: d.vmId ?? 'vm', sizeBytes: d.sizeBytes, indexKey: indexKey(captured.id, pointId, d.diskId) })),
  };
  await catalog.commitRestorePoint(point);
  await catalog.putTenant({ id: 'acme', name: 'Acme' });
  queue = new MemoryQueue();
  service = new RestoreService({
    catalog,
    repositories: { open: async () => ({ repository, ref: { id: 'repo-1', url: `file://${path.join(dir, 'repo')}` } }) },
    target: new VcdRestoreClient(client, { locate: simDiskLocate(dir), taskTimeoutMs: 10_000 }),
    disks: new LocalDiskWriter({ pool }),
    runsQueue: queue,
    clock,
    log: createMemoryLogger(),
  });
});

afterEach(async () => {
  await client.logout();
  await sim.stop();
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

/** What must come back: everything but identities (ids, hrefs, morefs, MACs of re-created NICs stay as given). */
function comparable(m: VAppModel) {
  return {
    name: m.name,
    description: m.description,
    owner: m.owner.name,
    lease: m.lease,
    startup: m.startup,
    networks: m.networks,
    metadata: [...m.metadata].sort((a, b) => a.key.localeCompare(b.key)),
    vms: m.vms.map((vm) => ({ ...vm, id: undefined, moref: undefined, vcenter: undefined })),
  };
}

async function deleteVApp(id: string) {
  const res = await client.requestXml('DELETE', `/api/vApp/vapp-${id}`);
  await client.waitForResponseTasks(res);
}

async function startAndTake(options: Record<string, unknown>) {
  await service.start({ tenantId: 'acme', point, runId: `restore-${Math.random().toString(16).slice(2)}`, options, requestedBy: 'test' });
  const [m] = await queue.receive({ waitSeconds: 0 });
  const msg = parseMessage('runs', m!.body);
  if (msg.type !== 'StartRestoreRun') throw new Error(msg.type);
  return msg;
}

describe('restore against the vCD simulator', () => {
  it('plans and queues from the model the catalog keeps, without any repository (as the API function does)', async () => {
    const { repository } = await service['deps'].repositories.open('repo-1', 'acme');
    await catalog.putPointModel({ pointId: point.id, tenantId: 'acme', model: await repository.getVAppMetadata(point.vappId, point.id) });
    const keyless = new RestoreService({
      catalog,
      repositories: { open: () => Promise.reject(new Error('the API function has no repository')) },
      target: new VcdRestoreClient(client, { locate: simDiskLocate(dir), taskTimeoutMs: 10_000 }),
      disks: { writeDisk: () => Promise.reject(new Error('no disks here')) },
      runsQueue: queue,
      clock: new ManualClock('2026-03-01T11:00:00.000Z'),
      log: createMemoryLogger(),
    });
    const planned = (await keyless.plan({ tenantId: 'acme', point, options: { mode: 'new', newName: 'app-copy' } })) as PlanView;
    expect(planned.ok).toBe(true);
    await keyless.start({ tenantId: 'acme', point, runId: 'restore-keyless', options: { mode: 'new', newName: 'app-copy' }, requestedBy: 'test' });
    const [m] = await queue.receive({ waitSeconds: 0 });
    expect(parseMessage('runs', m!.body)).toMatchObject({ type: 'StartRestoreRun', runId: 'restore-keyless', tenantId: 'acme' });
    // Another tenant's point is unknown to the planner, whatever the caller claims.
    await expect(keyless.plan({ tenantId: 'globex', point, options: {} })).rejects.toMatchObject({ code: 'RESTORE_POINT_UNKNOWN' });
  });

  it('plans without changing anything, then re-creates a deleted vApp with a remapped network; the re-capture matches', async () => {
    await deleteVApp(ids.vapp);
    sim.state.orgs[0]!.vdcs[0]!.networks = sim.state.orgs[0]!.vdcs[0]!.networks.filter((n) => n.name !== 'ext-net');
    sim.resetRequests();
    const refused = (await service.plan({ tenantId: 'acme', point, options: {} })) as PlanView;
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.problems.map((p) => p.attribute)).toEqual(['network']);
    expect(refused.message).toContain('networkMap {"ext-net": "<target>"}');
    expect(sim.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    await expect(service.start({ tenantId: 'acme', point, runId: 'restore-refused', options: {}, requestedBy: 'test' })).rejects.toMatchObject({ code: 'RESTORE_PLAN_NONCONFORMING' });

    const msg = await startAndTake({ networkMap: { 'ext-net': 'ext-net-2' } });
    const result = await service.runRestore(msg);
    expect(result.error).toBeUndefined();
    expect(result.ok).toBe(true);
    expect((await catalog.getRun(msg.runId))?.state).toBe('succeeded');

    const restored = (await captureVApp(client, result.vappId!)).model;
    const want = comparable(captured);
    want.networks = want.networks.map((n) => (n.parentNetwork === 'ext-net' ? { ...n, parentNetwork: 'ext-net-2' } : n));
    expect(comparable(restored)).toEqual(want);
    for (const d of restoredDisks(sim, 'app')) {
      const sourceVm = d.vmName === 'vm-a' ? ids.vmA : ids.vmB;
      expect(await sha(d.path)).toBe(originals.get(`${sourceVm}-${d.instanceId - 2000}`));
    }
  });

  it('overwrites a vApp in maintenance mode: byte-identical disks, sections and metadata back as captured', async () => {
    await mutateImage(diskFile(ids.vmA, 0), 4 * MiB, { share: 0.5, writeSize: 256 * 1024 });
    expect(await sha(diskFile(ids.vmA, 0))).not.toBe(originals.get(`${ids.vmA}-0`));
    const vapp = sim.findVApp('app')!;
    vapp.storageLeaseSeconds = 5;
    vapp.metadata.set('GENERAL/tier', { key: 'tier', value: '9', type: 'number', domain: 'GENERAL', visibility: 'READWRITE' });
    vapp.owner = vapp.vdc.org.users.find((u) => u.name === 'alice')!;
    vapp.startup = undefined;

    const msg = await startAndTake({ mode: 'overwrite' });
    const result = await service.runRestore(msg);
    expect(result.error).toBeUndefined();
    expect(result.vappId).toBe(captured.id);
    for (const [vm, n] of [[ids.vmA, 0], [ids.vmA, 1], [ids.vmB, 0]] as const) expect(await sha(diskFile(vm, n))).toBe(originals.get(`${vm}-${n}`));
    const after = (await captureVApp(client, ids.vapp)).model;
    expect(comparable(after)).toEqual(comparable(captured));
    expect(sim.findVApp('app')!.inMaintenanceMode).toBe(false);
    expect(sim.requests.some((r) => r.path.endsWith('/action/enterMaintenanceMode'))).toBe(true);
    expect(result.steps.find((s) => s.kind === 'lease')?.status).toBe('done');
    expect(result.steps.find((s) => s.kind === 'networkConfig')?.status).toBe('unchanged');
  });

  it('an interrupted re-create reports what was done and not, and a rerun resumes it', async () => {
    await deleteVApp(ids.vapp);
    sim.faults.add({ method: 'PUT', path: '/startupSection', status: 400 });
    const msg = await startAndTake({ newName: 'app-copy', owner: 'alice' });
    const failed = await service.runRestore(msg);
    expect(failed.ok).toBe(false);
    const status = Object.fromEntries(failed.steps.map((s) => [`${s.kind}:${s.detail}`, s.status]));
    expect(status['composeVApp:app-copy']).toBe('done');
    expect(status['startup:2 item(s)']).toBe('failed');
    expect(failed.steps.filter((s) => s.kind === 'writeDisk').every((s) => s.status === 'done')).toBe(true);
    expect(failed.steps.find((s) => s.kind === 'owner')?.status).toBe('not-run');
    const run = await catalog.getRun(msg.runId);
    expect(run?.state).toBe('failed');
    expect(run?.errors[0]?.message).toMatch(/Run the restore again to resume/);

    // A new plan sees the unfinished vApp as a restore of this point, not as a taken name.
    const again = (await service.plan({ tenantId: 'acme', point, options: { newName: 'app-copy', owner: 'alice' } })) as PlanView;
    expect(again.ok && again.plan.target.resumes).toBe(true);

    sim.faults.clear();
    const resumed = await service.runRestore(msg);
    expect(resumed.error).toBeUndefined();
    expect(resumed.steps.find((s) => s.kind === 'composeVApp')?.status).toBe('unchanged');
    expect(resumed.steps.find((s) => s.kind === 'startup')?.status).toBe('done');
    expect((await catalog.getRun(msg.runId))?.state).toBe('succeeded');
    const copies = (await listVApps(client)).filter((a) => a.name === 'app-copy');
    expect(copies).toHaveLength(1);
    const restored = (await captureVApp(client, copies[0]!.id)).model;
    expect(comparable(restored)).toEqual({ ...comparable(captured), name: 'app-copy', owner: 'alice' });
  });
});

describe('restore as a state machine: disks through the agent, results through the agent-results handler', () => {
  /** The service as deployed: disk tasks on a queue, the real agent task runner, results through the handler. */
  function deployed() {
    const agentTasks = new MemoryQueue();
    const log = createMemoryLogger();
    const restores = new RestoreService({
      catalog,
      repositories: service['deps'].repositories,
      target: new VcdRestoreClient(client, { locate: simDiskLocate(dir), taskTimeoutMs: 10_000 }),
      disks: new AgentDiskTasks({ agentTasks }),
      runsQueue: queue,
      clock: new ManualClock('2026-03-01T11:00:00.000Z'),
      log,
    });
    const handler = createAgentResultsHandler({ backups: {} as never, restores: async () => restores, catalog, clock: new ManualClock('2026-03-01T11:00:00.000Z'), log });
    let delivered = 0;
    const deliver = async (results: readonly TaskResult[]) => {
      const response = await handler({ Records: results.map((r) => ({ messageId: `m-${delivered++}`, body: encodeMessage('agentResults', r) })) } as never);
      expect(response.batchItemFailures).toEqual([]);
    };
    /** The agent: runs every queued DiskRestoreTask and returns its results, undelivered. */
    const agent = async (): Promise<TaskResult[]> => {
      const { repository } = await service['deps'].repositories.open('repo-1', 'acme');
      const locator = new AgentDiskLocator({ diskRoots: [dir] });
      const results: TaskResult[] = [];
      for (;;) {
        const batch = await agentTasks.receive({ waitSeconds: 0, maxMessages: 10 });
        if (batch.length === 0) return results;
        for (const m of batch) {
          const task = parseMessage('agentTasks', JSON.parse(m.body));
          if (task.type !== 'DiskRestoreTask') throw new Error(task.type);
          results.push(await runDiskRestoreTask(task, { repositories: { open: async () => ({ repository, pool }) }, locator }));
          await agentTasks.delete(m.receiptHandle);
        }
      }
    };
    return { restores, deliver, agent, agentTasks };
  }

  const writes = () => sim.requests.filter((r) => r.method !== 'GET').length;

  it('sends one task per disk and returns at once; results, redelivered and out of order, finish the run exactly once', async () => {
    await mutateImage(diskFile(ids.vmA, 0), 4 * MiB, { share: 0.5, writeSize: 256 * 1024 });
    const vapp = sim.findVApp('app')!;
    vapp.storageLeaseSeconds = 5;
    const { restores, deliver, agent } = deployed();
    const msg = await startAndTake({ mode: 'overwrite' });

    const started = await restores.runRestore(msg);
    expect(started).toMatchObject({ state: 'running', finished: false, ok: false, vappId: captured.id });
    expect(started.disks).toHaveLength(3);
    expect(vapp.inMaintenanceMode).toBe(true);
    expect(await sha(diskFile(ids.vmA, 0))).not.toBe(originals.get(`${ids.vmA}-0`)); // nothing written yet
    expect((await catalog.getRun(msg.runId))?.vapps[captured.id]).toMatchObject({ disksTotal: 3, disksDone: 0, attempts: 1 });

    // A redelivered StartRestoreRun sends the same tasks again: same ids, same attempt.
    await restores.runRestore(msg);
    const results = await agent();
    expect(new Set(results.map((r) => r.taskId)).size).toBe(3);
    expect(results).toHaveLength(6);
    const [first, second, third] = [...new Map(results.map((r) => [r.taskId, r])).values()].reverse();

    await deliver([first!, second!]);
    expect((await catalog.getRun(msg.runId))?.state).toBe('running');
    expect(vapp.inMaintenanceMode).toBe(true);
    await deliver([first!]); // a redelivery counts nothing
    expect((await catalog.getRun(msg.runId))?.vapps[captured.id]?.disksDone).toBe(2);

    await deliver([third!]);
    const run = await catalog.getRun(msg.runId);
    expect(run?.state).toBe('succeeded');
    expect(run?.errors).toEqual([]);
    expect(vapp.inMaintenanceMode).toBe(false);
    expect(vapp.storageLeaseSeconds).toBe(86_400);
    for (const [vm, n] of [[ids.vmA, 0], [ids.vmA, 1], [ids.vmB, 0]] as const) expect(await sha(diskFile(vm, n))).toBe(originals.get(`${vm}-${n}`));
    expect(sim.requests.filter((r) => r.path.endsWith('/action/exitMaintenanceMode'))).toHaveLength(1);

    // Every result again, in any order, after the finish: nothing changes in vCD or in the run.
    const before = writes();
    await deliver([...results].reverse());
    expect(writes()).toBe(before);
    expect((await catalog.getRun(msg.runId))?.state).toBe('succeeded');
    const again = await restores.runRestore(msg);
    expect(again).toMatchObject({ state: 'succeeded', ok: true, finished: true });
    expect(writes()).toBe(before);
  });

  it('a failed disk fails the run with its reason, names the disk and takes the vApp out of maintenance mode', async () => {
    const vapp = sim.findVApp('app')!;
    const { restores, deliver, agent } = deployed();
    const msg = await startAndTake({ mode: 'overwrite' });
    await restores.runRestore(msg);
    const results = await agent();
    const broken = results[1]!;
    const failed: TaskResult = { ...broken, ok: false, stats: undefined, error: { code: 'DISK_WRITE_FAILED', message: 'no space left on the datastore' } };
    await deliver([failed, results[0]!]);
    expect(vapp.inMaintenanceMode).toBe(true); // the third disk is still being written
    await deliver([results[2]!, failed]);

    const run = await catalog.getRun(msg.runId);
    expect(run?.state).toBe('failed');
    expect(vapp.inMaintenanceMode).toBe(false);
    expect(run?.errors.find((e) => e.diskId === broken.diskId)?.message).toContain('no space left on the datastore');
    const last = run?.errors.at(-1);
    expect(last?.code).toBe('DISK_RESTORE_FAILED');
    expect(last?.message).toContain(broken.diskId);
    expect(last?.message).toMatch(/exitMaintenance \(.*\)/);
    const view = await restores.runRestore({ ...msg }); // a rerun resumes as a new attempt with new task ids
    expect(view).toMatchObject({ state: 'running' });
    expect(view.disks.map((d) => d.taskId)).not.toContain(broken.taskId);
    await deliver([results[0]!]); // a late result of the first attempt does not count for the second
    expect((await catalog.getRun(msg.runId))?.vapps[captured.id]).toMatchObject({ attempts: 2, disksDone: 0 });
    await deliver(await agent());
    expect((await catalog.getRun(msg.runId))?.state).toBe('succeeded');
    expect(vapp.inMaintenanceMode).toBe(false);
  });

  it('refuses a StartRestoreRun whose plan is not a restore plan, naming the field, and changes nothing', async () => {
    const { restores, agentTasks } = deployed();
    const msg = await startAndTake({ mode: 'overwrite' });
    const bad: StartRestoreRun = { ...msg, plan: { ...msg.plan, vms: 'all of them' } };
    expect(parseMessage('runs', JSON.parse(encodeMessage('runs', bad)))).toMatchObject({ type: 'StartRestoreRun' });
    sim.resetRequests();
    const refused = await restores.runRestore(bad);
    expect(refused).toMatchObject({ state: 'failed', ok: false, error: { code: 'RESTORE_PLAN_INVALID' } });
    expect(refused.error?.message).toMatch(/vms: /);
    expect((await catalog.getRun(msg.runId))?.errors[0]?.message).toMatch(/vms: /);
    expect(sim.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    expect(await agentTasks.receive({ waitSeconds: 0 })).toEqual([]);
  });
});
