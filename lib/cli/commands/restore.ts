import { Option, type Command } from 'commander';
import { ApiClient } from '../../api/client.js';
import { describeProblems, type RestorePlan, type RestoreProblem } from '../../domain/restore/index.js';
import { BackupError, InvalidInputError } from '../../errors.js';
import { Secret } from '../../secret.js';
import { planFromModel, readPointModel } from '../../services/restore-service.js';
import { VcdClient } from '../../vcd/client.js';
import { VcdRestoreClient } from '../../vcd/restore-client.js';
import type { VcdCredentials } from '../../vcd/session.js';
import { openRepository } from '../repo-options.js';
import { parsePositiveInt, printJson, type CliIo } from '../support.js';

interface RestoreCliOptions {
  point: string;
  mode?: 'overwrite' | 'new';
  name?: string;
  vdc?: string;
  networkMap: string[];
  storagePolicyMap: string[];
  owner?: string;
  powerOn?: boolean;
  metadata: boolean;
  vm: string[];
  deploymentLease?: number;
  storageLease?: number;
  json?: boolean;
  api: string;
  tokenEnv: string;
  // direct planning (no service)
  repo?: string;
  endpoint?: string;
  passphraseEnv?: string;
  keyFile?: string;
  vcdUrl?: string;
  vcdUser?: string;
  vcdOrg?: string;
  vcdPasswordEnv?: string;
  vcdTokenEnv?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];
const seconds = (name: string) => (v: string) => (v === '0' ? 0 : parsePositiveInt(name)(v));

/** `vcd-backup restore plan|run --point ID`: vApp restores through the running service (or planned directly). */
export function registerRestore(program: Command, io: CliIo): Command {
  const restore = program.command('restore').description('restore vApps from restore points: check a plan, then run it (docs/restore.md)').exitOverride();
  const common = (cmd: Command) =>
    cmd
      .requiredOption('--point <id>', 'the restore point to restore')
      .addOption(new Option('--mode <mode>', 'new: re-create the vApp; overwrite: write over the existing vApp').choices(['overwrite', 'new']))
      .option('--name <name>', 'name of the restored vApp (overwrite: the vApp to write over)')
      .option('--vdc <vdc>', 'org VDC to restore into (name or id)')
      .option('--network-map <OLD=NEW>', 'map a backed-up org VDC network to a target one; repeatable', collect, [])
      .option('--storage-policy-map <OLD=NEW>', 'map a backed-up storage policy to a target one; repeatable', collect, [])
      .option('--owner <user>', 'owner of the restored vApp (a user of the organization)')
      .option('--deployment-lease <seconds>', 'deployment lease (0 = never expires)', seconds('--deployment-lease'))
      .option('--storage-lease <seconds>', 'storage lease (0 = never expires)', seconds('--storage-lease'))
      .option('--power-on', 'power the vApp on after the restore')
      .option('--no-metadata', 'do not re-apply user-defined metadata')
      .option('--vm <id>', 'restore only this VM (name or id); repeatable', collect, [])
      .option('--json', 'print JSON on stdout')
      .option('--api <url>', 'the service API', 'http://127.0.0.1:8080')
      .option('--token-env <var>', 'environment variable holding the API token', 'VCD_BACKUP_TOKEN')
      .exitOverride();

  common(restore.command('plan').description('check a restore against the target and print the plan, or every attribute that does not fit with the option that fixes it'))
    .option('--repo <url>', 'plan directly against this repository and vCD (no service): file:///dir or s3://bucket/prefix')
    .option('--endpoint <url>', 'S3 endpoint for --repo')
    .option('--passphrase-env <var>', 'environment variable holding the repository passphrase')
    .option('--key-file <file>', 'repository key file')
    .option('--vcd-url <url>', 'vCD URL (with --repo)')
    .option('--vcd-user <user>', 'vCD user (with --vcd-org and --vcd-password-env)')
    .option('--vcd-org <org>', 'vCD organization of the user (System for a provider)')
    .option('--vcd-password-env <var>', 'environment variable holding the vCD password')
    .option('--vcd-token-env <var>', 'environment variable holding a vCD API token')
    .action(async (opts: RestoreCliOptions) => {
      const options = restoreOptions(opts);
      let view: { ok: boolean; plan?: RestorePlan; problems?: readonly RestoreProblem[] };
      if (opts.repo !== undefined) view = await planDirect(opts, options, io);
      else view = (await callApi(opts, io, '/v1/restores/plan', { pointId: opts.point, ...options })) as typeof view;
      if (opts.json) printJson(io, view);
      if (!view.ok) {
        throw new InvalidInputError(`the restore of point ${opts.point} does not fit the target; nothing was changed. Fix these and plan again:\n${describeProblems(view.problems ?? [])}`, { code: 'RESTORE_PLAN_NONCONFORMING' });
      }
      if (!opts.json && view.plan) io.stderr(describePlan(view.plan));
    });

  common(restore.command('run').description('start a restore through the service (it is planned and checked first)'))
    .option('--idempotency-key <key>', 'retrying with the same key never starts a second restore')
    .action(async (opts: RestoreCliOptions & { idempotencyKey?: string }) => {
      const options = restoreOptions(opts);
      const started = (await callApi(opts, io, '/v1/restores', { pointId: opts.point, ...options }, opts.idempotencyKey)) as Record<string, unknown>;
      if (opts.json) printJson(io, started);
      else io.stderr(`restore ${String(started.runId)} started; follow it with GET ${String(started.statusUrl ?? `/v1/restores/${String(started.runId)}`)}\n`);
    });
  return restore;
}

