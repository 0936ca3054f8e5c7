/**
 * `vcd-backup vsphere backup|restore|snapshots`: one VM through vSphere, without the service (issue 14).
 * The orchestration lives in lib/vsphere/backup-vm.ts and restore-vm.ts so the service reuses it.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { connect } from 'node:tls';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { readEnvSecret } from '../../config.js';
import { InvalidInputError } from '../../errors.js';
import { systemClock } from '../../system-clock.js';
import { backupVm, SnapshotNotRemovedError, type VmBackupResult, type VmBackupTransport } from '../../vsphere/backup-vm.js';
import { VsphereError, VsphereNetworkError } from '../../vsphere/errors.js';
import { restoreVm } from '../../vsphere/restore-vm.js';
import { VsphereSession, type TlsSettings } from '../../vsphere/session.js';
import { SNAPSHOT_PREFIX } from '../../vsphere/snapshots.js';
import { listProductSnapshots, sweepStaleSnapshots } from '../../vsphere/sweeper.js';
import { vmRef } from '../../vsphere/vm.js';
import { byteProgress, formatBytes, table, type Progress } from '../progress.js';
import { openRepository, withRepoOptions, withTenantOption, type RepoOptions } from '../repo-options.js';
import { parsePositiveInt, printJson, withAbortOnSignal, type CliIo } from '../support.js';

interface VcenterOptions {
  vcenter: string;
  user: string;
  passwordEnv: string;
  thumbprint?: string;
  insecure?: boolean;
  caFile?: string;
}

interface BackupOptions extends VcenterOptions, RepoOptions {
  vm: string;
  vapp: string;
  parent?: string;
  transport: VmBackupTransport;
  datastoreDir?: Map<string, string>;
  blockSize?: number;
  quiesce?: boolean;
  json?: boolean;
}

interface RestoreOptions extends VcenterOptions, RepoOptions {
  vm: string;
  point: string;
  vapp?: string;
  transport: 'nbd' | 'https';
  datastoreDir?: Map<string, string>;
  json?: boolean;
}

interface SnapshotsOptions extends VcenterOptions {
  vm?: string[];
  removeStale?: boolean;
  olderThan: number;
  json?: boolean;
}

const DATASTORE_DIR_HELP =
  "nbd transport: NAME=DIR, the local directory holding datastore NAME's files (served with nbdkit's file plugin); repeatable. Production reads through nbdkit's vddk plugin instead (docs/vsphere.md)";

function withVcenterOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--vcenter <url>', 'vCenter SDK URL, e.g. https://vcenter.example.com/sdk')
    .requiredOption('--user <user>', 'vCenter user, e.g. backup@vsphere.local')
    .requiredOption('--password-env <var>', 'name of the environment variable holding the vCenter password')
    .addOption(new Option('--thumbprint <sha256>', "pin the vCenter certificate's SHA-256 thumbprint (hex, colons allowed)").conflicts('insecure'))
    .option('--insecure', 'trust whatever certificate vCenter presents now (its thumbprint is printed: pin it with --thumbprint next time)')
    .option('--ca-file <file>', 'PEM CA bundle that signed the vCenter certificate (instead of the system CAs)');
}

function parseDatastoreDir(value: string, previous: Map<string, string> | undefined): Map<string, string> {
  const m = /^([^=]+)=(.+)$/.exec(value);
  if (m === null) throw new InvalidArgumentError(`--datastore-dir takes NAME=DIR (e.g. LocalDS_0=/mnt/ds0), got "${value}"`);
  const out = new Map(previous);
  out.set(m[1]!, m[2]!);
  return out;
}

/** `24h`, `30m`, `7d`, `90s`, `0s` → milliseconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(value);
  if (m === null) throw new InvalidArgumentError(`--older-than takes a number with s, m, h or d (e.g. 24h, 30m, 0s), got "${value}"`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * `--insecure`: trust on first use. The certificate's thumbprint is read in a handshake that sends nothing,
 * then pinned for the session, so the password still goes only to the server that showed that certificate.
 */
async function tlsFor(opts: VcenterOptions, io: CliIo): Promise<TlsSettings | undefined> {
  if (opts.thumbprint) return { fingerprint: opts.thumbprint };
  if (opts.caFile) {
    try {
      return { ca: await readFile(opts.caFile) };
    } catch (err) {
      throw new InvalidInputError(`cannot read --ca-file ${opts.caFile}: ${(err as Error).message}`);
    }
  }
  if (!opts.insecure) return undefined;
  const url = new URL(opts.vcenter);
  if (url.protocol !== 'https:') return undefined;
  const fingerprint = await new Promise<string>((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port || 443), ...(isIP(url.hostname) ? {} : { servername: url.hostname }), rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      if (!cert.raw) reject(new VsphereNetworkError(`${url.host} presented no certificate`));
      else resolve(createHash('sha256').update(cert.raw).digest('hex'));
    });
    socket.once('error', (err) => reject(new VsphereNetworkError(`cannot reach ${url.host}: ${err.message}`, { cause: err })));
  });
  io.stderr(`warning: --insecure: trusting the certificate of ${url.host} with SHA-256 thumbprint ${fingerprint}; pin it with --thumbprint ${fingerprint}\n`);
  return { fingerprint };
}

