/**
 * The vim25 SOAP transport: one POST per call to `<vcenter>/sdk`, the `vmware_soap_session` cookie kept after
 * Login, faults mapped to typed errors. It reuses the vCD client's HTTP layer (TLS pinning by SHA-256
 * fingerprint, timeouts, size caps) and its XML parser (DOCTYPE and ENTITY refused, namespaces resolved).
 */
import { createHttpTransport, type HttpResponse, type HttpTransport, type TlsSettings } from '../vcd/http.js';
import { BackupError } from '../errors.js';
import { attr, child, escapeXml, NS, nsAttr, parseXml, textOf, type XmlNode } from '../vcd/xml.js';
import { faultToError, VsphereNetworkError, VsphereXmlError } from './errors.js';

export const SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/';
export const VIM25 = 'urn:vim25';
export const SESSION_COOKIE = 'vmware_soap_session';

/** govmomi `types.ManagedObjectReference`. */
export interface ManagedObjectReference {
  readonly type: string;
  readonly value: string;
}

export interface SoapClientOptions {
  /** `https://vcenter.example/sdk` (the path defaults to /sdk). */
  readonly url: string | URL;
  readonly tls?: TlsSettings;
  /** Per-request timeout; task waits poll, so no single request needs long. */
  readonly timeoutMs?: number;
  readonly maxResponseBytes?: number;
  /** The SOAPAction version (`urn:vim25/<version>`); 7.0 is the oldest vCenter vCD 10.4 supports. */
  readonly apiVersion?: string;
  readonly transport?: HttpTransport;
}

export class SoapClient {
  readonly sdkUrl: URL;
  readonly #transport: HttpTransport;
  readonly #ownsTransport: boolean;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #apiVersion: string;
  #cookie: string | null = null;

  constructor(options: SoapClientOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new VsphereNetworkError(`${url.protocol} is not a vCenter URL scheme: use https://vcenter/sdk`, { code: 'VSPHERE_BAD_URL' });
    }
    if (url.pathname === '/' || url.pathname === '') url.pathname = '/sdk';
    url.username = '';
    url.password = '';
    this.sdkUrl = url;
    this.#ownsTransport = options.transport === undefined;
    this.#transport = options.transport ?? createHttpTransport({ tls: options.tls });
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#maxBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;
    this.#apiVersion = options.apiVersion ?? '7.0';
  }

  /** The session cookie value (for datastore HTTP access); null before Login. */
  get sessionCookie(): string | null {
    return this.#cookie;
  }

  set sessionCookie(value: string | null) {
    this.#cookie = value;
  }

  /**
   * Calls `method` on `self` with the given (already serialised) parameters and returns the response
   * element (`<methodResponse>`); use `returnval(s)` to read it.
   */
  async call(method: string, self: ManagedObjectReference, params = ''): Promise<XmlNode> {
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>' +
      `<soapenv:Envelope xmlns:soapenv="${SOAP_ENV}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="${NS.xsi}">` +
      `<soapenv:Body><${method} xmlns="${VIM25}">${moRef('_this', self)}${params}</${method}></soapenv:Body></soapenv:Envelope>`;
    const headers: Record<string, string> = {
      'content-type': 'text/xml; charset=utf-8',
      soapaction: `"urn:vim25/${this.#apiVersion}"`,
    };
    if (this.#cookie !== null) headers.cookie = `${SESSION_COOKIE}=${this.#cookie}`;
    const res = await this.request({ method: 'POST', url: this.sdkUrl, headers, body });
    this.#rememberCookie(res);
    return parseSoapResponse(res, method);
  }

  /** A raw HTTP request on the same connection pool and TLS settings (datastore file access). */
  async request(req: { method: string; url: URL; headers: Record<string, string>; body?: string; maxBytes?: number }): Promise<HttpResponse> {
    try {
      return await this.#transport.request({ ...req, timeoutMs: this.#timeoutMs, maxBytes: req.maxBytes ?? this.#maxBytes });
    } catch (err) {
      throw networkError(this.sdkUrl, req.method, req.url, err);
    }
  }

  close(): void {
    if (this.#ownsTransport) this.#transport.close();
  }

  #rememberCookie(res: HttpResponse): void {
    const raw = res.headers['set-cookie'];
    for (const line of raw ?? []) {
      const m = new RegExp(`^\\s*${SESSION_COOKIE}=("?)([^";]*)\\1`).exec(line);
      if (m?.[2] !== undefined) this.#cookie = m[2];
    }
  }
}

