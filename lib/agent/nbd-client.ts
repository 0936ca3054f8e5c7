import net from 'node:net';
import { BackupError } from '../errors.js';

/*
 * An NBD client (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md): fixed newstyle
 * handshake, NBD_OPT_GO, structured replies, the base:allocation meta context, and pipelined READ, WRITE,
 * FLUSH and BLOCK_STATUS. Written for nbdkit (its vddk plugin in production, file/memory in tests) on a private
 * Unix socket; TCP works the same. Everything the server sends is validated before it is trusted: a reply
 * that does not fit fails the connection instead of landing in a disk buffer.
 */

// Handshake
const NBDMAGIC = 0x4e42444d41474943n;
const IHAVEOPT = 0x49484156454f5054n;
const OPT_REPLY_MAGIC = 0x3e889045565a9n;
const FLAG_FIXED_NEWSTYLE = 1 << 0;
const FLAG_NO_ZEROES = 1 << 1;
const OPT_GO = 7;
const OPT_STRUCTURED_REPLY = 8;
const OPT_SET_META_CONTEXT = 10;
const REP_ACK = 1;
const REP_INFO = 3;
const REP_META_CONTEXT = 4;
const REP_FLAG_ERROR = 0x8000_0000;
const REP_ERR_UNSUP = REP_FLAG_ERROR + 1;
const REP_ERR_POLICY = REP_FLAG_ERROR + 2;
const REP_ERR_INVALID = REP_FLAG_ERROR + 3;
const REP_ERR_TLS_REQD = REP_FLAG_ERROR + 5;
const REP_ERR_UNKNOWN = REP_FLAG_ERROR + 6;
const REP_ERR_SHUTDOWN = REP_FLAG_ERROR + 7;
const INFO_EXPORT = 0;
const INFO_BLOCK_SIZE = 3;

// Transmission flags (NBD_INFO_EXPORT)
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;

// Transmission
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const STRUCTURED_REPLY_MAGIC = 0x668e33ef;
const CMD_READ = 0;
const CMD_WRITE = 1;
const CMD_DISC = 2;
const CMD_FLUSH = 3;
const CMD_BLOCK_STATUS = 7;
const REPLY_FLAG_DONE = 1;
const REPLY_TYPE_NONE = 0;
const REPLY_TYPE_OFFSET_DATA = 1;
const REPLY_TYPE_OFFSET_HOLE = 2;
const REPLY_TYPE_BLOCK_STATUS = 5;
const REPLY_TYPE_ERROR_BIT = 1 << 15;
const REPLY_TYPE_ERROR_OFFSET = REPLY_TYPE_ERROR_BIT + 2;

// base:allocation status flags
const STATE_HOLE = 1;
const STATE_ZERO = 2;

export const BASE_ALLOCATION = 'base:allocation';

/** The spec's advice when a server states no maximum: larger requests may be refused or drop the connection. */
const DEFAULT_MAX_BLOCK = 32 * 1024 * 1024;
/** Option replies and non-data chunks are small; anything bigger is a broken or hostile server. */
const MAX_OPTION_REPLY = 64 * 1024;
const MAX_CHUNK_PAYLOAD = 16 * 1024 * 1024;
/** BLOCK_STATUS lengths are 32-bit; ask in slices well below that so the reply stays small. */
const MAX_STATUS_REQUEST = 1024 * 1024 * 1024;
const HEADER_SIMPLE = 16;
const HEADER_STRUCTURED = 20;

/** Base of every NBD failure; `code` says which, the message what to do. */
export class NbdError extends BackupError {}

/** The server answered a request with an error (NBD_EIO, NBD_ENOSPC, ...); the connection stays usable. */
export class NbdServerError extends NbdError {
  constructor(
    readonly errno: number,
    readonly command: string,
    message: string,
  ) {
    super(nbdErrorCode(errno), message);
  }
}

/** The server sent something the protocol does not allow; the connection is closed. */
export class NbdProtocolError extends NbdError {
  constructor(message: string) {
    super('NBD_PROTOCOL', message);
  }
}

/** The connection could not be made or was lost; every pending request fails with this. */
export class NbdConnectionError extends NbdError {}

/** Handshake refusals: unknown export, TLS required, unsupported options. */
export class NbdNegotiationError extends NbdError {}

const ERRNO_NAMES: Record<number, string> = { 1: 'EPERM', 5: 'EIO', 12: 'ENOMEM', 22: 'EINVAL', 28: 'ENOSPC', 75: 'EOVERFLOW', 95: 'ENOTSUP', 108: 'ESHUTDOWN' };

function nbdErrorCode(errno: number): string {
  return `NBD_${ERRNO_NAMES[errno] ?? `ERRNO_${errno}`}`;
}

