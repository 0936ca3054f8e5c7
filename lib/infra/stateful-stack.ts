import { CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { RepositoryBucket, type ObjectLockSettings, type RepositoryRole } from './repository-bucket.js';
import { BUCKETS, CATALOG_TABLE, type BucketDefinition } from './resources.js';
import { pascal } from './names.js';
import { check, checkRange } from './validate.js';

export interface RepositoryConfig {
  /** A bucket id from `lib/infra/resources.ts` (`primary`, `cloud`, `archive`). */
  readonly id: BucketDefinition['id'];
  /** @default 'primary' for the `primary` bucket, 'cloud' for the others */
  readonly role?: RepositoryRole;
  /** @default '' */
  readonly prefix?: string;
  /** @default - the stack's `objectLock` */
  readonly objectLock?: ObjectLockSettings;
}

export interface StatefulStackProps extends StackProps {
  /**
   * The repository buckets to create. At least one must have the `primary` role: agents write there.
   * @default [{ id: 'primary' }, { id: 'cloud' }]
   */
  readonly repositories?: readonly RepositoryConfig[];
  /** Object Lock for every repository that does not set its own. @default - none */
  readonly objectLock?: ObjectLockSettings;
  /** @default 30 */
  readonly noncurrentVersionExpirationDays?: number;
  /** Days S3 server access logs are kept. @default 365 */
  readonly accessLogsRetentionDays?: number;
}

/**
 * Everything that holds data and must outlive a redeploy: the catalog table, the repository buckets and
 * their keys, and the access-log bucket. All are retained when the stack is deleted.
 */
export class StatefulStack extends Stack {
  readonly table: dynamodb.Table;
  readonly repositories: readonly RepositoryBucket[];
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: StatefulStackProps = {}) {
    super(scope, id, props);
    const configs = props.repositories ?? [{ id: 'primary' }, { id: 'cloud' }];
    const known = BUCKETS.map((b) => b.id);
    check(configs.length > 0, this, `repositories is empty: list at least one of ${known.join(', ')} in the 'repositories' context`);
    for (const c of configs) {
      check(known.includes(c.id), this, `repository id '${c.id}' is not defined in lib/infra/resources.ts: use one of ${known.join(', ')}`);
      check(configs.filter((o) => o.id === c.id).length === 1, this, `repository '${c.id}' is listed twice: list each repository once`);
    }
    const roleOf = (c: RepositoryConfig): RepositoryRole => c.role ?? (c.id === 'primary' ? 'primary' : 'cloud');
    check(
      configs.some((c) => roleOf(c) === 'primary'),
      this,
      "no repository has the 'primary' role: agents need one to write backups to; add { \"id\": \"primary\" } to 'repositories'",
    );
    const logDays = props.accessLogsRetentionDays ?? 365;
    checkRange(this, 'accessLogsRetentionDays', logDays, 1, 36500, 'how long S3 server access logs are kept');

    this.table = new dynamodb.Table(this, 'Catalog', {
      tableName: CATALOG_TABLE.name,
      partitionKey: { name: CATALOG_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: CATALOG_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: CATALOG_TABLE.ttlAttribute,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of CATALOG_TABLE.globalIndexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING },
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }

    // S3 server access logs only support SSE-S3 on the target bucket.
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(logDays) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.accessLogs).acknowledge({ id: 'AwsSolutions-S1', reason: 'This is the access-log bucket; logging its own access would loop.' });

    this.repositories = configs.map((c) => {
      const definition = BUCKETS.find((b) => b.id === c.id)!;
      return new RepositoryBucket(this, `Repository${pascal(c.id)}`, {
        definition,
        role: roleOf(c),
        prefix: c.prefix,
        objectLock: c.objectLock ?? props.objectLock,
        noncurrentVersionExpirationDays: props.noncurrentVersionExpirationDays,
        serverAccessLogsBucket: this.accessLogs,
      });
    });

    new CfnOutput(this, 'CatalogTableName', { value: this.table.tableName });
    for (const r of this.repositories) {
      new CfnOutput(this, `${pascal(r.definition.id)}BucketName`, { value: r.bucket.bucketName, description: `${r.role} repository bucket` });
      new CfnOutput(this, `${pascal(r.definition.id)}KeyArn`, { value: r.key.keyArn, description: `KMS key of the ${r.definition.id} repository` });
    }
  }
}
