import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BackupError } from '../errors.js';
import type { DiskLocator, VsphereDiskRef } from '../queue/messages.js';
import { HttpsDiskSource, NotAuthenticatedError, readSnapshotDisks, readVirtualMachine, snapshotRef, vmRef, VsphereSession, type VirtualDiskInfo } from '../vsphere/index.js';
import type { VcenterCredentials } from './agent-config.js';
import { FileDiskSource, FileDiskTarget, type DiskExtent, type DiskSource, type DiskTarget } from './disk-source.js';
import type { NbdConnectOptions } from './nbd-client.js';
import { NbdDiskSource, NbdDiskTarget } from './nbd-disk-source.js';
import { startNbdkit, type NbdkitProcess } from './nbd-server.js';

/** Where the agent opens the disk a task names: files, block devices, NBD exports and vSphere VM disks. */
export interface DiskLocatorPort {
  open(locator: DiskLocator): Promise<DiskSource>;
  /** The disk a restore writes; the caller closes it (which flushes). */
  openTarget(locator: DiskLocator): Promise<DiskTarget>;
  /** Ends what the locator keeps between tasks (vCenter sessions, nbdkit servers); called when the agent stops. */
  close?(): Promise<void>;
}

/** Codes start with DISK_: the task runner reports them as permanent, since a redelivery meets the same refusal. */
export class DiskLocationError extends BackupError {}

export interface AgentDiskLocatorOptions {
  /** Directories (or device paths) disks and NBD sockets may lie under. */
  readonly diskRoots: readonly string[];
  /** `host:port` of NBD servers tasks may name. */
  readonly nbdEndpoints?: readonly string[];
  /** vCenters by the instance id vCD uses, with their passwords already read. */
  readonly vcenters?: ReadonlyMap<string, VcenterCredentials>;
  /** VDDK's directory: enables the vSphere nbd transport (nbdkit's vddk plugin). */
  readonly vddkLibDir?: string;
  /** @default 'nbdkit' */
  readonly nbdkit?: string;
}

const HOTADD_UNSUPPORTED = 'the hotadd transport is not supported by this agent yet: send the task with transport "https" (backups) or "nbd" (nbdkit with VDDK; backups and restores)';

/**
 * Resolves task locators, refusing anything the agent config does not allow: a task message must not be able
 * to make the agent read (and upload) an arbitrary file of the proxy, an arbitrary NBD server, or a vCenter
 * it was not given credentials for.
 */
export class AgentDiskLocator implements DiskLocatorPort {
  private readonly roots: string[];
  private readonly nbdEndpoints: ReadonlySet<string>;
  private readonly sessions = new Map<string, Promise<VsphereSession>>();
  private readonly servers = new Set<NbdkitProcess>();

  constructor(private readonly options: AgentDiskLocatorOptions) {
    this.roots = options.diskRoots.map((r) => path.resolve(r));
    this.nbdEndpoints = new Set(options.nbdEndpoints ?? []);
  }

  async open(locator: DiskLocator): Promise<DiskSource> {
    switch (locator.kind) {
      case 'file':
      case 'sim':
        return FileDiskSource.open(this.targetPath(locator));
      case 'nbd':
        return NbdDiskSource.open(this.nbdOptions(locator));
      case 'vsphere':
        return this.openVsphere(vsphereOf(locator));
    }
  }

  async openTarget(locator: DiskLocator): Promise<DiskTarget> {
    switch (locator.kind) {
      case 'file':
      case 'sim':
        return FileDiskTarget.open(this.targetPath(locator));
      case 'nbd':
        return NbdDiskTarget.open(this.nbdOptions(locator));
      case 'vsphere': {
        const ref = vsphereOf(locator);
        const transport = ref.transport ?? 'nbd';
        if (transport === 'hotadd') throw new DiskLocationError('DISK_TRANSPORT_UNSUPPORTED', HOTADD_UNSUPPORTED);
        // The datastore file service can read a flat extent but not write a disk a VM may hold open.
        if (transport === 'https') throw new DiskLocationError('DISK_TRANSPORT_UNSUPPORTED', `the https transport cannot write disks: restore ${ref.vm} disk ${ref.deviceKey} with transport "nbd" (nbdkit with VDDK)`);
        const server = await this.startVddk(ref, false);
        return withServer(await NbdDiskTarget.open({ socketPath: server.socketPath }), () => this.stopServer(server));
      }
    }
  }