function errnoAdvice(errno: number): string {
  switch (errno) {
    case 1:
      return 'the server refused the operation (EPERM): is the export read-only or the snapshot locked?';
    case 5:
      return 'the server could not read or write the disk (EIO): check the nbdkit log and the datastore or image underneath, then retry';
    case 12:
      return 'the server ran out of memory (ENOMEM): lower the agent read-ahead or give the proxy more memory';
    case 22:
      return 'the server rejected the request as invalid (EINVAL): the disk may have shrunk, or the request is not aligned to its block size';
    case 28:
      return 'the target has no space left (ENOSPC): grow the datastore or target disk and run the restore again';
    case 75:
      return 'the request was too large for the server (EOVERFLOW): lower the request size';
    case 95:
      return 'the server does not support this operation (ENOTSUP)';
    case 108:
      return 'the server is shutting down (ESHUTDOWN): retry once it is back';
    default:
      return `the server reported error ${errno}: check the nbdkit log`;
  }
}

/** Injectable timers, so tests can fire a timeout instead of waiting for one. */
export interface NbdTimers {
  set(onTimeout: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: NbdTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface NbdConnectOptions {
  /** A Unix socket (how the agent talks to the nbdkit it starts). */
  readonly socketPath?: string;
  readonly host?: string;
  readonly port?: number;
  /** @default '' (nbdkit's only export) */
  readonly exportName?: string;
  /** Ask for base:allocation so holes can be skipped. @default true */
  readonly allocationContext?: boolean;
  /** Connect + handshake. @default 30 000 */
  readonly connectTimeoutMs?: number;
  /** From send to the last reply chunk; a server that stalls longer is treated as dead. @default 300 000 */
  readonly requestTimeoutMs?: number;
  /** Requests on the wire at once; further ones queue in the client. @default 64 */
  readonly maxInFlight?: number;
  /** Upper bound for one READ/WRITE, below the server's maximum. @default the server's maximum or 32 MiB */
  readonly maxRequestBytes?: number;
  readonly timers?: NbdTimers;
}

export interface NbdExportInfo {
  readonly size: number;
  readonly flags: number;
  readonly readOnly: boolean;
  readonly canFlush: boolean;
  readonly minBlockSize: number;
  readonly preferredBlockSize: number;
  readonly maxBlockSize: number;
  readonly structuredReplies: boolean;
  /** Present when the server agreed to base:allocation. */
  readonly allocationContextId: number | undefined;
}

/** One run of base:allocation status. Holes read as zeros too, so `zero` is set for every hole nbdkit reports. */
export interface NbdExtent {
  readonly offset: number;
  readonly length: number;
  /** Unallocated: nothing is stored there. */
  readonly hole: boolean;
  /** Reads as zeros (allocated or not). */
  readonly zero: boolean;
}

interface Pending {
  readonly cookie: number;
  readonly command: string;
  readonly type: number;
  readonly offset: number;
  readonly length: number;
  /** READ: where the bytes go. */
  readonly into?: Buffer;
  readonly intoOffset: number;
  /** READ: byte ranges (relative) filled so far, to prove the reply covered the request exactly once. */
  readonly covered: Array<[number, number]>;
  /** BLOCK_STATUS results. */
  extents?: NbdExtent[];
  error?: NbdError;
  timer?: unknown;
  resolve(): void;
  reject(err: unknown): void;
}

type ParseState =
  | { kind: 'header' }
  | { kind: 'simple-data'; req: Pending; done: number }
  | { kind: 'chunk'; req: Pending; flags: number; type: number; length: number }
  | { kind: 'data-offset'; req: Pending; flags: number; length: number }
  | { kind: 'data'; req: Pending; flags: number; rel: number; remaining: number; start: number };

/** A FIFO of received buffers that parsers take exact byte counts from without copying more than needed. */
class ByteQueue {
  private bufs: Buffer[] = [];
  length = 0;

  push(buf: Buffer): void {
    if (buf.length === 0) return;
    this.bufs.push(buf);
    this.length += buf.length;
  }

  peekUInt32(): number {
    return this.copyOut(4, false).readUInt32BE(0);
  }

  take(n: number): Buffer {
    return this.copyOut(n, true);
  }

  /** Moves up to `max` bytes into `target` at `at`; returns how many. */
  drainInto(target: Buffer, at: number, max: number): number {
    let moved = 0;
    while (moved < max && this.bufs.length > 0) {
      const head = this.bufs[0]!;
      const n = Math.min(head.length, max - moved);
      head.copy(target, at + moved, 0, n);
      moved += n;
      if (n === head.length) this.bufs.shift();
      else this.bufs[0] = head.subarray(n);
    }
    this.length -= moved;
    return moved;
  }

  private copyOut(n: number, consume: boolean): Buffer {
    const head = this.bufs[0];
    if (head && head.length >= n) {
      const out = head.subarray(0, n);
      if (consume) {
        if (head.length === n) this.bufs.shift();
        else this.bufs[0] = head.subarray(n);
        this.length -= n;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    let i = 0;
    while (at < n) {
      const b = this.bufs[i++]!;
      const k = Math.min(b.length, n - at);
      b.copy(out, at, 0, k);
      at += k;
    }
    if (consume) {
      let left = n;
      while (left > 0) {
        const b = this.bufs[0]!;
        if (b.length <= left) {
          left -= b.length;
          this.bufs.shift();
        } else {
          this.bufs[0] = b.subarray(left);
          left = 0;
        }
      }
      this.length -= n;
    }
    return out;
  }
}

function describeTarget(o: NbdConnectOptions): string {
  const where = o.socketPath ? `unix:${o.socketPath}` : `${o.host ?? '?'}:${o.port ?? 10809}`;
  return o.exportName ? `nbd ${where} export "${o.exportName}"` : `nbd ${where}`;
}

/**
 * One NBD connection. Requests are pipelined: each gets a cookie and its reply is matched by it, in whatever
 * order the server answers. Failures of one request (server errors) reject that request only; protocol
 * violations, timeouts and a lost connection reject every pending request and close the client.
 */
export class NbdClient {
  readonly description: string;
  private readonly queue = new ByteQueue();
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: Array<() => void> = [];
  /** Requests accepted and not yet settled (queued or on the wire), so close() can wait for them. */
  private readonly inflight = new Set<Promise<void>>();
  private readonly timers: NbdTimers;
  private readonly requestTimeoutMs: number;
  private readonly maxInFlight: number;
  private readonly maxRequest: number;
  private state: ParseState = { kind: 'header' };
  private nextCookie = 1;
  private failure: NbdError | undefined;
  private closing = false;
  private readonly closed: Promise<void>;

  private constructor(
    private readonly socket: net.Socket,
    readonly info: NbdExportInfo,
    options: NbdConnectOptions,
  ) {
    this.description = describeTarget(options);
    this.timers = options.timers ?? realTimers;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 300_000;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 64);
    const cap = Math.min(info.maxBlockSize, options.maxRequestBytes ?? Number.MAX_SAFE_INTEGER);
    this.maxRequest = Math.max(info.minBlockSize, Math.floor(cap / info.minBlockSize) * info.minBlockSize);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(this.lost(`failed (${err.message})`, err)));
    socket.on('close', () => {
      if (!this.closing || this.pending.size > 0) this.fail(this.lost('was closed by the server'));
    });
  }

  private lost(how: string, cause?: unknown): NbdConnectionError {
    const unanswered = this.pending.size > 0 ? ` with ${this.pending.size} request(s) unanswered` : '';
    return new NbdConnectionError('NBD_CONNECTION_LOST', `the connection to ${this.description} ${how}${unanswered}: nbdkit exited or was killed; check its log, then retry the task`, cause === undefined ? undefined : { cause });
  }

  /** Connects, negotiates structured replies and base:allocation, and enters transmission with NBD_OPT_GO. */
  static async connect(options: NbdConnectOptions): Promise<NbdClient> {
    const description = describeTarget(options);
    if (!options.socketPath && !options.host) throw new NbdConnectionError('NBD_LOCATOR_INVALID', 'an NBD connection needs a Unix socket path or a host (and port)');
    const timers = options.timers ?? realTimers;
    const socket = options.socketPath ? net.createConnection({ path: options.socketPath }) : net.createConnection({ host: options.host!, port: options.port ?? 10809 });
    socket.setNoDelay(true);
    const handshake = new Handshake(socket, description);
    const timer = timers.set(() => handshake.abort(new NbdConnectionError('NBD_TIMEOUT', `${description} did not complete the NBD handshake within ${options.connectTimeoutMs ?? 30_000} ms: is nbdkit stuck, or is something else listening there?`)), options.connectTimeoutMs ?? 30_000);
    try {
      const info = await handshake.run(options.exportName ?? '', options.allocationContext ?? true);
      const client = new NbdClient(socket, info, options);
      // Bytes that arrived right behind the handshake belong to transmission.
      client.queue.push(handshake.leftover());
      client.parse();
      return client;
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      timers.clear(timer);
      handshake.detach();
    }
  }

  get size(): number {
    return this.info.size;
  }

  /** Fills `into[intoOffset, +length)` from the export; large reads are split at the server's maximum request size. */
  async read(offset: number, length: number, into: Buffer, intoOffset = 0): Promise<void> {
    this.checkRange('read', offset, length);
    if (intoOffset + length > into.length) throw new RangeError(`read of ${length} bytes does not fit the buffer`);
    const parts: Promise<void>[] = [];
    for (let done = 0; done < length; done += this.maxRequest) {
      const n = Math.min(this.maxRequest, length - done);
      parts.push(this.submit('READ', CMD_READ, offset + done, n, { into, intoOffset: intoOffset + done }));
    }
    await settleAll(parts);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (this.info.readOnly) throw new NbdError('NBD_READ_ONLY', `${this.description} is read-only: restores need a writable export (start nbdkit without -r, and for vddk without readonly=true)`);
    this.checkRange('write', offset, data.length);
    const parts: Promise<void>[] = [];
    for (let done = 0; done < data.length; done += this.maxRequest) {
      const n = Math.min(this.maxRequest, data.length - done);
      parts.push(this.submit('WRITE', CMD_WRITE, offset + done, n, { payload: data.subarray(done, done + n) }));
    }
    await settleAll(parts);
  }

  /** Makes every completed write durable. A server that does not offer FLUSH writes through, so this is then a no-op. */
  async flush(): Promise<void> {
    if (!(this.info.flags & NBD_FLAG_SEND_FLUSH)) {
      this.throwIfFailed();
      return;
    }
    await this.submit('FLUSH', CMD_FLUSH, 0, 0, {});
  }

  /**
   * base:allocation status of `[offset, offset+length)`, as consecutive extents covering the range. A server
   * without the context gets one allocated, non-zero extent: everything must be read, nothing is lost.
   */
  async extents(offset: number, length: number): Promise<NbdExtent[]> {
    this.checkRange('block status', offset, length);
    if (this.info.allocationContextId === undefined) {
      this.throwIfFailed();
      return length === 0 ? [] : [{ offset, length, hole: false, zero: false }];
    }
    const out: NbdExtent[] = [];
    let at = offset;
    const end = offset + length;
    while (at < end) {
      const ask = Math.min(MAX_STATUS_REQUEST, end - at);
      const got = await this.blockStatus(at, ask);
      for (const e of got) {
        const last = out[out.length - 1];
        if (last && last.hole === e.hole && last.zero === e.zero && last.offset + last.length === e.offset) out[out.length - 1] = { ...last, length: last.length + e.length };
        else out.push(e);
      }
      at = got[got.length - 1]!.offset + got[got.length - 1]!.length;
    }
    return out;
  }

  /** Waits for the pending requests, tells the server goodbye (NBD_CMD_DISC) and closes. */
  async close(): Promise<void> {
    if (this.closing) return this.closed;
    this.closing = true;
    await Promise.allSettled([...this.inflight]);
    if (!this.failure && !this.socket.destroyed) {
      this.socket.end(this.requestHeader(CMD_DISC, this.nextCookie++, 0, 0));
      const timer = this.timers.set(() => this.socket.destroy(), 5_000);
      await this.closed;
      this.timers.clear(timer);
    } else {
      this.socket.destroy();
      await this.closed;
    }
  }

  private async blockStatus(offset: number, length: number): Promise<NbdExtent[]> {
    const extents: NbdExtent[] = [];
    await this.submit('BLOCK_STATUS', CMD_BLOCK_STATUS, offset, length, { extents });
    if (extents.length === 0) throw new NbdProtocolError(`${this.description} answered BLOCK_STATUS at ${offset} without base:allocation extents`);
    return extents;
  }

  private checkRange(what: string, offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.info.size) {
      throw new RangeError(`NBD ${what} of ${length} bytes at ${offset} is outside the ${this.info.size}-byte export ${this.description}`);
    }
    const min = this.info.minBlockSize;
    if (min > 1 && (offset % min !== 0 || length % min !== 0)) {
      throw new NbdError('NBD_UNALIGNED', `NBD ${what} of ${length} bytes at ${offset} is not aligned to the ${min}-byte minimum block size of ${this.description}: use a block size that is a multiple of it`);
    }
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
    if (this.closing) throw new NbdConnectionError('NBD_CLOSED', `the connection to ${this.description} is closed`);
  }

  private submit(command: string, type: number, offset: number, length: number, extra: RequestExtra): Promise<void> {
    this.throwIfFailed();
    const p = this.send(command, type, offset, length, extra);
    this.inflight.add(p);
    const forget = () => this.inflight.delete(p);
    p.then(forget, forget);
    return p;
  }

  private async send(command: string, type: number, offset: number, length: number, extra: RequestExtra): Promise<void> {
    while (this.pending.size >= this.maxInFlight) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      if (this.failure) throw this.failure;
    }
    const cookie = this.nextCookie;
    this.nextCookie = this.nextCookie >= 0xffff_fffe ? 1 : this.nextCookie + 1;
    return new Promise<void>((resolve, reject) => {
      const req: Pending = { cookie, command, type, offset, length, into: extra.into, intoOffset: extra.intoOffset ?? 0, covered: [], extents: extra.extents, resolve, reject };
      this.pending.set(cookie, req);
      req.timer = this.timers.set(() => this.fail(new NbdConnectionError('NBD_TIMEOUT', `${this.description} did not answer ${command} of ${length} bytes at ${offset} within ${this.requestTimeoutMs} ms: the server or its storage is stuck; the connection was closed, retry the task`)), this.requestTimeoutMs);
      const header = this.requestHeader(type, cookie, offset, length);
      if (extra.payload) {
        this.socket.cork();
        this.socket.write(header);
        this.socket.write(extra.payload);
        this.socket.uncork();
      } else {
        this.socket.write(header);
      }
    });
  }

