import { randomUUID } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { systemClock } from '../system-clock.js';
import { checkBodies, QueueError, type Queue, type ReceiveOptions, type ReceivedMessage } from './queue.js';

interface Stored {
  readonly messageId: string;
  readonly body: string;
  receiveCount: number;
  /** Epoch ms (queue clock) when the message is visible again. */
  visibleAt: number;
  receiptHandle: string | undefined;
}

export interface MemoryQueueOptions {
  readonly name?: string;
  /** @default 30 */
  readonly visibilityTimeoutSeconds?: number;
  /** Receives before a message moves to `dlq` (as SQS's RedrivePolicy). */
  readonly maxReceiveCount?: number;
  readonly dlq?: MemoryQueue;
  /** Visibility timeouts follow this clock; long polls wait in real time. */
  readonly clock?: Clock;
}

/** The Queue port in memory, with SQS's semantics (visibility timeout, receive count, DLQ, long poll). */
export class MemoryQueue implements Queue {
  readonly name: string;
  private readonly messages: Stored[] = [];
  private readonly visibilityMs: number;
  private readonly maxReceiveCount: number | undefined;
  private readonly dlq: MemoryQueue | undefined;
  private readonly clock: Clock;
  private waiters: Array<() => void> = [];

  constructor(options: MemoryQueueOptions = {}) {
    this.name = options.name ?? 'memory-queue';
    this.visibilityMs = (options.visibilityTimeoutSeconds ?? 30) * 1000;
    this.maxReceiveCount = options.maxReceiveCount;
    this.dlq = options.dlq;
    this.clock = options.clock ?? systemClock;
  }

  async send(bodies: readonly string[]): Promise<string[]> {
    checkBodies(this.name, bodies);
    const ids = bodies.map((body) => this.enqueue(body));
    return ids;
  }

  async receive(options: ReceiveOptions = {}): Promise<ReceivedMessage[]> {
    const max = Math.min(10, Math.max(1, options.maxMessages ?? 10));
    const deadline = performance.now() + (options.waitSeconds ?? 20) * 1000;
    const visibilityMs = options.visibilityTimeoutSeconds !== undefined ? options.visibilityTimeoutSeconds * 1000 : this.visibilityMs;
    for (;;) {
      const got = this.take(max, visibilityMs);
      if (got.length > 0 || performance.now() >= deadline || options.signal?.aborted) return got;
      await this.wait(Math.min(50, deadline - performance.now()), options.signal);
    }
  }

  async delete(receiptHandles: string | readonly string[]): Promise<void> {
    const handles = new Set(typeof receiptHandles === 'string' ? [receiptHandles] : receiptHandles);
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const handle = this.messages[i]!.receiptHandle;
      if (handle !== undefined && handles.has(handle)) this.messages.splice(i, 1);
    }
  }

  async extendVisibility(receiptHandle: string, seconds: number): Promise<void> {
    const message = this.messages.find((m) => m.receiptHandle === receiptHandle);
    const now = this.clock.now().getTime();
    if (!message || message.visibleAt <= now) {
      throw new QueueError('QUEUE_VISIBILITY_FAILED', `cannot extend the visibility of a message on ${this.name}: it was deleted or is visible again, so another consumer may have it`);
    }
    message.visibleAt = now + seconds * 1000;
    if (seconds === 0) this.wake();
  }

  async dlqDepth(): Promise<number> {
    return this.dlq ? this.dlq.depth() : 0;
  }

  /** Messages in the queue, visible or not. */
  depth(): number {
    return this.messages.length;
  }

  private enqueue(body: string): string {
    const messageId = randomUUID();
    this.messages.push({ messageId, body, receiveCount: 0, visibleAt: 0, receiptHandle: undefined });
    this.wake();
    return messageId;
  }

  private take(max: number, visibilityMs: number): ReceivedMessage[] {
    const now = this.clock.now().getTime();
    const out: ReceivedMessage[] = [];
    for (let i = 0; i < this.messages.length && out.length < max; ) {
      const m = this.messages[i]!;
      if (m.visibleAt > now) {
        i++;
        continue;
      }
      if (this.maxReceiveCount !== undefined && this.dlq && m.receiveCount >= this.maxReceiveCount) {
        this.messages.splice(i, 1);
        this.dlq.enqueue(m.body);
        continue;
      }
      m.receiveCount += 1;
      m.receiptHandle = `${m.messageId}:${randomUUID()}`;
      m.visibleAt = now + visibilityMs;
      out.push({ messageId: m.messageId, body: m.body, receiptHandle: m.receiptHandle, receiveCount: m.receiveCount });
      i++;
    }
    return out;
  }

  private wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', done);
      this.waiters.push(done);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
