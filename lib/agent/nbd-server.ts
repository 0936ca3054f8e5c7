import { spawn, type ChildProcess } from 'node:child_process';
import { watch } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PrerequisiteError } from '../errors.js';
import { NbdError, realTimers, type NbdTimers } from './nbd-client.js';

export interface NbdkitOptions {
  /** Plugin and its parameters, e.g. `['file', 'file=/x.img']` or `['vddk', 'libdir=...', ...]`. */
  readonly plugin: readonly string[];
  readonly filters?: readonly string[];
  readonly readOnly?: boolean;
  /** @default 'nbdkit' on PATH */
  readonly binary?: string;
  /** @default 30 000 */
  readonly startTimeoutMs?: number;
  readonly timers?: NbdTimers;
}

export interface NbdkitProcess {
  readonly socketPath: string;
  readonly child: ChildProcess;
  /** Everything nbdkit wrote to stderr so far (its errors name the plugin parameter at fault). */
  stderr(): string;
  /** SIGKILL: what a crash looks like to the client. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts nbdkit serving one export on a Unix socket in a fresh private directory (mode 0700 from mkdtemp),
 * so no other local user can reach the disk. `--exit-with-parent` ties its life to this process: an agent
 * that crashes leaves no server holding a snapshot's disk open. Ready means nbdkit wrote its pid file, which
 * it does only once the socket accepts connections; that is watched for, not polled.
 */
export async function startNbdkit(options: NbdkitOptions): Promise<NbdkitProcess> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vcd-backup-nbd-'));
  const socketPath = path.join(dir, 'nbd.sock');
  const pidFile = path.join(dir, 'nbdkit.pid');
  const timers = options.timers ?? realTimers;
  const binary = options.binary ?? 'nbdkit';
  const args = ['-U', socketPath, '-P', pidFile, '--exit-with-parent', '-f', ...(options.readOnly ? ['-r'] : []), ...(options.filters ?? []).map((f) => `--filter=${f}`), ...options.plugin];
  let stderr = '';
  const watcher = watch(dir);
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-8192);
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stopped = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = timers.set(() => reject(new NbdError('NBD_SERVER_START_TIMEOUT', `nbdkit ${options.plugin[0] ?? ''} did not become ready within ${options.startTimeoutMs ?? 30_000} ms: ${stderr.trim() || 'no output'}`)), options.startTimeoutMs ?? 30_000);
      const done = (err?: unknown) => {
        timers.clear(timer);
        watcher.close();
        if (err) reject(err);
        else resolve();
      };
      const check = () => void access(pidFile).then(() => done(), () => undefined);
      watcher.on('change', (_event, name) => {
        if (name === 'nbdkit.pid') check();
      });
      watcher.on('error', (err) => done(err));
      child.once('error', (err: NodeJS.ErrnoException) => {
        done(err.code === 'ENOENT' ? new PrerequisiteError(`${binary} is not installed: install the nbdkit package (apt-get install nbdkit; .ci/run does it) — the NBD transport needs it`, { cause: err }) : err);
      });
      child.once('exit', (code, signal) => done(new NbdError('NBD_SERVER_EXITED', `nbdkit (plugin ${options.plugin[0] ?? '?'}) exited (${signal ?? `code ${code}`}) before it was ready: ${stderr.trim() || 'no output'}`)));
      // The file may already be there if nbdkit was faster than the watcher's first event.
      check();
    });
  } catch (err) {
    watcher.close();
    await stopped('SIGKILL');
    throw err;
  }
  return {
    socketPath,
    child,
    stderr: () => stderr,
    kill: () => stopped('SIGKILL'),
    stop: () => stopped('SIGTERM'),
  };
}