  private requestHeader(type: number, cookie: number, offset: number, length: number): Buffer {
    const h = Buffer.allocUnsafe(28);
    h.writeUInt32BE(REQUEST_MAGIC, 0);
    h.writeUInt16BE(0, 4);
    h.writeUInt16BE(type, 6);
    // The cookie's high half stays zero: replies naming anything else are not ours.
    h.writeUInt32BE(0, 8);
    h.writeUInt32BE(cookie, 12);
    h.writeBigUInt64BE(BigInt(offset), 16);
    h.writeUInt32BE(length, 24);
    return h;
  }

  private onData(chunk: Buffer): void {
    this.queue.push(chunk);
    this.parse();
  }

  private parse(): void {
    try {
      while (!this.failure && this.step()) {
        // each step consumed something
      }
    } catch (err) {
      this.fail(err instanceof NbdError ? err : new NbdProtocolError(`${this.description}: ${(err as Error).message}`));
    }
  }

  private lookup(cookieHi: number, cookieLo: number): Pending {
    const req = cookieHi === 0 ? this.pending.get(cookieLo) : undefined;
    if (!req) throw new NbdProtocolError(`${this.description} replied to a request this client never sent (cookie ${cookieHi}:${cookieLo}): the server is not speaking NBD correctly; check its version and log`);
    return req;
  }

