import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { restoreDisk } from '../agent/restore-disk.js';
import type { Run } from '../catalog/types.js';
import type { Clock } from '../domain/clock.js';
import { nextBackupRun, nextPeriodicCopyRun, parseBackupJob, parseCopyJob } from '../domain/jobs/index.js';
import type { Log } from '../log.js';
import { sendMessages } from '../queue/queue.js';
import { indexKey } from '../repository/format.js';
import type { VcdClient } from '../vcd/client.js';
import type { VcdSimulator } from '../vcd/sim/index.js';
import { demoDisks, type SimInventoryInput } from '../vcd/sim/index.js';
import type { LocalRuntime } from './runtime.js';
import { mutateImage, writeSyntheticImage } from './synthetic-image.js';

export interface DemoBackup {
  vappId: string;
  vappName: string;
  pointId: string;
  kind: 'full' | 'incremental';
  bytesRead: number;
  bytesUploaded: number;
}

export interface DemoSummary {
  ok: boolean;
  backups: DemoBackup[];
  copies: DemoCopy[];
  restores: DemoRestore[];
  checks: Array<{ step: string; ok: boolean; detail: string }>;
  totals: { vapps: number; points: number; bytesRead: number; bytesUploaded: number; reduction: number | null; seconds: number };
}

export interface DemoCopy {
  jobId: string;
  runId: string;
  mode: 'immediate' | 'periodic';
  state: string;
  vapps: number;
  blocksCopied: number;
  bytesCopied: number;
}

export interface DemoRestore {
  vappId: string;
  vappName: string;
  mode: 'overwrite' | 'new';
  pointId: string;
  disks: number;
  disksVerified: number;
  metadataVerified: boolean;
  ok: boolean;
}

export interface DemoOptions {
  readonly runtime: LocalRuntime;
  readonly sim: VcdSimulator;
  /** The vCD client the demo uses as a user would (deleting a vApp, reading a restored one). */
  readonly vcd: VcdClient;
  readonly inventory: SimInventoryInput;
  readonly dataDir: string;
  readonly clock: Clock;
  readonly log: Log;
  /** Human progress lines (stderr); silent when absent. */
  readonly say?: (line: string) => void;
  readonly onRunProgress?: (run: Run) => void;
  /** Longest wait for one run. @default 600000 */
  readonly runTimeoutMs?: number;
}

export const DEMO_TENANT = 'acme';
export const DEMO_JOB = 'demo-acme-daily';
export const DEMO_OFFSITE_JOB = 'demo-acme-offsite';
export const DEMO_ARCHIVE_JOB = 'demo-acme-archive';

