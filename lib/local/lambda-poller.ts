import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Log } from '../log.js';
import type { Queue, ReceivedMessage } from '../queue/queue.js';

/**
 * Lambda's SQS event source, locally: long-polls a queue, hands batches to the same handler the function
 * runs in AWS, deletes the records it did not report as failed, and leaves the failed ones to come back
 * after their visibility timeout (and to reach the DLQ after maxReceiveCount), as the real mapping does.
 */
export class LambdaPoller {
  private stopping = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    private readonly queue: Queue,
    private readonly handler: (event: SQSEvent) => Promise<SQSBatchResponse>,
    private readonly log: Log,
    private readonly options: { batchSize?: number; visibilitySeconds?: number; waitSeconds?: number } = {},
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let messages;
      try {
        messages = await this.queue.receive({
          maxMessages: this.options.batchSize ?? 10,
          waitSeconds: this.options.waitSeconds ?? 1,
          visibilityTimeoutSeconds: this.options.visibilitySeconds,
          signal: this.abort.signal,
        });
      } catch (err) {
        if (this.stopping) break;
        this.log.warn('poll failed', { queue: this.queue.name, error: (err as Error).message });
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (messages.length > 0) await this.deliver(messages);
    }
  }

  /** One Lambda invocation: the batch goes to the handler; what it did not report failed is deleted. */
  private async deliver(messages: ReceivedMessage[]): Promise<void> {
    const event: SQSEvent = {
      Records: messages.map(
        (m) =>
          ({
            messageId: m.messageId,
            receiptHandle: m.receiptHandle,
            body: m.body,
            attributes: { ApproximateReceiveCount: String(m.receiveCount) },
            messageAttributes: {},
            md5OfBody: '',
            eventSource: 'aws:sqs',
            eventSourceARN: this.queue.name,
            awsRegion: 'us-east-1',
          }) as unknown as SQSRecord,
      ),
    };
    let failed = new Set<string>();
    try {
      const res = await this.handler(event);
      failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
    } catch (err) {
      // A thrown handler fails the whole batch, as in Lambda.
      this.log.error('handler failed the batch', { queue: this.queue.name, error: (err as Error).message });
      failed = new Set(messages.map((m) => m.messageId));
    }
    const done = messages.filter((m) => !failed.has(m.messageId)).map((m) => m.receiptHandle);
    if (done.length > 0) await this.queue.delete(done);
  }



  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await this.loop;
  }
}