  /** Advances the reply parser by one unit; false when it needs more bytes. */
  private step(): boolean {
    const s = this.state;
    const q = this.queue;
    switch (s.kind) {
      case 'header': {
        if (q.length < 4) return false;
        const magic = q.peekUInt32();
        if (magic === SIMPLE_REPLY_MAGIC) {
          if (q.length < HEADER_SIMPLE) return false;
          const h = q.take(HEADER_SIMPLE);
          const req = this.lookup(h.readUInt32BE(8), h.readUInt32BE(12));
          const errno = h.readUInt32BE(4);
          if (errno !== 0) this.finish(req, this.serverError(req, errno, ''));
          else if (req.type === CMD_READ) this.state = { kind: 'simple-data', req, done: 0 };
          else if (req.type === CMD_BLOCK_STATUS) throw new NbdProtocolError(`${this.description} answered BLOCK_STATUS with a simple reply: block status needs structured replies`);
          else this.finish(req);
          return true;
        }
        if (magic === STRUCTURED_REPLY_MAGIC) {
          if (!this.info.structuredReplies) throw new NbdProtocolError(`${this.description} sent a structured reply that was never negotiated`);
          if (q.length < HEADER_STRUCTURED) return false;
          const h = q.take(HEADER_STRUCTURED);
          const flags = h.readUInt16BE(4);
          const type = h.readUInt16BE(6);
          const req = this.lookup(h.readUInt32BE(8), h.readUInt32BE(12));
          const length = h.readUInt32BE(16);
          if (type === REPLY_TYPE_OFFSET_DATA) {
            if (req.type !== CMD_READ) throw new NbdProtocolError(`${this.description} sent read data in reply to ${req.command}`);
            if (length <= 8) throw new NbdProtocolError(`${this.description} sent a data chunk of ${length} bytes: it must hold an offset and at least one byte`);
            this.state = { kind: 'data-offset', req, flags, length };
          } else {
            if (length > MAX_CHUNK_PAYLOAD) throw new NbdProtocolError(`${this.description} announced a ${length}-byte reply chunk of type ${type}, beyond any sane size`);
            this.state = { kind: 'chunk', req, flags, type, length };
          }
          return true;
        }
        throw new NbdProtocolError(`${this.description} sent bytes that are not an NBD reply (magic 0x${magic.toString(16).padStart(8, '0')}): the stream is corrupt or this is not an NBD server`);
      }
      case 'simple-data': {
        const { req } = s;
        if (q.length === 0) return false;
        s.done += q.drainInto(req.into!, req.intoOffset + s.done, req.length - s.done);
        if (s.done === req.length) {
          req.covered.push([0, req.length]);
          this.state = { kind: 'header' };
          this.finish(req);
        }
        return true;
      }
      case 'data-offset': {
        if (q.length < 8) return false;
        const { req } = s;
        const at = Number(q.take(8).readBigUInt64BE(0));
        const n = s.length - 8;
        const rel = at - req.offset;
        if (rel < 0 || rel + n > req.length) throw new NbdProtocolError(`${this.description} sent ${n} bytes at ${at} for a READ of ${req.length} bytes at ${req.offset}: the data lies outside the request`);
        this.state = { kind: 'data', req, flags: s.flags, rel, remaining: n, start: rel };
        return true;
      }
      case 'data': {
        if (q.length === 0 && s.remaining > 0) return false;
        const { req } = s;
        const moved = q.drainInto(req.into!, req.intoOffset + s.rel, s.remaining);
        s.rel += moved;
        s.remaining -= moved;
        if (s.remaining === 0) {
          req.covered.push([s.start, s.rel]);
          this.state = { kind: 'header' };
          if (s.flags & REPLY_FLAG_DONE) this.finish(req);
        }
        return true;
      }
      case 'chunk': {
        if (q.length < s.length) return false;
        const payload = q.take(s.length);
        this.state = { kind: 'header' };
        this.onChunk(s.req, s.type, payload);
        if (s.flags & REPLY_FLAG_DONE) this.finish(s.req);
        return true;
      }
    }
  }

