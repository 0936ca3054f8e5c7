import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { InvalidInputError, isBackupError } from '../../errors.js';
import { findSensitive, mapVApp, uuidOf } from '../../vcd/capture-mapping.js';
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
