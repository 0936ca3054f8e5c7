/**
 * The vCD API client: version negotiation, bearer sessions with re-login on expiry, retries with backoff on
 * 5xx / 429 / network errors (never on other 4xx), a concurrency limit, timeouts, typed errors, the query
 * service with paging, tasks and maintenance mode. XML in, `XmlNode` out (xml.ts).
 *
 * Credentials and tokens are `Secret`s: they are never logged, and never sent to another origin than the
 * configured vCD URL (hrefs from responses are checked).
 */
import { Limiter } from '../limiter.js';
import { setTimeout as sleepMs } from 'node:timers/promises';
import type { Log } from '../log.js';
import type { Secret } from '../secret.js';
import { mapError } from './api-errors.js';
import { VcdAuthError, VcdNetworkError, VcdTaskError, VcdTimeoutError, VcdXmlError } from './errors.js';
import { createHttpTransport, type HttpResponse, type HttpTransport, type TlsSettings } from './http.js';
import { describeCredentials, loginRequest, readLoginResponse, type VcdCredentials } from './session.js';
import { negotiateVersion, parseSupportedVersions } from './versions.js';
import { attr, child, DEFAULT_MAX_XML_BYTES, parseXml, textOf, type XmlNode } from './xml.js';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly retries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export interface VcdClientOptions {
  /** Base URL of the cell, e.g. https://vcd.example.com (a path prefix is allowed). */
  readonly url: string;
  readonly credentials: VcdCredentials;
  readonly tls?: TlsSettings;
  /** Force an API version instead of negotiating (must be offered by the server). */
  readonly apiVersion?: string;
  /** Per-request timeout. */
  readonly timeoutMs?: number;
  readonly maxResponseBytes?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** Requests in flight at once. */
  readonly concurrency?: number;
  readonly log?: Log;
  /** Injected transport, for tests. */
  readonly transport?: HttpTransport;
  /** Prefix of X-VMWARE-VCLOUD-CLIENT-REQUEST-ID, so vCD logs can be correlated. */
  readonly requestIdPrefix?: string;
}

export interface RequestOptions {
  readonly body?: string;
  readonly contentType?: string;
  /** Retry this non-idempotent request on 5xx/429/network errors too (safe operations such as exitMaintenanceMode). */
  readonly retry?: boolean;
  /** Status codes that are not errors for this call (besides 2xx). */
  readonly okStatuses?: readonly number[];
  readonly accept?: string;
}

export interface XmlResponse {
  readonly status: number;
  readonly node: XmlNode | null;
  readonly text: string;
  readonly headers: HttpResponse['headers'];
}

export interface ClientStats {
  /** HTTP requests sent, retries and logins included. */
  requests: number;
  retries: number;
  logins: number;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const TERMINAL_TASK = new Set(['success', 'error', 'canceled', 'aborted']);

export class VcdClient {
  readonly baseUrl: URL;
  readonly stats: ClientStats = { requests: 0, retries: 0, logins: 0 };
  #version: string | undefined;
  #token: Secret | undefined;
  #tokenGeneration = 0;
  #loginInFlight: Promise<void> | undefined;
  #refreshToken: Secret | undefined;
  readonly #options: VcdClientOptions;
  readonly #transport: HttpTransport;
  readonly #retry: RetryPolicy;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #limit: Limiter;
  readonly #log: Log | undefined;
  #requestCounter = 0;
  readonly #prefix: string;

  constructor(options: VcdClientOptions) {
    this.#options = options;
    const base = new URL(options.url);
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new VcdNetworkError(`vCD URL must be https:// (or http:// for the simulator), got ${options.url}`, { code: 'VCD_URL_INVALID' });
    this.#prefix = base.pathname.replace(/\/+$/, '');
    this.baseUrl = base;
    this.#transport = options.transport ?? createHttpTransport({ tls: options.tls, maxSockets: Math.max(4, options.concurrency ?? 8) });
    this.#retry = { retries: 4, baseDelayMs: 200, maxDelayMs: 5_000, ...options.retry };
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_XML_BYTES;
    this.#limit = new Limiter(options.concurrency ?? 8);
    this.#log = options.log;
  }