  private onChunk(req: Pending, type: number, p: Buffer): void {
    if (type & REPLY_TYPE_ERROR_BIT) {
      if (p.length < 6) throw new NbdProtocolError(`${this.description} sent a ${p.length}-byte error chunk; it needs at least 6`);
      const errno = p.readUInt32BE(0);
      const msgLen = p.readUInt16BE(4);
      const tail = type === REPLY_TYPE_ERROR_OFFSET ? 8 : 0;
      if (6 + msgLen > p.length || (type === REPLY_TYPE_ERROR_OFFSET && 6 + msgLen + tail !== p.length)) throw new NbdProtocolError(`${this.description} sent an error chunk whose message length (${msgLen}) does not fit its ${p.length} bytes`);
      if (errno === 0) throw new NbdProtocolError(`${this.description} sent an error chunk with error 0`);
      const at = tail ? ` at ${p.readBigUInt64BE(6 + msgLen)}` : '';
      req.error ??= this.serverError(req, errno, p.toString('utf8', 6, 6 + msgLen) + at);
      return;
    }
    switch (type) {
      case REPLY_TYPE_NONE:
        if (p.length !== 0) throw new NbdProtocolError(`${this.description} sent a NONE chunk with ${p.length} payload bytes`);
        return;
      case REPLY_TYPE_OFFSET_HOLE: {
        if (req.type !== CMD_READ) throw new NbdProtocolError(`${this.description} sent a hole chunk in reply to ${req.command}`);
        if (p.length !== 12) throw new NbdProtocolError(`${this.description} sent a hole chunk of ${p.length} bytes; it must be 12`);
        const at = Number(p.readBigUInt64BE(0));
        const n = p.readUInt32BE(8);
        const rel = at - req.offset;
        if (n === 0 || rel < 0 || rel + n > req.length) throw new NbdProtocolError(`${this.description} sent a ${n}-byte hole at ${at} for a READ of ${req.length} bytes at ${req.offset}`);
        req.into!.fill(0, req.intoOffset + rel, req.intoOffset + rel + n);
        req.covered.push([rel, rel + n]);
        return;
      }
      case REPLY_TYPE_BLOCK_STATUS: {
        if (req.type !== CMD_BLOCK_STATUS || !req.extents) throw new NbdProtocolError(`${this.description} sent block status in reply to ${req.command}`);
        if (p.length < 12 || (p.length - 4) % 8 !== 0) throw new NbdProtocolError(`${this.description} sent a block status chunk of ${p.length} bytes; it must be 4 + a multiple of 8`);
        if (p.readUInt32BE(0) !== this.info.allocationContextId) throw new NbdProtocolError(`${this.description} sent block status for meta context ${p.readUInt32BE(0)}, which was not negotiated`);
        if (req.extents.length > 0) throw new NbdProtocolError(`${this.description} sent two block status chunks for one context`);
        let at = req.offset;
        const end = req.offset + req.length;
        for (let i = 4; i < p.length && at < end; i += 8) {
          const n = p.readUInt32BE(i);
          const flags = p.readUInt32BE(i + 4);
          if (n === 0) throw new NbdProtocolError(`${this.description} sent a zero-length extent`);
          // The last extent may run past the request; only the asked range is reported.
          const len = Math.min(n, end - at);
          req.extents.push({ offset: at, length: len, hole: (flags & STATE_HOLE) !== 0, zero: (flags & (STATE_ZERO | STATE_HOLE)) !== 0 });
          at += len;
        }
        return;
      }
      default:
        throw new NbdProtocolError(`${this.description} sent an unknown reply chunk type ${type}`);
    }
  }

