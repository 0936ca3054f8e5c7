import { Duration } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { dlqName, type QueueDefinition } from './resources.js';
import { checkRange } from './validate.js';

export interface ServiceQueueProps {
  /** The queue from `lib/infra/resources.ts`: name, visibility timeout, receives before the DLQ. */
  readonly definition: QueueDefinition;
  /** How long an unprocessed message is kept. @default 4 days */
  readonly retentionDays?: number;
  /** How long a dead letter is kept for inspection and redrive. @default 14 days (the SQS maximum) */
  readonly deadLetterRetentionDays?: number;
}

/**
 * A queue and its dead-letter queue, named and tuned by the shared resource definition. Both are
 * encrypted with SQS-managed keys (on-prem agents need no KMS permission) and refuse non-TLS requests.
 */
export class ServiceQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly definition: QueueDefinition;

  constructor(scope: Construct, id: string, props: ServiceQueueProps) {
    super(scope, id);
    const d = props.definition;
    checkRange(this, `${d.id}.visibilityTimeoutSeconds`, d.visibilityTimeoutSeconds, 0, 43_200, 'fix the queue in lib/infra/resources.ts');
    checkRange(this, `${d.id}.maxReceiveCount`, d.maxReceiveCount, 1, 1000, 'fix the queue in lib/infra/resources.ts');
    const retentionDays = props.retentionDays ?? 4;
    checkRange(this, 'retentionDays', retentionDays, 1, 14, 'SQS keeps messages 1 to 14 days');
    const dlqDays = props.deadLetterRetentionDays ?? 14;
    checkRange(this, 'deadLetterRetentionDays', dlqDays, 1, 14, 'SQS keeps messages 1 to 14 days');
    this.definition = d;

    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      queueName: dlqName(d),
      retentionPeriod: Duration.days(dlqDays),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      queueName: d.name,
      visibilityTimeout: Duration.seconds(d.visibilityTimeoutSeconds),
      retentionPeriod: Duration.days(retentionDays),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: d.maxReceiveCount },
    });
  }
}
