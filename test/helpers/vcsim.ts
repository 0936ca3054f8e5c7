/**
 * vcsim, VMware's vSphere simulator, for integration tests: the Go main in test/vcsim is built once per
 * machine into node_modules/.cache/vcsim/<hash of main.go>/ and started once per test file. A machine without
 * Go or the govmomi sources fails the tests with the command that fixes it: they are never skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { PrerequisiteError } from '../../lib/errors.js';
import { Secret } from '../../lib/secret.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'test/vcsim/main.go');
const GOPATH = '/usr/share/gocode';
const GOVMOMI = path.join(GOPATH, 'src/github.com/vmware/govmomi');
const INSTALL = 'apt-get install -y golang-go golang-github-vmware-govmomi-dev';

export interface Vcsim {
  /** https://127.0.0.1:PORT/sdk (or http without tls) */
  readonly url: string;
  readonly userName: string;
  readonly password: Secret;
  /** SHA-256 of the server certificate (hex), with tls only. */
  readonly thumbprint: string | null;
  readonly datacenter: string;
  readonly datastores: ReadonlyArray<{ readonly name: string; readonly path: string }>;
  readonly vms: ReadonlyArray<{ readonly moref: string; readonly name: string }>;
  /** Local path of a datastore file: `[LocalDS_0] DC0_H0_VM0/disk1.vmdk` → /tmp/.../DC0_H0_VM0/disk1.vmdk */
  localPath(datastorePath: string): string;
  stop(): Promise<void>;
}

function requireGo(): void {
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error !== undefined || go.status !== 0) {
    throw new PrerequisiteError(`the vSphere tests need Go to build vcsim and "go" is not on PATH: ${INSTALL} (as .ci/run does)`);
  }
  if (!existsSync(path.join(GOVMOMI, 'simulator'))) {
    throw new PrerequisiteError(`the vSphere tests need the govmomi sources at ${GOVMOMI}: ${INSTALL} (as .ci/run does)`);
  }
}

let built: Promise<string> | undefined;

/** Path of the vcsim binary, built if this machine has none for the current main.go. */
export function vcsimBinary(): Promise<string> {
  built ??= build();
  return built;
}

async function build(): Promise<string> {
  requireGo();
  const hash = createHash('sha256').update(await readFile(MAIN)).digest('hex').slice(0, 16);
  const dir = path.join(ROOT, 'node_modules/.cache/vcsim', hash);
  const binary = path.join(dir, 'vcsim');
  if (existsSync(binary)) return binary;
  await mkdir(dir, { recursive: true });
  // Test files run in parallel workers: one builds, the others wait for the binary (deadline 5 minutes).
  const lock = path.join(dir, 'building');
  try {
    await mkdir(lock);
  } catch {
    const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: 0 }))).mtimeMs;
    if (age < 10 * 60_000) {
      const deadline = Date.now() + 5 * 60_000;
      while (!existsSync(binary)) {
        if (Date.now() > deadline) throw new Error(`waited 5 minutes for another process to build ${binary}; remove ${lock} if no build runs`);
        await delay(250);
      }
      return binary;
    }
  }
  try {
    const tmp = `${binary}.${process.pid}.tmp`;
    const result = spawnSync('go', ['build', '-o', tmp, './main.go'], {
      cwd: path.dirname(MAIN),
      encoding: 'utf8',
      env: { ...process.env, GOPATH, GO111MODULE: 'off', GOFLAGS: '', GOCACHE: process.env.GOCACHE ?? path.join(ROOT, 'node_modules/.cache/vcsim/go-build') },
    });
    if (result.status !== 0) throw new Error(`go build of ${MAIN} failed:\n${result.stderr}${result.error ? String(result.error) : ''}`);
    await rename(tmp, binary);
    return binary;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

export async function startVcsim(options: { tls?: boolean; diskMiB?: number; password?: string } = {}): Promise<Vcsim> {
  const binary = await vcsimBinary();
  const userName = 'backup@vsphere.local';
  const password = options.password ?? 'vcsim-Passw0rd!';
  const args = ['-user', userName, '-password', password, '-disk-mib', String(options.diskMiB ?? 8)];
  if (options.tls) args.push('-tls');
  const child: ChildProcess = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout! });
  const timer = new AbortController();
  const first = await Promise.race([
    new Promise<string>((resolve) => lines.once('line', resolve)),
    exited.then(() => {
      throw new Error(`vcsim exited before it started: ${stderr}`);
    }),
    delay(60_000, undefined, { signal: timer.signal }).then(() => {
      throw new Error(`vcsim printed nothing within 60 s: ${stderr}`);
    }),
  ]).finally(() => timer.abort());
  const info = JSON.parse(first) as {
    url: string;
    thumbprint?: string;
    datacenter: string;
    datastores: Array<{ name: string; path: string }>;
    vms: Array<{ moref: string; name: string }>;
  };
  return {
    url: info.url,
    userName,
    password: new Secret(password),
    thumbprint: info.thumbprint ?? null,
    datacenter: info.datacenter,
    datastores: info.datastores,
    vms: [...info.vms].sort((a, b) => a.name.localeCompare(b.name)),
    localPath(datastorePath) {
      const m = /^\[([^\]]+)\] (.*)$/.exec(datastorePath);
      const ds = info.datastores.find((d) => d.name === m?.[1]);
      if (m === null || ds === undefined) throw new Error(`no datastore for ${datastorePath}`);
      return path.join(ds.path, m[2] ?? '');
    },
    async stop() {
      child.stdin?.end();
      child.kill('SIGTERM');
      await exited;
    },
  };
}