/** Makes the simulator's disk images once (deterministic content); later runs reuse them. */
export async function ensureDemoDisks(inventory: SimInventoryInput, say?: (line: string) => void): Promise<void> {
  const disks = demoDisks(inventory);
  for (const disk of disks) {
    const s = await stat(disk.path).catch(() => undefined);
    if (s && s.size === disk.sizeBytes) continue;
    await mkdir(path.dirname(disk.path), { recursive: true });
    say?.(`  creating disk image ${path.basename(disk.path)} (${disk.sizeBytes >> 20} MiB)`);
    await writeSyntheticImage(disk.path, disk.sizeBytes, { seed: `${disk.vmId}-${disk.index}`, regionSize: Math.max(1 << 20, Math.floor(disk.sizeBytes / 8)) });
  }
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The local demo (`npm start`): a tenant, its repositories and a backup job; a full backup of the tenant's
 * vApps from the simulator; changed disk blocks; an incremental; then each step checked against the
 * repository (every disk of the latest points restored and compared with its image by SHA-256).
 */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const { runtime, sim, clock, say = () => undefined } = options;
  const started = clock.now().getTime();
  const checks: DemoSummary['checks'] = [];
  const check = (step: string, ok: boolean, detail: string) => {
    checks.push({ step, ok, detail });
    say(`${ok ? '✔' : '✘'} ${step}: ${detail}`);
  };

  say('preparing the demo tenant, repositories and backup job');
  await ensureDemoDisks(options.inventory, say);
  const org = sim.state.orgs.find((o) => o.name === DEMO_TENANT);
  if (!org) throw new Error(`the simulator has no organization "${DEMO_TENANT}"`);
  const { catalog } = runtime;
  await catalog.putTenant({ id: DEMO_TENANT, name: org.fullName || org.name, quotaBytes: 50 * 1024 ** 3 });
  await catalog.putRepository({ id: 'acme-primary', tenantId: DEMO_TENANT, url: 's3://vcd-backup-primary/acme', role: 'primary', bucket: 'vcd-backup-primary', prefix: 'acme' });
  await catalog.putRepository({ id: 'acme-cloud', tenantId: DEMO_TENANT, url: 's3://vcd-backup-cloud/acme', role: 'cloud', bucket: 'vcd-backup-cloud', prefix: 'acme' });
  const backupSpec = {
      type: 'backup',
      name: 'ACME nightly',
      tenantId: DEMO_TENANT,
      scope: { include: [{ kind: 'org', orgId: `urn:vcloud:org:${org.id}` }] },
      schedule: { kind: 'daily', times: ['02:00'] },
      retries: { count: 2, waitMinutes: 5 },
      retention: { shortTerm: { restorePoints: 7 }, gfs: { weekly: { keep: 4, weekday: 'sunday' } } },
      targetRepositoryId: 'acme-primary',
      blockSize: 1024 * 1024,
      encryption: { enabled: true, keyRef: 'local-passphrase' },
  };
  // Jobs carry their next slot, so the scheduler keeps firing them while the demo keeps serving.
  const now = clock.now();
  await catalog.putJob({ id: DEMO_JOB, tenantId: DEMO_TENANT, kind: 'backup', enabled: true, nextRunAt: nextBackupRun(parseBackupJob(backupSpec), now)?.startAt.toISOString(), spec: backupSpec });

  await catalog.putRepository({ id: 'acme-archive', tenantId: DEMO_TENANT, url: 's3://vcd-backup-archive/acme', role: 'cloud', bucket: 'vcd-backup-archive', prefix: 'acme' });
  await catalog.putJob({
    id: DEMO_OFFSITE_JOB,
    tenantId: DEMO_TENANT,
    kind: 'copy',
    enabled: true,
    spec: { type: 'copy', name: 'ACME offsite', tenantId: DEMO_TENANT, source: { kind: 'backup', jobId: DEMO_JOB }, targetRepositoryId: 'acme-cloud', mode: 'immediate', retries: { count: 2, waitMinutes: 5 }, retention: { shortTerm: { restorePoints: 14 } } },
  });
  const archiveSpec = {
      type: 'copy',
      name: 'ACME archive (copy of the offsite copies)',
      tenantId: DEMO_TENANT,
      source: { kind: 'copy', jobId: DEMO_OFFSITE_JOB },
      targetRepositoryId: 'acme-archive',
      mode: 'periodic',
      schedule: { kind: 'daily', times: ['04:00'] },
      retries: { count: 1, waitMinutes: 30 },
  };
  await catalog.putJob({ id: DEMO_ARCHIVE_JOB, tenantId: DEMO_TENANT, kind: 'copy', enabled: true, nextRunAt: nextPeriodicCopyRun(parseCopyJob(archiveSpec), now)?.startAt.toISOString(), spec: archiveSpec });

  const copies: DemoCopy[] = [];
  /** Waits until `count` runs of a copy job have finished, and records them. */
  const awaitCopies = async (jobId: string, count: number, mode: DemoCopy['mode']) => {
    const deadline = Date.now() + (options.runTimeoutMs ?? 600_000);
    for (;;) {
      const runs = (await catalog.listRuns({ jobId })).filter((r) => !copies.some((c) => c.runId === r.id));
      const done = runs.filter((r) => ['succeeded', 'partial', 'failed', 'canceled'].includes(r.state));
      if (done.length >= count) {
        for (const r of done) copies.push({ jobId, runId: r.id, mode, state: r.state, vapps: Object.keys(r.vapps).length, blocksCopied: r.counters.blocksNew, bytesCopied: r.counters.bytesUploaded });
        return done;
      }
      if (Date.now() > deadline) throw new Error(`copy runs of ${jobId} did not finish in time`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const runBackup = async (label: string): Promise<Run> => {
    const runId = `demo-${label}-${clock.now().getTime().toString(36)}`;
    say(`running the ${label} backup (run ${runId})`);
    await sendMessages(runtime.queues.runs, 'runs', [{ type: 'StartBackupRun', version: 1, runId, jobId: DEMO_JOB, tenantId: DEMO_TENANT, trigger: 'manual', requestedAt: clock.now().toISOString() }]);
    const deadline = Date.now() + (options.runTimeoutMs ?? 600_000);
    for (;;) {
      const run = await catalog.getRun(runId);
      if (run) options.onRunProgress?.(run);
      if (run && ['succeeded', 'partial', 'failed', 'canceled'].includes(run.state)) return run;
      if (Date.now() > deadline) throw new Error(`run ${runId} did not finish within ${(options.runTimeoutMs ?? 600_000) / 1000} s`);
      for (const id of ['runs', 'agentTasks', 'agentResults'] as const) {
        if ((await runtime.queues[id].dlqDepth()) > 0) throw new Error(`a message of run ${runId} reached the ${id} dead-letter queue; run with --verbose to see why`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const backups: DemoBackup[] = [];
  const record = (run: Run, kind: DemoBackup['kind']) => {
    for (const v of Object.values(run.vapps)) {
      backups.push({ vappId: v.vappId, vappName: sim.findVApp(v.vappId.split(':').pop()!)?.name ?? v.vappId, pointId: v.pointId ?? '', kind, bytesRead: v.counters.bytesRead, bytesUploaded: v.counters.bytesUploaded });
    }
  };

  const full = await runBackup('full');
  record(full, 'full');
  const fullVApps = Object.values(full.vapps);
  check('full backup', full.state === 'succeeded' && fullVApps.length === 2, `run ${full.state}, ${fullVApps.length} vApps, ${fullVApps.reduce((n, v) => n + v.disksDone, 0)} disks`);
  say('waiting for the immediate copies to the cloud repository');
  const fullCopies = await awaitCopies(DEMO_OFFSITE_JOB, fullVApps.length, 'immediate');
  const fullUploaded = fullVApps.reduce((n, v) => n + v.counters.bytesUploaded, 0);
  const fullCopied = fullCopies.reduce((n, r) => n + r.counters.bytesUploaded, 0);
  check('immediate copy of the full', fullCopies.every((r) => r.state === 'succeeded') && fullCopied > 0, `${fullCopies.length} copy runs moved ${mib(fullCopied)} (the backup uploaded ${mib(fullUploaded)})`);

  // Change 5 % of every disk of the first vApp, as a day of writes would.
  const changed = sim.vapps().filter((v) => v.vdc && org.vdcs.includes(v.vdc))[0]!;
  say(`changing 5 % of the disks of ${changed.name}`);
  let changedBytes = 0;
  for (const disk of demoDisks(options.inventory).filter((d) => changed.vms.some((vm) => vm.id === d.vmId))) {
    changedBytes += (await mutateImage(disk.path, disk.sizeBytes, { share: 0.05, writeSize: 1 << 20, seed: `demo-${clock.now().getTime()}-${disk.vmId}-${disk.index}` })).reduce((n, a) => n + a.length, 0);
  }

  const incr = await runBackup('incremental');
  record(incr, 'incremental');
  const incrVApps = Object.values(incr.vapps);
  say('waiting for the immediate copies of the incremental');
  const incrCopies = await awaitCopies(DEMO_OFFSITE_JOB, incrVApps.length, 'immediate');
  const incrUploaded = incrVApps.reduce((n, v) => n + v.counters.bytesUploaded, 0);
  const incrCopied = incrCopies.reduce((n, r) => n + r.counters.bytesUploaded, 0);
  check(
    'forever-incremental copy',
    incrCopies.every((r) => r.state === 'succeeded') && incrCopied <= incrUploaded * 1.05 + 65536,
    `the incremental's copies moved ${mib(incrCopied)} for ${mib(incrUploaded)} uploaded by the backup: only the blocks the cloud lacked`,
  );
  say('running the periodic copy of the cloud copies to the archive (a copy of copies)');
  const archiveRunId = `demo-archive-${clock.now().getTime().toString(36)}`;
  await sendMessages(runtime.queues.runs, 'runs', [{ type: 'StartCopyRun', version: 1, runId: archiveRunId, jobId: DEMO_ARCHIVE_JOB, tenantId: DEMO_TENANT, trigger: 'manual', requestedAt: clock.now().toISOString() }]);
  const archive = await awaitCopies(DEMO_ARCHIVE_JOB, 1, 'periodic');
  const archivePoints = await catalog.listRestorePoints({ repositoryId: 'acme-archive' });
  check('periodic copy of copies', archive[0]?.state === 'succeeded' && archivePoints.length === incrVApps.length && archivePoints.every((p) => p.sourcePointId?.endsWith('@acme-cloud')), `${archivePoints.length} latest points in the archive, each copied from its cloud copy`);
  const changedIncr = incr.vapps[Object.keys(incr.vapps).find((id) => id.includes(changed.id)) ?? ''];
  const changedFull = full.vapps[Object.keys(full.vapps).find((id) => id.includes(changed.id)) ?? ''];
  check(
    'incremental backup',
    // Changed blocks are random data: they upload at their size, and nothing else may travel.
    incr.state === 'succeeded' &&
      incrVApps.length === 2 &&
      !!changedIncr &&
      !!changedFull &&
      changedIncr.counters.bytesUploaded <= changedBytes * 1.1 &&
      incrVApps.filter((v) => v !== changedIncr).every((v) => v.counters.bytesUploaded === 0),
    `run ${incr.state}; ${changed.name} uploaded ${mib(changedIncr?.counters.bytesUploaded ?? 0)} for ${mib(changedBytes)} changed (full: ${mib(changedFull?.counters.bytesUploaded ?? 0)}); unchanged vApps uploaded nothing`,
  );

  // Verify: the chain in the catalog and the repository agree, and every disk of the latest points restores
  // to exactly the bytes of its image.
  const { repository, pool } = await runtime.repositories.open('acme-primary', DEMO_TENANT);
  const scratch = await mkdtemp(path.join(tmpdir(), 'vcdb-demo-verify-'));
  try {
    let disksVerified = 0;
    let disksTotal = 0;
    for (const v of incrVApps) {
      const point = await repository.readPoint(v.vappId, v.pointId!);
      const parentOk = point.parentPointId === full.vapps[v.vappId]?.pointId;
      check(`chain of ${sim.findVApp(v.vappId.split(':').pop()!)?.name ?? v.vappId}`, parentOk, `point ${point.pointId} follows ${point.parentPointId ?? 'nothing'}`);
      for (const disk of point.disks) {
        disksTotal++;
        const image = sim.disksOf(sim.findVm(disk.vmId ?? '')?.moref ?? '').find((d) => disk.diskId.endsWith(`-${d.instanceId}`));
        if (!image) continue;
        const out = path.join(scratch, `${disk.diskId}.img`);
        const index = await repository.readIndexByKey(indexKey(v.vappId, point.pointId, disk.diskId));
        await restoreDisk({ repository, pool, index, out });
        if ((await sha256(out)) === (await sha256(image.path))) disksVerified++;
        await rm(out);
      }
    }
    check('restore check', disksVerified === disksTotal && disksTotal > 0, `${disksVerified} of ${disksTotal} disks of the latest points restore to their images' exact bytes`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }

  const restores = runtime.restores ? await demoRestores(options, incr, check) : [];

  const bytesRead = backups.reduce((n, b) => n + b.bytesRead, 0);
  const bytesUploaded = backups.reduce((n, b) => n + b.bytesUploaded, 0);
  return {
    ok: checks.every((c) => c.ok),
    backups,
    copies,
    restores,
    checks,
    totals: {
      vapps: new Set(backups.map((b) => b.vappId)).size,
      points: backups.length,
      bytesRead,
      bytesUploaded,
      reduction: bytesUploaded > 0 ? Math.round((bytesRead / bytesUploaded) * 100) / 100 : null,
      seconds: Math.round((clock.now().getTime() - started) / 100) / 10,
    },
  };
}

type Check = (step: string, ok: boolean, detail: string) => void;

/**
 * The restore half of the demo: build-farm is deleted in vCD and re-created from its latest point under its
 * original name; web-shop has a disk corrupted and is restored over itself. Every restored disk is compared
 * with the backed-up bytes, and the re-created vApp's networks, startup, lease, owner and metadata with the
 * captured model.
 */
async function demoRestores(options: DemoOptions, incr: Run, check: Check): Promise<DemoRestore[]> {
  const { runtime, sim, vcd, clock, say = () => undefined } = options;
  const restores = runtime.restores!;
  const { repository } = await runtime.repositories.open('acme-primary', DEMO_TENANT);
  const out: DemoRestore[] = [];
  const byName = (name: string) => Object.values(incr.vapps).find((v) => sim.findVApp(v.vappId.split(':').pop()!)?.name === name)!;

  const restoreAndWait = async (name: string, pointId: string, restoreOptions: Record<string, unknown>) => {
    const point = (await runtime.catalog.getRestorePoint(pointId))!;
    const runId = `demo-restore-${name}-${clock.now().getTime().toString(36)}`;
    await restores.start({ tenantId: DEMO_TENANT, point, runId, options: restoreOptions, requestedBy: 'demo' });
    for (;;) {
      const run = await runtime.catalog.getRun(runId);
      if (run && ['succeeded', 'partial', 'failed', 'canceled'].includes(run.state)) return run;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const diskShas = async (vappName: string) => {
    const vapp = sim.findVApp(vappName)!;
    const shas: string[] = [];
    for (const vm of [...vapp.vms].sort((a, b) => a.name.localeCompare(b.name))) {
      for (const d of [...sim.disksOf(vm.moref)].sort((a, b) => a.instanceId - b.instanceId)) shas.push(await sha256(d.path));
    }
    return shas;
  };

  // 1. Re-create a deleted vApp under its original name.
  const farm = byName('build-farm');
  const farmModel = (await repository.getVAppMetadata(farm.vappId, farm.pointId!)) as { startup: unknown; lease: unknown; owner: unknown; metadata: unknown; networks: unknown; vms: Array<{ name: string }> };
  const farmShas = await diskShas('build-farm');
  say('deleting build-farm in vCD, then re-creating it from its copy in the cloud repository');
  const farmPath = `/api/vApp/vapp-${farm.vappId.split(':').pop()}`;
  const undeploy = await vcd.requestXml('POST', `${farmPath}/action/undeploy`, { body: '<UndeployVAppParams xmlns="http://www.vmware.com/vcloud/v1.5"><UndeployPowerAction>powerOff</UndeployPowerAction></UndeployVAppParams>', contentType: 'application/vnd.vmware.vcloud.undeployVAppParams+xml' });
  if (undeploy.node) await vcd.waitForTask(undeploy.node);
  const del = await vcd.requestXml('DELETE', farmPath);
  if (del.node) await vcd.waitForTask(del.node);
  check('build-farm deleted', sim.findVApp('build-farm') === undefined, 'the vApp is gone from vCD');
  // From the offsite copy: the primary site could be gone.
  const cloudPoint = `${farm.pointId!}@acme-cloud`;
  const newRun = await restoreAndWait('build-farm', cloudPoint, { mode: 'new' });
  const recreated = sim.findVApp('build-farm');
  const newShas = recreated ? await diskShas('build-farm') : [];
  const newVerified = newShas.filter((s, i) => s === farmShas[i]).length;
  let metadataVerified = false;
  if (recreated) {
    const { captureVApp } = await import('../vcd/capture.js');
    const now = (await captureVApp(vcd, recreated.id)).model;
    const pick = (m: typeof farmModel) => JSON.stringify({ startup: m.startup, lease: m.lease, owner: (m.owner as { name: string | null }).name, metadata: m.metadata, networks: m.networks, vms: m.vms.map((v) => v.name).sort() });
    metadataVerified = pick(now as unknown as typeof farmModel) === pick(farmModel);
  }
  const newOk = newRun.state === 'succeeded' && newVerified === farmShas.length && metadataVerified;
  check('re-create restore from the cloud copy', newOk, `run ${newRun.state}; ${newVerified} of ${farmShas.length} disks identical; networks, startup, lease, owner and metadata ${metadataVerified ? 'match' : 'DIFFER from'} the capture`);
  out.push({ vappId: recreated ? `urn:vcloud:vapp:${recreated.id}` : farm.vappId, vappName: 'build-farm', mode: 'new', pointId: cloudPoint, disks: farmShas.length, disksVerified: newVerified, metadataVerified, ok: newOk });

  // 2. Overwrite a vApp whose disk was corrupted.
  const shop = byName('web-shop');
  const shopShas = await diskShas('web-shop');
  const victim = [...sim.findVApp('web-shop')!.vms].sort((a, b) => a.name.localeCompare(b.name)).flatMap((vm) => sim.disksOf(vm.moref))[0]!;
  say(`corrupting a disk of web-shop (${path.basename(victim.path)}), then restoring web-shop over itself`);
  await mutateImage(victim.path, victim.sizeBytes, { share: 0.2, writeSize: 1 << 20, seed: `corrupt-${clock.now().getTime()}` });
  const corrupted = await diskShas('web-shop');
  const overRun = await restoreAndWait('web-shop', shop.pointId!, { mode: 'overwrite' });
  const overShas = await diskShas('web-shop');
  const overVerified = overShas.filter((s, i) => s === shopShas[i]).length;
  const overOk = overRun.state === 'succeeded' && overVerified === shopShas.length && corrupted.some((s, i) => s !== shopShas[i]);
  check('overwrite restore', overOk, `run ${overRun.state}; ${overVerified} of ${shopShas.length} disks back to the backed-up bytes`);
  out.push({ vappId: shop.vappId, vappName: 'web-shop', mode: 'overwrite', pointId: shop.pointId!, disks: shopShas.length, disksVerified: overVerified, metadataVerified: true, ok: overOk });
  return out;
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}
