/**
 * The vCD simulator: an HTTP(S) server on 127.0.0.1 speaking the API subset the backup service uses
 * (references/vcd-api.md): versions, CloudAPI sessions and API tokens, the query service with paging, vApp /
 * VM documents, metadata reads and writes (writes return tasks), access settings, users, VDCs, orgs,
 * maintenance mode (409 for tenant writes while it is on), tasks, and vCD-style Error documents.
 *
 * Tests steer it: per-route fault injection (latency, 5xx, 429, dropped connections), slow or failing tasks,
 * session expiry, and a request log. Later features add endpoints with `addRoute` (import/compose, section
 * edits for restores) without touching this file's routes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleepMs } from 'node:timers/promises';
import { mapMetadata } from '../capture-mapping.js';
import { attr, child, localValue, NS, nsAttr, parseXml, rawTextOf } from '../xml.js';
import {
  buildState,
  parseInventory,
  type SimInventoryInput,
  type SimInventorySeed,
  type SimMetadataEntry,
  type SimOrg,
  type SimState,
  type SimTask,
  type SimVApp,
  type SimVm,
} from './inventory.js';
import {
  href,
  renderControlAccess,
  renderError,
  renderMetadata,
  renderOrg,
  renderOrgList,
  renderQuery,
  renderTask,
  renderUser,
  renderVApp,
  renderVdc,
  renderVersions,
  renderVm,
  taskStatus,
  type RenderContext,
} from './render.js';

export const DEFAULT_SIM_VERSIONS = ['33.0', '34.0', '35.0', '36.0', '36.1', '36.2', '37.0', '37.1', '37.2', '38.0', '38.1', '39.0', '39.1', '5.5'];

export interface FaultRule {
  /** HTTP method to match; any when absent. */
  readonly method?: string;
  /** Substring of, or pattern for, the request path (with query string). Any when absent. */
  readonly path?: string | RegExp;
  /** Answer with this status and a vCD Error document instead of handling the request. */
  readonly status?: number;
  readonly minorErrorCode?: string;
  /** Extra delay before answering. */
  readonly latencyMs?: number;
  /** Drop the connection without an answer (a network error for the client). */
  readonly reset?: boolean;
  /** How many matching requests the rule affects (default: all). */
  readonly times?: number;
}

export interface SimSession {
  readonly token: string;
  /** Null for the provider (System org). */
  readonly org: SimOrg | null;
  readonly user: string;
  expiresAt: number;
}

export interface SimRequestContext {
  readonly method: string;
  readonly url: URL;
  readonly params: readonly string[];
  readonly session: SimSession | null;
  readonly body: Buffer;
  readonly render: RenderContext;
  readonly state: SimState;
  readonly sim: VcdSimulator;
}

export interface SimResponse {
  readonly status: number;
  readonly body?: string;
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
}

export type SimRouteHandler = (ctx: SimRequestContext) => SimResponse | Promise<SimResponse>;

export interface SimRequestLogEntry {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

export interface VcdSimulatorOptions {
  readonly inventory: SimInventoryInput | SimInventorySeed;
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Delay added to every request. */
  readonly latencyMs?: number;
  /** Session lifetime; vCD's default idle timeout is 30 min. */
  readonly tokenTtlMs?: number;
  readonly apiVersions?: readonly string[];
  readonly deprecatedVersions?: readonly string[];
  /** How long write tasks (metadata changes, …) run. */
  readonly taskDurationMs?: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  readonly tls?: { key: string | Buffer; cert: string | Buffer };
}

export interface VcdSimulator {
  readonly url: string;
  readonly state: SimState;
  stop(): Promise<void>;
  /** Every request handled, in order. */
  readonly requests: SimRequestLogEntry[];
  resetRequests(): void;
  readonly faults: { add(rule: FaultRule): void; clear(): void };
  setLatency(ms: number): void;
  setTaskBehaviour(behaviour: { durationMs?: number; failOperations?: readonly string[] | 'all' | 'none' }): void;
  /** Every live session expires now: the next request with its token gets 401. */
  expireSessions(): void;
  /** Adds a route; patterns are matched on the path without query string; capture groups become params. */
  addRoute(method: string, pattern: RegExp, handler: SimRouteHandler): void;
  // inventory access
  vapps(): SimVApp[];
  findVApp(idOrName: string): SimVApp | undefined;
  findVm(idOrName: string): SimVm | undefined;
  setMaintenance(vappIdOrName: string, on: boolean): void;
  /** Puts a running task on a vApp (shown in its `Tasks`), e.g. to test that capture waits for it. */
  startTask(vappIdOrName: string, options: { durationMs: number; fail?: boolean; operationName?: string }): SimTask;
  /** A task like the simulator's own writes (honours setTaskBehaviour); `apply` runs when it succeeds. */
  createTask(owner: { href: string; name: string; type: string }, operationName: string, operation: string, apply?: () => void): SimTask;
  /** Disks of the VM with this moref (the agent's file DiskSource reads `path`). */
  disksOf(moref: string): Array<{ instanceId: number; sizeBytes: number; path: string }>;
}

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly handler: SimRouteHandler;
}

