import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDiskLocator } from '../../lib/agent/disk-locator.js';
import { restoreDisk } from '../../lib/agent/restore-disk.js';
import { runDiskBackupTask } from '../../lib/agent/task-runner.js';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { createAgentResultsHandler } from '../../lib/handlers/agent-results.js';
import { createRunsHandler } from '../../lib/handlers/runs.js';
import { createMemoryLogger } from '../../lib/log.js';
import { encodeMessage, parseMessage, type DiskLocator } from '../../lib/queue/messages.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import type { Queue } from '../../lib/queue/queue.js';
import { Secret } from '../../lib/secret.js';
import { BackupService } from '../../lib/services/backup-service.js';
import { SchedulerService } from '../../lib/services/scheduler.js';
import { VcdBackupGateway, simDiskLocate } from '../../lib/vcd/backup-gateway.js';
import { VcdClient } from '../../lib/vcd/client.js';
import { startVcdSimulator, type VcdSimulator } from '../../lib/vcd/sim/index.js';
import { HttpsDiskSource, listProductSnapshots, readSnapshotDisks, readVirtualMachine, snapshotRef, vmRef, VsphereSession } from '../../lib/vsphere/index.js';
import { VsphereBackupGateway } from '../../lib/vsphere/gateway.js';
import { RepositoryRegistry } from '../../lib/wiring/repository-registry.js';
import { startVcsim, type Vcsim } from '../helpers/vcsim.js';
import { writeAt } from '../helpers/write-at.js';

/**
 * The backup order against real vSphere (vcsim) and the vCD simulator, whose VM is the vcsim VM (same moref
 * and vCenter): maintenance mode → capture → snapshot → disk tasks read the snapshot over https → commit with
 * each disk's CBT changeId → snapshot removed; the next backup reads only what changed since.
 */
const MiB = 1 << 20;
const VCENTER_ID = '7c2b5f0e-5d0b-4c1e-9a55-0b6f1a2c3d4e';
let vcsim: Vcsim;
let vcd: VcdSimulator;
let dir: string;
let session: VsphereSession;
let moref: string;

beforeAll(async () => {
  vcsim = await startVcsim({ diskMiB: 4 });
  moref = vcsim.vms[0]!.moref;
  dir = await mkdtemp(path.join(tmpdir(), 'vcdb-vsphere-svc-'));
  vcd = await startVcdSimulator({
    inventory: {
      systemAdmin: { user: 'administrator', password: 'vmware' },
      vcenters: [{ name: 'vc-test', id: VCENTER_ID }],
      orgs: [
        {
          name: 'acme',
          vdcs: [
            {
              name: 'vdc-1',
              networks: [{ name: 'net-1', gateway: '10.0.0.1' }],
              vapps: [{ name: 'app', vms: [{ name: 'vm-a', moref, disks: [{ sizeBytes: 4 * MiB, path: path.join(dir, 'unused.img') }], nics: [{ network: 'net-1' }] }], networks: [{ name: 'net-1', fenceMode: 'bridged', parentNetwork: 'net-1' }] }],
            },
          ],
        },
      ],
    },
  });
  session = await VsphereSession.login({ url: vcsim.url, userName: vcsim.userName, password: vcsim.password });
}, 180_000);

