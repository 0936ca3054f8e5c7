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
 * The IAM role on-prem proxy agents assume through IAM Roles Anywhere (X.509 certificates, no long-lived
 * keys). It may only consume the agent-tasks queue, send to the agent-results queue, and touch objects
 * under the repository prefixes; in primary repositories it may write blocks and disk indexes only, so an
 * agent can neither commit nor delete a restore point.
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
    for (const repo of props.repositories) {
      const writes = repo.role === 'primary';
      const bucket = s3.Bucket.fromBucketName(this, `${pascal(repo.definition.id)}Bucket`, repositoryBucketName(repo.definition));
      this.role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [repositoryObjectsArn(bucket, repo.prefix)] }));
      acknowledgeRepositoryObjects(this.role, repo, '*');
      if (writes) {
        // DESIGN.md §3: agents upload blocks and disk indexes; vapp.json and point.json are the orchestrator's.
        this.role.addToPolicy(
          new iam.PolicyStatement({
            actions: ['s3:PutObject'],
            resources: [repositoryObjectsArn(bucket, repo.prefix, 'blocks/*'), repositoryObjectsArn(bucket, repo.prefix, 'points/*/*/disks/*')],
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