async function withSession<T>(opts: VcenterOptions, io: CliIo, fn: (session: VsphereSession) => Promise<T>): Promise<T> {
  let url: URL;
  try {
    url = new URL(opts.vcenter);
  } catch {
    throw new InvalidInputError(`--vcenter "${opts.vcenter}" is not a URL: use https://vcenter.example.com/sdk`);
  }
  const password = readEnvSecret(io.env, opts.passwordEnv);
  const session = await VsphereSession.login({ url, userName: opts.user, password, tls: await tlsFor(opts, io) });
  try {
    return await fn(session);
  } finally {
    // Sessions count against a per-user limit in vCenter.
    await session.logout().catch(() => undefined);
  }
}

function perDiskProgress(io: CliIo, label: string) {
  const bars = new Map<string, Progress>();
  return {
    update(diskId: string, total: number, done: number) {
      let bar = bars.get(diskId);
      if (bar === undefined) {
        bar = byteProgress(io, `${label} ${diskId}`, total);
        bars.set(diskId, bar);
      }
      bar.update(done);
    },
    stop() {
      for (const bar of bars.values()) bar.stop();
    },
  };
}

function backupJson(r: VmBackupResult) {
  return {
    pointId: r.pointId,
    vm: r.vm,
    snapshotRemoved: r.snapshotRemoved,
    transport: r.transport,
    disks: r.disks.map((d) => ({ diskId: d.diskId, deviceKey: d.deviceKey, sizeBytes: d.sizeBytes, bytesRead: d.bytesRead, changedBytes: d.changedBytes, changeId: d.changeId, mode: d.mode, fullReason: d.fullReason, bytesUploaded: d.bytesUploaded })),
    vappId: r.vappId,
    parentPointId: r.parentPointId,
    snapshot: r.snapshot,
    cbtEnabledNow: r.cbtEnabledNow,
    seconds: r.seconds,
  };
}

