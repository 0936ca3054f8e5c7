/**
 * The NBD client against Debian's real nbdkit (file and memory plugins, error and delay filters). Every test
 * here needs nbdkit; when it is missing they fail with a PrerequisiteError naming the package, never skip.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NbdClient, NbdConnectionError, NbdProtocolError, NbdServerError, type NbdTimers } from '../../lib/agent/nbd-client.js';
import { NbdDiskSource, NbdDiskTarget, type NbdExtent } from '../../lib/agent/nbd-disk-source.js';
import { startNbdkit, type NbdkitOptions, type NbdkitProcess } from '../../lib/agent/nbd-server.js';
import { FileDiskSource } from '../../lib/agent/disk-source.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
/** Written areas of the sparse image (4 KiB aligned, so ext4/tmpfs report them exactly); the rest are holes. */
const WRITTEN = [
  { offset: 0, length: MiB },
  { offset: 20 * MiB + 4096, length: 1536 * 1024 },
  { offset: 40 * MiB, length: 8192 },
  { offset: SIZE - MiB, length: MiB },
];

let dir: string;
let image: string;
let imageBytes: Buffer;
const servers: NbdkitProcess[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

async function server(options: NbdkitOptions): Promise<NbdkitProcess> {
  const s = await startNbdkit(options);
  servers.push(s);
  return s;
}

/** Timers a test fires by hand: timeouts are proven without waiting for them. */
class ManualTimers implements NbdTimers {
  private next = 0;
  readonly armed = new Map<number, { fn: () => void; ms: number }>();
  set(fn: () => void, ms: number): unknown {
    const id = ++this.next;
    this.armed.set(id, { fn, ms });
    return id;
  }
  clear(handle: unknown): void {
    this.armed.delete(handle as number);
  }
  fire(ms: number): number {
    const due = [...this.armed].filter(([, t]) => t.ms === ms);
    for (const [id, t] of due) {
      this.armed.delete(id);
      t.fn();
    }
    return due.length;
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'nbd-test-'));
  image = path.join(dir, 'sparse.img');
  const fh = await open(image, 'w');
  await fh.truncate(SIZE);
  for (const area of WRITTEN) await fh.write(randomBytes(area.length), 0, area.length, area.offset);
  await fh.close();
  imageBytes = await readFile(image);
});

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => undefined);
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('NBD client against nbdkit', () => {
  it('reads a sparse image byte for byte, aligned and unaligned, and reports its size', async () => {
    const srv = await server({ plugin: ['file', `file=${image}`], readOnly: true });
    const source = await NbdDiskSource.open({ socketPath: srv.socketPath });
    cleanups.push(() => source.close());
    expect(source.size).toBe(SIZE);
    const buf = Buffer.alloc(SIZE);
    await Promise.all(Array.from({ length: SIZE / (4 * MiB) }, (_, i) => source.read(i * 4 * MiB, 4 * MiB, buf.subarray(i * 4 * MiB))));
    expect(buf.equals(imageBytes)).toBe(true);
    const odd = Buffer.alloc(123_457);
    expect(await source.read(20 * MiB - 1000, odd.length, odd)).toBe(odd.length);
    expect(odd.equals(imageBytes.subarray(20 * MiB - 1000, 20 * MiB - 1000 + odd.length))).toBe(true);
    // Past the end: short, as FileDiskSource does.
    const tail = Buffer.alloc(MiB);
    expect(await source.read(SIZE - 4096, MiB, tail)).toBe(4096);
    expect(tail.subarray(0, 4096).equals(imageBytes.subarray(SIZE - 4096))).toBe(true);
  });

  it('splits reads larger than the request limit and keeps them exact', async () => {
    const srv = await server({ plugin: ['file', `file=${image}`], readOnly: true });
    const client = await NbdClient.connect({ socketPath: srv.socketPath, maxRequestBytes: 64 * 1024, maxInFlight: 4 });
    cleanups.push(() => client.close());
    const buf = Buffer.alloc(3 * MiB + 517);
    await client.read(19 * MiB, buf.length, buf);
    expect(buf.equals(imageBytes.subarray(19 * MiB, 19 * MiB + buf.length))).toBe(true);
  });

  it('BLOCK_STATUS base:allocation reports the holes of a sparse file, so they need not be read', async () => {
    const srv = await server({ plugin: ['file', `file=${image}`], readOnly: true });
    const source = await NbdDiskSource.open({ socketPath: srv.socketPath });
    cleanups.push(() => source.close());
    expect(source.knowsAllocation).toBe(true);
    const extents = await source.allocatedExtents(0, SIZE);
    expectTiles(extents, 0, SIZE);
    const data = extents.filter((e) => !e.hole).map((e) => ({ offset: e.offset, length: e.length }));
    expect(data).toEqual(WRITTEN);
    for (const e of extents) if (e.hole) expect(e.zero).toBe(true);
    // A sub-range that starts inside a hole and ends inside data is clipped to exactly the range asked.
    const part = await source.allocatedExtents(19 * MiB + 3, 2 * MiB);
    expectTiles(part, 19 * MiB + 3, 2 * MiB);
    expect(part.map((e) => e.hole)).toEqual([true, false, true].slice(0, part.length));
    expect(part[1]).toMatchObject({ offset: 20 * MiB + 4096, hole: false });
  });

  it('writes, flushes and reads back through NbdDiskTarget (memory plugin)', async () => {
    const srv = await server({ plugin: ['memory', `${SIZE}`] });
    const target = await NbdDiskTarget.open({ socketPath: srv.socketPath, maxRequestBytes: 256 * 1024 });
    const blocks = [
      { offset: 0, data: randomBytes(MiB) },
      { offset: 5 * MiB + 7, data: randomBytes(3 * MiB + 1) },
      { offset: SIZE - 4096, data: randomBytes(4096) },
    ];
    await Promise.all(blocks.map((b) => target.write(b.offset, b.data)));
    await target.flush();
    await target.close();
    // A second connection proves the bytes reached the server, not a client buffer.
    const source = await NbdDiskSource.open({ socketPath: srv.socketPath });
    cleanups.push(() => source.close());
    for (const b of blocks) {
      const got = Buffer.alloc(b.data.length);
      await source.read(b.offset, b.data.length, got);
      expect(got.equals(b.data)).toBe(true);
    }
    const extents = await source.allocatedExtents(0, 2 * MiB);
    expect(extents[0]).toMatchObject({ offset: 0, hole: false });
    await expect(target.write(SIZE - 10, Buffer.alloc(20))).rejects.toMatchObject({ code: 'NBD_TARGET_TOO_SMALL' });
  });

  it('refuses to restore onto a read-only export', async () => {
    const srv = await server({ plugin: ['memory', '1M'], readOnly: true });
    await expect(NbdDiskTarget.open({ socketPath: srv.socketPath })).rejects.toMatchObject({ code: 'NBD_READ_ONLY' });
  });

  it('maps a server error to a typed error, and the other requests on the connection still complete', async () => {
    const trigger = path.join(dir, 'fail-reads');
    await writeFile(trigger, '');
    // Filter parameters ride with the plugin's; the trigger file lets the fault come and go on one connection.
    const faulty = await server({ plugin: ['file', `file=${image}`, 'error-pread=EIO', 'error-pread-rate=100%', `error-pread-file=${trigger}`], filters: ['error'], readOnly: true });
    const source = await NbdDiskSource.open({ socketPath: faulty.socketPath });
    cleanups.push(() => source.close());
    const buf = Buffer.alloc(MiB);
    const results = await Promise.allSettled([source.read(0, MiB, buf), source.allocatedExtents(0, SIZE), source.read(40 * MiB, 8192, Buffer.alloc(8192))]);
    expect(results[0].status).toBe('rejected');
    const err = (results[0] as PromiseRejectedResult).reason as NbdServerError;
    expect(err).toBeInstanceOf(NbdServerError);
    expect(err.code).toBe('NBD_EIO');
    expect(err.message).toMatch(/READ of 1048576 bytes at 0 .*EIO.*check the nbdkit log/);
    expect(results[1].status).toBe('fulfilled');
    expect(results[2]).toMatchObject({ status: 'rejected', reason: { code: 'NBD_EIO' } });
    // Fault gone: the same connection reads again.
    await unlink(trigger);
    expect(await source.read(0, MiB, buf)).toBe(MiB);
    expect(buf.equals(imageBytes.subarray(0, MiB))).toBe(true);
  });

  it('reports a full target as NBD_ENOSPC', async () => {
    const srv = await server({ plugin: ['memory', '8M', 'error-pwrite=ENOSPC', 'error-pwrite-rate=100%'], filters: ['error'] });
    const target = await NbdDiskTarget.open({ socketPath: srv.socketPath });
    cleanups.push(() => target.close());
    await expect(target.write(0, Buffer.alloc(4096, 1))).rejects.toMatchObject({ code: 'NBD_ENOSPC', message: expect.stringMatching(/no space left.*grow/) });
    await target.flush();
  });

  it('rejects every pending read promptly when the server is killed mid-read', async () => {
    const srv = await server({ plugin: ['file', `file=${image}`, 'delay-read=60'], filters: ['delay'], readOnly: true });
    const source = await NbdDiskSource.open({ socketPath: srv.socketPath });
    cleanups.push(() => source.close());
    const reads = Array.from({ length: 8 }, (_, i) => source.read(i * MiB, MiB, Buffer.alloc(MiB)));
    const settled = Promise.allSettled(reads);
    const started = performance.now();
    await srv.kill();
    const results = await settled;
    // Far below the 60 s the server would have taken: the client noticed the close, it did not wait it out.
    expect(performance.now() - started).toBeLessThan(10_000);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason as NbdConnectionError;
      expect(reason).toBeInstanceOf(NbdConnectionError);
      expect(reason.code).toBe('NBD_CONNECTION_LOST');
      expect(reason.message).toMatch(/with 8 request\(s\) unanswered: nbdkit exited or was killed/);
    }
    await expect(source.read(0, 4096, Buffer.alloc(4096))).rejects.toMatchObject({ code: 'NBD_CONNECTION_LOST' });
  });

  it('times out a stalled server through the injected timers and fails all its requests', async () => {
    const srv = await server({ plugin: ['file', `file=${image}`, 'delay-read=60'], filters: ['delay'], readOnly: true });
    const timers = new ManualTimers();
    const client = await NbdClient.connect({ socketPath: srv.socketPath, timers, requestTimeoutMs: 1234, maxInFlight: 2 });
    cleanups.push(() => client.close());
    const reads = [0, 1, 2].map((i) => client.read(i * 4096, 4096, Buffer.alloc(4096)));
    const settled = Promise.allSettled(reads);
    // Two on the wire, the third queued behind maxInFlight.
    expect(timers.fire(1234)).toBe(2);
    for (const r of await settled) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'NBD_TIMEOUT' } });
  });

  it('fails pending requests with NBD_PROTOCOL when the stream turns to garbage', async () => {
    const srv = await server({ plugin: ['file', `file=${image}`], readOnly: true });
    const proxy = await faultProxy(srv.socketPath);
    const client = await NbdClient.connect({ socketPath: proxy.socketPath });
    cleanups.push(() => client.close());
    proxy.mode = 'garbage';
    const results = await Promise.allSettled([client.read(0, MiB, Buffer.alloc(MiB)), client.read(MiB, MiB, Buffer.alloc(MiB))]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason as NbdProtocolError;
      expect(reason).toBeInstanceOf(NbdProtocolError);
      expect(reason.message).toMatch(/not an NBD reply \(magic 0xdeadbeef\)/);
    }
  });

  it('fails a read whose reply is cut off mid-data', async () => {
    const srv = await server({ plugin: ['file', `file=${image}`], readOnly: true });
    const proxy = await faultProxy(srv.socketPath);
    const client = await NbdClient.connect({ socketPath: proxy.socketPath });
    cleanups.push(() => client.close());
    proxy.mode = 'truncate';
    await expect(client.read(0, 4 * MiB, Buffer.alloc(4 * MiB))).rejects.toMatchObject({ code: 'NBD_CONNECTION_LOST' });
  });

  it('serves many parallel reads, pipelined and matched by cookie', async () => {
    const srv = await server({ plugin: ['file', `file=${image}`], readOnly: true });
    const client = await NbdClient.connect({ socketPath: srv.socketPath, maxInFlight: 16 });
    cleanups.push(() => client.close());
    const reads = Array.from({ length: 400 }, () => {
      const length = 1 + Math.floor(Math.random() * 256 * 1024);
      const offset = Math.floor(Math.random() * (SIZE - length));
      const buf = Buffer.alloc(length);
      return client.read(offset, length, buf).then(() => buf.equals(imageBytes.subarray(offset, offset + length)));
    });
    expect((await Promise.all(reads)).every(Boolean)).toBe(true);
  });

  it('reads the same bytes as FileDiskSource', async () => {
    const srv = await server({ plugin: ['file', `file=${image}`], readOnly: true });
    const nbd = await NbdDiskSource.open({ socketPath: srv.socketPath });
    const file = await FileDiskSource.open(image);
    cleanups.push(() => nbd.close(), () => file.close());
    const a = Buffer.alloc(2 * MiB);
    const b = Buffer.alloc(2 * MiB);
    await Promise.all([nbd.read(SIZE - 2 * MiB, 2 * MiB, a), file.read(SIZE - 2 * MiB, 2 * MiB, b)]);
    expect(a.equals(b)).toBe(true);
  });

  it('refuses a peer that is not an NBD server, without hanging', async () => {
    const socketPath = path.join(dir, 'http.sock');
    const http = net.createServer((c) => c.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n'));
    await new Promise<void>((resolve) => http.listen(socketPath, resolve));
    cleanups.push(() => new Promise<void>((resolve) => http.close(() => resolve())));
    await expect(NbdClient.connect({ socketPath })).rejects.toMatchObject({ code: 'NBD_NOT_NEWSTYLE' });
  });

  it('names the socket when nothing listens there', async () => {
    await expect(NbdClient.connect({ socketPath: path.join(dir, 'nobody.sock') })).rejects.toMatchObject({ code: 'NBD_CONNECT_FAILED', message: expect.stringContaining('the socket does not exist') });
  });
});

