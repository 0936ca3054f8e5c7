import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { BucketDefinition } from './resources.js';
import { check, checkRange } from './validate.js';

export interface ObjectLockSettings {
  /**
   * `GOVERNANCE` lets principals with `s3:BypassGovernanceRetention` remove locked versions;
   * `COMPLIANCE` lets no one, not even the root user, until the period ends.
   */
  readonly mode: 'GOVERNANCE' | 'COMPLIANCE';
  /** Default retention of every object version, in days (1–36500). */
  readonly days: number;
}

/** Whether a repository receives backups from agents (`primary`) or copies from the copy workers (`cloud`). */
export type RepositoryRole = 'primary' | 'cloud';

/**
 * What the service stack needs to know about a repository; `RepositoryBucket` is one. The service stack
 * finds the bucket by its deterministic name (`repositoryBucketName`), so no bucket export ties the stacks.
 */
export interface RepositoryRef {
  readonly definition: BucketDefinition;
  readonly role: RepositoryRole;
  readonly prefix: string;
  readonly key: kms.IKey;
}

/** `<definition.name>-<account>-<region>`: bucket names are global, so the account and region make them unique. */
export function repositoryBucketName(definition: BucketDefinition): string {
  return `${definition.name}-${Aws.ACCOUNT_ID}-${Aws.REGION}`;
}

/** The same bucket ARN as cdk-nag prints it in finding ids (pseudo parameters as `<AWS::...>`). */
export function repositoryBucketNagArn(definition: BucketDefinition): string {
  return `arn:<AWS::Partition>:s3:::${definition.name}-<AWS::AccountId>-<AWS::Region>`;
}

/** ARN pattern of the objects under a repository's prefix (`<bucket>/<prefix>` + `suffix`). */
export function repositoryObjectsArn(bucket: s3.IBucket, prefix: string, suffix = '*'): string {
  return `${bucket.bucketArn}/${prefix}${suffix}`;
}

export interface RepositoryBucketProps {
  /** The bucket from `lib/infra/resources.ts`. */
  readonly definition: BucketDefinition;
  readonly role: RepositoryRole;
  /**
   * Key prefix of the repository inside the bucket: empty, or segments ending in `/` (`repo/`, `tenants/a/`).
   * Agent and function policies are scoped to it.
   * @default '' (the whole bucket)
   */
  readonly prefix?: string;
  /**
   * Object Lock default retention: immutable backups. Object Lock can only be enabled when a bucket is
   * created; adding it later means a new bucket.
   * @default - no Object Lock
   */
  readonly objectLock?: ObjectLockSettings;
  /**
   * Delete noncurrent (overwritten or deleted) object versions after this many days. With Object Lock,
   * a version is never removed before its retention ends.
   * @default 30
   */
  readonly noncurrentVersionExpirationDays?: number;
  /** @default 7 */
  readonly abortIncompleteMultipartUploadDays?: number;
  /** Where S3 server access logs go. @default - no access logs */
  readonly serverAccessLogsBucket?: s3.IBucket;
}

/**
 * A repository bucket: SSE-KMS with its own rotating key, public access blocked, TLS only, versioned,
 * optional Object Lock, lifecycle for incomplete uploads and old versions. Bucket and key are retained
 * when the stack is deleted: they hold the backups.
 *
 * The bucket is named `<definition.name>-<account>-<region>` (`repositoryBucketName`).
 */
export class RepositoryBucket extends Construct implements RepositoryRef {
  readonly bucket: s3.Bucket;
  readonly key: kms.Key;
  readonly role: RepositoryRole;
  readonly prefix: string;
  readonly definition: BucketDefinition;

  constructor(scope: Construct, id: string, props: RepositoryBucketProps) {
    super(scope, id);
    const prefix = props.prefix ?? '';
    check(
      prefix === '' || /^([A-Za-z0-9!_.'()-]+\/)+$/.test(prefix),
      this,
      `prefix '${prefix}' is not a repository prefix: use '' or segments of letters, digits and !_.'()- each ending in '/', e.g. 'repo/'`,
    );
    const noncurrentDays = props.noncurrentVersionExpirationDays ?? 30;
    checkRange(this, 'noncurrentVersionExpirationDays', noncurrentDays, 1, 36500, 'how long overwritten or deleted versions stay recoverable');
    const abortDays = props.abortIncompleteMultipartUploadDays ?? 7;
    checkRange(this, 'abortIncompleteMultipartUploadDays', abortDays, 1, 365, 'how long an interrupted upload may keep its parts');
    if (props.objectLock) {
      check(
        props.objectLock.mode === 'GOVERNANCE' || props.objectLock.mode === 'COMPLIANCE',
        this,
        `objectLock.mode must be 'GOVERNANCE' or 'COMPLIANCE' (got '${String(props.objectLock.mode)}')`,
      );
      checkRange(this, 'objectLock.days', props.objectLock.days, 1, 36500, 'the default retention of every object version, in days');
    }
    this.definition = props.definition;
    this.role = props.role;
    this.prefix = prefix;

    this.key = new kms.Key(this, 'Key', {
      description: `vcd-backup repository ${props.definition.id}: S3 server-side encryption and repository key wrapping`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const lock = props.objectLock;
    this.bucket = new s3.Bucket(this, 'Bucket', {
      bucketName: repositoryBucketName(props.definition),
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      objectLockEnabled: lock !== undefined,
      objectLockDefaultRetention:
        lock === undefined
          ? undefined
          : lock.mode === 'COMPLIANCE'
            ? s3.ObjectLockRetention.compliance(Duration.days(lock.days))
            : s3.ObjectLockRetention.governance(Duration.days(lock.days)),
      lifecycleRules: [
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(abortDays) },
        { id: 'expire-noncurrent-versions', noncurrentVersionExpiration: Duration.days(noncurrentDays) },
        { id: 'remove-expired-delete-markers', expiredObjectDeleteMarker: true },
      ],
      serverAccessLogsBucket: props.serverAccessLogsBucket,
      serverAccessLogsPrefix: props.serverAccessLogsBucket ? `${props.definition.name}/` : undefined,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