  /** Negotiates the API version and logs in. */
  static async connect(options: VcdClientOptions): Promise<VcdClient> {
    const client = new VcdClient(options);
    try {
      await client.negotiate();
      await client.login();
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  get version(): string {
    if (this.#version === undefined) throw new VcdAuthError('the vCD client is not connected: call VcdClient.connect()');
    return this.#version;
  }

  async negotiate(): Promise<string> {
    const res = await this.#send('GET', '/api/versions', { accept: 'application/*+xml' }, false);
    if (res.status !== 200) throw this.#error(res, 'GET', '/api/versions');
    const offered = parseSupportedVersions(parseXml(res.body, { maxBytes: this.#maxBytes }));
    this.#version = negotiateVersion(offered, this.#options.apiVersion);
    this.#log?.debug('vCD API version negotiated', { version: this.#version, offered: offered.map((v) => v.version).join(',') });
    return this.#version;
  }

  /** Logs in (again); concurrent callers share one login. */
  async login(): Promise<void> {
    if (this.#loginInFlight) return this.#loginInFlight;
    this.#loginInFlight = this.#doLogin().finally(() => {
      this.#loginInFlight = undefined;
    });
    return this.#loginInFlight;
  }

  async #doLogin(): Promise<void> {
    const credentials = this.#options.credentials;
    const req = loginRequest(credentials, this.version, this.#refreshToken);
    this.stats.logins++;
    const res = await this.#send(req.method, req.path, { body: req.body, contentType: req.headers['content-type'], accept: req.headers.accept ?? "application/json", retry: true }, false, {
      authorization: req.headers.authorization,
    });
    if (res.status === 401 || res.status === 403 || res.status === 400) {
      throw new VcdAuthError(
        `vCD rejected the login of ${describeCredentials(credentials)} (HTTP ${res.status}); check the user, organization and password or token` +
          (credentials.kind === 'password' && credentials.org.toLowerCase() !== 'system' ? '' : ' (provider logins use the System organization)'),
        { status: res.status },
      );
    }
    if (res.status < 200 || res.status >= 300) throw this.#error(res, req.method, req.path);
    const session = readLoginResponse(credentials, res.headers, res.body);
    if (session === null) throw new VcdAuthError(`vCD accepted the login of ${describeCredentials(credentials)} but returned no access token`);
    this.#token = session.accessToken;
    this.#tokenGeneration++;
    if (credentials.kind === 'apiToken' && credentials.rotating && session.refreshToken) {
      this.#refreshToken = session.refreshToken;
      await credentials.onRotate?.(session.refreshToken);
    }
    this.#log?.debug('logged in to vCD', { who: describeCredentials(credentials), version: this.version });
  }

  /** Ends the session (best effort) and closes connections. */
  async logout(): Promise<void> {
    if (this.#token !== undefined) {
      try {
        await this.#send('DELETE', '/cloudapi/1.0.0/sessions/current', { accept: `application/json;version=${this.version}` }, true);
      } catch (err) {
        this.#log?.debug('vCD logout failed', { error: err instanceof Error ? err.message : String(err) });
      }
      this.#token = undefined;
    }
    this.close();
  }

  close(): void {
    this.#transport.close();
  }

  /** GET an XML document by path (`/api/...`) or by an href the server returned. */
  async getXml(pathOrHref: string): Promise<XmlResponse & { node: XmlNode }> {
    const res = await this.requestXml('GET', pathOrHref);
    if (res.node === null) throw new VcdXmlError(`GET ${this.#pathOf(pathOrHref)} returned an empty body`);
    return res as XmlResponse & { node: XmlNode };
  }

  /** Any legacy-API call; throws the typed error for non-2xx answers (except `okStatuses`). */
  async requestXml(method: string, pathOrHref: string, options: RequestOptions = {}): Promise<XmlResponse> {
    const path = this.#pathOf(pathOrHref);
    const res = await this.#send(method, path, { accept: `application/*+xml;version=${this.version}`, ...options }, true);
    if ((res.status < 200 || res.status >= 300) && !(options.okStatuses ?? []).includes(res.status)) throw this.#error(res, method, path);
    const text = res.body.toString('utf8');
    return { status: res.status, node: text.trim() === '' ? null : parseXml(res.body, { maxBytes: this.#maxBytes }), text, headers: res.headers };
  }

  /** Polls a task (href or Task node) with backoff until it ends; a failed task is a VcdTaskError. */
  async waitForTask(task: string | XmlNode, options: { timeoutMs?: number; initialDelayMs?: number; maxDelayMs?: number } = {}): Promise<XmlNode> {
    let node = typeof task === 'string' ? undefined : task;
    const href = typeof task === 'string' ? task : attr(task, 'href');
    if (href === undefined) throw new VcdXmlError('task without href');
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    let delay = options.initialDelayMs ?? 200;
    for (;;) {
      if (node !== undefined) {
        const status = attr(node, 'status') ?? '';
        if (TERMINAL_TASK.has(status)) {
          if (status === 'success') return node;
          const error = child(node, 'Error');
          throw new VcdTaskError({
            taskHref: href,
            taskStatus: status,
            operation: attr(node, 'operation') ?? attr(node, 'operationName') ?? null,
            majorErrorCode: attr(error, 'majorErrorCode') ?? null,
            minorErrorCode: attr(error, 'minorErrorCode') ?? null,
            vcdMessage: attr(error, 'message') ?? textOf(node, 'Details'),
          });
        }
        if (Date.now() + delay > deadline) {
          throw new VcdTimeoutError(`vCD task ${attr(node, 'operation') ?? href} still ${status || 'pending'} after ${options.timeoutMs ?? 600_000} ms`);
        }
        await sleepMs(delay);
        delay = Math.min(Math.ceil(delay * 1.6), options.maxDelayMs ?? 5_000);
      }
      node = (await this.getXml(href)).node;
    }
  }

  /** Follows a 202 Task answer or an entity with embedded Tasks to completion. */
  async waitForResponseTasks(res: XmlResponse, options?: { timeoutMs?: number }): Promise<void> {
    if (res.node === null) return;
    if (res.node.name === 'Task') {
      await this.waitForTask(res.node, options);
      return;
    }
    for (const task of child(res.node, 'Tasks')?.children.filter((c) => c.name === 'Task') ?? []) await this.waitForTask(task, options);
  }

  // ---- internals ----------------------------------------------------------------------------------------

  #pathOf(pathOrHref: string): string {
    if (pathOrHref.startsWith('/')) return pathOrHref;
    let url: URL;
    try {
      url = new URL(pathOrHref);
    } catch {
      throw new VcdXmlError(`"${pathOrHref}" is neither a path nor a URL`);
    }
    if (url.origin !== this.baseUrl.origin) {
      // Never send the bearer token to another host, whatever a document says.
      throw new VcdXmlError(`vCD returned a link to ${url.origin}, outside ${this.baseUrl.origin}; refusing to follow it`);
    }
    const prefix = this.#prefix;
    const p = prefix !== '' && url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname;
    return p + url.search;
  }

  #error(res: HttpResponse, method: string, path: string): Error {
    return mapError(res.status, res.headers['content-type'], res.body, method, path.split('?')[0] ?? path);
  }

  async #send(
    method: string,
    path: string,
    options: RequestOptions & { accept: string },
    authenticated: boolean,
    extraHeaders: Record<string, string | undefined> = {},
  ): Promise<HttpResponse> {
    const retryable = IDEMPOTENT.has(method) || options.retry === true;
    let reloggedIn = false;
    for (let attempt = 0; ; attempt++) {
      const generation = this.#tokenGeneration;
      const headers: Record<string, string> = {
        accept: options.accept,
        'x-vmware-vcloud-client-request-id': `${this.#options.requestIdPrefix ?? 'vcdb'}-${++this.#requestCounter}`,
      };
      for (const [k, v] of Object.entries(extraHeaders)) if (v !== undefined) headers[k] = v;
      if (options.contentType !== undefined) headers['content-type'] = options.contentType;
      if (authenticated) {
        if (this.#token === undefined) await this.login();
        headers.authorization = `Bearer ${this.#token?.reveal() ?? ''}`;
      }
      let res: HttpResponse | undefined;
      let failure: unknown;
      await this.#limit.acquire();
      try {
        this.stats.requests++;
        res = await this.#transport.request({
          method,
          url: new URL(this.baseUrl.origin + this.#prefix + path),
          headers,
          body: options.body,
          timeoutMs: this.#timeoutMs,
          maxBytes: this.#maxBytes,
        });
      } catch (err) {
        failure = err;
      } finally {
        this.#limit.release();
      }

      if (res !== undefined && res.status === 401 && authenticated && !reloggedIn) {
        // The token expired (idle timeout) or was revoked: log in once more and repeat the request.
        reloggedIn = true;
        this.#log?.info('vCD session expired; logging in again', { path: path.split('?')[0] });
        if (generation === this.#tokenGeneration) {
          this.#token = undefined;
          await this.login();
        }
        attempt--;
        continue;
      }
      if (res !== undefined && res.status === 401 && authenticated) {
        throw new VcdAuthError(`vCD rejected the session of ${describeCredentials(this.#options.credentials)} even after logging in again (${method} ${path.split('?')[0]})`, { status: 401 });
      }

      const transient =
        failure !== undefined
          ? failure instanceof VcdNetworkError || failure instanceof VcdTimeoutError
            ? !isPermanentNetworkError(failure)
            : false
          : res !== undefined && (res.status >= 500 || res.status === 429);
      if (!transient || !retryable || attempt >= this.#retry.retries) {
        if (failure !== undefined) throw failure;
        return res as HttpResponse;
      }
      this.stats.retries++;
      const delay = backoff(attempt, this.#retry);
      this.#log?.debug('retrying vCD request', {
        method,
        path: path.split('?')[0],
        attempt: attempt + 1,
        reason: res !== undefined ? `HTTP ${res.status}` : failure instanceof Error ? failure.message : String(failure),
        delayMs: delay,
      });
      await sleepMs(delay);
    }
  }
}

function isPermanentNetworkError(err: VcdNetworkError | VcdTimeoutError): boolean {
  return ['VCD_TLS_PIN_MISMATCH', 'VCD_TLS_UNTRUSTED', 'VCD_TLS_CONFIG', 'VCD_RESPONSE_TOO_LARGE', 'VCD_URL_INVALID'].includes(err.code);
}

/** Exponential backoff with full jitter. */
export function backoff(attempt: number, policy: RetryPolicy): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(cap / 2 + Math.random() * (cap / 2));
}

