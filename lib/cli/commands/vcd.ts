import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { InvalidInputError, isBackupError } from '../../errors.js';
import { createCliLogger } from '../../log.js';
import { Secret } from '../../secret.js';
import { captureSummary, captureVApp, vappPath, type CapturedVApp } from '../../vcd/capture.js';
import { findSensitive, mapVApp, uuidOf } from '../../vcd/capture-mapping.js';
import { VcdClient } from '../../vcd/client.js';
import { captureWithMaintenance } from '../../vcd/maintenance.js';
import { isProviderOrg, type VcdCredentials } from '../../vcd/session.js';
import type { VAppModel } from '../../vcd/model.js';
import { parseXml, type XmlNode } from '../../vcd/xml.js';
import { printJson, type CliIo } from '../support.js';

interface InspectOptions {
  vappXml: string;
  metadataXml?: string;
  vmMetadataXml?: string[];
  json?: boolean;
}

/** `vcd-backup vcd inspect|capture`: the captured vApp model (docs/vapp-model.md). */
export function registerVcd(program: Command, io: CliIo): void {
  const vcd = program
    .command('vcd')
    .description('read vApps from VMware Cloud Director: the captured vApp model (docs/vapp-model.md)')
    .exitOverride();

  vcd
    .command('inspect')
    .description('print the captured vApp model from saved vCD XML documents')
    .requiredOption('--vapp-xml <file>', 'the VApp document (GET /api/vApp/vapp-<uuid>)')
    .option('--metadata-xml <file>', 'the vApp Metadata document (GET /api/vApp/vapp-<uuid>/metadata)')
    .option('--vm-metadata-xml <VM_ID=FILE...>', 'a VM Metadata document, keyed by VM id (uuid, vm-<uuid> or URN); repeatable')
    .option('--json', 'print the model as JSON on stdout')
    .exitOverride()
    .action(async (opts: InspectOptions) => {
      const vapp = await readXmlFile(opts.vappXml, '--vapp-xml');
      const metadata = opts.metadataXml === undefined ? null : await readXmlFile(opts.metadataXml, '--metadata-xml');
      const vmMetadata = new Map<string, XmlNode>();
      for (const spec of opts.vmMetadataXml ?? []) {
        const eq = spec.indexOf('=');
        if (eq <= 0 || eq === spec.length - 1) {
          throw new InvalidInputError(`--vm-metadata-xml expects VM_ID=FILE (e.g. vm-<uuid>=vm-meta.xml), got "${spec}"`);
        }
        vmMetadata.set(spec.slice(0, eq), await readXmlFile(spec.slice(eq + 1), '--vm-metadata-xml'));
      }
      let model: VAppModel;
      try {
        model = mapVApp({ vapp, metadata, vmMetadata });
      } catch (err) {
        throw new InvalidInputError(`${opts.vappXml}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      const vmIds = new Set(model.vms.map((vm) => uuidOf(vm.id)));
      for (const key of vmMetadata.keys()) {
        const uuid = uuidOf(key);
        if (uuid === null || !vmIds.has(uuid)) {
          throw new InvalidInputError(`--vm-metadata-xml ${key}: no VM with that id in ${opts.vappXml} (VMs: ${[...vmIds].join(', ') || 'none'})`);
        }
      }
      const sensitive = findSensitive(vapp);
      if (sensitive.length > 0) {
        io.stderr(`note: the vApp document contains secrets (${sensitive.join('; ')}); they are not in the model, keep the XML file protected\n`);
      }
      if (opts.json) printJson(io, model);
      else io.stderr(describeModel(model));
    });

  vcd
    .command('capture')
    .description('capture one vApp from a live vCD (or the simulator) and print its model')
    .requiredOption('--url <url>', 'vCD base URL, e.g. https://vcd.example.com')
    .option('--user <user>', 'user name (with --org and --password-env)')
    .option('--org <org>', 'organization of the user or API token; System for a provider login')
    .option('--password-env <var>', 'name of the environment variable holding the password')
    .option('--token-env <var>', 'name of the environment variable holding an API (refresh) token')
    .requiredOption('--vapp <id>', 'the vApp: uuid, vapp-<uuid>, urn:vcloud:vapp:<uuid> or its href')
    .option('--ca-file <file>', 'PEM CA bundle that signed the vCD certificate')
    .option('--fingerprint <sha256>', "pin the vCD certificate's SHA-256 fingerprint (hex, colons allowed)")
    .option('--api-version <v>', 'use this API version instead of negotiating one (37.x-39.x)')
    .addOption(
      new Option('--maintenance <mode>', 'put the vApp in maintenance mode while capturing (auto: for System logins only)')
        .choices(['auto', 'on', 'off'])
        .default('auto'),
    )
    .option('--raw-dir <dir>', 'also save the raw XML documents there (they may hold passwords: files are created 0600)')
    .option('--full', 'print access settings, owner quotas and secret locations too, not only the model')
    .option('--json', 'print JSON on stdout')
    .option('--verbose', 'log requests and retries on stderr')
    .exitOverride()
    .action(async (opts: CaptureOptions) => {
      const credentials = credentialsFrom(opts, io.env);
      const tls = await tlsFrom(opts);
      const log = createCliLogger({ verbose: opts.verbose ?? false, write: (line) => io.stderr(line + '\n') });
      try {
        vappPath(opts.vapp);
      } catch (err) {
        throw new InvalidInputError(`--vapp: ${err instanceof Error ? err.message : String(err)}`);
      }
      const client = await VcdClient.connect({ url: opts.url, credentials, tls, apiVersion: opts.apiVersion, log });
      let captured: CapturedVApp;
      try {
        const provider = isProviderOrg(credentials.org);
        const useMaintenance = opts.maintenance === 'on' || (opts.maintenance === 'auto' && provider);
        captured = useMaintenance ? await captureWithMaintenance(client, opts.vapp, { log }) : await captureVApp(client, opts.vapp, { log });
        if (!useMaintenance) log.info('captured without maintenance mode (tenant login); the vApp could change during capture');
      } finally {
        await client.logout();
      }
      if (captured.sensitive.length > 0) {
        io.stderr(`note: the vApp's documents contain secrets (${captured.sensitive.join('; ')}); they are not in the model\n`);
      }
      if (opts.rawDir !== undefined) await writeRaw(opts.rawDir, captured);
      const output = opts.full ? captureSummary(captured) : captured.model;
      if (opts.json) printJson(io, output);
      else io.stderr(describeModel(captured.model));
    });
}

interface CaptureOptions {
  url: string;
  user?: string;
  org?: string;
  passwordEnv?: string;
  tokenEnv?: string;
  vapp: string;
  caFile?: string;
  fingerprint?: string;
  apiVersion?: string;
  maintenance: 'auto' | 'on' | 'off';
  rawDir?: string;
  full?: boolean;
  json?: boolean;
  verbose?: boolean;
}

function credentialsFrom(opts: CaptureOptions, env: Record<string, string | undefined>): VcdCredentials {
  const readEnv = (flag: string, name: string): Secret => {
    const value = env[name];
    if (value === undefined || value === '') throw new InvalidInputError(`${flag} ${name}: the environment variable ${name} is not set; export it first`);
    return new Secret(value);
  };
  if (opts.tokenEnv !== undefined) {
    if (opts.passwordEnv !== undefined || opts.user !== undefined) {
      throw new InvalidInputError('give either --token-env (with an optional --org) or --user, --org and --password-env, not both');
    }
    return { kind: 'apiToken', org: opts.org ?? 'System', token: readEnv('--token-env', opts.tokenEnv) };
  }
  if (opts.user === undefined || opts.org === undefined || opts.passwordEnv === undefined) {
    throw new InvalidInputError('log in with --user USER --org ORG --password-env VAR (org System for a provider login), or with --token-env VAR');
  }
  return { kind: 'password', user: opts.user, org: opts.org, password: readEnv('--password-env', opts.passwordEnv) };
}

async function tlsFrom(opts: CaptureOptions): Promise<{ ca?: Buffer; fingerprint?: string } | undefined> {
  if (opts.caFile === undefined && opts.fingerprint === undefined) return undefined;
  let ca: Buffer | undefined;
  if (opts.caFile !== undefined) {
    try {
      ca = await readFile(opts.caFile);
    } catch (err) {
      throw new InvalidInputError(`--ca-file ${opts.caFile}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
  }
  if (opts.fingerprint !== undefined && !/^(sha256[:=])?([0-9a-f]{2}:?){31}[0-9a-f]{2}$/i.test(opts.fingerprint.replace(/\s/g, ''))) {
    throw new InvalidInputError(`--fingerprint must be a SHA-256 fingerprint (64 hex digits, colons allowed), got "${opts.fingerprint}"`);
  }
  return { ca, fingerprint: opts.fingerprint };
}

async function writeRaw(dir: string, captured: CapturedVApp): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const write = (name: string, secret: Secret | null) =>
    secret === null ? Promise.resolve() : writeFile(path.join(dir, name), secret.reveal(), { mode: 0o600 });
  await write('vapp.xml', captured.raw.vapp);
  await write('vapp-metadata.xml', captured.raw.metadata);
  await write('control-access.xml', captured.raw.controlAccess);
  await write('owner.xml', captured.raw.owner);
  for (const [vmId, doc] of Object.entries(captured.raw.vmMetadata)) await write(`vm-${uuidOf(vmId) ?? 'unknown'}-metadata.xml`, doc);
}

async function readXmlFile(file: string, flag: string): Promise<XmlNode> {
  let content: Buffer;
  try {
    content = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidInputError(`${flag} ${file}: cannot read the file (${code ?? String(err)}); give the path of a saved vCD XML document`, {
      cause: err,
    });
  }
  try {
    return parseXml(content);
  } catch (err) {
    throw new InvalidInputError(`${flag} ${file}: ${isBackupError(err) ? err.message : String(err)}`, { cause: err });
  }
}

/** A short human summary (stderr), for people at a terminal. */
export function describeModel(model: VAppModel): string {
  const lines = [
    `vApp ${model.name} (${model.id})`,
    `  org ${model.org.name ?? '-'}  vdc ${model.vdc.name ?? '-'}  owner ${model.owner.name ?? '-'}  status ${model.status ?? '-'}  deployed ${model.deployed ?? '-'}`,
    `  lease: deployment ${model.lease.deploymentLeaseSeconds ?? '-'} s, storage ${model.lease.storageLeaseSeconds ?? '-'} s`,
    `  networks: ${model.networks.map((n) => `${n.name} (${n.fenceMode ?? '?'}${n.parentNetwork ? ` → ${n.parentNetwork}` : ''})`).join(', ') || 'none'}`,
    `  metadata: ${model.metadata.length} entries`,
    `  VMs (${model.vms.length}):`,
    ...model.vms.map(
      (vm) =>
        `    ${vm.name.padEnd(20)} ${String(vm.cpu.count ?? '?').padStart(3)} vCPU ${String(vm.memoryMiB ?? '?').padStart(7)} MiB  ` +
        `${vm.disks.length} disk(s) ${formatBytes(vm.disks.reduce((s, d) => s + (d.sizeBytes ?? 0), 0))}  ${vm.nics.length} NIC(s)  moref ${vm.moref ?? '-'}`,
    ),
  ];
  return lines.join('\n') + '\n';
}

function formatBytes(n: number): string {
  if (n >= 1024 ** 4) return `${(n / 1024 ** 4).toFixed(1)} TiB`;
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  return `${(n / 1024 ** 2).toFixed(0)} MiB`;
}
