import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { Log } from '../log.js';
import { parseMessage, type MessageByQueue, type QueueId } from '../queue/messages.js';
import { processBatch } from '../queue/queue.js';

/**
 * The shape every SQS-triggered function shares: parse each record with its queue's schema, run one
 * service call, and report failed records alone (partial batch response), so one poison message goes to
 * the DLQ after its retries without taking its batch along.
 */
export function sqsHandler<Q extends QueueId>(queue: Q, log: Log, handle: (message: MessageByQueue[Q]) => Promise<void>) {
  return async (event: SQSEvent): Promise<SQSBatchResponse> =>
    processBatch(
      event.Records.map((r) => ({ messageId: r.messageId, body: r.body })),
      async (record) => {
        const message = parseMessage(queue, JSON.parse(record.body));
        await handle(message);
      },
      {
        concurrency: 4,
        onError: (record, err) => log.error('message failed; it will be retried, then dead-lettered', { queue, messageId: record.messageId, error: (err as Error).message }),
      },
    );
}
