import { BackupError } from '../errors.js';
import { encodeMessage, type MessageByQueue, type QueueId } from './messages.js';

/**
 * The queue port (DESIGN §5): at-least-once delivery, visibility timeouts, a dead-letter queue after too
 * many receives. SQS in AWS and locally (fauxqs); MemoryQueue in unit tests. Bodies are strings; message
 * schemas live in messages.ts (`encodeMessage` / `parseMessage`).
 *
 * Contract, checked by test/integration/queue.test.ts for both adapters:
 * - `send` sends every body (in batches of 10) or throws QueueSendError naming the entries that failed after
 *   retries; the entries that succeeded stay sent (at least once: callers' handlers are idempotent);
 * - a received message stays invisible for the visibility timeout, then is delivered again with a higher
 *   `receiveCount` unless it was deleted; `extendVisibility` restarts that timeout from now;
 * - after `maxReceiveCount` receives without a delete, the message moves to the dead-letter queue;
 * - `receive` long-polls: it returns as soon as a message is available, or empty after `waitSeconds`.
 */
export interface Queue {
  /** Name for messages and logs. */
  readonly name: string;
  /** Sends bodies in batches of 10; returns the message ids in input order. */
  send(bodies: readonly string[]): Promise<string[]>;
  receive(options?: ReceiveOptions): Promise<ReceivedMessage[]>;
  /** Deletes received messages by receipt handle; deleting an already deleted message succeeds. */
  delete(receiptHandles: string | readonly string[]): Promise<void>;
  /** Hides a received message for `seconds` more from now (0 makes it visible again at once). */
  extendVisibility(receiptHandle: string, seconds: number): Promise<void>;
  /** Messages waiting in the dead-letter queue (approximate on SQS). */
  dlqDepth(): Promise<number>;
}

export interface ReceiveOptions {
  /** 1–10. @default 10 */
  readonly maxMessages?: number;
  /** Long-poll wait, 0–20 s. @default 20 */
  readonly waitSeconds?: number;
  /** Overrides the queue's visibility timeout for these messages. */
  readonly visibilityTimeoutSeconds?: number;
  /** Aborts a long poll (graceful shutdown); the call then returns what it has, usually nothing. */
  readonly signal?: AbortSignal;
}

export interface ReceivedMessage {
  readonly messageId: string;
  readonly body: string;
  readonly receiptHandle: string;
  /** 1 on the first delivery. */
  readonly receiveCount: number;
}

/** Some entries of a send failed after retries. */
export class QueueSendError extends BackupError {
  readonly failed: ReadonlyArray<{ readonly index: number; readonly code: string; readonly message: string }>;
  constructor(queue: string, failed: ReadonlyArray<{ index: number; code: string; message: string }>, options?: { cause?: unknown }) {
    super(
      'QUEUE_SEND_FAILED',
      `${failed.length} message(s) could not be sent to ${queue}: ${failed
        .slice(0, 5)
        .map((f) => `#${f.index} ${f.code}: ${f.message}`)
        .join('; ')}${failed.length > 5 ? '; …' : ''}`,
      options,
    );
    this.failed = failed;
  }
}

/** SQS's limit for one message body. */
export const MAX_BODY_BYTES = 256 * 1024;

export function checkBodies(queue: string, bodies: readonly string[]): void {
  const tooBig = bodies
    .map((b, index) => ({ index, size: Buffer.byteLength(b, 'utf8') }))
    .filter((b) => b.size > MAX_BODY_BYTES || b.size === 0)
    .map((b) => ({ index: b.index, code: b.size === 0 ? 'EmptyBody' : 'BodyTooLarge', message: b.size === 0 ? 'the body is empty' : `the body has ${b.size} bytes, more than ${MAX_BODY_BYTES}; split the work into smaller messages` }));
  if (tooBig.length > 0) throw new QueueSendError(queue, tooBig);
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The part of an SQS (Lambda) record the batch helper needs. */
export interface BatchRecord {
  readonly messageId: string;
  readonly body: string;
}

export interface BatchResponse {
  batchItemFailures: Array<{ itemIdentifier: string }>;
}

/**
 * Runs `handler` on every record and reports the failed ones the way Lambda's partial batch response expects
 * (`ReportBatchItemFailures`): one bad message does not fail, and so does not redeliver, its batch.
 * Records are handled one after the other, or `concurrency` at a time. With `fifo`, the first failure also
 * fails every later record (FIFO queues must keep the order).
 */
export async function processBatch<R extends BatchRecord>(
  records: readonly R[],
  handler: (record: R) => Promise<void>,
  options: { concurrency?: number; fifo?: boolean; onError?: (record: R, error: unknown) => void } = {},
): Promise<BatchResponse> {
  const failed = new Set<string>();
  if (options.fifo) {
    let broken = false;
    for (const record of records) {
      if (broken) {
        failed.add(record.messageId);
        continue;
      }
      try {
        await handler(record);
      } catch (err) {
        options.onError?.(record, err);
        failed.add(record.messageId);
        broken = true;
      }
    }
  } else {
    const concurrency = Math.max(1, options.concurrency ?? 1);
    let next = 0;
    const worker = async () => {
      while (next < records.length) {
        const record = records[next++]!;
        try {
          await handler(record);
        } catch (err) {
          options.onError?.(record, err);
          failed.add(record.messageId);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, records.length) }, worker));
  }
  return { batchItemFailures: records.filter((r) => failed.has(r.messageId)).map((r) => ({ itemIdentifier: r.messageId })) };
}

/** A receive, delete or visibility change the queue refused. */
export class QueueError extends BackupError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Validates typed messages for `queueId` (InvalidMessageError names the field) and sends them. */
export async function sendMessages<Q extends QueueId>(queue: Queue, queueId: Q, messages: ReadonlyArray<MessageByQueue[Q]>): Promise<string[]> {
  return queue.send(messages.map((m) => encodeMessage(queueId, m)));
}