afterAll(async () => {
  await session?.logout();
  await vcd?.stop();
  await vcsim?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The agent's vsphere transport for this test: the snapshot's disk over https (the datastore file service). */
class SnapshotLocator extends FileDiskLocator {
  override async open(locator: DiskLocator) {
    if (locator.kind !== 'vsphere' || !locator.vsphere) return super.open(locator);
    const { vm, snapshot, deviceKey } = locator.vsphere;
    const disk = (await readSnapshotDisks(session, snapshotRef(snapshot!))).find((d) => d.key === deviceKey)!;
    return HttpsDiskSource.open(session, vmRef(vm), disk);
  }
}

async function pump(queue: Queue, handler: (e: SQSEvent) => Promise<SQSBatchResponse>): Promise<number> {
  let handled = 0;
  for (;;) {
    const got = await queue.receive({ maxMessages: 10, waitSeconds: 0 });
    if (got.length === 0) return handled;
    const res = await handler({ Records: got.map((m) => ({ messageId: m.messageId, body: m.body })) } as SQSEvent);
    const failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
    await queue.delete(got.filter((m) => !failed.has(m.messageId)).map((m) => m.receiptHandle));
    handled += got.length;
  }
}


describe('backups through vSphere snapshots and CBT (vcsim)', () => {
  it('reads each disk from a snapshot, records its changeId, removes the snapshot, and reads only changes next time', async () => {
    const clock = new ManualClock('2026-12-07T02:00:00.000Z');
    const catalog = new MemoryCatalog(clock);
    const log = createMemoryLogger();
    const keySource = { kind: 'passphrase' as const, passphrase: new Secret('vsphere service test passphrase'), scrypt: { N: 1024, r: 8, p: 1 } };
    const registry = new RepositoryRegistry({ catalog, clock, initMissing: true, keySource });
    const client = await VcdClient.connect({ url: vcd.url, credentials: { kind: 'password', user: 'administrator', org: 'System', password: new Secret('vmware') } });
    const vsphere = new VsphereBackupGateway([{ id: VCENTER_ID, url: vcsim.url, userName: vcsim.userName, password: vcsim.password }], { wait: { sleep: async () => undefined, pollMs: 0 } });
    const runs = new MemoryQueue({ name: 'runs', clock });
    const tasks = new MemoryQueue({ name: 'tasks' });
    const results = new MemoryQueue({ name: 'results', clock });
    const backups = new BackupService({
      catalog,
      vcd: new VcdBackupGateway(client, simDiskLocate(dir), { vsphere, maintenance: { exitBackoffMs: 5 } }),
      vsphere,
      repositories: registry,
      agentTasks: tasks,
      clock,
      log,
    });
    const org = vcd.state.orgs[0]!;
    await catalog.putTenant({ id: 'acme', name: 'Acme' });
    await catalog.putRepository({ id: 'primary', url: `file://${path.join(dir, 'repo')}`, role: 'primary', bucket: 'local', prefix: '' });
    await catalog.putJob({ id: 'job-1', tenantId: 'acme', kind: 'backup', enabled: true, spec: { type: 'backup', name: 'n', tenantId: 'acme', scope: { include: [{ kind: 'org', orgId: `urn:vcloud:org:${org.id}` }] }, targetRepositoryId: 'primary' } });
    const locator = new SnapshotLocator([dir]);
    const runsHandler = createRunsHandler({ backups, log });
    const resultsHandler = createAgentResultsHandler({ backups, catalog, clock, log });

    const backup = async (runId: string) => {
      await runs.send([encodeMessage('runs', { type: 'StartBackupRun', version: 1, runId, jobId: 'job-1', tenantId: 'acme', trigger: 'manual', requestedAt: clock.now().toISOString() })]);
      await pump(runs, runsHandler);
      const started = (await catalog.getRun(runId))!;
      expect(started.errors, JSON.stringify(started.errors)).toEqual([]);
      const sent = await tasks.receive({ maxMessages: 10, waitSeconds: 0 });
      const taken = sent.map((m) => parseMessage('agentTasks', JSON.parse(m.body)));
      // While the agent reads, the snapshot exists; it is named for the run.
      expect((await listProductSnapshots(session, { vms: [vmRef(moref)] })).map((s) => s.name)).toEqual([`vcd-backup:${runId}:${moref}`]);
      for (const task of taken) {
        if (task.type !== 'DiskBackupTask') throw new Error(task.type);
        expect(task.diskLocator).toMatchObject({ kind: 'vsphere', vsphere: { vcenter: expect.stringContaining(VCENTER_ID), vm: moref } });
        const result = await runDiskBackupTask(task, { repositories: registry, locator });
        await results.send([encodeMessage('agentResults', result)]);
      }
      await tasks.delete(sent.map((m) => m.receiptHandle));
      await pump(results, resultsHandler);
      clock.advance(3600_000);
      return { run: (await catalog.getRun(runId))!, tasks: taken };
    };

    const first = await backup('run-full');
    expect(first.run.state).toBe('succeeded');
    expect(await listProductSnapshots(session, { vms: [vmRef(moref)] })).toEqual([]);
    const [point1] = await catalog.listRestorePoints({ tenantId: 'acme' });
    const { repository } = await registry.open('primary', 'acme');
    const descriptor1 = await repository.readPoint(point1!.vappId, point1!.id);
    expect(descriptor1.disks[0]).toMatchObject({ deviceKey: expect.any(Number), changeId: expect.any(String) });
    expect(first.run.counters.bytesRead).toBe(4 * MiB);

    // 2 bytes and 100 KiB change in the VM's disk; the next backup reads only the blocks around them.
    const vmDisk = (await readVirtualMachine(session, vmRef(moref))).disks[0]!;
    const flat = vcsim.localPath(vmDisk.fileName.replace(/\.vmdk$/, '-flat.vmdk'));
    await writeAt(flat, 5, Buffer.from([1, 2]));
    await writeAt(flat, 3 * MiB, Buffer.alloc(100 * 1024, 7));
    const second = await backup('run-incr');
    expect(second.run.state).toBe('succeeded');
    const task = second.tasks[0]!;
    if (task.type !== 'DiskBackupTask') throw new Error(task.type);
    expect(task.changedAreas?.length).toBeGreaterThan(0);
    expect(second.run.counters.bytesRead).toBeLessThan(4 * MiB);
    expect(second.run.counters.bytesRead).toBeGreaterThanOrEqual(100 * 1024);
    expect(second.run.errors.filter((e) => e.code === 'CBT_FULL_READ')).toEqual([]);
    expect(await listProductSnapshots(session, { vms: [vmRef(moref)] })).toEqual([]);

    // The incremental point restores to the disk's current bytes.
    const points = await catalog.listRestorePoints({ tenantId: 'acme' });
    const latest = points.find((p) => p.id !== point1!.id)!;
    const out = path.join(dir, 'restored.img');
    await restoreDisk({ repository, pool: (await registry.open('primary', 'acme')).pool, index: await repository.readIndexByKey(latest.disks[0]!.indexKey), out });
    expect((await readFile(out)).equals(await readFile(flat))).toBe(true);
    await vsphere.close();
    await registry.close();
    await client.logout();
  });

  it('the scheduler tick sweeps a snapshot of ours that a crash left behind, at most once per interval', async () => {
    const vsphere = new VsphereBackupGateway([{ id: VCENTER_ID, url: vcsim.url, userName: vcsim.userName, password: vcsim.password }], { wait: { sleep: async () => undefined, pollMs: 0 } });
    const clock = new ManualClock('2026-12-07T03:00:00.000Z');
    const catalog = new MemoryCatalog(clock);
    const scheduler = new SchedulerService({ catalog, runs: new MemoryQueue({ name: 'runs', clock }), clock, log: createMemoryLogger(), snapshots: vsphere, snapshotMaxAgeMs: 0, sweepEveryMs: 3600_000 });
    const left = await vsphere.snapshotVm({ vcenter: VCENTER_ID, moref }, `vcd-backup:run-crashed:${moref}`, 'left by a crashed run');
    expect((await listProductSnapshots(session, { vms: [vmRef(moref)] })).map((s) => s.snapshot.value)).toEqual([left.snapshot]);
    await scheduler.tick();
    expect(await listProductSnapshots(session, { vms: [vmRef(moref)] })).toEqual([]);
    // Within the hour the tick does not sweep again: a snapshot left now stays until the next sweep.
    const again = await vsphere.snapshotVm({ vcenter: VCENTER_ID, moref }, `vcd-backup:run-crashed-2:${moref}`, 'left again');
    clock.advance(10 * 60_000);
    await scheduler.tick();
    expect((await listProductSnapshots(session, { vms: [vmRef(moref)] })).map((s) => s.snapshot.value)).toEqual([again.snapshot]);
    clock.advance(60 * 60_000);
    await scheduler.tick();
    expect(await listProductSnapshots(session, { vms: [vmRef(moref)] })).toEqual([]);
    await vsphere.close();
  });
});
