/**
 * vSphere tasks: poll `info` until success or error, with a deadline measured on an injected clock and an
 * injected pause between polls (tests drive both); faults in `info.error` become the same typed errors as
 * SOAP faults. CancelTask asks vCenter to stop a task (not every task is cancelable).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Clock } from '../domain/clock.js';
import { systemClock } from '../system-clock.js';
import { child, textOf, type XmlNode } from '../vcd/xml.js';
import { faultToError, VsphereTaskTimeoutError, VsphereXmlError, type VsphereFaultError } from './errors.js';
import { retrieveObject } from './property-collector.js';
import { faultType, type ManagedObjectReference } from './soap.js';
import type { VsphereSession } from './session.js';

export type TaskInfoState = 'queued' | 'running' | 'success' | 'error';

/** The parts of govmomi `types.TaskInfo` used here. */
export interface TaskInfo {
  readonly key: string;
  readonly descriptionId: string;
  readonly state: TaskInfoState;
  readonly progress: number | null;
  readonly cancelable: boolean;
  readonly result: XmlNode | undefined;
  readonly error: VsphereFaultError | null;
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly pollMs?: number;
  readonly clock?: Clock;
  /** Pause between polls; injected so tests never wait on the wall clock. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly signal?: AbortSignal;
}

const STATES = new Set<TaskInfoState>(['queued', 'running', 'success', 'error']);

export async function readTaskInfo(session: VsphereSession, task: ManagedObjectReference): Promise<TaskInfo> {
  const props = await retrieveObject(session.client, session.content.propertyCollector, task, ['info']);
  return parseTaskInfo(props.get('info'), task.value);
}

export function parseTaskInfo(info: XmlNode | undefined, task: string): TaskInfo {
  const state = textOf(info, 'state');
  if (info === undefined || state === null || !STATES.has(state as TaskInfoState)) throw new VsphereXmlError(`task ${task}: info.state is missing or unknown (${state ?? 'none'})`);
  const progress = textOf(info, 'progress');
  const errorNode = child(info, 'error');
  let error: VsphereFaultError | null = null;
  if (errorNode !== undefined) {
    const fault = child(errorNode, 'fault');
    const message = textOf(errorNode, 'localizedMessage') ?? `task ${task} failed`;
    error =
      fault === undefined
        ? faultToError('SystemError', message)
        : faultToError(faultType(fault), message, { moref: textOf(fault, 'obj'), file: textOf(fault, 'file'), property: textOf(fault, 'invalidProperty') });
  }
  return {
    key: textOf(info, 'key') ?? task,
    descriptionId: textOf(info, 'descriptionId') ?? '',
    state: state as TaskInfoState,
    progress: progress === null ? null : Number(progress),
    cancelable: textOf(info, 'cancelable') === 'true',
    result: child(info, 'result'),
    error,
  };
}

/** Waits for the task to end; returns its `info.result` on success, throws its fault on error. */
export async function waitForTask(session: VsphereSession, task: ManagedObjectReference, options: WaitOptions = {}): Promise<XmlNode | undefined> {
  const clock = options.clock ?? systemClock;
  const sleep = options.sleep ?? ((ms: number) => delay(ms, undefined, { signal: options.signal }));
  const timeoutMs = options.timeoutMs ?? 30 * 60_000;
  const pollMs = options.pollMs ?? 500;
  const deadline = clock.now().getTime() + timeoutMs;
  for (;;) {
    options.signal?.throwIfAborted();
    const info = await readTaskInfo(session, task);
    if (info.state === 'success') return info.result;
    if (info.state === 'error') throw info.error ?? faultToError('SystemError', `task ${task.value} failed without a fault`);
    if (clock.now().getTime() >= deadline) throw new VsphereTaskTimeoutError(task.value, info.descriptionId, timeoutMs);
    await sleep(pollMs);
  }
}

/** Asks vCenter to cancel the task; a task that already ended, or cannot be canceled, answers a fault. */
export async function cancelTask(session: VsphereSession, task: ManagedObjectReference): Promise<void> {
  await session.client.call('CancelTask', task);
}
