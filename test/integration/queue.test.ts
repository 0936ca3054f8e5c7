import { randomUUID } from 'node:crypto';
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { encodeMessage, parseMessage } from '../../lib/queue/messages.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import { processBatch, QueueSendError, type Queue, type ReceivedMessage } from '../../lib/queue/queue.js';
import { SqsQueue } from '../../lib/queue/sqs-queue.js';
import { useLocalStack } from '../helpers/local-stack.js';

const stack = useLocalStack({ dynamodb: false });

interface QueueSettings {
  visibilityTimeoutSeconds: number;
  maxReceiveCount: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Receives until `count` messages arrived or `ms` passed. */
async function drain(queue: Queue, count: number, ms = 10_000, visibilityTimeoutSeconds?: number): Promise<ReceivedMessage[]> {
  const out: ReceivedMessage[] = [];
  const until = Date.now() + ms;
  while (out.length < count && Date.now() < until) {
    out.push(...(await queue.receive({ maxMessages: 10, waitSeconds: 1, ...(visibilityTimeoutSeconds !== undefined ? { visibilityTimeoutSeconds } : {}) })));
  }
  return out;
}

function queueContract(name: string, make: (settings: QueueSettings) => Promise<Queue>): void {
  describe(`Queue contract: ${name}`, () => {
    const defaults: QueueSettings = { visibilityTimeoutSeconds: 30, maxReceiveCount: 5 };

    it('sends, receives and deletes', async () => {
      const queue = await make(defaults);
      const [id] = await queue.send(['{"hello":"world"}']);
      const [message, ...rest] = await queue.receive({ waitSeconds: 2 });
      expect(rest).toEqual([]);
      expect(message).toMatchObject({ messageId: id, body: '{"hello":"world"}', receiveCount: 1 });
      expect(message!.receiptHandle).not.toBe('');
      await queue.delete(message!.receiptHandle);
      await queue.delete(message!.receiptHandle);
      expect(await queue.receive({ waitSeconds: 0, visibilityTimeoutSeconds: 0 })).toEqual([]);
    });

    it('sends a batch of 25 in batches of 10 and delivers each once', async () => {
      const queue = await make(defaults);
      const bodies = Array.from({ length: 25 }, (_, i) => JSON.stringify({ n: i }));
      const ids = await queue.send(bodies);
      expect(ids).toHaveLength(25);
      expect(new Set(ids).size).toBe(25);
      const got = await drain(queue, 25);
      expect(got.map((m) => m.body).sort()).toEqual([...bodies].sort());
      await queue.delete(got.map((m) => m.receiptHandle));
      expect(await queue.receive({ waitSeconds: 0, visibilityTimeoutSeconds: 0 })).toEqual([]);
    });

    it('redelivers a message not deleted within its visibility timeout, counting receives', async () => {
      const queue = await make(defaults);
      await queue.send(['again']);
      const [first] = await queue.receive({ waitSeconds: 2, visibilityTimeoutSeconds: 1 });
      expect(first?.receiveCount).toBe(1);
      expect(await queue.receive({ waitSeconds: 0 })).toEqual([]);
      await sleep(1200);
      const [second] = await queue.receive({ waitSeconds: 2 });
      expect(second).toMatchObject({ body: 'again', receiveCount: 2, messageId: first!.messageId });
      await queue.delete(second!.receiptHandle);
    });

    it('extends visibility while work goes on, and 0 hands the message back at once', async () => {
      const queue = await make(defaults);
      await queue.send(['long work']);
      const [m] = await queue.receive({ waitSeconds: 2, visibilityTimeoutSeconds: 1 });
      await queue.extendVisibility(m!.receiptHandle, 3);
      await sleep(1300);
      expect(await queue.receive({ waitSeconds: 0 })).toEqual([]);
      await queue.extendVisibility(m!.receiptHandle, 0);
      const [again] = await queue.receive({ waitSeconds: 2 });
      expect(again).toMatchObject({ body: 'long work', receiveCount: 2 });
    });

    it('moves a message to the dead-letter queue after maxReceiveCount receives', async () => {
      const queue = await make({ visibilityTimeoutSeconds: 30, maxReceiveCount: 2 });
      await queue.send(['poison']);
      for (let i = 1; i <= 2; i++) {
        const [m] = await queue.receive({ waitSeconds: 2, visibilityTimeoutSeconds: 1 });
        expect(m?.receiveCount).toBe(i);
        await sleep(1100);
      }
      expect(await queue.receive({ waitSeconds: 1 })).toEqual([]);
      let depth = 0;
      for (let i = 0; i < 20 && depth === 0; i++) {
        depth = await queue.dlqDepth();
        if (depth === 0) await sleep(100);
      }
      expect(depth).toBe(1);
    });

    it('long-polls: returns as soon as a message arrives', async () => {
      const queue = await make(defaults);
      const started = Date.now();
      const receiving = queue.receive({ waitSeconds: 10 });
      await sleep(300);
      await queue.send(['late']);
      const got = await receiving;
      expect(got.map((m) => m.body)).toEqual(['late']);
      expect(Date.now() - started).toBeLessThan(5000);
    });

    it('an aborted long poll returns empty', async () => {
      const queue = await make(defaults);
      const controller = new AbortController();
      const receiving = queue.receive({ waitSeconds: 10, signal: controller.signal });
      setTimeout(() => controller.abort(), 200);
      const started = Date.now();
      expect(await receiving).toEqual([]);
      expect(Date.now() - started).toBeLessThan(5000);
    });

    it('partial batch failures: successes are deleted, failures come back', async () => {
      const queue = await make(defaults);
      const messages = Array.from({ length: 6 }, (_, i) =>
        encodeMessage('agentResults', { type: 'TaskProgress', version: 1, taskId: `t${i}`, runId: 'r', bytesDone: i, bytesTotal: 10 }),
      );
      await queue.send([...messages, '{"type":"TaskProgress","version":1}']);
      const batch = await drain(queue, 7, 10_000, 1);
      expect(batch).toHaveLength(7);
      const handled: string[] = [];
      const result = await processBatch(batch, async (record) => {
        const message = parseMessage('agentResults', record.body);
        if (message.type === 'TaskProgress' && message.bytesDone % 3 === 0) throw new Error('transient');
        handled.push(message.taskId);
      });
      const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
      expect(failed.size).toBe(3); // t0, t3 and the invalid body
      // What the Lambda event source does: delete the successes, leave the failures for redelivery.
      await queue.delete(batch.filter((m) => !failed.has(m.messageId)).map((m) => m.receiptHandle));
      expect(handled.sort()).toEqual(['t1', 't2', 't4', 't5']);
      await sleep(1100);
      const again = await drain(queue, 3);
      expect(new Set(again.map((m) => m.messageId))).toEqual(failed);
      expect(again.every((m) => m.receiveCount === 2)).toBe(true);
    });

    it('refuses empty and oversized bodies before sending anything', async () => {
      const queue = await make(defaults);
      await expect(queue.send(['ok', ''])).rejects.toMatchObject({ code: 'QUEUE_SEND_FAILED', failed: [{ index: 1, code: 'EmptyBody' }] });
      await expect(queue.send(['x'.repeat(256 * 1024 + 1)])).rejects.toMatchObject({ failed: [{ index: 0, code: 'BodyTooLarge' }] });
      expect(await queue.receive({ waitSeconds: 0 })).toEqual([]);
    });
  });
}

queueContract('memory', async (settings) => {
  const dlq = new MemoryQueue({ name: 'dlq' });
  return new MemoryQueue({ name: 'main', visibilityTimeoutSeconds: settings.visibilityTimeoutSeconds, maxReceiveCount: settings.maxReceiveCount, dlq });
});

queueContract('SQS (fauxqs)', async (settings) => {
  const { sqs } = stack();
  const name = `test-${randomUUID().slice(0, 8)}`;
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }))).QueueUrl!;
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const queueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: {
          VisibilityTimeout: String(settings.visibilityTimeoutSeconds),
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: settings.maxReceiveCount }),
        },
      }),
    )
  ).QueueUrl!;
  // Half of the queues find their DLQ through the RedrivePolicy.
  return new SqsQueue({ client: sqs, queueUrl, ...(settings.maxReceiveCount === 2 ? {} : { dlqUrl }) });
});