function pairs(flag: string, values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0 || eq === v.length - 1) throw new InvalidInputError(`${flag} expects OLD=NEW (e.g. ${flag} Corp-Net=Corp-Net-2), got "${v}"`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** CLI flags → the restore options of the API and the planner (lib/domain/restore/options.ts). */
export function restoreOptions(opts: RestoreCliOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (opts.mode !== undefined) out.mode = opts.mode;
  if (opts.name !== undefined) out.newName = opts.name;
  if (opts.vdc !== undefined) out.targetVdc = opts.vdc;
  if (opts.networkMap.length > 0) out.networkMap = pairs('--network-map', opts.networkMap);
  if (opts.storagePolicyMap.length > 0) out.storagePolicyMap = pairs('--storage-policy-map', opts.storagePolicyMap);
  if (opts.owner !== undefined) out.owner = opts.owner;
  if (opts.deploymentLease !== undefined || opts.storageLease !== undefined) {
    out.lease = { ...(opts.deploymentLease !== undefined ? { deploymentLeaseSeconds: opts.deploymentLease } : {}), ...(opts.storageLease !== undefined ? { storageLeaseSeconds: opts.storageLease } : {}) };
  }
  if (opts.powerOn) out.powerOn = true;
  if (opts.metadata === false) out.restoreMetadata = false;
  if (opts.vm.length > 0) out.vmSelection = opts.vm;
  return out;
}

async function callApi(opts: RestoreCliOptions, io: CliIo, path: string, body: unknown, idempotencyKey?: string): Promise<unknown> {
  const token = io.env[opts.tokenEnv];
  if (token === undefined || token === '') throw new InvalidInputError(`--token-env ${opts.tokenEnv}: the environment variable is not set; export the API token (vcd-backup local token prints one) or name another variable`);
  const api = new ApiClient(opts.api, token);
  let res;
  try {
    res = await api.post(path, body, idempotencyKey ? { 'idempotency-key': idempotencyKey } : undefined);
  } catch (err) {
    throw new BackupError('API_UNREACHABLE', `cannot reach the service at ${opts.api} (${err instanceof Error ? err.message : String(err)}); start it (vcd-backup local) or pass --api URL`, { userFacing: true });
  }
  if (res.status >= 200 && res.status < 300) return res.body;
  const error = (res.body as { error?: { code?: string; message?: string } } | undefined)?.error;
  const message = `${path}: ${error?.message ?? `HTTP ${res.status}`}`;
  if (res.status === 400 || res.status === 404 || res.status === 422) throw new InvalidInputError(message, { code: error?.code ?? 'INVALID_INPUT' });
  throw new BackupError(error?.code ?? 'API_ERROR', message, { userFacing: true });
}

async function planDirect(opts: RestoreCliOptions, options: Record<string, unknown>, io: CliIo) {
  if (opts.vcdUrl === undefined) throw new InvalidInputError('--repo plans directly against vCD: add --vcd-url URL and a login (--vcd-user, --vcd-org, --vcd-password-env, or --vcd-token-env)');
  const secret = (flag: string, name: string) => {
    const v = io.env[name];
    if (v === undefined || v === '') throw new InvalidInputError(`${flag} ${name}: the environment variable is not set`);
    return new Secret(v);
  };
  let credentials: VcdCredentials;
  if (opts.vcdTokenEnv !== undefined) credentials = { kind: 'apiToken', org: opts.vcdOrg ?? 'System', token: secret('--vcd-token-env', opts.vcdTokenEnv) };
  else if (opts.vcdUser !== undefined && opts.vcdOrg !== undefined && opts.vcdPasswordEnv !== undefined) credentials = { kind: 'password', user: opts.vcdUser, org: opts.vcdOrg, password: secret('--vcd-password-env', opts.vcdPasswordEnv) };
  else throw new InvalidInputError('log in to vCD with --vcd-user USER --vcd-org ORG --vcd-password-env VAR, or --vcd-token-env VAR');
  const repository = await openRepository({ repo: opts.repo!, endpoint: opts.endpoint, passphraseEnv: opts.passphraseEnv, keyFile: opts.keyFile }, io);
  const point = await repository.findPoint(opts.point);
  const model = await readPointModel(repository, point.vappId, point.pointId);
  const client = await VcdClient.connect({ url: opts.vcdUrl, credentials });
  try {
    const target = new VcdRestoreClient(client, { locate: () => ({ kind: 'file' }), provider: (credentials.org ?? 'System').toLowerCase() === 'system' });
    return await planFromModel(target, model, options, { pointId: point.pointId });
  } finally {
    await client.logout();
  }
}

function describePlan(plan: RestorePlan): string {
  return (
    [
      `restore plan (${plan.mode}) of ${plan.source.vappName} from point ${plan.source.pointId}`,
      `  target: vApp "${plan.target.name}" in VDC ${plan.target.vdc.name}${plan.target.vappId ? ` (${plan.target.vappId})` : ''}${plan.target.resumes ? ' — resumes an unfinished restore' : ''}`,
      `  networks: ${plan.networks.map((n) => (n.parentNetwork ? `${n.name} → ${n.parentNetwork.to}` : `${n.name} (isolated)`)).join(', ') || 'none'}`,
      `  owner: ${plan.owner?.name ?? 'unchanged'}; metadata: ${plan.restoreMetadata ? 'restored' : 'not restored'}; power on: ${plan.powerOn ? 'yes' : 'no'}`,
      ...(plan.overwrites.length > 0 ? [`  overwrites: ${plan.overwrites.join('; ')}`] : []),
      ...plan.warnings.map((w) => `  warning: ${w}`),
      '  steps:',
      ...plan.steps.map((s, i) => `    ${String(i + 1).padStart(2)}. ${s.kind}: ${s.detail}`),
    ].join('\n') + '\n'
  );
}