  /** The file or device of a `file`/`sim` locator, checked against the disk roots. */
  targetPath(locator: DiskLocator): string {
    if (locator.kind === 'nbd' || locator.kind === 'vsphere') throw new DiskLocationError('DISK_LOCATOR_INVALID', `a ${locator.kind} disk locator names no file`);
    if (!locator.path) throw new DiskLocationError('DISK_LOCATOR_INVALID', `a ${locator.kind} disk locator needs a path`);
    return this.underRoots(locator.path, 'disk');
  }

  async close(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled([...[...this.servers].map((s) => this.stopServer(s)), ...sessions.map(async (s) => (await s).logout())]);
  }

  private underRoots(file: string, what: string): string {
    const resolved = path.resolve(file);
    if (!this.roots.some((root) => resolved === root || resolved.startsWith(root + path.sep))) {
      throw new DiskLocationError('DISK_OUTSIDE_ROOTS', `${what} ${resolved} is outside the agent's disk roots (${this.roots.join(', ')}); add its directory to diskRoots in the agent config`);
    }
    return resolved;
  }

  private nbdOptions(locator: DiskLocator): NbdConnectOptions {
    const exportName = locator.exportName ?? '';
    if (locator.path) return { socketPath: this.underRoots(locator.path, 'NBD socket'), exportName };
    if (!locator.host || locator.port === undefined) throw new DiskLocationError('DISK_LOCATOR_INVALID', 'an nbd disk locator needs a path (Unix socket) or host and port');
    const endpoint = locator.host.includes(':') ? `[${locator.host}]:${locator.port}` : `${locator.host}:${locator.port}`;
    if (!this.nbdEndpoints.has(endpoint)) {
      throw new DiskLocationError('DISK_NBD_ENDPOINT_NOT_ALLOWED', `NBD server ${endpoint} is not in the agent config: add "${endpoint}" to nbdEndpoints if the agent may read and write disks there`);
    }
    return { host: locator.host, port: locator.port, exportName };
  }

  private async openVsphere(ref: VsphereDiskRef): Promise<DiskSource> {
    const transport = ref.transport ?? 'https';
    if (transport === 'hotadd') throw new DiskLocationError('DISK_TRANSPORT_UNSUPPORTED', HOTADD_UNSUPPORTED);
    if (transport === 'nbd') {
      const server = await this.startVddk(ref, true);
      try {
        return withServer(await NbdDiskSource.open({ socketPath: server.socketPath }), () => this.stopServer(server));
      } catch (err) {
        await this.stopServer(server);
        throw err;
      }
    }
    return this.withSession(ref.vcenter, async (session) => HttpsDiskSource.open(session, vmRef(ref.vm), await this.findDisk(session, ref)));
  }

  /** The disk in the snapshot's config (backups) or the VM's current config, checked against the task. */
  private async findDisk(session: VsphereSession, ref: VsphereDiskRef): Promise<VirtualDiskInfo> {
    const disks = ref.snapshot ? await readSnapshotDisks(session, snapshotRef(ref.snapshot)) : (await readVirtualMachine(session, vmRef(ref.vm))).disks;
    const where = ref.snapshot ? `snapshot ${ref.snapshot} of ${ref.vm}` : ref.vm;
    const disk = disks.find((d) => d.key === ref.deviceKey);
    if (!disk) throw new DiskLocationError('DISK_NOT_FOUND', `${where} has no disk with device key ${ref.deviceKey} (it has ${disks.map((d) => d.key).join(', ') || 'none'}): recapture the vApp`);
    // A mismatch means the VM was reconfigured since the capture: reading another disk would back up wrong data.
    if (disk.fileName !== ref.fileName) throw new DiskLocationError('DISK_LOCATOR_MISMATCH', `disk ${ref.deviceKey} of ${where} is ${disk.fileName}, the task expects ${ref.fileName}: recapture the vApp`);
    return disk;
  }

  private credentials(vcenter: string): VcenterCredentials {
    const creds = this.options.vcenters?.get(vcenter);
    if (!creds) {
      const known = [...(this.options.vcenters?.keys() ?? [])];
      throw new DiskLocationError('DISK_VCENTER_NOT_CONFIGURED', `vCenter ${vcenter} is not in the agent config (it knows ${known.join(', ') || 'none'}): add it to "vcenters" with its url, user and passwordEnv or passwordFile`);
    }
    return creds;
  }