const XML_TYPES = {
  VApp: 'application/vnd.vmware.vcloud.vApp+xml',
  Vm: 'application/vnd.vmware.vcloud.vm+xml',
  Metadata: 'application/vnd.vmware.vcloud.metadata+xml',
  Task: 'application/vnd.vmware.vcloud.task+xml',
  Error: 'application/vnd.vmware.vcloud.error+xml',
  Query: 'application/vnd.vmware.vcloud.query.records+xml',
} as const;

const xml = (status: number, body: string, type: string = 'application/*+xml'): SimResponse => ({ status, body, contentType: type });
const vcdError = (status: number, minor: string, message: string): SimResponse => xml(status, renderError(status, minor, `[ ${randomUUID()} ] ${message}`), XML_TYPES.Error);
const forbidden = (kind: string, id: string) => vcdError(403, 'ACCESS_TO_RESOURCE_IS_FORBIDDEN', `No access to entity "(com.vmware.vcloud.entity.${kind}:${id})".`);

export async function startVcdSimulator(options: VcdSimulatorOptions): Promise<VcdSimulator> {
  const seed = parseInventory(options.inventory);
  const state = buildState(seed);
  const sessions = new Map<string, SimSession>();
  const faults: Array<FaultRule & { remaining: number }> = [];
  const requests: SimRequestLogEntry[] = [];
  const versions = options.apiVersions ?? DEFAULT_SIM_VERSIONS;
  const deprecated = options.deprecatedVersions ?? ['33.0', '34.0', '35.0'];
  const tokenTtlMs = options.tokenTtlMs ?? 30 * 60_000;
  let latencyMs = options.latencyMs ?? 0;
  const taskBehaviour: { durationMs: number; fail: readonly string[] | 'all' | 'none' } = { durationMs: options.taskDurationMs ?? 0, fail: 'none' };
  const routes: Route[] = [];
  let base = '';

  // ---- lookups --------------------------------------------------------------------------------------------
  const allVApps = () => state.orgs.flatMap((o) => o.vdcs.flatMap((v) => v.vapps));
  const allVms = () => allVApps().flatMap((a) => a.vms);
  const allUsers = () => state.orgs.flatMap((o) => o.users);
  const findVApp = (key: string) => allVApps().find((v) => v.id === key.toLowerCase() || v.name === key);
  const findVm = (key: string) => allVms().find((v) => v.id === key.toLowerCase() || v.name === key);
  const visible = (session: SimSession | null, org: SimOrg) => session !== null && (session.org === null || session.org === org);

  function createTask(owner: { href: string; name: string; type: string }, operationName: string, operation: string, apply?: () => void, overrides?: { durationMs?: number; fail?: boolean }): SimTask {
    const now = Date.now();
    const duration = overrides?.durationMs ?? taskBehaviour.durationMs;
    const fail = overrides?.fail ?? (taskBehaviour.fail === 'all' || (Array.isArray(taskBehaviour.fail) && taskBehaviour.fail.includes(operationName)));
    const task: SimTask = {
      id: randomUUID(),
      operationName,
      operation,
      ownerHref: owner.href,
      ownerName: owner.name,
      ownerType: owner.type,
      startedAt: now,
      doneAt: now + duration,
      fail,
      errorMessage: `[ ${randomUUID()} ] Simulated failure of ${operationName}.`,
      canceled: false,
      apply,
      applied: false,
    };
    state.tasks.set(task.id, task);
    const finish = () => {
      if (!task.fail && !task.canceled && !task.applied) {
        task.applied = true;
        task.apply?.();
      }
    };
    if (duration <= 0) finish();
    else setTimeout(finish, duration).unref();
    return task;
  }

  // ---- routes ---------------------------------------------------------------------------------------------
  const route = (method: string, pattern: RegExp, handler: SimRouteHandler) => routes.push({ method, pattern, handler });

  route('GET', /^\/api\/versions$/, (ctx) => xml(200, renderVersions(versions, deprecated, ctx.render.base), 'application/vnd.vmware.vcloud.versions+xml'));

  const login = (provider: boolean) => (ctx: SimRequestContext, authorization: string | undefined): SimResponse => {
    const accept = ctx.url.searchParams.get('__accept') ?? '';
    const version = /version=([\d.]+)/.exec(accept)?.[1];
    if (version !== undefined && !versions.includes(version)) return { status: 406, body: JSON.stringify({ minorErrorCode: 'NOT_ACCEPTABLE', message: `API version ${version} is not supported` }), contentType: 'application/json' };
    const m = /^Basic (.+)$/.exec(authorization ?? '');
    const decoded = m ? Buffer.from(m[1] ?? '', 'base64').toString('utf8') : '';
    const at = decoded.lastIndexOf('@', decoded.indexOf(':'));
    const colon = decoded.indexOf(':');
    const user = at > 0 ? decoded.slice(0, at) : '';
    const orgName = at > 0 && colon > at ? decoded.slice(at + 1, colon) : '';
    const password = colon >= 0 ? decoded.slice(colon + 1) : '';
    let session: SimSession | null = null;
    if (provider && orgName.toLowerCase() === 'system' && user === state.systemAdmin.user && password === state.systemAdmin.password) {
      session = { token: randomBytes(24).toString('base64url'), org: null, user, expiresAt: Date.now() + tokenTtlMs };
    } else if (!provider) {
      const org = state.orgs.find((o) => o.name === orgName);
      const u = org?.users.find((x) => x.name === user && x.password === password);
      if (org && u) session = { token: randomBytes(24).toString('base64url'), org, user, expiresAt: Date.now() + tokenTtlMs };
      else if (orgName.toLowerCase() === 'system') {
        return { status: 401, body: JSON.stringify({ minorErrorCode: 'UNAUTHORIZED', message: 'Provider users must use /cloudapi/1.0.0/sessions/provider' }), contentType: 'application/json' };
      }
    }
    if (session === null) return { status: 401, body: JSON.stringify({ minorErrorCode: 'UNAUTHORIZED', message: 'Invalid credentials' }), contentType: 'application/json' };
    sessions.set(session.token, session);
    return {
      status: 200,
      contentType: 'application/json',
      headers: { 'x-vmware-vcloud-access-token': session.token, 'x-vmware-vcloud-token-type': 'Bearer' },
      body: JSON.stringify({ id: `urn:vcloud:session:${randomUUID()}`, user: { name: user }, org: { name: session.org?.name ?? 'System' }, sessionIdleTimeoutMinutes: Math.round(tokenTtlMs / 60_000) }),
    };
  };
  const loginProvider = login(true);
  const loginTenant = login(false);
  route('POST', /^\/cloudapi\/1\.0\.0\/sessions\/provider$/, (ctx) => loginProvider(ctx, ctx.url.searchParams.get('__authorization') ?? undefined));
  route('POST', /^\/cloudapi\/1\.0\.0\/sessions$/, (ctx) => loginTenant(ctx, ctx.url.searchParams.get('__authorization') ?? undefined));

  const tokenGrant = (orgName: string | null) => (ctx: SimRequestContext): SimResponse => {
    const form = new URLSearchParams(ctx.body.toString('utf8'));
    const token = form.get('refresh_token');
    const entry = state.apiTokens.find((t) => t.token === token && (orgName === null ? t.org.toLowerCase() === 'system' : t.org === orgName));
    if (form.get('grant_type') !== 'refresh_token' || entry === undefined) {
      return { status: 400, body: JSON.stringify({ error: 'invalid_grant', error_description: 'The refresh token is invalid' }), contentType: 'application/json' };
    }
    const org = orgName === null ? null : (state.orgs.find((o) => o.name === orgName) ?? null);
    const session: SimSession = { token: randomBytes(24).toString('base64url'), org, user: entry.user, expiresAt: Date.now() + tokenTtlMs };
    sessions.set(session.token, session);
    return {
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ access_token: session.token, token_type: 'Bearer', expires_in: Math.round(tokenTtlMs / 1000), refresh_token: entry.token }),
    };
  };
  route('POST', /^\/oauth\/provider\/token$/, tokenGrant(null));
  route('POST', /^\/oauth\/tenant\/([^/]+)\/token$/, (ctx) => tokenGrant(decodeURIComponent(ctx.params[0] ?? ''))(ctx));

  route('GET', /^\/cloudapi\/1\.0\.0\/sessions\/current$/, (ctx) => ({
    status: 200,
    contentType: 'application/json',
    body: JSON.stringify({ user: { name: ctx.session?.user }, org: { name: ctx.session?.org?.name ?? 'System' } }),
  }));
  route('DELETE', /^\/cloudapi\/1\.0\.0\/sessions\/current$/, (ctx) => {
    if (ctx.session) sessions.delete(ctx.session.token);
    return { status: 204 };
  });

  route('GET', /^\/api\/org\/?$/, (ctx) => xml(200, renderOrgList(ctx.render, state.orgs.filter((o) => visible(ctx.session, o))), 'application/vnd.vmware.vcloud.orgList+xml'));
  route('GET', /^\/api\/org\/([0-9a-f-]+)$/, (ctx) => {
    const org = state.orgs.find((o) => o.id === ctx.params[0]);
    if (!org || !visible(ctx.session, org)) return forbidden('org', ctx.params[0] ?? '');
    return xml(200, renderOrg(ctx.render, org), 'application/vnd.vmware.vcloud.org+xml');
  });
  route('GET', /^\/api\/vdc\/([0-9a-f-]+)$/, (ctx) => {
    const vdc = state.orgs.flatMap((o) => o.vdcs).find((v) => v.id === ctx.params[0]);
    if (!vdc || !visible(ctx.session, vdc.org)) return forbidden('vdc', ctx.params[0] ?? '');
    return xml(200, renderVdc(ctx.render, vdc), 'application/vnd.vmware.vcloud.vdc+xml');
  });
  route('GET', /^\/api\/admin\/user\/([0-9a-f-]+)$/, (ctx) => {
    const user = allUsers().find((u) => u.id === ctx.params[0]);
    if (!user || ctx.session?.org !== null) return forbidden('user', ctx.params[0] ?? '');
    return xml(200, renderUser(ctx.render, user), 'application/vnd.vmware.admin.user+xml');
  });

  route('GET', /^\/api\/query$/, (ctx) => query(ctx));

  const vappOr403 = (ctx: SimRequestContext): SimVApp | SimResponse => {
    const vapp = allVApps().find((v) => v.id === ctx.params[0]);
    if (!vapp || !visible(ctx.session, vapp.vdc.org)) return forbidden('vapp', ctx.params[0] ?? '');
    return vapp;
  };
  const vmOr403 = (ctx: SimRequestContext): SimVm | SimResponse => {
    const vm = allVms().find((v) => v.id === ctx.params[0]);
    if (!vm || !visible(ctx.session, vm.vapp.vdc.org)) return forbidden('vm', ctx.params[0] ?? '');
    return vm;
  };
  const isResponse = (x: unknown): x is SimResponse => typeof x === 'object' && x !== null && 'status' in x && typeof (x as SimResponse).status === 'number';

  route('GET', /^\/api\/vApp\/vapp-([0-9a-f-]+)$/, (ctx) => {
    const vapp = vappOr403(ctx);
    return isResponse(vapp) ? vapp : xml(200, renderVApp(ctx.render, vapp), XML_TYPES.VApp);
  });
  route('GET', /^\/api\/vApp\/vm-([0-9a-f-]+)$/, (ctx) => {
    const vm = vmOr403(ctx);
    return isResponse(vm) ? vm : xml(200, renderVm(ctx.render, vm), XML_TYPES.Vm);
  });
  route('GET', /^\/api\/vApp\/vapp-([0-9a-f-]+)\/controlAccess\/?$/, (ctx) => {
    const vapp = vappOr403(ctx);
    return isResponse(vapp) ? vapp : xml(200, renderControlAccess(vapp, ctx.render), 'application/vnd.vmware.vcloud.controlAccess+xml');
  });

  // metadata of vApps and VMs
  const metadataTarget = (ctx: SimRequestContext): { entries: Map<string, SimMetadataEntry>; href: string; name: string; type: string; vapp: SimVApp } | SimResponse => {
    const kind = ctx.params[0];
    if (kind === 'vapp') {
      const vapp = vappOr403({ ...ctx, params: ctx.params.slice(1) });
      if (isResponse(vapp)) return vapp;
      return { entries: vapp.metadata, href: href.vapp(ctx.render, vapp.id), name: vapp.name, type: XML_TYPES.VApp, vapp };
    }
    const vm = vmOr403({ ...ctx, params: ctx.params.slice(1) });
    if (isResponse(vm)) return vm;
    return { entries: vm.metadata, href: href.vm(ctx.render, vm.id), name: vm.name, type: XML_TYPES.Vm, vapp: vm.vapp };
  };
  const tenantWriteBlocked = (ctx: SimRequestContext, vapp: SimVApp): SimResponse | null =>
    ctx.session?.org !== null && vapp.inMaintenanceMode
      ? vcdError(409, 'INVALID_STATE', `The entity vApp ${vapp.name} (urn:vcloud:vapp:${vapp.id}) is undergoing maintenance operations.`)
      : null;
  const metadataTask = (ctx: SimRequestContext, t: { href: string; name: string; type: string }, apply: () => void): SimResponse => {
    const task = createTask(t, 'metadataUpdate', `Updating metadata of ${t.name}`, apply);
    return { status: 202, body: renderTask(ctx.render, task), contentType: XML_TYPES.Task, headers: { location: href.task(ctx.render, task.id) } };
  };

  route('GET', /^\/api\/vApp\/(vapp|vm)-([0-9a-f-]+)\/metadata\/?$/, (ctx) => {
    const t = metadataTarget(ctx);
    return isResponse(t) ? t : xml(200, renderMetadata(ctx.render, t.href, t.type, t.entries.values()), XML_TYPES.Metadata);
  });
  route('POST', /^\/api\/vApp\/(vapp|vm)-([0-9a-f-]+)\/metadata\/?$/, (ctx) => {
    const t = metadataTarget(ctx);
    if (isResponse(t)) return t;
    const blocked = tenantWriteBlocked(ctx, t.vapp);
    if (blocked) return blocked;
    let entries;
    try {
      entries = mapMetadata(parseXml(ctx.body));
    } catch (err) {
      return vcdError(400, 'BAD_REQUEST', `Bad Metadata document: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (ctx.session?.org !== null && entries.some((m) => m.domain === 'SYSTEM')) return vcdError(403, 'ACCESS_TO_RESOURCE_IS_FORBIDDEN', 'This operation is denied.');
    return metadataTask(ctx, t, () => {
      for (const m of entries) {
        t.entries.set(`${m.domain}/${m.key}`, { key: m.key, value: m.value === null ? '' : String(m.value), type: m.type, domain: m.domain, visibility: m.visibility });
      }
    });
  });
  route('PUT', /^\/api\/vApp\/(vapp|vm)-([0-9a-f-]+)\/metadata\/(SYSTEM\/)?([^/]+)$/, (ctx) => {
    const t = metadataTarget(ctx);
    if (isResponse(t)) return t;
    const blocked = tenantWriteBlocked(ctx, t.vapp);
    if (blocked) return blocked;
    const domain = ctx.params[2] ? 'SYSTEM' : 'GENERAL';
    if (domain === 'SYSTEM' && ctx.session?.org !== null) return vcdError(403, 'ACCESS_TO_RESOURCE_IS_FORBIDDEN', 'This operation is denied.');
    const key = decodeURIComponent(ctx.params[3] ?? '');
    let doc;
    try {
      doc = parseXml(ctx.body);
    } catch (err) {
      return vcdError(400, 'BAD_REQUEST', err instanceof Error ? err.message : String(err));
    }
    const typed = child(doc, 'TypedValue');
    const xsiType = localValue(nsAttr(typed, 'type', NS.xsi) ?? attr(typed, 'type')) ?? '';
    const type = ({ MetadataStringValue: 'string', MetadataNumberValue: 'number', MetadataBooleanValue: 'boolean', MetadataDateTimeValue: 'dateTime' } as const)[xsiType as 'MetadataStringValue'];
    if (doc.name !== 'MetadataValue' || type === undefined) return vcdError(400, 'BAD_REQUEST', 'Expected a MetadataValue with a TypedValue');
    const visibility = (attr(child(doc, 'Domain'), 'visibility') ?? 'READWRITE') as SimMetadataEntry['visibility'];
    return metadataTask(ctx, t, () => {
      t.entries.set(`${domain}/${key}`, { key, value: rawTextOf(typed, 'Value') ?? '', type, domain, visibility });
    });
  });
  route('DELETE', /^\/api\/vApp\/(vapp|vm)-([0-9a-f-]+)\/metadata\/(SYSTEM\/)?([^/]+)$/, (ctx) => {
    const t = metadataTarget(ctx);
    if (isResponse(t)) return t;
    const blocked = tenantWriteBlocked(ctx, t.vapp);
    if (blocked) return blocked;
    const k = `${ctx.params[2] ? 'SYSTEM' : 'GENERAL'}/${decodeURIComponent(ctx.params[3] ?? '')}`;
    if (!t.entries.has(k)) return vcdError(403, 'ACCESS_TO_RESOURCE_IS_FORBIDDEN', `No access to entity "metadata ${k}".`);
    return metadataTask(ctx, t, () => t.entries.delete(k));
  });

  // maintenance mode: system administrators only; 204 without a task
  route('POST', /^\/api\/vApp\/vapp-([0-9a-f-]+)\/action\/(enter|exit)MaintenanceMode$/, (ctx) => {
    const vapp = vappOr403(ctx);
    if (isResponse(vapp)) return vapp;
    if (ctx.session?.org !== null) return vcdError(403, 'ACCESS_TO_RESOURCE_IS_FORBIDDEN', 'This operation is denied.');
    const enter = ctx.params[1] === 'enter';
    if (enter && vapp.inMaintenanceMode) return vcdError(400, 'BAD_REQUEST', `The vApp ${vapp.name} is already in maintenance mode.`);
    vapp.inMaintenanceMode = enter;
    return { status: 204 };
  });

  route('GET', /^\/api\/task\/([0-9a-f-]+)$/, (ctx) => {
    const task = state.tasks.get(ctx.params[0] ?? '');
    if (!task) return forbidden('task', ctx.params[0] ?? '');
    return xml(200, renderTask(ctx.render, task), XML_TYPES.Task);
  });
  route('POST', /^\/api\/task\/([0-9a-f-]+)\/action\/cancel$/, (ctx) => {
    const task = state.tasks.get(ctx.params[0] ?? '');
    if (!task) return forbidden('task', ctx.params[0] ?? '');
    if (taskStatus(task, Date.now()) === 'running' || taskStatus(task, Date.now()) === 'queued') {
      task.canceled = true;
      task.doneAt = Date.now();
    }
    return { status: 204 };
  });

  // ---- query service --------------------------------------------------------------------------------------
  function query(ctx: SimRequestContext): SimResponse {
    const q = ctx.url.searchParams;
    const type = q.get('type') ?? '';
    const admin = ctx.session?.org === null;
    if (type.startsWith('admin') && !admin) return vcdError(403, 'ACCESS_TO_RESOURCE_IS_FORBIDDEN', `Query type ${type} requires a system administrator.`);
    const b = ctx.render;
    const scoped = <T extends { org: SimOrg }>(items: T[]) => items.filter((i) => visible(ctx.session, i.org));
    let recordElement: string;
    let records: Array<Record<string, string>>;
    switch (type) {
      case 'organization':
        recordElement = 'OrgRecord';
        records = state.orgs
          .filter((o) => visible(ctx.session, o))
          .map((o) => ({ href: href.org(b, o.id), id: `urn:vcloud:org:${o.id}`, name: o.name, displayName: o.fullName, isEnabled: 'true', numberOfVdcs: String(o.vdcs.length) }));
        break;
      case 'adminOrgVdc':
      case 'orgVdc':
        recordElement = type === 'adminOrgVdc' ? 'AdminVdcRecord' : 'OrgVdcRecord';
        records = scoped(state.orgs.flatMap((o) => o.vdcs)).map((v) => ({
          href: href.vdc(b, v.id),
          id: `urn:vcloud:vdc:${v.id}`,
          name: v.name,
          org: href.org(b, v.org.id),
          orgName: v.org.name,
          isEnabled: 'true',
          numberOfVApps: String(v.vapps.length),
        }));
        break;
      case 'adminVApp':
      case 'vApp':
        recordElement = type === 'adminVApp' ? 'AdminVAppRecord' : 'VAppRecord';
        records = allVApps()
          .filter((a) => visible(ctx.session, a.vdc.org))
          .map((a) => {
            const running = a.tasks.filter((t) => ['running', 'queued'].includes(taskStatus(t, b.now)));
            return {
              href: href.vapp(b, a.id),
              id: `urn:vcloud:vapp:${a.id}`,
              name: a.name,
              org: href.org(b, a.vdc.org.id),
              vdc: href.vdc(b, a.vdc.id),
              vdcName: a.vdc.name,
              ownerName: a.owner?.name ?? '',
              status: a.vms.length > 0 && a.vms.every((v) => v.poweredOn) ? 'POWERED_ON' : 'POWERED_OFF',
              isDeployed: String(a.vms.some((v) => v.poweredOn)),
              isBusy: String(running.length > 0),
              isInMaintenanceMode: String(a.inMaintenanceMode),
              isExpired: 'false',
              isAutoNature: String(a.standalone),
              numberOfVMs: String(a.vms.length),
              numberOfCpus: String(a.vms.reduce((s, v) => s + v.cpus, 0)),
              memoryAllocationMB: String(a.vms.reduce((s, v) => s + v.memoryMiB, 0)),
              creationDate: a.createdAt,
              taskDetails: ' ',
            };
          });
        break;
      case 'adminVM':
      case 'vm':
        recordElement = type === 'adminVM' ? 'AdminVMRecord' : 'VMRecord';
        records = allVms()
          .filter((v) => visible(ctx.session, v.vapp.vdc.org))
          .map((v) => ({
            href: href.vm(b, v.id),
            id: `urn:vcloud:vm:${v.id}`,
            name: v.name,
            container: href.vapp(b, v.vapp.id),
            containerName: v.vapp.name,
            vdc: href.vdc(b, v.vapp.vdc.id),
            org: href.org(b, v.vapp.vdc.org.id),
            status: v.poweredOn ? 'POWERED_ON' : 'POWERED_OFF',
            isVAppTemplate: 'false',
            isDeleted: 'false',
            guestOs: v.osType,
            numberOfCpus: String(v.cpus),
            memoryMB: String(v.memoryMiB),
            hardwareVersion: v.hardwareVersion.replace('vmx-', ''),
            storageProfileName: v.storagePolicy.name,
            isInMaintenanceMode: String(v.vapp.inMaintenanceMode),
            ...(admin ? { vc: href.vimServer(b, v.vcenter.id), moref: v.moref, vmNameInVc: `${v.name} (${v.id})` } : {}),
          }));
        break;
      case 'orgVdcNetwork':
        recordElement = 'OrgVdcNetworkRecord';
        records = scoped(state.orgs.flatMap((o) => o.vdcs.flatMap((v) => v.networks.map((n) => ({ ...n, org: o })))))
          .map((n) => ({
            href: href.network(b, n.id),
            id: `urn:vcloud:network:${n.id}`,
            name: n.name,
            vdc: href.vdc(b, n.vdc.id),
            vdcName: n.vdc.name,
            linkType: n.linkType === 'routed' ? '1' : n.linkType === 'isolated' ? '2' : '0',
            defaultGateway: n.gateway,
            netmask: n.netmask,
            dns1: n.dns1 ?? '',
            dns2: n.dns2 ?? ' ',
          }));
        break;
      case 'adminOrgVdcStorageProfile':
      case 'orgVdcStorageProfile':
        recordElement = type === 'adminOrgVdcStorageProfile' ? 'AdminOrgVdcStorageProfileRecord' : 'OrgVdcStorageProfileRecord';
        records = scoped(state.orgs.flatMap((o) => o.vdcs.flatMap((v) => v.storagePolicies.map((p) => ({ ...p, org: o })))))
          .map((p) => ({
            href: href.storagePolicy(b, p.id),
            id: `urn:vcloud:vdcstorageProfile:${p.id}`,
            name: p.name,
            vdc: href.vdc(b, p.vdc.id),
            vdcName: p.vdc.name,
            isEnabled: 'true',
            isDefaultStorageProfile: String(p.isDefault),
          }));
        break;
      default:
        return vcdError(400, 'BAD_REQUEST', `Unsupported query type "${type}".`);
    }
    const filter = q.get('filter');
    if (filter !== null) {
      const clauses = filter.split(';').map((c) => /^(\w+)==(.*)$/.exec(c));
      if (clauses.some((c) => c === null)) return vcdError(400, 'BAD_REQUEST', `The simulator only supports filters of the form a==b;c==d, got "${filter}".`);
      records = records.filter((r) => clauses.every((c) => c !== null && r[c[1] ?? ''] === (c[2] ?? '').replace(/\\(.)/g, '$1')));
    }
    const sortAsc = q.get('sortAsc');
    const sortDesc = q.get('sortDesc');
    const sortKey = sortAsc ?? sortDesc ?? 'id';
    records.sort((x, y) => (x[sortKey] ?? '').localeCompare(y[sortKey] ?? '') * (sortDesc !== null && sortAsc === null ? -1 : 1));
    const pageSize = Math.min(128, Math.max(1, Number.parseInt(q.get('pageSize') ?? '25', 10) || 25));
    const page = Math.max(1, Number.parseInt(q.get('page') ?? '1', 10) || 1);
    const total = records.length;
    if (total > 0 && (page - 1) * pageSize >= total) return vcdError(400, 'BAD_REQUEST', `Page ${page} is out of range.`);
    return xml(
      200,
      renderQuery(b, { type, recordElement, page, pageSize, total, records: records.slice((page - 1) * pageSize, page * pageSize), query: q }),
      XML_TYPES.Query,
    );
  }

  // ---- the server -----------------------------------------------------------------------------------------
  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', base);
    const pathWithQuery = url.pathname + url.search;
    const send = (r: SimResponse) => {
      requests.push({ method, path: pathWithQuery, status: r.status });
      const headers: Record<string, string> = { ...(r.headers ?? {}) };
      if (r.body !== undefined) headers['content-type'] = `${r.contentType ?? 'application/*+xml'};version=${/version=([\d.]+)/.exec(req.headers.accept ?? '')?.[1] ?? '39.1'}`;
      res.writeHead(r.status, headers);
      res.end(r.body);
    };

    if (latencyMs > 0) await sleepMs(latencyMs);
    for (const rule of faults) {
      if (rule.remaining <= 0) continue;
      if (rule.method !== undefined && rule.method !== method) continue;
      if (rule.path !== undefined && !(typeof rule.path === 'string' ? pathWithQuery.includes(rule.path) : rule.path.test(pathWithQuery))) continue;
      rule.remaining--;
      if (rule.latencyMs) await sleepMs(rule.latencyMs);
      if (rule.reset) {
        requests.push({ method, path: pathWithQuery, status: 0 });
        req.socket.destroy();
        return;
      }
      if (rule.status !== undefined) {
        send(
          rule.status === 429
            ? { status: 429, body: renderError(429, rule.minorErrorCode ?? 'TOO_MANY_REQUESTS', 'Too many requests'), contentType: XML_TYPES.Error }
            : vcdError(rule.status, rule.minorErrorCode ?? (rule.status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST'), `Simulated ${rule.status}.`),
        );
        return;
      }
    }

    const r = routes.find((x) => x.method === method && x.pattern.test(url.pathname));
    if (r === undefined) {
      const known = routes.some((x) => x.pattern.test(url.pathname));
      send(known ? vcdError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${url.pathname}.`) : vcdError(404, 'RESOURCE_NOT_FOUND', `Resource not found: ${url.pathname}.`));
      return;
    }
    const params = (r.pattern.exec(url.pathname) ?? []).slice(1).map((p) => p ?? '');
    const isLogin = /^\/(cloudapi\/1\.0\.0\/sessions(\/provider)?|oauth\/)/.test(url.pathname) && method === 'POST';
    let session: SimSession | null = null;
    if (url.pathname !== '/api/versions' && !isLogin) {
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      session = bearer === undefined ? null : (sessions.get(bearer) ?? null);
      if (session !== null && session.expiresAt <= Date.now()) {
        sessions.delete(session.token);
        session = null;
      }
      if (session === null) {
        send(vcdError(401, 'UNAUTHORIZED', 'The session is not authenticated or has expired; log in again.'));
        return;
      }
    }
    if (url.pathname.startsWith('/api/') && url.pathname !== '/api/versions') {
      const version = /version=([\d.]+)/.exec(req.headers.accept ?? '')?.[1];
      if (version === undefined || !versions.includes(version)) {
        send(vcdError(406, 'NOT_ACCEPTABLE', `Send Accept: application/*+xml;version=<v> with a supported version (${versions.join(', ')}).`));
        return;
      }
    }
    // Login routes read the Authorization and Accept headers through the query-less context.
    if (isLogin) {
      url.searchParams.set('__authorization', req.headers.authorization ?? '');
      url.searchParams.set('__accept', req.headers.accept ?? '');
    }
    const ctx: SimRequestContext = { method, url, params, session, body, render: { base, admin: session?.org === null, now: Date.now() }, state, sim };
    try {
      send(await r.handler(ctx));
    } catch (err) {
      send(vcdError(500, 'INTERNAL_SERVER_ERROR', err instanceof Error ? err.message : String(err)));
    }
  }

  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500);
        res.end(String(err));
      }
    });
  };
  const server = options.tls ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, listener) : http.createServer(listener);
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  base = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  const sim: VcdSimulator = {
    url: base,
    state,
    requests,
    resetRequests: () => {
      requests.length = 0;
    },
    faults: {
      add: (rule) => faults.push({ ...rule, remaining: rule.times ?? Number.POSITIVE_INFINITY }),
      clear: () => {
        faults.length = 0;
      },
    },
    setLatency: (ms) => {
      latencyMs = ms;
    },
    setTaskBehaviour: (b) => {
      if (b.durationMs !== undefined) taskBehaviour.durationMs = b.durationMs;
      if (b.failOperations !== undefined) taskBehaviour.fail = b.failOperations;
    },
    expireSessions: () => {
      for (const s of sessions.values()) s.expiresAt = 0;
    },
    addRoute: (method, pattern, handler) => {
      routes.unshift({ method, pattern, handler });
    },
    vapps: allVApps,
    findVApp: (key) => findVApp(key),
    findVm: (key) => findVm(key),
    setMaintenance: (key, on) => {
      const vapp = findVApp(key);
      if (!vapp) throw new Error(`no vApp ${key} in the simulator`);
      vapp.inMaintenanceMode = on;
    },
    startTask: (key, o) => {
      const vapp = findVApp(key);
      if (!vapp) throw new Error(`no vApp ${key} in the simulator`);
      const task = createTask(
        { href: `${base}/api/vApp/vapp-${vapp.id}`, name: vapp.name, type: XML_TYPES.VApp },
        o.operationName ?? 'vappUpdateVm',
        `Updating vApp ${vapp.name}`,
        undefined,
        { durationMs: o.durationMs, fail: o.fail ?? false },
      );
      vapp.tasks.push(task);
      return task;
    },
    createTask: (owner, operationName, operation, apply) => createTask(owner, operationName, operation, apply),
    disksOf: (moref) => (allVms().find((v) => v.moref === moref)?.disks ?? []).map((d) => ({ instanceId: d.instanceId, sizeBytes: d.sizeBytes, path: d.path })),
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return sim;
}

