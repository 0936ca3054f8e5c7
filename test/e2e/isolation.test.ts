import { createHash, randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../lib/api/client.js';
import { createLocalAuthenticator, issueLocalToken, loadOrCreateApiSecret } from '../../lib/api/local-tokens.js';
import { startApiServer, type ApiServer } from '../../lib/api/server.js';
import type { Run } from '../../lib/catalog/types.js';
import { ensureDemoDisks } from '../../lib/local/demo.js';
import { startLocalRuntime, type LocalRuntime } from '../../lib/local/runtime.js';
import { createMemoryLogger } from '../../lib/log.js';
import { Secret } from '../../lib/secret.js';
import { systemClock } from '../../lib/system-clock.js';
import { VcdBackupGateway, simDiskLocate } from '../../lib/vcd/backup-gateway.js';
import { VcdClient } from '../../lib/vcd/client.js';
import { VcdRestoreClient } from '../../lib/vcd/restore-client.js';
import { demoInventory, startVcdSimulator, type SimInventoryInput, type VcdSimulator } from '../../lib/vcd/sim/index.js';
import type { SimOrg } from '../../lib/vcd/sim/inventory.js';
import { addRestoreRoutes } from '../../lib/vcd/sim/restore-routes.js';
import { useLocalStack } from '../helpers/local-stack.js';

/**
 * Tenant isolation, attacked as a tenant would: black-box HTTP requests to the local service (the same
 * runtime, handlers, agent and API that `vcd-backup local` runs, on DynamoDB Local, fauxqs and the vCD
 * simulator) with two tenants, acme and globex, in two vCD organizations. Every attack must be refused and
 * leave globex's vCD objects (no write request reaches them), restore points and disks (hashed) unchanged.
 */
const MiB = 1 << 20;
const stack = useLocalStack();
let dataDir: string;
let sim: VcdSimulator;
let runtime: LocalRuntime;
let api: ApiServer;
let vcd: VcdClient;
let provider: ApiClient;
let acme: ApiClient;
let globex: ApiClient;
let shared: string;
let plain: string;
let acmeOrg: SimOrg;
let globexOrg: SimOrg;

type Json = Record<string, unknown>;
type Error = { error: { code: string; message: string } };

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'vcdb-isolation-'));
  const inventory = JSON.parse(JSON.stringify(demoInventory(dataDir)), (k, v: unknown) => (k === 'sizeBytes' && typeof v === 'number' ? 2 * MiB : v)) as SimInventoryInput;
  await ensureDemoDisks(inventory);
  sim = await startVcdSimulator({ inventory });
  addRestoreRoutes(sim, { diskDir: path.join(dataDir, 'disks') });
  acmeOrg = sim.state.orgs.find((o) => o.name === 'acme')!;
  globexOrg = sim.state.orgs.find((o) => o.name === 'globex')!;
  vcd = await VcdClient.connect({ url: sim.url, credentials: { kind: 'password', user: 'administrator', org: 'System', password: new Secret('vmware') } });
  const gateway = new VcdBackupGateway(vcd, simDiskLocate(dataDir), { maintenance: { exitBackoffMs: 5 } });
  runtime = await startLocalRuntime({
    stack: stack(),
    dataDir,
    vcd: gateway,
    clock: systemClock,
    log: createMemoryLogger(),
    diskRoots: [path.join(dataDir, 'disks')],
    restoreTarget: new VcdRestoreClient(vcd, { locate: simDiskLocate(dataDir), taskTimeoutMs: 10_000 }),
    tickMs: 0,
  });
  const secret = await loadOrCreateApiSecret(dataDir);
  api = await startApiServer({
    port: 0,
    host: '127.0.0.1',
    deps: { catalog: runtime.catalog, runsQueue: runtime.queues.runs, restores: runtime.restores, vcd: gateway, clock: systemClock, auth: createLocalAuthenticator({ secret }) },
  });
  provider = new ApiClient(api.url, issueLocalToken({ secret, principal: { kind: 'provider' } }));
  acme = provider.as(issueLocalToken({ secret, principal: { kind: 'tenant', tenantId: 'acme' } }));
  globex = provider.as(issueLocalToken({ secret, principal: { kind: 'tenant', tenantId: 'globex' } }));
  expect((await provider.post('/v1/tenants', { id: 'acme', name: 'Acme', vcdOrg: `urn:vcloud:org:${acmeOrg.id}` })).status).toBe(201);
  expect((await provider.post('/v1/tenants', { id: 'globex', name: 'Globex' })).status).toBe(201);
  const bucket = stack().buckets.primary!;
  shared = `shared-${randomUUID().slice(0, 6)}`;
  plain = `plain-${randomUUID().slice(0, 6)}`;
  expect((await provider.post('/v1/repositories', { id: shared, url: `s3://${bucket}/${shared}`, role: 'primary', bucket, prefix: shared })).status).toBe(201);
  expect((await provider.post('/v1/repositories', { id: plain, url: `s3://${bucket}/${plain}`, role: 'primary', bucket, prefix: plain, encrypted: false })).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await api?.stop();
  await runtime?.stop();
  await vcd?.logout().catch(() => undefined);
  await sim?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const orgUrn = (org: SimOrg) => `urn:vcloud:org:${org.id}`;
const vappsOf = (org: SimOrg) => sim.vapps().filter((v) => org.vdcs.includes(v.vdc));
const backupJob = (name: string, scope: Json, extra: Json = {}) => ({ type: 'backup', name, scope, targetRepositoryId: shared, ...extra });

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function finishedRun(client: ApiClient, runId: string): Promise<Run> {
  return waitFor(`run ${runId}`, async () => {
    const res = await client.get<Run>(`/v1/runs/${runId}`);
    return res.status === 200 && ['succeeded', 'partial', 'failed', 'canceled'].includes(res.body.state) ? res.body : undefined;
  });
}

async function runNow(client: ApiClient, jobId: string, body: Json = {}): Promise<Run> {
  const res = await client.post<{ runId: string }>(`/v1/jobs/${jobId}/run`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return finishedRun(client, res.body.runId);
}

async function createJob(client: ApiClient, body: Json): Promise<string> {
  const res = await client.post<{ id: string }>('/v1/jobs', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function diskHashes(org: SimOrg): Promise<Record<string, string>> {
  const vmIds = new Set(vappsOf(org).flatMap((v) => v.vms.map((vm) => vm.id)));
  const out: Record<string, string> = {};
  for (const file of (await readdir(path.join(dataDir, 'disks'))).sort()) {
    if ([...vmIds].some((id) => file.startsWith(id))) out[file] = createHash('sha256').update(await readFile(path.join(dataDir, 'disks', file))).digest('hex');
  }
  return out;
}

async function pointsOf(tenantId: string): Promise<string[]> {
  const res = await provider.get<{ items: Array<{ id: string }> }>(`/v1/restore-points?tenantId=${tenantId}&limit=200`);
  expect(res.status).toBe(200);
  return res.body.items.map((p) => p.id).sort();
}

/** Write requests the simulator saw against any of globex's vApps or VMs. */
function writesToGlobex(): string[] {
  const ids = vappsOf(globexOrg).flatMap((v) => [v.id, ...v.vms.map((vm) => vm.id)]);
  return sim.requests.filter((r) => r.method !== 'GET' && ids.some((id) => r.path.includes(id))).map((r) => `${r.method} ${r.path}`);
}

describe('tenant isolation (two tenants, two vCD organizations, one shared repository)', () => {
  let globexJob: string;
  let globexPoints: string[];
  let globexDisks: Record<string, string>;
  let acmeJob: string;

  it('globex backs up its own organization; acme backs up its own', async () => {
    globexJob = await createJob(globex, backupJob('globex nightly', { include: [{ kind: 'org', orgId: orgUrn(globexOrg) }] }));
    const run = await runNow(globex, globexJob);
    expect(run.state).toBe('succeeded');
    expect(Object.keys(run.vapps).sort()).toEqual(vappsOf(globexOrg).map((v) => `urn:vcloud:vapp:${v.id}`).sort());
    globexPoints = await pointsOf('globex');
    expect(globexPoints).toHaveLength(vappsOf(globexOrg).length);
    globexDisks = await diskHashes(globexOrg);
    expect(Object.keys(globexDisks).length).toBeGreaterThan(0);

    acmeJob = await createJob(acme, backupJob('acme nightly', { include: [{ kind: 'org', orgId: orgUrn(acmeOrg) }] }, { retention: { shortTerm: { restorePoints: 1 } } }));
    expect((await runNow(acme, acmeJob)).state).toBe('succeeded');
    sim.resetRequests();
  });

  it('a job scope naming globex\'s organization, VDC, vApp or VM answers 404, like a missing one, and saves nothing', async () => {
    const globexVApp = vappsOf(globexOrg)[0]!;
    const scopes = [
      { kind: 'org', orgId: orgUrn(globexOrg) },
      { kind: 'orgVdc', vdcId: `urn:vcloud:vdc:${globexOrg.vdcs[0]!.id}` },
      { kind: 'vapp', vappId: `urn:vcloud:vapp:${globexVApp.id}` },
      { kind: 'vm', vmId: `urn:vcloud:vm:${globexVApp.vms[0]!.id}` },
    ];
    const missing = await acme.post<Error>('/v1/jobs', backupJob('x', { include: [{ kind: 'vapp', vappId: `urn:vcloud:vapp:${randomUUID()}` }] }));
    expect(missing.status).toBe(404);
    for (const item of scopes) {
      const res = await acme.post<Error>('/v1/jobs', backupJob('steal', { include: [item] }));
      expect(res.status, JSON.stringify(item)).toBe(404);
      expect(res.body.error.code).toBe(missing.body.error.code);
    }
    const replaced = await acme.put<Error>(`/v1/jobs/${acmeJob}`, backupJob('acme nightly', { include: [scopes[2]] }));
    expect(replaced.status).toBe(404);
    expect((await acme.get<{ items: unknown[] }>('/v1/jobs')).body.items).toHaveLength(1);
  });

  it('run now with globex\'s vApp id answers 404 and touches nothing; a key-shaping id is refused as invalid (422)', async () => {
    const globexVApp = vappsOf(globexOrg)[0]!;
    const res = await acme.post<Error>(`/v1/jobs/${acmeJob}/run`, { vappIds: [`urn:vcloud:vapp:${globexVApp.id}`] });
    expect(res.status).toBe(404);
    for (const id of ['evil/nested', `urn:vcloud:vapp:${globexVApp.id}/../x`, 'urn:vcloud:vapp:..']) {
      const bad = await acme.post<Error>(`/v1/jobs/${acmeJob}/run`, { vappIds: [id] });
      expect(bad.status, id).toBe(422);
    }
  });

  it('a forged StartBackupRun naming globex\'s vApp (past the API) fails the run without touching the vApp', async () => {
    const globexVApp = vappsOf(globexOrg)[0]!;
    const runId = `run-forged-${randomUUID().slice(0, 6)}`;
    await runtime.queues.runs.send([
      JSON.stringify({ type: 'StartBackupRun', version: 1, runId, jobId: acmeJob, tenantId: 'acme', trigger: 'manual', requestedAt: new Date().toISOString(), vappIds: [`urn:vcloud:vapp:${globexVApp.id}`] }),
    ]);
    const run = await finishedRun(acme, runId);
    expect(run.state).toBe('failed');
    expect(run.errors.map((e) => e.code)).toContain('VAPP_NOT_IN_SCOPE');
    expect(Object.keys(run.vapps)).toEqual([]);
  });

  it('globex\'s points, restores and usage are not there for acme', async () => {
    const point = globexPoints[0]!;
    expect((await acme.get(`/v1/restore-points/${point}`)).status).toBe(404);
    expect((await acme.get<{ items: unknown[] }>(`/v1/restore-points?tenantId=globex`)).body.items ?? []).toEqual([]);
    expect((await acme.post('/v1/restores/plan', { pointId: point })).status).toBe(404);
    expect((await acme.post('/v1/restores', { pointId: point, mode: 'overwrite' })).status).toBe(404);
    expect((await acme.get('/v1/tenants/globex/usage')).status).toBe(404);
    // A copy job of globex's backup job is refused exactly like one of a job that does not exist.
    const copyOf = (jobId: string) => acme.post<Error>('/v1/jobs', { type: 'copy', name: 'c', source: { kind: 'backup', jobId }, targetRepositoryId: plain, mode: 'immediate' });
    const stolen = await copyOf(globexJob);
    const missing = await copyOf('job-does-not-exist');
    expect(stolen.status).toBe(422);
    expect(JSON.stringify(stolen.body).replaceAll(globexJob, 'X')).toBe(JSON.stringify(missing.body).replaceAll('job-does-not-exist', 'X'));
  });

  it('acme restoring its own point cannot aim at globex\'s vApp or VDC: the plan reports it and nothing changes', async () => {
    const [own] = (await acme.get<{ items: Array<{ id: string; vappName: string }> }>('/v1/restore-points?limit=50')).body.items;
    expect(own).toBeDefined();
    const globexVApp = vappsOf(globexOrg)[0]!;
    const overwrite = await acme.post<{ ok: boolean }>('/v1/restores/plan', { pointId: own!.id, mode: 'overwrite', newName: globexVApp.name });
    expect(overwrite.status).toBeLessThan(500);
    expect(overwrite.body.ok).toBe(false);
    const started = await acme.post('/v1/restores', { pointId: own!.id, mode: 'overwrite', newName: globexVApp.name });
    expect(started.status).toBeGreaterThanOrEqual(400);
    const intoGlobexVdc = await acme.post<{ ok: boolean }>('/v1/restores/plan', { pointId: own!.id, mode: 'new', newName: 'stolen', targetVdc: globexOrg.vdcs[0]!.name });
    expect(intoGlobexVdc.body.ok).toBe(false);
  });

  it('acme\'s retention deletes only acme\'s points; usage stays what acme stores after an unchanged backup', async () => {
    const before = await pointsOf('acme');
    const usage1 = (await acme.get<{ usedBytes: number; computedAt: string | null }>('/v1/tenants/acme/usage')).body;
    expect(usage1.usedBytes).toBeGreaterThan(0);
    expect(usage1.computedAt).not.toBeNull();
    const run = await runNow(acme, acmeJob);
    expect(run.state).toBe('succeeded');
    expect(run.counters.bytesUploaded).toBe(0); // nothing changed
    const after = await pointsOf('acme');
    expect(after).toHaveLength(before.length); // shortTerm 1: each vApp's older point went
    expect(after.some((p) => before.includes(p))).toBe(false);
    const usage2 = (await acme.get<{ usedBytes: number }>('/v1/tenants/acme/usage')).body;
    expect(usage2.usedBytes).toBe(usage1.usedBytes);
  });

  it('identical content in both tenants is not deduplicated across them (no "reused" oracle)', async () => {
    // acme's first disk becomes a byte copy of one of globex's, which globex stored earlier.
    const globexVm = vappsOf(globexOrg)[0]!.vms[0]!;
    const acmeVApp = vappsOf(acmeOrg)[0]!;
    const acmeVm = acmeVApp.vms[0]!;
    await copyFile(path.join(dataDir, 'disks', `${globexVm.id}-0.img`), path.join(dataDir, 'disks', `${acmeVm.id}-0.img`));
    const job = await createJob(acme, backupJob('acme one', { include: [{ kind: 'vm', vmId: `urn:vcloud:vm:${acmeVm.id}` }] }));
    const run = await runNow(acme, job);
    expect(run.state).toBe('succeeded');
    // Every data block of the copied disk was new to acme, although globex stores each of them already.
    const image = await readFile(path.join(dataDir, 'disks', `${globexVm.id}-0.img`));
    let dataBlocks = 0;
    for (let off = 0; off < image.length; off += MiB) if (image.subarray(off, off + MiB).some((b) => b !== 0)) dataBlocks++;
    expect(dataBlocks).toBeGreaterThan(0);
    expect(run.counters.blocksNew).toBeGreaterThanOrEqual(dataBlocks);
  });

  it('a job that requires encryption refuses a plaintext repository', async () => {
    const res = await acme.post<Error>('/v1/jobs', backupJob('enc', { include: [{ kind: 'org', orgId: orgUrn(acmeOrg) }] }, { targetRepositoryId: plain, encryption: { enabled: true, keyRef: 'acme-key' } }));
    expect(res.status).toBe(422);
    expect(JSON.stringify(res.body)).toMatch(/plaintext/);
  });

  it('after every attack, globex\'s vApps saw no write, and its points and disks are unchanged', async () => {
    expect(writesToGlobex()).toEqual([]);
    expect(await pointsOf('globex')).toEqual(globexPoints);
    expect(await diskHashes(globexOrg)).toEqual(globexDisks);
    for (const v of vappsOf(globexOrg)) expect(v.inMaintenanceMode).toBe(false);
  });
});
