/**
 * The query service (references/vcd-api.md §3.1): `pageSize=128`, follow `Link rel="nextPage"` until absent,
 * de-duplicate by href, warn when the result count differs from `total` (the set changed while paging).
 * Typed listings for organizations, org VDCs, vApps, VMs (with moref and vCenter), org VDC networks and
 * storage policies.
 */
import type { Log } from '../log.js';
import { uuidOf } from './capture-mapping.js';
import type { VcdClient } from './client.js';
import { VcdXmlError } from './errors.js';
import { attr, blankToNull, children, type XmlNode } from './xml.js';

export const QUERY_PAGE_SIZE = 128;

export interface QueryRecord {
  /** Record element name (`AdminVAppRecord`, …). */
  readonly recordType: string;
  readonly attrs: Readonly<Record<string, string>>;
}

export interface QueryOptions {
  /** FIQL filter; values must already be escaped per vCD rules (see escapeFilterValue). */
  readonly filter?: string;
  readonly sortAsc?: string;
  readonly fields?: readonly string[];
  readonly pageSize?: number;
  readonly log?: Log;
}

/** Escapes `( ) ; ,` and backslash inside a filter value (API ≥ 35.0: single encoding). */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\();,]/g, (c) => `\\${c}`);
}

export function buildQueryPath(type: string, options: QueryOptions = {}, page = 1): string {
  const params = new URLSearchParams({
    type,
    format: 'records',
    page: String(page),
    pageSize: String(Math.min(options.pageSize ?? QUERY_PAGE_SIZE, QUERY_PAGE_SIZE)),
  });
  if (options.filter !== undefined) params.set('filter', options.filter);
  if (options.sortAsc !== undefined) params.set('sortAsc', options.sortAsc);
  if (options.fields !== undefined && options.fields.length > 0) params.set('fields', options.fields.join(','));
  return `/api/query?${params.toString()}`;
}

/** Streams the records of a query, page by page. */
export async function* queryRecords(client: VcdClient, type: string, options: QueryOptions = {}): AsyncGenerator<QueryRecord> {
  const seen = new Set<string>();
  let next: string | undefined = buildQueryPath(type, { sortAsc: 'id', ...options }, 1);
  let total: number | undefined;
  let pages = 0;
  while (next !== undefined) {
    const { node } = await client.getXml(next);
    if (node.name !== 'QueryResultRecords') throw new VcdXmlError(`query ${type}: expected QueryResultRecords, got <${node.name}>`);
    pages++;
    if (pages > 100_000) throw new VcdXmlError(`query ${type}: more than 100000 pages; the server keeps returning nextPage links`);
    const t = Number.parseInt(attr(node, 'total') ?? '', 10);
    if (Number.isFinite(t)) total = t;
    for (const record of node.children) {
      if (!record.name.endsWith('Record')) continue;
      const attrs = recordAttrs(record);
      const key = attrs.href ?? attrs.id ?? JSON.stringify(attrs);
      if (seen.has(key)) continue;
      seen.add(key);
      yield { recordType: record.name, attrs };
    }
    next = attr(children(node, 'Link').find((l) => attr(l, 'rel') === 'nextPage'), 'href');
  }
  if (total !== undefined && total !== seen.size) {
    options.log?.warn('vCD query result changed while paging', { type, total, received: seen.size });
  }
}

export async function queryAll(client: VcdClient, type: string, options: QueryOptions = {}): Promise<QueryRecord[]> {
  const out: QueryRecord[] = [];
  for await (const r of queryRecords(client, type, options)) out.push(r);
  return out;
}

function recordAttrs(record: XmlNode): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of record.attributes) if (a.ns === null || !(a.name in out)) out[a.name] = a.value;
  return out;
}

// ---- typed listings -------------------------------------------------------------------------------------

export interface EntityRef {
  readonly id: string;
  readonly href: string;
  readonly name: string;
}

export interface VAppRecord extends EntityRef {
  readonly orgId: string | null;
  readonly vdcId: string | null;
  readonly vdcName: string | null;
  readonly ownerName: string | null;
  readonly status: string | null;
  readonly isBusy: boolean;
  readonly inMaintenanceMode: boolean;
  readonly isAutoNature: boolean;
  readonly numberOfVMs: number | null;
}

export interface VmRecord extends EntityRef {
  readonly vappId: string | null;
  readonly vappName: string | null;
  readonly vdcId: string | null;
  readonly orgId: string | null;
  readonly moref: string | null;
  readonly vcenter: string | null;
  readonly status: string | null;
  readonly isVAppTemplate: boolean;
}

