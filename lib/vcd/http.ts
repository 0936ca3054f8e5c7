/**
 * The HTTP(S) transport of the vCD client: node:http/node:https with keep-alive, a per-request timeout, a cap
 * on response size, and TLS that is never silently disabled:
 *
 * - default: the system CA store, hostname checked;
 * - `ca`: a custom CA bundle (PEM) instead, hostname checked;
 * - `fingerprint`: the server certificate is pinned by its SHA-256 fingerprint. With `ca` as well, the chain
 *   is verified *and* the leaf must match the pin. Without `ca`, the chain is not checked against a CA
 *   (vCD's private certificates are often self-signed) but the connection is only used once the leaf
 *   certificate matches the pin exactly, before any byte of the request (and its credentials) is sent.
 */
import { createHash, X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { VcdNetworkError, VcdTimeoutError } from './errors.js';

export interface TlsSettings {
  /** PEM CA bundle to trust instead of the system store. */
  readonly ca?: string | Buffer;
  /** SHA-256 fingerprint of the server certificate, hex with or without colons. */
  readonly fingerprint?: string;
}

export interface HttpRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly body?: string | Buffer;
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface HttpTransport {
  request(req: HttpRequest): Promise<HttpResponse>;
  close(): void;
}

/** The response body is over the configured limit. */
export class ResponseTooLargeError extends VcdNetworkError {
  constructor(url: string, maxBytes: number) {
    super(`the response of ${url} is larger than ${maxBytes} bytes; raise maxResponseBytes if this vApp is really that big`, {
      code: 'VCD_RESPONSE_TOO_LARGE',
    });
  }
}

export function normaliseFingerprint(value: string): string {
  const hex = value.replace(/^sha256[:=]/i, '').replace(/[:\s-]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new VcdNetworkError(`"${value}" is not a SHA-256 certificate fingerprint (64 hex digits, colons allowed)`, {
      code: 'VCD_TLS_CONFIG',
    });
  }
  return hex;
}

/** SHA-256 fingerprint (lower-case hex) of a DER or PEM certificate. */
export function certificateFingerprint(cert: Buffer | string): string {
  const der = typeof cert === 'string' || cert.subarray(0, 10).toString().startsWith('-----') ? new X509Certificate(cert).raw : cert;
  return createHash('sha256').update(der).digest('hex');
}

class PinnedAgent extends https.Agent {
  readonly #pin: string;
  readonly #verifyChain: boolean;

  constructor(options: https.AgentOptions & { pin: string; verifyChain: boolean }) {
    const { pin, verifyChain, ...rest } = options;
    super(rest);
    this.#pin = pin;
    this.#verifyChain = verifyChain;
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const socket = tls.connect({
      ...(options as tls.ConnectionOptions),
      // Chain verification is replaced by the exact pin only when no CA bundle was given.
      rejectUnauthorized: this.#verifyChain,
    });
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      if (err) {
        socket.destroy();
        callback?.(err, socket);
      } else callback?.(null, socket);
    };
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate(false);
      const actual = cert?.raw ? createHash('sha256').update(cert.raw).digest('hex') : '';
      if (actual !== this.#pin) {
        finish(
          new VcdNetworkError(
            `the vCD server certificate fingerprint ${actual || '(none)'} does not match the pinned ${this.#pin}; check --fingerprint or whether someone intercepts the connection`,
            { code: 'VCD_TLS_PIN_MISMATCH' },
          ),
        );
        return;
      }
      finish(null);
    });
    socket.once('error', (err) => finish(err));
    return undefined;
  }
}

export function createHttpTransport(options: { tls?: TlsSettings; maxSockets?: number } = {}): HttpTransport {
  const maxSockets = options.maxSockets ?? 32;
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets });
  const ca = options.tls?.ca;
  const httpsAgent =
    options.tls?.fingerprint !== undefined
      ? new PinnedAgent({ keepAlive: true, maxSockets, ca, pin: normaliseFingerprint(options.tls.fingerprint), verifyChain: ca !== undefined })
      : new https.Agent({ keepAlive: true, maxSockets, ca, rejectUnauthorized: true });

  return {
    request(req) {
      return new Promise<HttpResponse>((resolve, reject) => {
        const isHttps = req.url.protocol === 'https:';
        const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, 'utf8');
        const headers: Record<string, string> = { ...req.headers };
        if (body !== undefined) headers['content-length'] = String(body.length);
        const requestFn = isHttps ? https.request : http.request;
        const clientRequest = requestFn(req.url, { method: req.method, headers, agent: isHttps ? httpsAgent : httpAgent }, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > req.maxBytes) {
              res.destroy();
              clientRequest.destroy();
              reject(new ResponseTooLargeError(`${req.method} ${req.url.pathname}`, req.maxBytes));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', (err) => reject(networkError(req, err)));
        });
        clientRequest.setTimeout(req.timeoutMs, () => {
          clientRequest.destroy(new VcdTimeoutError(`${req.method} ${req.url.pathname} got no answer within ${req.timeoutMs} ms`));
        });
        clientRequest.on('error', (err) => reject(err instanceof VcdTimeoutError || err instanceof VcdNetworkError ? err : networkError(req, err)));
        if (body !== undefined) clientRequest.write(body);
        clientRequest.end();
      });
    },
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

function networkError(req: HttpRequest, err: Error): VcdNetworkError {
  const code = (err as NodeJS.ErrnoException).code;
  const tlsHint =
    code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS/.test(code)
      ? ' (the server certificate is not trusted: pass --ca-file with its CA bundle or --fingerprint with its SHA-256 fingerprint)'
      : '';
  return new VcdNetworkError(`cannot reach vCD at ${req.url.origin} for ${req.method} ${req.url.pathname}: ${err.message}${tlsHint}`, {
    cause: err,
    code: tlsHint ? 'VCD_TLS_UNTRUSTED' : 'VCD_NETWORK_ERROR',
  });
}
