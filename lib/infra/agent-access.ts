import { Aws, Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as rolesanywhere from 'aws-cdk-lib/aws-rolesanywhere';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledgeRepositoryObjects } from './nag.js';
import { repositoryBucketName, repositoryObjectsArn, type RepositoryRef } from './repository-bucket.js';
import { pascal } from './names.js';
import { check, checkRange } from './validate.js';

export interface RolesAnywhereSettings {
  /**
   * PEM of the CA certificate(s) that issue the agents' certificates (`CERTIFICATE_BUNDLE` trust anchor).
   * Exactly one of `certificateBundlePem` and `acmPcaArn`.
   */
  readonly certificateBundlePem?: string;
  /** ARN of an AWS Private CA that issues the agents' certificates (`AWS_ACM_PCA` trust anchor). */
  readonly acmPcaArn?: string;
  /**
   * Only certificates whose subject CN matches one of these patterns (`*` allowed) may assume the role.
   * @default - any certificate the trust anchor accepts
   */
  readonly allowedCommonNames?: readonly string[];
  /** Lifetime of the credentials `aws_signing_helper` obtains, in seconds (900–43200). @default 3600 */
  readonly sessionDurationSeconds?: number;
}

export interface AgentAccessProps {
  /** Agents long-poll this queue for DiskBackupTask / DiskRestoreTask. */
  readonly tasksQueue: sqs.IQueue;
  /** Agents send TaskProgress / TaskResult here. */
  readonly resultsQueue: sqs.IQueue;
  /**
   * Repositories the agents use: `primary` ones read and write (blocks and disk indexes, never
   * deletes), `cloud` ones read only (restores from the offsite copy).
   */
  readonly repositories: readonly RepositoryRef[];
  /**
   * Create an IAM Roles Anywhere trust anchor and profile for the role.
   * @default - none: the role trusts any Roles Anywhere trust anchor of this account, create one yourself
   */
  readonly rolesAnywhere?: RolesAnywhereSettings;
}

/**
 * What an agent may never do to a repository bucket, whatever else is attached to its role later: delete,
 * rewrite metadata that lifecycle rules or retention act on, or change the bucket's own protections.
 */
export const AGENT_DENIED_S3_ACTIONS = [
  's3:DeleteObject',
  's3:DeleteObjectVersion',
  's3:DeleteObjectTagging',
  's3:DeleteObjectVersionTagging',
  's3:PutObjectTagging',
  's3:PutObjectVersionTagging',
  's3:PutObjectAcl',
  's3:PutObjectVersionAcl',
  's3:PutObjectRetention',
  's3:PutObjectLegalHold',
  's3:BypassGovernanceRetention',
  's3:PutLifecycleConfiguration',
  's3:PutBucketVersioning',
  's3:PutBucketObjectLockConfiguration',
  's3:PutBucketPolicy',
  's3:DeleteBucketPolicy',
  's3:PutReplicationConfiguration',
  's3:DeleteBucket',
] as const;

/**
 * The IAM role on-prem proxy agents assume through IAM Roles Anywhere (X.509 certificates, no long-lived
 * keys). It may only consume the agent-tasks queue, send to the agent-results queue, and touch objects
 * under the repository prefixes; in primary repositories it may write blocks and disk indexes only, so an
 * agent can neither commit nor delete a restore point.
 *
 * Create-only (issue 13): a compromised agent can add objects but never destroy one. Its PutObject is allowed
 * only with `If-None-Match: *` (S3 then refuses to replace an existing key, 412) and explicitly denied
 * without it (condition key `s3:if-none-match`; an explicit Deny also beats any Allow attached to the role
 * later). The same Deny catches multipart uploads and CopyObject, which the agent does not use. Deletes,
 * versions, tags, ACLs, retention and the buckets' own settings are denied outright. The agent opens its
 * stores with `createOnly: true` (lib/repository/s3-store.ts), which sends the header.
 */
export class AgentAccess extends Construct {
  readonly role: iam.Role;
  readonly trustAnchor?: rolesanywhere.CfnTrustAnchor;
  readonly profile?: rolesanywhere.CfnProfile;

