/**
 * Datastore file access over the vCenter's HTTP file service: `GET /folder/<path>?dcPath=<dc>&dsName=<ds>`
 * with the session cookie and HTTP Range.
 */
import { textOf } from '../vcd/xml.js';
import { VsphereError, VsphereXmlError } from './errors.js';
import { retrieveObject } from './property-collector.js';
import { moRefOf, type ManagedObjectReference } from './soap.js';
import type { VsphereSession } from './session.js';

export interface DatastorePath {
  readonly datastore: string;
  readonly path: string;
}

/** `[ds1] vm/vm.vmdk` → { datastore: 'ds1', path: 'vm/vm.vmdk' } (govmomi `object.DatastorePath`). */
export function parseDatastorePath(value: string): DatastorePath {
  const m = /^\[([^\]]+)\]\s*(.*)$/.exec(value);
  if (m === null || m[1] === undefined) throw new VsphereXmlError(`"${value}" is not a datastore path like "[datastore] dir/file.vmdk"`);
  return { datastore: m[1], path: m[2] ?? '' };
}

export class DatastoreFileError extends VsphereError {
  constructor(message: string, readonly status: number) {
    super(status === 404 ? 'VSPHERE_FILE_NOT_FOUND' : 'VSPHERE_FILE_ACCESS', message);
  }
}

export class DatastoreFile {
  readonly url: URL;

  constructor(
    private readonly session: VsphereSession,
    datacenterPath: string,
    readonly file: DatastorePath,
  ) {
    const url = new URL(`/folder/${file.path.split('/').map(encodeURIComponent).join('/')}`, session.client.sdkUrl);
    url.searchParams.set('dcPath', datacenterPath);
    url.searchParams.set('dsName', file.datastore);
    this.url = url;
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    const cookie = this.session.client.sessionCookie;
    return { ...(cookie === null ? {} : { cookie: `vmware_soap_session=${cookie}` }), ...extra };
  }

  #where(): string {
    return `[${this.file.datastore}] ${this.file.path}`;
  }

  /** The file's size in bytes (a one-byte ranged GET: servers differ in what HEAD reports). */
  async size(): Promise<number> {
    const res = await this.session.client.request({ method: 'GET', url: this.url, headers: this.#headers({ range: 'bytes=0-0' }), maxBytes: 1 });
    if (res.status === 416) return 0;
    this.#check(res.status);
    const total = /\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''))?.[1];
    if (res.status === 206 && total !== undefined) return Number(total);
    if (res.status === 200 && res.headers['content-length'] !== undefined) return Number(res.headers['content-length']);
    throw new VsphereXmlError(`${this.#where()}: the file service answered without a size`);
  }

  /** Bytes [offset, offset+length) of the file; fewer only at its end. */
  async read(offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const res = await this.session.client.request({
      method: 'GET',
      url: this.url,
      headers: this.#headers({ range: `bytes=${offset}-${offset + length - 1}` }),
      maxBytes: length,
    });
    if (res.status === 416) return Buffer.alloc(0);
    this.#check(res.status);
    if (res.status === 206) {
      const start = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''))?.[1];
      if (start === undefined || Number(start) !== offset) throw new VsphereXmlError(`${this.#where()}: asked bytes from ${offset}, got Content-Range ${String(res.headers['content-range'])}`);
      return res.body;
    }
    // A server that ignores Range sends the whole file; accept it only when that is what was asked.
    if (offset === 0 && res.body.length <= length) return res.body;
    throw new VsphereXmlError(`${this.#where()}: the file service ignored the Range header (HTTP ${res.status})`);
  }

  /** The whole (small) file, e.g. a descriptor. */
  async readAll(maxBytes: number): Promise<Buffer> {
    const res = await this.session.client.request({ method: 'GET', url: this.url, headers: this.#headers({ range: `bytes=0-${maxBytes - 1}` }), maxBytes });
    this.#check(res.status);
    return res.body;
  }

  #check(status: number): void {
    if (status === 200 || status === 206) return;
    if (status === 401 || status === 403) throw new DatastoreFileError(`${this.#where()}: the file service refused the session (HTTP ${status}); the account needs Datastore.Browse and Datastore.FileManagement`, status);
    if (status === 404) throw new DatastoreFileError(`${this.#where()}: no such file on the datastore (HTTP 404)`, status);
    throw new DatastoreFileError(`${this.#where()}: the file service answered HTTP ${status}`, status);
  }
}

/** The inventory path of an entity's datacenter (`dcPath`), e.g. `Folder/DC0`. */
export async function datacenterPathOf(session: VsphereSession, entity: ManagedObjectReference): Promise<string> {
  const pc = session.content.propertyCollector;
  let current: ManagedObjectReference | null = entity;
  const names: string[] = [];
  let found = false;
  for (let depth = 0; current !== null && depth < 64; depth++) {
    if (current.value === session.content.rootFolder.value && current.type === 'Folder') break;
    const props = await retrieveObject(session.client, pc, current, ['name', 'parent']);
    if (current.type === 'Datacenter') found = true;
    if (found) names.unshift(textOf(props.get('name')) ?? current.value);
    const parent = props.get('parent');
    current = parent === undefined ? null : moRefOf(parent, `${current.value}.parent`);
  }
  if (!found) throw new VsphereXmlError(`${entity.value} is not inside a datacenter`);
  return names.join('/');
}

/** A datastore's summary.type (VMFS, NFS, vsan, VVOL, ...). */
export async function datastoreType(session: VsphereSession, datastore: ManagedObjectReference): Promise<string | null> {
  const props = await retrieveObject(session.client, session.content.propertyCollector, datastore, ['summary']);
  return textOf(props.get('summary'), 'type');
}