function expectTiles(extents: readonly NbdExtent[], offset: number, length: number): void {
  let at = offset;
  for (const e of extents) {
    expect(e.offset).toBe(at);
    expect(e.length).toBeGreaterThan(0);
    at += e.length;
  }
  expect(at).toBe(offset + length);
}

/**
 * A Unix-socket relay in front of a real nbdkit that corrupts what the server sends once told to: the
 * handshake passes untouched, then the next reply is replaced with garbage or cut off mid-data.
 */
async function faultProxy(upstream: string): Promise<{ socketPath: string; mode: 'pass' | 'garbage' | 'truncate' }> {
  const socketPath = path.join(dir, `proxy-${randomBytes(4).toString('hex')}.sock`);
  const state = { socketPath, mode: 'pass' as 'pass' | 'garbage' | 'truncate' };
  const srv = net.createServer((down) => {
    const up = net.createConnection({ path: upstream });
    down.pipe(up);
    up.on('data', (chunk: Buffer) => {
      if (state.mode === 'pass') down.write(chunk);
      else if (state.mode === 'garbage') down.write(Buffer.alloc(64, Buffer.from('deadbeef', 'hex')));
      else {
        down.write(chunk.subarray(0, 100));
        down.destroy();
        up.destroy();
      }
    });
    up.on('error', () => down.destroy());
    down.on('error', () => up.destroy());
    down.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve) => srv.listen(socketPath, resolve));
  cleanups.push(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return state;
}