function networkError(sdkUrl: URL, method: string, url: URL, err: unknown): Error {
  if (!(err instanceof BackupError)) {
    return new VsphereNetworkError(`cannot reach vCenter at ${sdkUrl.origin} for ${method} ${url.pathname}: ${String(err)}`, { cause: err });
  }
  switch (err.code) {
    case 'VCD_TLS_PIN_MISMATCH':
      return new VsphereNetworkError(
        `the certificate of vCenter ${sdkUrl.origin} does not match the pinned SHA-256 thumbprint; check --thumbprint (openssl x509 -noout -fingerprint -sha256) or whether someone intercepts the connection`,
        { cause: err, code: 'VSPHERE_TLS_PIN_MISMATCH' },
      );
    case 'VCD_TLS_UNTRUSTED':
      return new VsphereNetworkError(
        `the certificate of vCenter ${sdkUrl.origin} is not trusted: pass its CA bundle or pin its SHA-256 thumbprint (--thumbprint)`,
        { cause: err, code: 'VSPHERE_TLS_UNTRUSTED' },
      );
    case 'VCD_TLS_CONFIG':
      return new VsphereNetworkError(err.message, { cause: err, code: 'VSPHERE_TLS_CONFIG' });
    case 'VCD_TIMEOUT':
      return new VsphereNetworkError(`vCenter ${sdkUrl.origin} did not answer ${method} ${url.pathname} in time`, { cause: err, code: 'VSPHERE_TIMEOUT' });
    default:
      return new VsphereNetworkError(`cannot reach vCenter at ${sdkUrl.origin} for ${method} ${url.pathname}: ${err.message}`, { cause: err });
  }
}

/** Parses a SOAP answer: the `<methodResponse>` element, or the fault as a typed error. */
export function parseSoapResponse(res: HttpResponse, method: string): XmlNode {
  const type = String(res.headers['content-type'] ?? '');
  if (!/xml/i.test(type) && res.status !== 200 && res.status !== 500) {
    throw new VsphereNetworkError(`vCenter answered HTTP ${res.status} (${type || 'no content type'}) to ${method}; is the URL the /sdk endpoint of a vCenter?`, {
      code: 'VSPHERE_HTTP_ERROR',
    });
  }
  let root: XmlNode;
  try {
    root = parseXml(res.body);
  } catch (err) {
    throw new VsphereXmlError(`the answer to ${method} is not acceptable XML (HTTP ${res.status}): ${(err as Error).message}`, { cause: err });
  }
  if (root.name !== 'Envelope' || root.ns !== SOAP_ENV) throw new VsphereXmlError(`the answer to ${method} is not a SOAP envelope (HTTP ${res.status})`);
  const body = child(root, 'Body', SOAP_ENV);
  const fault = child(body, 'Fault', SOAP_ENV);
  if (fault !== undefined) throw faultFromNode(fault);
  const response = child(body, `${method}Response`, VIM25);
  if (response === undefined || res.status !== 200) {
    throw new VsphereXmlError(`the answer to ${method} (HTTP ${res.status}) has no ${method}Response`);
  }
  return response;
}

function faultFromNode(fault: XmlNode): Error {
  const message = textOf(fault, 'faultstring') ?? 'no message';
  const detail = child(fault, 'detail')?.children[0];
  if (detail === undefined) return faultToError('SystemError', message);
  return faultToError(faultType(detail), message, {
    moref: textOf(detail, 'obj'),
    file: textOf(detail, 'file'),
    privilegeId: textOf(detail, 'privilegeId'),
    property: textOf(detail, 'invalidProperty'),
  });
}

/** A fault's vim25 type: its xsi:type, or the element name without the `Fault` suffix. */
export function faultType(node: XmlNode): string {
  const xsiType = nsAttr(node, 'type', NS.xsi);
  if (xsiType !== undefined) return xsiType.replace(/^.*:/, '');
  return node.name.replace(/Fault$/, '');
}

// ---- reading ----------------------------------------------------------------------------------------

export function moRefOf(node: XmlNode | undefined, what: string): ManagedObjectReference {
  const type = attr(node, 'type');
  const value = textOf(node);
  if (node === undefined || type === undefined || value === null) throw new VsphereXmlError(`${what}: expected a managed object reference`);
  return { type, value };
}

export function returnval(response: XmlNode, what: string): XmlNode {
  const node = child(response, 'returnval');
  if (node === undefined) throw new VsphereXmlError(`${what}: the answer has no returnval`);
  return node;
}

/** The xsi:type of a value (`VirtualDisk`), prefix removed; null when absent. */
export function xsiType(node: XmlNode | undefined): string | null {
  const t = nsAttr(node, 'type', NS.xsi);
  return t === undefined ? null : t.replace(/^.*:/, '');
}

// ---- writing ----------------------------------------------------------------------------------------

export function moRef(name: string, ref: ManagedObjectReference): string {
  return `<${name} type="${escapeXml(ref.type)}">${escapeXml(ref.value)}</${name}>`;
}

export function el(name: string, value: string | number | boolean): string {
  return `<${name}>${typeof value === 'string' ? escapeXml(value) : String(value)}</${name}>`;
}

/** An element whose content is already XML. */
export function raw(name: string, content: string, xsiTypeName?: string): string {
  return xsiTypeName === undefined ? `<${name}>${content}</${name}>` : `<${name} xsi:type="${xsiTypeName}">${content}</${name}>`;
}
