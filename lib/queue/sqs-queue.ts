import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { checkBodies, chunks, QueueError, QueueSendError, type Queue, type ReceiveOptions, type ReceivedMessage } from './queue.js';

export interface SqsQueueOptions {
  readonly client: SQSClient;
  readonly queueUrl: string;
  /** The dead-letter queue; found through the queue's RedrivePolicy when absent. */
  readonly dlqUrl?: string;
  /** Attempts for entries SQS failed on its side (throttling, internal errors). @default 4 */
  readonly maxAttempts?: number;
}

/** The Queue port on SQS (and fauxqs locally). */
export class SqsQueue implements Queue {
  readonly name: string;
  private readonly client: SQSClient;
  private readonly queueUrl: string;
  private dlqUrl: string | undefined;
  private readonly maxAttempts: number;

  constructor(options: SqsQueueOptions) {
    this.client = options.client;
    this.queueUrl = options.queueUrl;
    this.dlqUrl = options.dlqUrl;
    this.maxAttempts = options.maxAttempts ?? 4;
    this.name = options.queueUrl.split('/').pop() || options.queueUrl;
  }

  async send(bodies: readonly string[]): Promise<string[]> {
    checkBodies(this.name, bodies);
    const ids: string[] = new Array<string>(bodies.length);
    const failed: Array<{ index: number; code: string; message: string }> = [];
    for (const batch of chunks(
      bodies.map((body, index) => ({ body, index })),
      10,
    )) {
      let pending = batch;
      for (let attempt = 1; pending.length > 0; attempt++) {
        const out = await this.client.send(
          new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending.map((e) => ({ Id: String(e.index), MessageBody: e.body })) }),
        );
        for (const ok of out.Successful ?? []) ids[Number(ok.Id)] = ok.MessageId ?? '';
        const retry: typeof pending = [];
        for (const bad of out.Failed ?? []) {
          const entry = pending.find((e) => String(e.index) === bad.Id);
          if (!entry) continue;
          if (bad.SenderFault || attempt >= this.maxAttempts) failed.push({ index: entry.index, code: bad.Code ?? 'Unknown', message: bad.Message ?? 'no message' });
          else retry.push(entry);
        }
        pending = retry;
        if (pending.length > 0) await sleep(50 * 2 ** attempt);
      }
    }
    if (failed.length > 0) throw new QueueSendError(this.name, failed.sort((a, b) => a.index - b.index));
    return ids;
  }

  async receive(options: ReceiveOptions = {}): Promise<ReceivedMessage[]> {
    const command = new ReceiveMessageCommand({
      QueueUrl: this.queueUrl,
      MaxNumberOfMessages: options.maxMessages ?? 10,
      WaitTimeSeconds: options.waitSeconds ?? 20,
      ...(options.visibilityTimeoutSeconds !== undefined ? { VisibilityTimeout: options.visibilityTimeoutSeconds } : {}),
      MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    });
    try {
      const out = await this.client.send(command, options.signal ? { abortSignal: options.signal } : undefined);
      return (out.Messages ?? []).map((m) => ({
        messageId: m.MessageId ?? '',
        body: m.Body ?? '',
        receiptHandle: m.ReceiptHandle ?? '',
        receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '1'),
      }));
    } catch (err) {
      if (options.signal?.aborted) return [];
      throw err;
    }
  }

  async delete(receiptHandles: string | readonly string[]): Promise<void> {
    const handles = typeof receiptHandles === 'string' ? [receiptHandles] : receiptHandles;
    const failed: string[] = [];
    for (const batch of chunks(handles, 10)) {
      const out = await this.client.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: batch.map((handle, i) => ({ Id: String(i), ReceiptHandle: handle })) }),
      );
      for (const bad of out.Failed ?? []) failed.push(`${bad.Code ?? 'Unknown'}: ${bad.Message ?? ''}`);
    }
    if (failed.length > 0) throw new QueueError('QUEUE_DELETE_FAILED', `${failed.length} message(s) could not be deleted from ${this.name} (they will be delivered again): ${failed.slice(0, 3).join('; ')}`);
  }

  async extendVisibility(receiptHandle: string, seconds: number): Promise<void> {
    try {
      await this.client.send(new ChangeMessageVisibilityCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }));
    } catch (err) {
      throw new QueueError('QUEUE_VISIBILITY_FAILED', `cannot extend the visibility of a message on ${this.name} (it was deleted or is visible again, so another consumer may have it): ${(err as Error).message}`, { cause: err });
    }
  }

  async dlqDepth(): Promise<number> {
    const url = await this.resolveDlq();
    const out = await this.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
    return Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  }

  private async resolveDlq(): Promise<string> {
    if (this.dlqUrl) return this.dlqUrl;
    const out = await this.client.send(new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ['RedrivePolicy'] }));
    const policy = out.Attributes?.RedrivePolicy;
    const arn = policy ? (JSON.parse(policy) as { deadLetterTargetArn?: string }).deadLetterTargetArn : undefined;
    const name = arn?.split(':').pop();
    if (!name) throw new QueueError('QUEUE_NO_DLQ', `${this.name} has no dead-letter queue: give dlqUrl or set a RedrivePolicy on the queue`);
    const resolved = (await this.client.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl;
    if (!resolved) throw new QueueError('QUEUE_NO_DLQ', `the dead-letter queue ${name} of ${this.name} does not exist`);
    this.dlqUrl = resolved;
    return resolved;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