describe('SqsQueue on the stack queues', () => {
  it('talks to the queues the local stack created from lib/infra/resources.ts', async () => {
    const { sqs, queueUrls, dlqUrls } = stack();
    const runs = new SqsQueue({ client: sqs, queueUrl: queueUrls.runs, dlqUrl: dlqUrls.runs });
    const body = encodeMessage('runs', { type: 'StartBackupRun', version: 1, runId: 'r1', jobId: 'j1', tenantId: 't1', trigger: 'manual', requestedAt: '2026-03-02T10:00:00.000Z' });
    await runs.send([body]);
    const [m] = await runs.receive({ waitSeconds: 2 });
    expect(parseMessage('runs', m!.body)).toMatchObject({ type: 'StartBackupRun', runId: 'r1' });
    await runs.delete(m!.receiptHandle);
    expect(await runs.dlqDepth()).toBe(0);
  });
});

describe('SqsQueue per-entry send failures (faults fauxqs cannot produce)', () => {
  it('retries entries SQS failed on its side and reports sender faults by index', async () => {
    const client = new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const mock = mockClient(client);
    let call = 0;
    mock.on(SendMessageBatchCommand).callsFake((input: { Entries: Array<{ Id: string }> }) => {
      call++;
      if (call === 1) {
        // First batch (entries 0-9): 3 throttled (retryable), 7 is a sender fault.
        return {
          Successful: input.Entries.filter((e) => !['3', '5', '7'].includes(e.Id)).map((e) => ({ Id: e.Id, MessageId: `m${e.Id}` })),
          Failed: [
            { Id: '3', SenderFault: false, Code: 'ThrottlingException', Message: 'slow down' },
            { Id: '5', SenderFault: false, Code: 'InternalError', Message: 'oops' },
            { Id: '7', SenderFault: true, Code: 'InvalidMessageContents', Message: 'bad characters' },
          ],
        };
      }
      return { Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `m${e.Id}` })), Failed: [] };
    });
    const queue = new SqsQueue({ client, queueUrl: 'http://127.0.0.1:1/000000000000/q' });
    const sending = queue.send(Array.from({ length: 12 }, (_, i) => `body ${i}`));
    await expect(sending).rejects.toBeInstanceOf(QueueSendError);
    await expect(sending).rejects.toMatchObject({ failed: [{ index: 7, code: 'InvalidMessageContents' }] });
    const calls = mock.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.Entries!.map((e) => e.Id));
    expect(calls).toEqual([['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'], ['3', '5'], ['10', '11']]);
    mock.restore();
  });
});
