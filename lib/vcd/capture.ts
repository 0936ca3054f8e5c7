/**
 * Capture of one vApp with few calls: the vApp document (all VMs, sections and VCloudExtension inline), the
 * vApp metadata, the vApp's access settings and one metadata read per VM, in parallel. The owner's user
 * document (quotas) and the VDC/org names are cached across vApps of a run, so a run costs
 * 3 + VMs calls per vApp (plus entering and leaving maintenance mode, see maintenance.ts).
 *
 * The raw documents are kept next to the model, as `Secret`s: they may hold guest-customization passwords.
 */
import type { Log } from '../log.js';
import { Secret } from '../secret.js';
import { findSensitive, mapVApp, uuidOf } from './capture-mapping.js';
import type { VcdClient, XmlResponse } from './client.js';
import { VcdNotFoundError, VcdXmlError } from './errors.js';
import type { VAppModel } from './model.js';
import { attr, blankToNull, boolOf, child, children, intOf, path as xpath, textOf, type XmlNode } from './xml.js';

export interface VAppAccess {
  readonly sharedToEveryone: boolean | null;
  readonly everyoneAccessLevel: string | null;
  readonly settings: ReadonlyArray<{ subjectName: string | null; subjectHref: string | null; subjectType: string | null; accessLevel: string | null }>;
}

export interface OwnerQuotas {
  readonly storedVmQuota: number | null;
  readonly deployedVmQuota: number | null;
}

export interface CapturedVApp {
  readonly model: VAppModel;
  readonly access: VAppAccess | null;
  readonly ownerQuotas: OwnerQuotas | null;
  /** `InMaintenanceMode` as the vApp document showed it. */
  readonly inMaintenanceMode: boolean | null;
  /** Where the raw documents hold secrets (paths, never values). */
  readonly sensitive: readonly string[];
  /** The documents as vCD sent them; `Secret`s because they can contain passwords. */
  readonly raw: {
    readonly vapp: Secret;
    readonly metadata: Secret | null;
    readonly vmMetadata: Readonly<Record<string, Secret>>;
    readonly controlAccess: Secret | null;
    readonly owner: Secret | null;
  };
}

/** Lookups shared by the captures of one run (VDC and org names, owners' quotas). */
export class CaptureCache {
  readonly vdcs = new Map<string, Promise<{ vdc: { id: string | null; name: string | null }; org: { id: string | null; name: string | null } }>>();
  readonly owners = new Map<string, Promise<{ quotas: OwnerQuotas | null; raw: Secret | null }>>();
}

export interface CaptureOptions {
  readonly cache?: CaptureCache;
  /** The vApp document, when the caller already read it (maintenance mode's task drain does). */
  readonly vappDocument?: XmlResponse & { node: XmlNode };
  readonly log?: Log;
}

/** `/api/vApp/vapp-<uuid>` for a uuid, `vapp-<uuid>`, URN or href. */
export function vappPath(vappId: string): string {
  const uuid = uuidOf(vappId);
  if (uuid === null) throw new VcdXmlError(`"${vappId}" is not a vApp id: give a uuid, vapp-<uuid>, urn:vcloud:vapp:<uuid> or an href`);
  return `/api/vApp/vapp-${uuid}`;
}