export function registerVsphere(program: Command, io: CliIo): void {
  const vsphere = program.command('vsphere').description('back up and restore one VM through vSphere (snapshots, changed block tracking), without the service');
  const say = (m: string) => io.stderr(`${m}\n`);

  withTenantOption(withRepoOptions(withVcenterOptions(vsphere.command('backup').description("back up every disk of a VM from a snapshot into a new restore point; incremental from --parent's changeIds"))))
    .requiredOption('--vm <moref>', 'the VM, e.g. vm-42')
    .requiredOption('--vapp <id>', 'vApp id the point belongs to')
    .option('--parent <pointId>', 'previous point of this VM: disks are read incrementally from its changeIds (CBT)')
    .addOption(new Option('--transport <kind>', 'how disk bytes are read').choices(['https', 'nbd']).default('https'))
    .option('--datastore-dir <NAME=DIR>', DATASTORE_DIR_HELP, parseDatastoreDir)
    .option('--block-size <bytes>', "block size (power of two, 256 KiB-8 MiB); default: the parent's or the repository's", parsePositiveInt('--block-size'))
    .option('--quiesce', 'quiesce the guest (VMware Tools); falls back to crash-consistent and says so')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (opts: BackupOptions) => {
      // The repository first: a wrong passphrase must fail before the VM is stunned by a snapshot.
      const repository = await openRepository(opts, io);
      const bars = perDiskProgress(io, 'backup');
      let result: VmBackupResult;
      try {
        result = await withSession(opts, io, (session) =>
          withAbortOnSignal((signal) =>
            backupVm({
              session,
              repository,
              clock: systemClock,
              vm: opts.vm,
              vappId: opts.vapp,
              parentPointId: opts.parent,
              transport: opts.transport,
              localDatastores: opts.datastoreDir,
              blockSize: opts.blockSize,
              quiesce: opts.quiesce,
              onEvent: say,
              onProgress: (diskId, p) => bars.update(diskId, p.bytesTotal, p.bytesDone),
              signal,
            }),
          ),
        ).finally(() => bars.stop());
      } catch (err) {
        // The point exists even when its snapshot stayed behind: scripts need its id.
        if (err instanceof SnapshotNotRemovedError && opts.json) printJson(io, backupJson(err.result));
        throw err;
      }
      if (opts.json) printJson(io, backupJson(result));
      else {
        io.stderr(
          table([
            ['DISK', 'KEY', 'SIZE', 'READ', 'CHANGED', 'MODE', 'CHANGE ID'],
            ...result.disks.map((d) => [d.diskId, String(d.deviceKey), formatBytes(d.sizeBytes), formatBytes(d.bytesRead), d.changedBytes === null ? '-' : formatBytes(d.changedBytes), d.mode, d.changeId ?? '-']),
          ]),
        );
        io.stderr(`point ${result.pointId} committed from ${result.vm} over ${result.transport} in ${result.seconds.toFixed(1)} s; snapshot ${result.snapshot} removed\n`);
        io.stdout(`${result.pointId}\n`);
      }
    });

  withTenantOption(withRepoOptions(withVcenterOptions(vsphere.command('restore').description("write every disk of a point back over the VM's disks (powered off meanwhile)"))))
    .requiredOption('--vm <moref>', 'the VM to write, e.g. vm-42')
    .requiredOption('--point <id>', 'restore point id')
    .option('--vapp <id>', 'vApp id of the point (faster lookup)')
    .addOption(new Option('--transport <kind>', 'how disk bytes are written').choices(['nbd', 'https']).default('nbd'))
    .option('--datastore-dir <NAME=DIR>', DATASTORE_DIR_HELP, parseDatastoreDir)
    .option('--json', 'print the result as JSON on stdout')
    .action(async (opts: RestoreOptions) => {
      if (opts.transport === 'https') {
        throw new InvalidInputError('restores cannot write through https: the datastore file service cannot write into a disk in place; use --transport nbd (nbdkit file or vddk)');
      }
      if ((opts.datastoreDir?.size ?? 0) === 0) {
        throw new InvalidInputError("--transport nbd needs --datastore-dir NAME=DIR for each datastore of the VM's disks (nbdkit's file plugin); restores through nbdkit's vddk plugin are not supported by this command yet");
      }
      const repository = await openRepository(opts, io);
      const bars = perDiskProgress(io, 'restore');
      const result = await withSession(opts, io, (session) =>
        withAbortOnSignal((signal) =>
          restoreVm({
            session,
            repository,
            clock: systemClock,
            vm: opts.vm,
            pointId: opts.point,
            vappId: opts.vapp,
            localDatastores: opts.datastoreDir!,
            onEvent: say,
            onProgress: (diskId, p) => bars.update(diskId, p.bytesTotal, p.bytesDone),
            signal,
          }),
        ),
      ).finally(() => bars.stop());
      if (opts.json) printJson(io, result);
      else {
        io.stderr(
          table([
            ['DISK', 'KEY', 'SIZE', 'WRITTEN', 'UNCHANGED BLOCKS'],
            ...result.disks.map((d) => [d.diskId, String(d.deviceKey), formatBytes(d.sizeBytes), formatBytes(d.bytesWritten), String(d.blocksUnchanged)]),
          ]),
        );
        io.stderr(`point ${result.pointId} restored to ${result.vm} in ${result.seconds.toFixed(1)} s; power state ${result.powerStateAfter}\n`);
      }
    });

  withVcenterOptions(vsphere.command('snapshots').description(`list this product's snapshots (named ${SNAPSHOT_PREFIX}...) with their age; remove stale ones`))
    .option('--vm <moref>', 'only this VM (repeatable); default: every VM the account sees', collect)
    .option('--remove-stale', 'remove those older than --older-than (left behind by crashed backups)')
    .option('--older-than <duration>', 'age that makes a snapshot stale: 24h, 30m, 7d, 0s', parseDuration, 24 * 3_600_000)
    .option('--json', 'print JSON on stdout')
    .action(async (opts: SnapshotsOptions) => {
      const now = systemClock.now().getTime();
      const vms = opts.vm?.map(vmRef);
      const out = await withSession(opts, io, async (session) => {
        const snapshots = await listProductSnapshots(session, { vms });
        if (!opts.removeStale) return { snapshots, removed: [], failed: [] };
        const report = await sweepStaleSnapshots(session, { olderThanMs: opts.olderThan, clock: systemClock, vms });
        return { snapshots, removed: report.removed, failed: report.failed };
      });
      const removed = new Set(out.removed.map((s) => s.snapshot.value));
      const failed = new Map(out.failed.map((f) => [f.snapshot.snapshot.value, f.error.message]));
      const rows = out.snapshots.map((s) => ({
        snapshot: s.snapshot.value,
        vm: s.vm.value,
        name: s.name,
        description: s.description,
        createTime: s.createTime.toISOString(),
        ageSeconds: Math.max(0, Math.round((now - s.createTime.getTime()) / 1000)),
        stale: now - s.createTime.getTime() >= opts.olderThan,
        removed: removed.has(s.snapshot.value),
        error: failed.get(s.snapshot.value) ?? null,
      }));
      if (opts.json) printJson(io, { snapshots: rows, removed: rows.filter((r) => r.removed).length, failed: out.failed.length });
      else {
        if (rows.length > 0) {
          io.stdout(
          table([
            ['VM', 'SNAPSHOT', 'NAME', 'AGE', 'STATE'],
            ...rows.map((r) => [r.vm, r.snapshot, r.name, formatAge(r.ageSeconds), r.removed ? 'removed' : r.error ? `removal failed: ${r.error}` : r.stale ? 'stale' : 'young']),
          ]),
        );
        } else io.stderr(`no ${SNAPSHOT_PREFIX} snapshots\n`);
      }
      if (out.failed.length > 0) throw new VsphereError('VSPHERE_SWEEP_INCOMPLETE', `${out.failed.length} stale snapshot(s) could not be removed: see the list; retry, or remove them in vCenter`, { userFacing: true });
    });
}

function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}