  private serverError(req: Pending, errno: number, detail: string): NbdServerError {
    const what = `${req.command} of ${req.length} bytes at ${req.offset} on ${this.description} failed`;
    return new NbdServerError(errno, req.command, `${what}${detail ? ` (${detail})` : ''}: ${errnoAdvice(errno)}`);
  }

  private finish(req: Pending, error?: NbdError): void {
    this.pending.delete(req.cookie);
    this.timers.clear(req.timer);
    this.waiting.shift()?.();
    const err = error ?? req.error;
    if (err) return req.reject(err);
    const broken = this.incomplete(req);
    if (broken) {
      req.reject(broken);
      return this.fail(broken);
    }
    req.resolve();
  }

  /** A successful reply must have delivered what was asked: every byte of a READ exactly once, one status chunk. */
  private incomplete(req: Pending): NbdProtocolError | undefined {
    if (req.type === CMD_READ && req.length > 0) {
      const spans = req.covered.sort((a, b) => a[0] - b[0]);
      let at = 0;
      for (const [s, e] of spans) {
        if (s !== at) return new NbdProtocolError(`${this.description} answered a READ of ${req.length} bytes at ${req.offset} with ${s > at ? 'a gap' : 'overlapping chunks'} at ${req.offset + Math.min(s, at)}`);
        at = e;
      }
      if (at !== req.length) return new NbdProtocolError(`${this.description} answered a READ of ${req.length} bytes at ${req.offset} with only ${at} bytes`);
    }
    if (req.type === CMD_BLOCK_STATUS && req.extents?.length === 0) return new NbdProtocolError(`${this.description} finished BLOCK_STATUS at ${req.offset} without a status chunk`);
    return undefined;
  }

  /** Fails every pending and queued request with `err` and closes the socket: after this nothing can hang. */
  private fail(err: NbdError): void {
    if (this.failure) return;
    this.failure = err;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const req of pending) {
      this.timers.clear(req.timer);
      req.reject(err);
    }
    for (const wake of this.waiting.splice(0)) wake();
    this.socket.destroy();
  }
}

/** Waits for every part (so no request outlives the call) and throws the first failure. */
async function settleAll(parts: Promise<void>[]): Promise<void> {
  if (parts.length === 1) return parts[0];
  const results = await Promise.allSettled(parts);
  const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (bad) throw bad.reason;
}