export async function captureVApp(client: VcdClient, vappId: string, options: CaptureOptions = {}): Promise<CapturedVApp> {
  const cache = options.cache ?? new CaptureCache();
  const path = vappPath(vappId);
  const vappRes = options.vappDocument ?? (await client.getXml(path));
  const vapp = vappRes.node;
  if (vapp.name !== 'VApp') throw new VcdXmlError(`GET ${path} returned <${vapp.name}>, not a VApp`);
  if (uuidOf(attr(vapp, 'id') ?? attr(vapp, 'href')) !== uuidOf(vappId)) {
    throw new VcdXmlError(`GET ${path} returned another vApp (${attr(vapp, 'href') ?? '?'})`);
  }

  const vms = children(child(vapp, 'Children'), 'Vm');
  const ownerHref = attr(xpath(vapp, 'Owner', 'User'), 'href');
  const vdcHref = attr(
    children(vapp, 'Link').find((l) => attr(l, 'rel') === 'up' && (attr(l, 'type') ?? '').includes('vdc+xml')),
    'href',
  );

  const [metadata, controlAccess, vmMetadata, place, owner] = await Promise.all([
    client.getXml(`${path}/metadata`),
    optional(client.getXml(`${path}/controlAccess/`)),
    Promise.all(
      vms.map(async (vm) => {
        const vmUuid = uuidOf(attr(vm, 'id') ?? attr(vm, 'href'));
        if (vmUuid === null) throw new VcdXmlError(`a Vm of ${path} has no id`);
        const res = await client.getXml(`/api/vApp/vm-${vmUuid}/metadata`);
        return [vmUuid, res] as const;
      }),
    ),
    vdcHref === undefined ? Promise.resolve(undefined) : cached(cache.vdcs, vdcHref, () => resolvePlace(client, vdcHref)),
    ownerHref === undefined ? Promise.resolve(undefined) : cached(cache.owners, ownerHref, () => readOwner(client, ownerHref)),
  ]);

  const vmMetadataNodes = new Map(vmMetadata.map(([id, res]) => [id, res.node]));
  const model = mapVApp(
    { vapp, metadata: metadata.node, vmMetadata: vmMetadataNodes },
    place === undefined ? {} : { org: place.org, vdc: { id: place.vdc.id, name: place.vdc.name } },
  );
  const sensitive = findSensitive(vapp);
  if (sensitive.length > 0) options.log?.debug('captured vApp documents contain secrets; they stay out of the model', { vapp: model.id, count: sensitive.length });

  return {
    model,
    access: controlAccess === null ? null : parseAccess(controlAccess.node),
    ownerQuotas: owner?.quotas ?? null,
    inMaintenanceMode: boolOf(textOf(vapp, 'InMaintenanceMode'), 'InMaintenanceMode'),
    sensitive,
    raw: {
      vapp: new Secret(vappRes.text),
      metadata: new Secret(metadata.text),
      vmMetadata: Object.fromEntries(vmMetadata.map(([id, res]) => [`urn:vcloud:vm:${id}`, new Secret(res.text)])),
      controlAccess: controlAccess === null ? null : new Secret(controlAccess.text),
      owner: owner?.raw ?? null,
    },
  };
}

function cached<T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  let hit = map.get(key);
  if (hit === undefined) {
    hit = load();
    map.set(key, hit);
    hit.catch(() => map.delete(key));
  }
  return hit;
}

/** Null for objects these credentials cannot see (tenant logins cannot read users or every access list). */
async function optional<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof VcdNotFoundError) return null;
    throw err;
  }
}

async function resolvePlace(client: VcdClient, vdcHref: string) {
  const vdc = (await client.getXml(vdcHref)).node;
  const orgHref = attr(
    children(vdc, 'Link').find((l) => attr(l, 'rel') === 'up' && (attr(l, 'type') ?? '').includes('org+xml')),
    'href',
  );
  const org = orgHref === undefined ? null : (await optional(client.getXml(orgHref)))?.node ?? null;
  const urn = (kind: string, href: string | undefined) => {
    const u = uuidOf(href);
    return u === null ? null : `urn:vcloud:${kind}:${u}`;
  };
  return {
    vdc: { id: urn('vdc', attr(vdc, 'id') ?? vdcHref), name: blankToNull(attr(vdc, 'name')) },
    org: { id: urn('org', orgHref), name: org === null ? null : blankToNull(attr(org, 'name')) },
  };
}

async function readOwner(client: VcdClient, href: string): Promise<{ quotas: OwnerQuotas | null; raw: Secret | null }> {
  const res = await optional(client.getXml(href));
  if (res === null) return { quotas: null, raw: null };
  return {
    quotas: {
      storedVmQuota: intOf(textOf(res.node, 'StoredVmQuota'), 'User/StoredVmQuota'),
      deployedVmQuota: intOf(textOf(res.node, 'DeployedVmQuota'), 'User/DeployedVmQuota'),
    },
    raw: new Secret(res.text),
  };
}

export function parseAccess(node: XmlNode): VAppAccess {
  if (node.name !== 'ControlAccessParams') throw new VcdXmlError(`expected ControlAccessParams, got <${node.name}>`);
  return {
    sharedToEveryone: boolOf(textOf(node, 'IsSharedToEveryone'), 'IsSharedToEveryone'),
    everyoneAccessLevel: textOf(node, 'EveryoneAccessLevel'),
    settings: children(child(node, 'AccessSettings'), 'AccessSetting').map((s) => {
      const subject = child(s, 'Subject') ?? child(s, 'ExternalSubject');
      return {
        subjectName: blankToNull(attr(subject, 'name')) ?? textOf(subject, 'SubjectId'),
        subjectHref: blankToNull(attr(subject, 'href')),
        subjectType: blankToNull(attr(subject, 'type')),
        accessLevel: textOf(s, 'AccessLevel'),
      };
    }),
  };
}

/** The JSON printed by `vcd capture --json` and stored next to the model: never the raw documents. */
export function captureSummary(c: CapturedVApp): Record<string, unknown> {
  return { model: c.model, access: c.access, ownerQuotas: c.ownerQuotas, inMaintenanceMode: c.inMaintenanceMode, sensitive: c.sensitive };
}