export interface VdcRecord extends EntityRef {
  readonly orgId: string | null;
  readonly orgName: string | null;
}

export interface NetworkRecord extends EntityRef {
  readonly vdcId: string | null;
  readonly linkType: string | null;
  readonly gateway: string | null;
  readonly netmask: string | null;
}

export interface StoragePolicyRecord extends EntityRef {
  readonly vdcId: string | null;
  readonly isEnabled: boolean;
  readonly isDefault: boolean;
}

function ref(kind: string, a: Readonly<Record<string, string>>): EntityRef {
  const uuid = uuidOf(a.id) ?? uuidOf(a.href);
  if (uuid === null || a.href === undefined) throw new VcdXmlError(`${kind} record without href/id: ${JSON.stringify(a)}`);
  return { id: `urn:vcloud:${kind}:${uuid}`, href: a.href, name: a.name ?? '' };
}

const urn = (kind: string, value: string | undefined): string | null => {
  const u = uuidOf(value);
  return u === null ? null : `urn:vcloud:${kind}:${u}`;
};
const bool = (value: string | undefined) => value === 'true';
const int = (value: string | undefined) => (value !== undefined && /^\d+$/.test(value) ? Number(value) : null);

export async function listOrgs(client: VcdClient, options: QueryOptions = {}): Promise<Array<EntityRef & { enabled: boolean }>> {
  return (await queryAll(client, 'organization', options)).map((r) => ({ ...ref('org', r.attrs), enabled: r.attrs.isEnabled !== 'false' }));
}

export async function listVdcs(client: VcdClient, options: QueryOptions = {}): Promise<VdcRecord[]> {
  return (await queryAll(client, 'adminOrgVdc', options)).map((r) => ({
    ...ref('vdc', r.attrs),
    orgId: urn('org', r.attrs.org ?? r.attrs.orgId),
    orgName: blankToNull(r.attrs.orgName),
  }));
}

export async function listVApps(client: VcdClient, options: QueryOptions = {}): Promise<VAppRecord[]> {
  return (await queryAll(client, 'adminVApp', options)).map((r) => ({
    ...ref('vapp', r.attrs),
    orgId: urn('org', r.attrs.org),
    vdcId: urn('vdc', r.attrs.vdc),
    vdcName: blankToNull(r.attrs.vdcName),
    ownerName: blankToNull(r.attrs.ownerName),
    status: blankToNull(r.attrs.status),
    isBusy: bool(r.attrs.isBusy),
    inMaintenanceMode: bool(r.attrs.isInMaintenanceMode),
    isAutoNature: bool(r.attrs.isAutoNature),
    numberOfVMs: int(r.attrs.numberOfVMs),
  }));
}

export async function listVms(client: VcdClient, options: QueryOptions = {}): Promise<VmRecord[]> {
  return (await queryAll(client, 'adminVM', { filter: 'isVAppTemplate==false', ...options })).map((r) => ({
    ...ref('vm', r.attrs),
    vappId: urn('vapp', r.attrs.container),
    vappName: blankToNull(r.attrs.containerName),
    vdcId: urn('vdc', r.attrs.vdc),
    orgId: urn('org', r.attrs.org),
    moref: blankToNull(r.attrs.moref),
    vcenter: blankToNull(r.attrs.vc),
    status: blankToNull(r.attrs.status),
    isVAppTemplate: bool(r.attrs.isVAppTemplate),
  }));
}

export async function listNetworks(client: VcdClient, options: QueryOptions = {}): Promise<NetworkRecord[]> {
  return (await queryAll(client, 'orgVdcNetwork', options)).map((r) => ({
    ...ref('network', r.attrs),
    vdcId: urn('vdc', r.attrs.vdc),
    linkType: blankToNull(r.attrs.linkType),
    gateway: blankToNull(r.attrs.defaultGateway),
    netmask: blankToNull(r.attrs.netmask),
  }));
}

export async function listStoragePolicies(client: VcdClient, options: QueryOptions = {}): Promise<StoragePolicyRecord[]> {
  return (await queryAll(client, 'adminOrgVdcStorageProfile', options)).map((r) => ({
    ...ref('vdcstorageProfile', r.attrs),
    vdcId: urn('vdc', r.attrs.vdc),
    isEnabled: r.attrs.isEnabled !== 'false',
    isDefault: bool(r.attrs.isDefaultStorageProfile),
  }));
}