/** The handshake, as straight-line code over a byte queue; it hands the socket over once in transmission. */
class Handshake {
  private readonly queue = new ByteQueue();
  private waiter: { n: number; resolve: () => void; reject: (e: unknown) => void } | undefined;
  private error: NbdError | undefined;
  private readonly onData = (b: Buffer) => {
    this.queue.push(b);
    if (this.waiter && this.queue.length >= this.waiter.n) this.waiter.resolve();
  };
  private readonly onError = (err: Error) => this.abort(new NbdConnectionError('NBD_CONNECT_FAILED', `cannot connect to ${this.description}: ${err.message}; check that nbdkit is running and listening there${'code' in err && err.code === 'ENOENT' ? ' (the socket does not exist)' : ''}`, { cause: err }));
  private readonly onClose = () => this.abort(new NbdConnectionError('NBD_CONNECT_FAILED', `${this.description} closed the connection during the NBD handshake: check the nbdkit log (wrong export name, TLS required, or a crash)`));

  constructor(
    private readonly socket: net.Socket,
    private readonly description: string,
  ) {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  abort(err: NbdError): void {
    this.error ??= err;
    this.waiter?.reject(this.error);
    this.socket.destroy();
  }

  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
  }

  leftover(): Buffer {
    return this.queue.take(this.queue.length);
  }

  private async read(n: number): Promise<Buffer> {
    if (this.error) throw this.error;
    if (this.queue.length < n) {
      await new Promise<void>((resolve, reject) => (this.waiter = { n, resolve, reject }));
      this.waiter = undefined;
    }
    return Buffer.from(this.queue.take(n));
  }