  constructor(scope: Construct, id: string, props: AgentAccessProps) {
    super(scope, id);
    const ra = props.rolesAnywhere;
    if (ra) {
      check(
        (ra.certificateBundlePem === undefined) !== (ra.acmPcaArn === undefined),
        this,
        'rolesAnywhere needs exactly one of certificateBundlePem (your CA certificate, PEM) and acmPcaArn (an AWS Private CA)',
      );
      if (ra.certificateBundlePem !== undefined) {
        check(
          ra.certificateBundlePem.includes('-----BEGIN CERTIFICATE-----'),
          this,
          'rolesAnywhere.certificateBundlePem is not a PEM certificate: pass the CA certificate text starting with -----BEGIN CERTIFICATE-----',
        );
      }
      if (ra.acmPcaArn !== undefined) {
        check(/^arn:aws[a-z-]*:acm-pca:/.test(ra.acmPcaArn), this, `rolesAnywhere.acmPcaArn '${ra.acmPcaArn}' is not an AWS Private CA ARN (arn:aws:acm-pca:...)`);
      }
      checkRange(this, 'rolesAnywhere.sessionDurationSeconds', ra.sessionDurationSeconds ?? 3600, 900, 43_200, 'credential lifetime in seconds');
      check(ra.allowedCommonNames === undefined || ra.allowedCommonNames.length > 0, this, 'rolesAnywhere.allowedCommonNames is empty: omit it or list the agent certificate CNs');
    }
    check(props.repositories.length > 0, this, 'agents need at least one repository');

    if (ra) {
      this.trustAnchor = new rolesanywhere.CfnTrustAnchor(this, 'TrustAnchor', {
        name: 'vcd-backup-agents',
        enabled: true,
        source:
          ra.acmPcaArn !== undefined
            ? { sourceType: 'AWS_ACM_PCA', sourceData: { acmPcaArn: ra.acmPcaArn } }
            : { sourceType: 'CERTIFICATE_BUNDLE', sourceData: { x509CertificateData: ra.certificateBundlePem } },
      });
    }
    const conditions: Record<string, Record<string, unknown>> = {
      ArnLike: {
        'aws:SourceArn': this.trustAnchor?.attrTrustAnchorArn ?? `arn:${Aws.PARTITION}:rolesanywhere:${Aws.REGION}:${Aws.ACCOUNT_ID}:trust-anchor/*`,
      },
    };
    if (ra?.allowedCommonNames) conditions.StringLike = { 'aws:PrincipalTag/x509Subject/CN': [...ra.allowedCommonNames] };
    this.role = new iam.Role(this, 'Role', {
      description: 'vcd-backup on-prem proxy agents (IAM Roles Anywhere)',
      assumedBy: new iam.ServicePrincipal('rolesanywhere.amazonaws.com', { conditions }).withSessionTags(),
      maxSessionDuration: Duration.hours(12),
    });
    // withSessionTags adds sts:TagSession; Roles Anywhere also sets the source identity from the certificate.
    this.role.assumeRolePolicy?.addStatements(
      new iam.PolicyStatement({
        actions: ['sts:SetSourceIdentity'],
        principals: [new iam.ServicePrincipal('rolesanywhere.amazonaws.com')],
        conditions,
      }),
    );

    props.tasksQueue.grantConsumeMessages(this.role);
    props.resultsQueue.grantSendMessages(this.role);
    const bucketArns = new Map<string, string>();
    for (const repo of props.repositories) {
      const writes = repo.role === 'primary';
      const bucket = s3.Bucket.fromBucketName(this, `${pascal(repo.definition.id)}Bucket`, repositoryBucketName(repo.definition));
      bucketArns.set(repo.definition.id, bucket.bucketArn);
      this.role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [repositoryObjectsArn(bucket, repo.prefix)] }));
      acknowledgeRepositoryObjects(this.role, repo, '*');
      if (writes) {
        // DESIGN.md §3: agents upload blocks and disk indexes; vapp.json and point.json are the orchestrator's.
        this.role.addToPolicy(
          new iam.PolicyStatement({
            actions: ['s3:PutObject'],
            resources: [repositoryObjectsArn(bucket, repo.prefix, 'blocks/*'), repositoryObjectsArn(bucket, repo.prefix, 'points/*/*/disks/*')],
            // Only conditional creates; the Deny below makes this hold even if a broader Allow is added.
            conditions: { Null: { 's3:if-none-match': 'false' } },
          }),
        );
        acknowledgeRepositoryObjects(this.role, repo, 'blocks/*');
        acknowledgeRepositoryObjects(this.role, repo, 'points/*/*/disks/*');
      }
      this.role.addToPolicy(
        new iam.PolicyStatement({
          actions: ['s3:ListBucket'],
          resources: [bucket.bucketArn],
          conditions: repo.prefix === '' ? undefined : { StringLike: { 's3:prefix': [`${repo.prefix}*`] } },
        }),
      );
      this.role.addToPolicy(
        new iam.PolicyStatement({
          actions: writes ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt'],
          resources: [repo.key.keyArn],
        }),
      );
    }

    const buckets = [...bucketArns.values()];
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DenyOverwritingRepositoryObjects',
        effect: iam.Effect.DENY,
        actions: ['s3:PutObject'],
        resources: buckets.map((arn) => `${arn}/*`),
        conditions: { Null: { 's3:if-none-match': 'true' } },
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DenyDestroyingRepositoryObjects',
        effect: iam.Effect.DENY,
        actions: [...AGENT_DENIED_S3_ACTIONS],
        resources: buckets.flatMap((arn) => [arn, `${arn}/*`]),
      }),
    );

    if (ra) {
      this.profile = new rolesanywhere.CfnProfile(this, 'Profile', {
        name: 'vcd-backup-agents',
        enabled: true,
        roleArns: [this.role.roleArn],
        durationSeconds: ra.sessionDurationSeconds ?? 3600,
      });
    }
  }
}
