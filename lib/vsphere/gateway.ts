/**
 * The orchestrator's view of vSphere (`VSphereGateway` in lib/services/ports.ts) on top of this client: one
 * session per vCenter, opened on first use and again after a NotAuthenticated fault (sessions expire while a
 * long run waits for its disks).
 */
import { uuidOf } from '../vcd/capture-mapping.js';
import type { TlsSettings } from '../vcd/http.js';
import type { Log } from '../log.js';
import type { Secret } from '../secret.js';
import type { SnapshotDisk, VmIdentity, VmSnapshot, VSphereGateway } from '../services/ports.js';
import { enableChangeTracking, queryChangedDiskAreas } from './cbt.js';
import { FileFaultError, NotAuthenticatedError, VsphereError } from './errors.js';
import { VsphereSession } from './session.js';
import { createSnapshot, removeSnapshot, snapshotRef } from './snapshots.js';
import { sweepStaleSnapshots } from './sweeper.js';
import type { WaitOptions } from './tasks.js';
import { readSnapshotDisks, readVirtualMachine, vmRef } from './vm.js';

/** A vCenter the service may talk to: vCD names it by `id` (the vCenter's instance id in vCD). */
export interface VcenterEndpoint {
  readonly id: string;
  /** `https://vcenter.example/sdk` */
  readonly url: string;
  readonly userName: string;
  readonly password: Secret;
  readonly tls?: TlsSettings;
}

export class VcenterUnknownError extends VsphereError {
  constructor(id: string) {
    super('VSPHERE_VCENTER_UNKNOWN', `vCD places the VM on vCenter "${id}", which is not configured; add it to the service's vCenters (id, url, user, password secret)`);
  }
}

export class VsphereBackupGateway implements VSphereGateway {
  private readonly sessions = new Map<string, Promise<VsphereSession>>();

  constructor(
    private readonly vcenters: readonly VcenterEndpoint[],
    private readonly options: { log?: Log; wait?: WaitOptions; quiesce?: boolean } = {},
  ) {}

  async snapshotVm(vm: VmIdentity, name: string, description: string): Promise<VmSnapshot> {
    return this.withSession(vm.vcenter, async (session) => {
      const ref = vmRef(vm.moref);
      const info = await readVirtualMachine(session, ref);
      // CBT takes effect at the next stun, which is the snapshot below: the next backup can be incremental.
      if (!info.changeTrackingEnabled) await enableChangeTracking(session, ref, this.options.wait);
      const snapshot = await createSnapshot(session, ref, {
        name,
        description,
        quiesce: this.options.quiesce ?? false,
        quiesceFallback: true,
        onFallback: (err) => this.options.log?.warn('quiesced snapshot failed; took a crash-consistent one', { vm: vm.moref, error: err.message }),
        ...this.options.wait,
      });
      const disks = await readSnapshotDisks(session, snapshot);
      return {
        vcenter: vm.vcenter,
        vm: vm.moref,
        snapshot: snapshot.value,
        disks: disks.map((d): SnapshotDisk => ({ deviceKey: d.key, sizeBytes: d.capacityInBytes, fileName: d.fileName, changeId: d.changeId })),
      };
    });
  }

  async changedAreas(snapshot: VmSnapshot, disk: SnapshotDisk, sinceChangeId: string): Promise<{ areas: Array<{ offset: number; length: number }>; changedBytes: number } | { fullRead: string }> {
    return this.withSession(snapshot.vcenter, async (session) => {
      try {
        const changed = await queryChangedDiskAreas(session, vmRef(snapshot.vm), snapshotRef(snapshot.snapshot), disk.deviceKey, sinceChangeId, disk.sizeBytes);
        return { areas: changed.areas.map((a) => ({ offset: a.start, length: a.length })), changedBytes: changed.changedBytes };
      } catch (err) {
        // vSphere's way of saying the changeId is no longer valid (CBT reset, resize, vMotion on old hosts).
        if (err instanceof FileFaultError) return { fullRead: `vSphere cannot tell the changes since ${sinceChangeId} (${err.message})` };
        throw err;
      }
    });
  }

  async removeSnapshot(snapshot: Pick<VmSnapshot, 'vcenter' | 'vm' | 'snapshot'>): Promise<void> {
    await this.withSession(snapshot.vcenter, (session) => removeSnapshot(session, snapshotRef(snapshot.snapshot), { consolidate: true, ...this.options.wait }));
  }

  async sweep(olderThanMs: number): Promise<{ removed: number; failed: number }> {
    let removed = 0;
    let failed = 0;
    for (const vc of this.vcenters) {
      const report = await this.withSession(vc.id, (session) => sweepStaleSnapshots(session, { olderThanMs, ...this.options.wait }));
      removed += report.removed.length;
      failed += report.failed.length;
      for (const f of report.failed) this.options.log?.warn('a stale snapshot could not be removed', { vcenter: vc.id, snapshot: f.snapshot.name, error: f.error.message });
    }
    return { removed, failed };
  }

  async close(): Promise<void> {
    const open = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(open.map(async (p) => (await p.catch(() => undefined))?.logout().catch(() => undefined)));
  }

  private async withSession<T>(vcenter: string, work: (session: VsphereSession) => Promise<T>): Promise<T> {
    try {
      return await work(await this.session(vcenter));
    } catch (err) {
      if (!(err instanceof NotAuthenticatedError)) throw err;
      this.sessions.delete(vcenter);
      return work(await this.session(vcenter));
    }
  }

  private session(vcenter: string): Promise<VsphereSession> {
    let p = this.sessions.get(vcenter);
    if (!p) {
      // vCD names the vCenter by its vimServer href or URN; configuration names it by id: compare the uuids.
      const endpoint = this.vcenters.find((v) => v.id === vcenter || (uuidOf(v.id) !== null && uuidOf(v.id) === uuidOf(vcenter)));
      if (!endpoint) return Promise.reject(new VcenterUnknownError(vcenter));
      p = VsphereSession.login({ url: endpoint.url, userName: endpoint.userName, password: endpoint.password, ...(endpoint.tls ? { tls: endpoint.tls } : {}) });
      p.catch(() => this.sessions.delete(vcenter));
      this.sessions.set(vcenter, p);
    }
    return p;
  }
}