  async run(exportName: string, wantAllocation: boolean): Promise<NbdExportInfo> {
    const hello = await this.read(18);
    if (hello.readBigUInt64BE(0) !== NBDMAGIC || hello.readBigUInt64BE(8) !== IHAVEOPT) {
      throw new NbdNegotiationError('NBD_NOT_NEWSTYLE', `${this.description} is not a newstyle NBD server (bad greeting): oldstyle servers are not supported; use nbdkit or qemu-nbd`);
    }
    const serverFlags = hello.readUInt16BE(16);
    if (!(serverFlags & FLAG_FIXED_NEWSTYLE)) throw new NbdNegotiationError('NBD_NOT_FIXED_NEWSTYLE', `${this.description} does not offer the fixed newstyle handshake: upgrade the NBD server`);
    const clientFlags = Buffer.alloc(4);
    clientFlags.writeUInt32BE(FLAG_FIXED_NEWSTYLE | (serverFlags & FLAG_NO_ZEROES));
    this.socket.write(clientFlags);

    let structuredReplies = false;
    let allocationContextId: number | undefined;
    const sr = await this.option(OPT_STRUCTURED_REPLY, Buffer.alloc(0));
    if (sr.kind === 'ack') structuredReplies = true;
    else if (sr.kind === 'error' && sr.type !== REP_ERR_UNSUP) throw this.optionError('STRUCTURED_REPLY', sr.type, sr.message, exportName);

    const name = Buffer.from(exportName, 'utf8');
    if (structuredReplies && wantAllocation) {
      const ctx = Buffer.from(BASE_ALLOCATION, 'utf8');
      const body = Buffer.alloc(4 + name.length + 4 + 4 + ctx.length);
      body.writeUInt32BE(name.length, 0);
      name.copy(body, 4);
      body.writeUInt32BE(1, 4 + name.length);
      body.writeUInt32BE(ctx.length, 8 + name.length);
      ctx.copy(body, 12 + name.length);
      const replies = await this.optionReplies(OPT_SET_META_CONTEXT, body);
      for (const r of replies) {
        if (r.kind === 'error') {
          if (r.type !== REP_ERR_UNSUP) throw this.optionError('SET_META_CONTEXT', r.type, r.message, exportName);
        } else if (r.kind === 'reply' && r.type === REP_META_CONTEXT) {
          if (r.data.length < 5) throw new NbdProtocolError(`${this.description} sent a ${r.data.length}-byte meta context reply`);
          if (r.data.toString('utf8', 4) === BASE_ALLOCATION) allocationContextId = r.data.readUInt32BE(0);
        }
      }
    }

    const go = Buffer.alloc(4 + name.length + 2 + 2);
    go.writeUInt32BE(name.length, 0);
    name.copy(go, 4);
    go.writeUInt16BE(1, 4 + name.length);
    go.writeUInt16BE(INFO_BLOCK_SIZE, 6 + name.length);
    let size: number | undefined;
    let flags = 0;
    let minBlock = 1;
    let preferred = 4096;
    let maxBlock = DEFAULT_MAX_BLOCK;
    for (const r of await this.optionReplies(OPT_GO, go)) {
      if (r.kind === 'error') throw this.optionError('GO', r.type, r.message, exportName);
      if (r.kind !== 'reply' || r.type !== REP_INFO) continue;
      if (r.data.length < 2) throw new NbdProtocolError(`${this.description} sent an empty NBD_REP_INFO`);
      const info = r.data.readUInt16BE(0);
      if (info === INFO_EXPORT) {
        if (r.data.length !== 12) throw new NbdProtocolError(`${this.description} sent NBD_INFO_EXPORT of ${r.data.length} bytes; it must be 12`);
        const big = r.data.readBigUInt64BE(2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new NbdProtocolError(`${this.description} reports an export of ${big} bytes, beyond what this client can address`);
        size = Number(big);
        flags = r.data.readUInt16BE(10);
      } else if (info === INFO_BLOCK_SIZE) {
        if (r.data.length !== 14) throw new NbdProtocolError(`${this.description} sent NBD_INFO_BLOCK_SIZE of ${r.data.length} bytes; it must be 14`);
        minBlock = r.data.readUInt32BE(2);
        preferred = r.data.readUInt32BE(6);
        maxBlock = r.data.readUInt32BE(10);
        if (minBlock < 1 || (minBlock & (minBlock - 1)) !== 0 || maxBlock < minBlock) throw new NbdProtocolError(`${this.description} sent impossible block sizes (min ${minBlock}, max ${maxBlock})`);
      }
    }
    if (size === undefined) throw new NbdProtocolError(`${this.description} entered transmission without sending the export size (NBD_INFO_EXPORT)`);
    return {
      size,
      flags,
      readOnly: (flags & NBD_FLAG_READ_ONLY) !== 0,
      canFlush: (flags & NBD_FLAG_SEND_FLUSH) !== 0,
      minBlockSize: minBlock,
      preferredBlockSize: preferred,
      // Keep requests a multiple of the minimum so every split stays aligned.
      maxBlockSize: Math.max(minBlock, Math.floor(maxBlock / minBlock) * minBlock),
      structuredReplies,
      allocationContextId,
    };
  }

  private async option(option: number, data: Buffer): Promise<OptionReply> {
    const replies = await this.optionReplies(option, data);
    return replies[replies.length - 1]!;
  }

  /** Sends one option and collects its replies up to the final ACK or error. */
  private async optionReplies(option: number, data: Buffer): Promise<OptionReply[]> {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(IHAVEOPT, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(data.length, 12);
    this.socket.write(Buffer.concat([h, data]));
    const replies: OptionReply[] = [];
    for (;;) {
      const rh = await this.read(20);
      if (rh.readBigUInt64BE(0) !== OPT_REPLY_MAGIC) throw new NbdProtocolError(`${this.description} sent a bad option reply magic during the handshake`);
      const echoed = rh.readUInt32BE(8);
      if (echoed !== option) throw new NbdProtocolError(`${this.description} answered option ${echoed} when ${option} was asked`);
      const type = rh.readUInt32BE(12);
      const length = rh.readUInt32BE(16);
      if (length > MAX_OPTION_REPLY) throw new NbdProtocolError(`${this.description} sent a ${length}-byte option reply`);
      const body = await this.read(length);
      if (type & REP_FLAG_ERROR) {
        replies.push({ kind: 'error', type, message: body.toString('utf8') });
        return replies;
      }
      if (type === REP_ACK) {
        if (length !== 0) throw new NbdProtocolError(`${this.description} sent an ACK with ${length} payload bytes`);
        replies.push({ kind: 'ack' });
        return replies;
      }
      replies.push({ kind: 'reply', type, data: body });
    }
  }

  private optionError(option: string, type: number, message: string, exportName: string): NbdNegotiationError {
    const said = message ? ` (server: ${message})` : '';
    switch (type) {
      case REP_ERR_UNKNOWN:
        return new NbdNegotiationError('NBD_EXPORT_NOT_FOUND', `${this.description} has no export named "${exportName}"${said}: check exportName in the disk locator`);
      case REP_ERR_TLS_REQD:
        return new NbdNegotiationError('NBD_TLS_REQUIRED', `${this.description} requires TLS${said}, which this agent does not speak: start nbdkit on a private Unix socket without --tls=require`);
      case REP_ERR_POLICY:
        return new NbdNegotiationError('NBD_EXPORT_REFUSED', `${this.description} refused NBD_OPT_${option}${said}: check the server's access policy`);
      case REP_ERR_SHUTDOWN:
        return new NbdNegotiationError('NBD_SERVER_SHUTDOWN', `${this.description} is shutting down${said}: retry once it is back`);
      case REP_ERR_UNSUP:
        return new NbdNegotiationError('NBD_UNSUPPORTED', `${this.description} does not support NBD_OPT_${option}${said}: use nbdkit 1.16 or newer`);
      case REP_ERR_INVALID:
        return new NbdNegotiationError('NBD_NEGOTIATION_FAILED', `${this.description} found NBD_OPT_${option} invalid${said}: this is a client/server mismatch; report it with the nbdkit version`);
      default:
        return new NbdNegotiationError('NBD_NEGOTIATION_FAILED', `${this.description} rejected NBD_OPT_${option} with error 0x${type.toString(16)}${said}: check the nbdkit log`);
    }
  }
}

interface RequestExtra {
  into?: Buffer;
  intoOffset?: number;
  payload?: Buffer;
  extents?: NbdExtent[];
}

type OptionReply = { kind: 'ack' } | { kind: 'error'; type: number; message: string } | { kind: 'reply'; type: number; data: Buffer };
