/**
 * Maintenance mode around a capture (references/vcd-api.md §6, §10): enter, wait for the tasks already
 * running on the vApp and its VMs, do the work, and ALWAYS exit again, also when the work fails or times
 * out. Failing to exit is an alert-level MaintenanceExitError: tenants stay locked out of their vApp.
 * A vApp that was already in maintenance mode is left as it was (we neither enter nor exit).
 */
import { setTimeout as sleepMs } from 'node:timers/promises';
import type { Log } from '../log.js';
import { captureVApp, vappPath, type CaptureCache, type CapturedVApp } from './capture.js';
import type { VcdClient, XmlResponse } from './client.js';
import { MaintenanceExitError, VcdTaskError, VcdTimeoutError } from './errors.js';
import { attr, boolOf, child, children, textOf, type XmlNode } from './xml.js';

export interface MaintenanceOptions {
  /** Known state (e.g. from the adminVApp record); when absent the vApp is read first. */
  readonly alreadyInMaintenance?: boolean;
  /** How long running tasks may take to drain. */
  readonly taskTimeoutMs?: number;
  /** How long the work inside maintenance mode may take. */
  readonly workTimeoutMs?: number;
  /** Attempts to exit maintenance mode (each with the client's own retries). */
  readonly exitAttempts?: number;
  readonly exitBackoffMs?: number;
  readonly log?: Log;
}

export interface MaintenanceContext {
  /** The vApp document read after entering maintenance mode and once no task runs on it. */
  readonly vapp: XmlResponse & { node: XmlNode };
  /** True when this call put the vApp into maintenance mode (and will take it out). */
  readonly entered: boolean;
  /** Aborted when the work timeout fires. */
  readonly signal: AbortSignal;
}

const RUNNING = new Set(['queued', 'preRunning', 'running', 'postRunning']);

/** Tasks on the vApp or its VMs that have not ended. */
export function runningTasks(vapp: XmlNode): XmlNode[] {
  const holders = [vapp, ...children(child(vapp, 'Children'), 'Vm')];
  return holders
    .flatMap((h) => children(child(h, 'Tasks'), 'Task'))
    .filter((t) => {
      const status = attr(t, 'status') ?? '';
      return RUNNING.has(status) || !['success', 'error', 'canceled', 'aborted'].includes(status);
    });
}

export async function withMaintenanceMode<T>(
  client: VcdClient,
  vappId: string,
  work: (ctx: MaintenanceContext) => Promise<T>,
  options: MaintenanceOptions = {},
): Promise<T> {
  const path = vappPath(vappId);
  const entered = await enterMaintenanceMode(client, vappId, options);
  const controller = new AbortController();
  let result: T;
  try {
    const vapp = await drainTasks(client, path, options.taskTimeoutMs ?? 600_000, options.log);
    result = await withTimeout(work({ vapp, entered, signal: controller.signal }), options.workTimeoutMs ?? 900_000, controller, vappId);
  } catch (workError) {
    if (entered) await exitMaintenance(client, path, vappId, options, workError);
    throw workError;
  }
  if (entered) await exitMaintenance(client, path, vappId, options, undefined);
  return result;
}

/**
 * Enters maintenance mode; false when the vApp was in it already (the caller then leaves it so). For work
 * that outlives one call (a restore exits with its last disk result); withMaintenanceMode is the usual way.
 */
export async function enterMaintenanceMode(client: VcdClient, vappId: string, options: MaintenanceOptions = {}): Promise<boolean> {
  const path = vappPath(vappId);
  let already = options.alreadyInMaintenance;
  if (already === undefined) {
    const before = await client.getXml(path);
    already = boolOf(textOf(before.node, 'InMaintenanceMode'), 'InMaintenanceMode') === true;
  }
  if (already) return false;
  try {
    await client.requestXml('POST', `${path}/action/enterMaintenanceMode`, { retry: true });
  } catch (err) {
    // A retried enter may have succeeded the first time: if the vApp is in maintenance mode now, it is ours.
    const state = await client.getXml(path).catch(() => undefined);
    if (state === undefined || boolOf(textOf(state.node, 'InMaintenanceMode'), 'InMaintenanceMode') !== true) throw err;
  }
  options.log?.debug('vApp entered maintenance mode', { vapp: vappId });
  return true;
}

/** Enters maintenance mode and waits for the tasks already running on the vApp; false as enterMaintenanceMode. */
export async function enterMaintenanceModeQuiet(client: VcdClient, vappId: string, options: MaintenanceOptions = {}): Promise<boolean> {
  const entered = await enterMaintenanceMode(client, vappId, options);
  try {
    await drainTasks(client, vappPath(vappId), options.taskTimeoutMs ?? 600_000, options.log);
  } catch (err) {
    if (entered) await exitMaintenance(client, vappPath(vappId), vappId, options, err);
    throw err;
  }
  return entered;
}

/** Exits maintenance mode with retries; MaintenanceExitError (alert) when vCD keeps refusing. */
export function exitMaintenanceMode(client: VcdClient, vappId: string, options: MaintenanceOptions = {}): Promise<void> {
  return exitMaintenance(client, vappPath(vappId), vappId, options, undefined);
}

async function drainTasks(client: VcdClient, path: string, timeoutMs: number, log: Log | undefined): Promise<XmlResponse & { node: XmlNode }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const vapp = await client.getXml(path);
    const tasks = runningTasks(vapp.node);
    if (tasks.length === 0) return vapp;
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new VcdTimeoutError(`${tasks.length} task(s) still run on ${path} after ${timeoutMs} ms; the vApp was not captured`);
    log?.info('waiting for running tasks before capture', { vapp: path, tasks: tasks.map((t) => attr(t, 'operationName') ?? attr(t, 'operation') ?? '?').join(',') });
    for (const task of tasks) {
      try {
        await client.waitForTask(task, { timeoutMs: Math.max(1, deadline - Date.now()) });
      } catch (err) {
        // A task of someone else that fails is not our failure: the vApp is quiet either way.
        if (!(err instanceof VcdTaskError)) throw err;
      }
    }
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, controller: AbortController, vappId: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new VcdTimeoutError(`work on vApp ${vappId} in maintenance mode did not finish within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function exitMaintenance(client: VcdClient, path: string, vappId: string, options: MaintenanceOptions, workError: unknown): Promise<void> {
  const attempts = options.exitAttempts ?? 3;
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      await client.requestXml('POST', `${path}/action/exitMaintenanceMode`, { retry: true });
      options.log?.debug('vApp left maintenance mode', { vapp: vappId });
      return;
    } catch (err) {
      last = err;
      if (i + 1 < attempts) await sleepMs((options.exitBackoffMs ?? 1_000) * 2 ** i);
    }
  }
  const alert = new MaintenanceExitError(vappId, { cause: last, workError });
  options.log?.error(alert.message, {
    alert: true,
    code: alert.code,
    vapp: vappId,
    error: last instanceof Error ? last.message : String(last),
  });
  throw alert;
}

/** Enter maintenance mode, wait for running tasks, capture, exit (always). */
export async function captureWithMaintenance(
  client: VcdClient,
  vappId: string,
  options: MaintenanceOptions & { cache?: CaptureCache } = {},
): Promise<CapturedVApp & { enteredMaintenance: boolean }> {
  return withMaintenanceMode(
    client,
    vappId,
    async (ctx) => ({ ...(await captureVApp(client, vappId, { cache: options.cache, vappDocument: ctx.vapp, log: options.log })), enteredMaintenance: ctx.entered }),
    options,
  );
}
