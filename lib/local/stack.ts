import path from 'node:path';
import { CreateTableCommand, DynamoDBClient, UpdateTimeToLiveCommand, waitUntilTableExists, DescribeTableCommand, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BUCKETS, CATALOG_TABLE, QUEUES, dlqName, type QueueDefinition } from '../infra/resources.js';
import { createS3Client } from '../repository/s3-store.js';
import { startDynamoDbLocal, type DynamoDbLocal } from './dynamodb-local.js';
import { startFauxqs, type FauxqsServer } from './fauxqs.js';

/** Credentials the local servers accept; they protect nothing and are not secrets. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;
export const LOCAL_REGION = 'us-east-1';

export interface LocalStackOptions {
  /** Persist DynamoDB under `<dataDir>/dynamodb`; in memory when absent (tests). */
  readonly dataDir?: string;
  /** Start DynamoDB Local. @default true */
  readonly dynamodb?: boolean;
  /** Create the buckets, queues and table of lib/infra/resources.ts. @default true */
  readonly createResources?: boolean;
  readonly fauxqsPort?: number;
  readonly dynamodbPort?: number;
}

export interface LocalStack {
  readonly endpoints: { readonly s3: string; readonly sqs: string; readonly dynamodb?: string };
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly dynamodb?: DynamoDBClient;
  readonly documents?: DynamoDBDocumentClient;
  readonly buckets: Readonly<Record<string, string>>;
  readonly queueUrls: Readonly<Record<QueueDefinition['id'], string>>;
  readonly dlqUrls: Readonly<Record<QueueDefinition['id'], string>>;
  readonly tableName: string;
  stop(): Promise<void>;
}

/**
 * The embedded AWS stand-ins: fauxqs for S3 and SQS (in process) and DynamoDB Local (a child JVM), on
 * 127.0.0.1 and ephemeral ports. `stop()` closes both; a JVM left over by a crash is killed at process exit.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  let fauxqs: FauxqsServer | undefined;
  let ddb: DynamoDbLocal | undefined;
  const stopAll = async () => {
    await Promise.allSettled([fauxqs?.stop(), ddb?.stop()]);
  };
  try {
    const withDynamo = options.dynamodb ?? true;
    // Start both at once: the JVM takes seconds, fauxqs milliseconds.
    [fauxqs, ddb] = await Promise.all([
      startFauxqs({ port: options.fauxqsPort }),
      withDynamo ? startDynamoDbLocal({ dbPath: options.dataDir ? path.join(options.dataDir, 'dynamodb') : undefined, port: options.dynamodbPort }) : Promise.resolve(undefined),
    ]);
    const common = { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS };
    const s3 = createS3Client({ ...common, endpoint: fauxqs.endpoint, forcePathStyle: true });
    const sqs = new SQSClient({ ...common, endpoint: fauxqs.endpoint });
    const dynamodb = ddb ? new DynamoDBClient({ ...common, endpoint: ddb.endpoint }) : undefined;
    const documents = dynamodb ? DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } }) : undefined;

    const buckets = Object.fromEntries(BUCKETS.map((b) => [b.id, b.name]));
    const queueUrls = {} as Record<QueueDefinition['id'], string>;
    const dlqUrls = {} as Record<QueueDefinition['id'], string>;
    if (options.createResources ?? true) {
      for (const bucket of BUCKETS) await s3.send(new CreateBucketCommand({ Bucket: bucket.name }));
      for (const queue of QUEUES) {
        const dlq = await sqs.send(new CreateQueueCommand({ QueueName: dlqName(queue), Attributes: { MessageRetentionPeriod: '1209600' } }));
        const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl!, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
        const main = await sqs.send(
          new CreateQueueCommand({
            QueueName: queue.name,
            Attributes: {
              VisibilityTimeout: String(queue.visibilityTimeoutSeconds),
              RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: queue.maxReceiveCount }),
            },
          }),
        );
        queueUrls[queue.id] = main.QueueUrl!;
        dlqUrls[queue.id] = dlq.QueueUrl!;
      }
      if (dynamodb) await ensureCatalogTable(dynamodb);
    }
    return {
      endpoints: { s3: fauxqs.endpoint, sqs: fauxqs.endpoint, dynamodb: ddb?.endpoint },
      s3,
      sqs,
      dynamodb,
      documents,
      buckets,
      queueUrls,
      dlqUrls,
      tableName: CATALOG_TABLE.name,
      async stop() {
        s3.destroy();
        sqs.destroy();
        dynamodb?.destroy();
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

async function ensureCatalogTable(client: DynamoDBClient): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: CATALOG_TABLE.name }));
    return; // persisted from an earlier run
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
  }
  const t = CATALOG_TABLE;
  const attributes = new Set<string>([t.partitionKey, t.sortKey, ...t.globalIndexes.flatMap((g) => [g.partitionKey, g.sortKey])]);
  await client.send(
    new CreateTableCommand({
      TableName: t.name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [...attributes].map((name) => ({ AttributeName: name, AttributeType: 'S' })),
      KeySchema: [
        { AttributeName: t.partitionKey, KeyType: 'HASH' },
        { AttributeName: t.sortKey, KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: t.globalIndexes.map((g) => ({
        IndexName: g.name,
        KeySchema: [
          { AttributeName: g.partitionKey, KeyType: 'HASH' },
          { AttributeName: g.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      })),
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 60 }, { TableName: t.name });
  await client.send(new UpdateTimeToLiveCommand({ TableName: t.name, TimeToLiveSpecification: { AttributeName: t.ttlAttribute, Enabled: true } }));
}