  /** Runs `fn` with the vCenter's cached session; a session the vCenter expired is replaced once. */
  private async withSession<T>(vcenter: string, fn: (session: VsphereSession) => Promise<T>): Promise<T> {
    const current = this.session(vcenter);
    try {
      return await fn(await current);
    } catch (err) {
      if (!(err instanceof NotAuthenticatedError)) throw err;
      if (this.sessions.get(vcenter) === current) this.sessions.delete(vcenter);
      return fn(await this.session(vcenter));
    }
  }

  private session(vcenter: string): Promise<VsphereSession> {
    const cached = this.sessions.get(vcenter);
    if (cached) return cached;
    const creds = this.credentials(vcenter);
    const login = VsphereSession.login({ url: creds.url, userName: creds.user, password: creds.password, ...(creds.thumbprint ? { tls: { fingerprint: creds.thumbprint } } : {}) });
    this.sessions.set(vcenter, login);
    // A failed login is not cached: the next task tries again (the vCenter may be back, the password rotated).
    login.catch(() => {
      if (this.sessions.get(vcenter) === login) this.sessions.delete(vcenter);
    });
    return login;
  }

  private async startVddk(ref: VsphereDiskRef, readOnly: boolean): Promise<NbdkitProcess> {
    const creds = this.credentials(ref.vcenter);
    if (!this.options.vddkLibDir) {
      throw new DiskLocationError(
        'DISK_TRANSPORT_UNAVAILABLE',
        `the nbd transport for vSphere disks needs VMware's VDDK and this agent has none: install VDDK and set vddkLibDir in the agent config, or use the https transport (backups only)`,
      );
    }
    if (!creds.vddkThumbprint) {
      // VDDK verifies vCenter by this SHA-1 and has no other trust store: without it the connection is refused.
      throw new DiskLocationError(
        'DISK_VDDK_THUMBPRINT_MISSING',
        `vCenter ${creds.id} has no vddkThumbprint in the agent config; add its certificate's SHA-1 (openssl s_client -connect ${new URL(creds.url).host} </dev/null | openssl x509 -noout -fingerprint -sha1), or use the https transport`,
      );
    }
    // The password goes to nbdkit in a private file, never on its command line (visible in ps to every user).
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vcd-backup-vddk-'));
    const passwordFile = path.join(dir, 'password');
    try {
      await writeFile(passwordFile, creds.password.reveal(), { mode: 0o600 });
      await chmod(passwordFile, 0o600);
      const server = await startNbdkit({ plugin: vddkPluginArgs(this.options.vddkLibDir, creds, ref, passwordFile), readOnly, ...(this.options.nbdkit ? { binary: this.options.nbdkit } : {}) });
      this.servers.add(server);
      return server;
    } finally {
      // nbdkit reads the password while it configures, before it is ready: the file is not needed after.
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async stopServer(server: NbdkitProcess): Promise<void> {
    this.servers.delete(server);
    await server.stop();
  }
}

/** nbdkit vddk parameters for one disk (nbdkit-vddk-plugin(1)); the password only by file reference. */
export function vddkPluginArgs(libDir: string, creds: VcenterCredentials, ref: VsphereDiskRef, passwordFile: string): string[] {
  return [
    'vddk',
    `libdir=${libDir}`,
    `server=${new URL(creds.url).hostname}`,
    `user=${creds.user}`,
    `password=+${passwordFile}`,
    ...(creds.vddkThumbprint ? [`thumbprint=${creds.vddkThumbprint}`] : []),
    `vm=moref=${ref.vm}`,
    ...(ref.snapshot ? [`snapshot=${ref.snapshot}`] : []),
    `file=${ref.fileName}`,
    'transports=nbdssl:nbd',
  ];
}

/** Opens files, block devices and NBD sockets under `roots` only (the simulator and single-process setups). */
export class FileDiskLocator extends AgentDiskLocator {
  constructor(roots: readonly string[]) {
    super({ diskRoots: roots });
  }
}

function vsphereOf(locator: DiskLocator): VsphereDiskRef {
  if (!locator.vsphere) throw new DiskLocationError('DISK_LOCATOR_INVALID', 'a vsphere disk locator needs its vsphere object (vcenter, vm, deviceKey, fileName)');
  return locator.vsphere;
}

/** A source or target whose close also stops the nbdkit serving it. */
function withServer<T extends DiskSource | DiskTarget>(inner: T, stop: () => Promise<void>): T {
  const close = inner.close.bind(inner);
  return Object.assign(inner, {
    close: async () => {
      try {
        await close();
      } finally {
        await stop();
      }
    },
  });
}

export type { DiskExtent };
