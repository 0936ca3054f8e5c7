// The synthesized templates: resources and key properties, retention, DLQs, per-function environment and
// least-privilege policies, triggers, API, agent role, alarms. Bundling is skipped here (handlers are
// stubs in a temp project root); test/unit/infra-synth.test.ts bundles the real handlers.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_DENIED_S3_ACTIONS } from '../../lib/infra/agent-access.js';
import { buildApp, cdkJsonContext } from '../../lib/infra/app.js';
import { FUNCTIONS, queueUrlVariable, type FunctionDefinition, type QueueId } from '../../lib/infra/functions.js';
import { BUCKETS, CATALOG_TABLE, METRICS, QUEUES, dlqName } from '../../lib/infra/resources.js';
import { PROJECT_ROOT } from '../../lib/infra/service-function.js';

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;
interface Statement {
  Action: string | string[];
  Resource: unknown;
  Effect: string;
  Condition?: unknown;
  Principal?: unknown;
}

const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
let root: string;

function stubRoot(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vcd-infra-'));
  mkdirSync(path.join(dir, 'lambdas'));
  for (const f of FUNCTIONS) writeFileSync(path.join(dir, f.entry), 'export const handler = async () => ({});\n');
  copyFileSync(path.join(PROJECT_ROOT, 'package-lock.json'), path.join(dir, 'package-lock.json'));
  writeFileSync(path.join(dir, 'ca.pem'), CERT);
  return dir;
}

function synth(context: Record<string, unknown> = {}) {
  const app = new App({ context: { ...cdkJsonContext(), ...context, 'aws:cdk:bundling-stacks': [] } });
  const stacks = buildApp(app, { projectRoot: root });
  const stateful = Template.fromStack(stacks.stateful);
  const service = Template.fromStack(stacks.service);
  return { stacks, stateful, service, statefulJson: stateful.toJSON().Resources as Resources, serviceJson: service.toJSON().Resources as Resources };
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const byType = (resources: Resources, type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const refId = (v: unknown): string | undefined => {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.Ref === 'string') return o.Ref;
  if (Array.isArray(o['Fn::GetAtt'])) return o['Fn::GetAtt'][0] as string;
  return undefined;
};

let defaults: ReturnType<typeof synth>;

beforeAll(() => {
  root = stubRoot();
  defaults = synth();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function functionResource(d: FunctionDefinition): [string, Resources[string]] {
  const found = byType(defaults.serviceJson, 'AWS::Lambda::Function').filter(([, r]) => r.Properties?.Description === d.description);
  expect(found, `one function for ${d.id}`).toHaveLength(1);
  return found[0]!;
}

function roleStatements(resources: Resources, roleLogicalId: string): Statement[] {
  return byType(resources, 'AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties!.Roles as unknown[]).some((r) => refId(r) === roleLogicalId))
    .flatMap(([, p]) => (p.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);
}

function queueLogicalId(resources: Resources, name: string): string {
  const found = byType(resources, 'AWS::SQS::Queue').find(([, q]) => q.Properties?.QueueName === name);
  expect(found, `queue ${name}`).toBeDefined();
  return found![0];
}

describe('Stack: stateful', () => {
  it('creates the catalog table from resources.ts with PITR, TTL, both GSIs, deletion protection, retained', () => {
    defaults.stateful.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        TableName: CATALOG_TABLE.name,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: CATALOG_TABLE.ttlAttribute, Enabled: true },
        DeletionProtectionEnabled: true,
        GlobalSecondaryIndexes: CATALOG_TABLE.globalIndexes.map((g) => ({
          IndexName: g.name,
          KeySchema: [
            { AttributeName: g.partitionKey, KeyType: 'HASH' },
            { AttributeName: g.sortKey, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        })),
      }),
    });
  });

  it('creates the repository buckets of cdk.json: SSE-KMS, public access blocked, versioned, lifecycle, access logs, retained', () => {
    const repos = (cdkJsonContext().repositories as Array<{ id: string; prefix: string }>).map((r) => r.id);
    expect(repos).toEqual(['primary', 'cloud']);
    for (const id of repos) {
      const def = BUCKETS.find((b) => b.id === id)!;
      defaults.stateful.hasResource('AWS::S3::Bucket', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: Match.objectLike({
          BucketName: { 'Fn::Join': ['', [`${def.name}-`, { Ref: 'AWS::AccountId' }, '-', { Ref: 'AWS::Region' }]] },
          BucketEncryption: {
            ServerSideEncryptionConfiguration: [
              { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: Match.anyValue() } },
            ],
          },
          PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
          VersioningConfiguration: { Status: 'Enabled' },
          LoggingConfiguration: Match.objectLike({ LogFilePrefix: `${def.name}/` }),
          LifecycleConfiguration: {
            Rules: Match.arrayWith([
              Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 }, Status: 'Enabled' }),
              Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }),
              Match.objectLike({ ExpiredObjectDeleteMarker: true, Status: 'Enabled' }),
            ]),
          },
        }),
      });
    }
    // Two repositories and the access-log bucket; no Object Lock unless asked for.
    expect(byType(defaults.statefulJson, 'AWS::S3::Bucket')).toHaveLength(3);
    for (const [, b] of byType(defaults.statefulJson, 'AWS::S3::Bucket')) expect(b.Properties?.ObjectLockEnabled).not.toBe(true);
  });

  it('retains every bucket and key and enforces TLS on every bucket', () => {
    for (const [, r] of [...byType(defaults.statefulJson, 'AWS::S3::Bucket'), ...byType(defaults.statefulJson, 'AWS::KMS::Key')]) {
      expect(r.DeletionPolicy).toBe('Retain');
    }
    const policies = byType(defaults.statefulJson, 'AWS::S3::BucketPolicy');
    expect(policies).toHaveLength(3);
    for (const [, p] of policies) {
      const statements = (p.Properties!.PolicyDocument as { Statement: Statement[] }).Statement;
      expect(statements).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });

  it('gives each repository its own KMS key with rotation', () => {
    const keys = byType(defaults.statefulJson, 'AWS::KMS::Key');
    expect(keys).toHaveLength(2);
    for (const [, k] of keys) expect(k.Properties?.EnableKeyRotation).toBe(true);
  });

  it('enables Object Lock with the default retention when configured', () => {
    const locked = synth({ objectLock: { mode: 'COMPLIANCE', days: 30 }, repositories: [{ id: 'primary' }, { id: 'cloud', objectLock: { mode: 'GOVERNANCE', days: 7 } }] });
    locked.stateful.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith(['vcd-backup-primary-'])] }),
      ObjectLockEnabled: true,
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 30 } } },
    });
    locked.stateful.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith(['vcd-backup-cloud-'])] }),
      ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 7 } } },
    });
  });
});

describe('Stack: service / queues', () => {
  it('creates every queue of resources.ts with its DLQ, redrive and visibility timeout', () => {
    for (const q of QUEUES) {
      const dlq = queueLogicalId(defaults.serviceJson, dlqName(q));
      defaults.service.hasResourceProperties('AWS::SQS::Queue', {
        QueueName: q.name,
        VisibilityTimeout: q.visibilityTimeoutSeconds,
        SqsManagedSseEnabled: true,
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: q.maxReceiveCount },
      });
    }
  });

  it('leaves no queue without a DLQ: every queue has a redrive policy or is some queue’s DLQ', () => {
    const queues = byType(defaults.serviceJson, 'AWS::SQS::Queue');
    expect(queues).toHaveLength(QUEUES.length * 2);
    const targets = new Set(
      queues.flatMap(([, q]) => {
        const redrive = q.Properties?.RedrivePolicy as { deadLetterTargetArn: unknown } | undefined;
        return redrive ? [refId(redrive.deadLetterTargetArn)] : [];
      }),
    );
    for (const [id, q] of queues) {
      expect(q.Properties?.RedrivePolicy !== undefined || targets.has(id), `${String(q.Properties?.QueueName)} has a DLQ or is one`).toBe(true);
    }
  });

  it('denies non-TLS access to every queue', () => {
    const policies = byType(defaults.serviceJson, 'AWS::SQS::QueuePolicy');
    const covered = new Set(policies.flatMap(([, p]) => (p.Properties!.Queues as unknown[]).map(refId)));
    for (const [id] of byType(defaults.serviceJson, 'AWS::SQS::Queue')) expect(covered.has(id)).toBe(true);
    for (const [, p] of policies) {
      expect((p.Properties!.PolicyDocument as { Statement: Statement[] }).Statement).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });
});

describe('Stack: service / functions', () => {
  it('creates one Node.js 22 ARM64 function per FUNCTIONS row with its memory and timeout', () => {
    expect(byType(defaults.serviceJson, 'AWS::Lambda::Function')).toHaveLength(FUNCTIONS.length);
    for (const d of FUNCTIONS) {
      const [, fn] = functionResource(d);
      const name = `vcd-backup-${d.id.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      expect(fn.Properties).toMatchObject({
        FunctionName: name,
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        MemorySize: d.memoryMiB,
        Timeout: d.timeoutSeconds,
        LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: expect.stringMatching(/Logs/) } },
      });
      const logGroup = (fn.Properties!.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(defaults.serviceJson[logGroup]!.Properties).toMatchObject({ LogGroupName: `/aws/lambda/${name}`, RetentionInDays: 30 });
    }
  });

  it('gives every function exactly the environment its row implies', () => {
    for (const d of FUNCTIONS) {
      const [, fn] = functionResource(d);
      const env = (fn.Properties!.Environment as { Variables: Record<string, unknown> }).Variables;
      const queues = new Set<QueueId>([...d.sends, ...(d.trigger.kind === 'queue' ? [d.trigger.queue] : [])]);
      const expected = [
        'LOG_LEVEL',
        'NODE_OPTIONS',
        ...(d.catalog === 'none' ? [] : ['CATALOG_TABLE']),
        ...[...queues].map(queueUrlVariable),
        ...(d.vcd ? ['VCD_SECRET_ARN'] : []),
        ...(d.keys ? ['REPOSITORY_SECRET_ARN'] : []),
      ];
      expect(Object.keys(env).sort(), d.id).toEqual(expected.sort());
      expect(env.LOG_LEVEL).toBe('INFO');
      if (d.catalog !== 'none') expect(JSON.stringify(env.CATALOG_TABLE)).toContain('VcdBackupStateful');
      for (const q of queues) {
        const def = QUEUES.find((x) => x.id === q)!;
        expect(refId(env[queueUrlVariable(q)]), `${d.id} ${q}`).toBe(queueLogicalId(defaults.serviceJson, def.name));
      }
    }
  });

  it('sets VCD_URL on the vCD functions when vcdUrl is configured', () => {
    const withVcd = synth({ vcdUrl: 'https://vcd.example.com' });
    const vcdFns = byType(withVcd.serviceJson, 'AWS::Lambda::Function').filter(
      ([, f]) => (f.Properties!.Environment as { Variables: Record<string, unknown> }).Variables.VCD_URL === 'https://vcd.example.com',
    );
    expect(vcdFns).toHaveLength(FUNCTIONS.filter((f) => f.vcd).length);
  });

  it('gives the authorizer the JWT settings when jwt is configured, and no other function', () => {
    const withJwt = synth({ jwt: { issuer: 'https://idp.example.com/', jwksUrl: 'https://idp.example.com/jwks.json', audience: 'vcd-backup' } });
    const envs = byType(withJwt.serviceJson, 'AWS::Lambda::Function').map(([, f]) => ({
      description: f.Properties!.Description,
      env: (f.Properties!.Environment as { Variables: Record<string, unknown> }).Variables,
    }));
    const withSettings = envs.filter((e) => e.env.JWT_ISSUER !== undefined);
    expect(withSettings.map((e) => e.description)).toEqual(FUNCTIONS.filter((f) => f.jwt).map((f) => f.description));
    expect(withSettings[0]!.env).toMatchObject({ JWT_ISSUER: 'https://idp.example.com/', JWT_JWKS_URL: 'https://idp.example.com/jwks.json', JWT_AUDIENCE: 'vcd-backup' });
  });

  it('uses a dedicated role per function with no managed policies', () => {
    const roles = new Set(FUNCTIONS.map((d) => refId(functionResource(d)[1].Properties!.Role)));
    expect(roles.size).toBe(FUNCTIONS.length);
    for (const role of roles) expect(defaults.serviceJson[role!]!.Properties!.ManagedPolicyArns).toBeUndefined();
  });

  it('grants every function only the actions its row lists, on the resources it names', () => {
    for (const d of FUNCTIONS) {
      const [, fn] = functionResource(d);
      const statements = roleStatements(defaults.serviceJson, refId(fn.Properties!.Role)!);
      const actions = new Set(statements.flatMap(actionsOf));
      const expected = new Set<string>(['logs:CreateLogStream', 'logs:PutLogEvents']);
      if (d.catalog !== 'none') for (const a of ['GetItem', 'BatchGetItem', 'Query']) expected.add(`dynamodb:${a}`);
      if (d.catalog === 'readWrite') {
        for (const a of ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'ConditionCheckItem']) expected.add(`dynamodb:${a}`);
      }
      if (d.sends.length > 0) for (const a of ['SendMessage', 'GetQueueAttributes', 'GetQueueUrl']) expected.add(`sqs:${a}`);
      if (d.trigger.kind === 'queue') {
        for (const a of ['ReceiveMessage', 'ChangeMessageVisibility', 'GetQueueUrl', 'DeleteMessage', 'GetQueueAttributes']) expected.add(`sqs:${a}`);
      }
      if (d.vcd || d.keys) for (const a of ['GetSecretValue', 'DescribeSecret']) expected.add(`secretsmanager:${a}`);
      if (d.repositories !== 'none') {
        expected.add('s3:GetObject').add('s3:ListBucket').add('kms:Decrypt');
        if (d.repositories !== 'read') expected.add('s3:PutObject').add('kms:Encrypt').add('kms:GenerateDataKey');
        if (d.repositories === 'readWriteDelete') expected.add('s3:DeleteObject');
      }
      expect([...actions].sort(), d.id).toEqual([...expected].sort());

      // Sends go to the listed queues only.
      const sendTargets = statements.filter((s) => actionsOf(s).includes('sqs:SendMessage')).map((s) => refId(s.Resource));
      expect(sendTargets.sort(), d.id).toEqual(d.sends.map((q) => queueLogicalId(defaults.serviceJson, QUEUES.find((x) => x.id === q)!.name)).sort());
      // Catalog access is on the table and its two indexes, named.
      const table = statements.find((s) => actionsOf(s).includes('dynamodb:GetItem'));
      if (d.catalog !== 'none') {
        expect(JSON.stringify(table!.Resource)).toContain('/index/gsi1');
        expect(JSON.stringify(table!.Resource)).toContain('/index/gsi2');
        expect(JSON.stringify(table!.Resource)).not.toContain('/index/*');
      }
      // Repository objects only under the configured prefix.
      for (const s of statements.filter((x) => actionsOf(x).some((a) => a.startsWith('s3:') && a !== 's3:ListBucket'))) {
        for (const r of s.Resource as unknown[]) expect(JSON.stringify(r)).toMatch(/\/repo\/\*"\]\]\}$/);
      }
    }
  });

  it('has no wildcard action on data in any IAM policy of either stack', () => {
    for (const resources of [defaults.statefulJson, defaults.serviceJson]) {
      for (const [id, p] of byType(resources, 'AWS::IAM::Policy')) {
        for (const s of (p.Properties!.PolicyDocument as { Statement: Statement[] }).Statement) {
          for (const a of actionsOf(s)) expect(a, id).not.toContain('*');
        }
      }
    }
  });

  it('maps each queue trigger to an event source mapping with partial batch responses and max concurrency', () => {
    const mappings = byType(defaults.serviceJson, 'AWS::Lambda::EventSourceMapping');
    const queueFns = FUNCTIONS.filter((d) => d.trigger.kind === 'queue');
    expect(mappings).toHaveLength(queueFns.length);
    for (const d of queueFns) {
      if (d.trigger.kind !== 'queue') continue;
      const [fnId] = functionResource(d);
      const queue = queueLogicalId(defaults.serviceJson, QUEUES.find((q) => q.id === (d.trigger as { queue: QueueId }).queue)!.name);
      defaults.service.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        FunctionName: { Ref: fnId },
        EventSourceArn: { 'Fn::GetAtt': [queue, 'Arn'] },
        BatchSize: d.trigger.batchSize,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: d.trigger.maxConcurrency },
      });
    }
  });

  it('lets only the self-triggering functions (runs, copy worker) loop through their queues', () => {
    for (const d of FUNCTIONS) {
      const [, fn] = functionResource(d);
      expect(fn.Properties!.RecursiveLoop, d.id).toBe(d.id === 'runs' || d.id === 'copyWorker' ? 'Allow' : 'Terminate');
    }
  });

  it('ticks the scheduler with an EventBridge rule at the configured rate', () => {
    const [schedulerId] = functionResource(FUNCTIONS.find((d) => d.trigger.kind === 'tick')!);
    defaults.service.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [schedulerId, 'Arn'] }, RetryPolicy: { MaximumRetryAttempts: 1, MaximumEventAgeInSeconds: 60 } })],
    });
    synth({ tickRate: '5' }).service.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
  });
});

describe('Stack: service / API, secret, agent', () => {
  it('puts every API method behind the TOKEN authorizer, throttles and logs the stage', () => {
    const [authorizerFn] = functionResource(FUNCTIONS.find((d) => d.trigger.kind === 'authorizer')!);
    defaults.service.hasResourceProperties('AWS::ApiGateway::Authorizer', {
      Type: 'TOKEN',
      IdentitySource: 'method.request.header.Authorization',
      AuthorizerUri: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([{ 'Fn::GetAtt': [authorizerFn, 'Arn'] }])] }),
    });
    const methods = byType(defaults.serviceJson, 'AWS::ApiGateway::Method');
    expect(methods.length).toBeGreaterThanOrEqual(2);
    for (const [, m] of methods) {
      expect(m.Properties).toMatchObject({ AuthorizationType: 'CUSTOM', HttpMethod: 'ANY', RequestParameters: { 'method.request.header.Authorization': true } });
    }
    defaults.service.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue() }),
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100, LoggingLevel: 'ERROR', DataTraceEnabled: false })],
    });
  });

  it('creates the vCD credentials secret under the configured name', () => {
    defaults.service.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'vcd-backup/vcd' });
  });

  it('keeps repository keys in a secret of their own that only block-data functions read; the API reads no key and no repository', () => {
    defaults.service.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'vcd-backup/repository-keys' });
    const secrets = byType(defaults.serviceJson, 'AWS::SecretsManager::Secret');
    const keysId = secrets.find(([, r]) => r.Properties!.Name === 'vcd-backup/repository-keys')![0];
    const vcdId = secrets.find(([, r]) => r.Properties!.Name === 'vcd-backup/vcd')![0];
    const readers = (secretId: string) =>
      FUNCTIONS.filter((d) => {
        const statements = roleStatements(defaults.serviceJson, refId(functionResource(d)[1].Properties!.Role)!);
        return statements.some((st) => actionsOf(st).includes('secretsmanager:GetSecretValue') && JSON.stringify(st.Resource).includes(secretId));
      }).map((d) => d.id);
    expect(readers(keysId).sort()).toEqual(['agentResults', 'copyWorker', 'runs']);
    expect(readers(vcdId)).not.toContain('copyWorker');
    const apiFn = FUNCTIONS.find((d) => d.id === 'api')!;
    expect(apiFn.keys).toBe(false);
    expect(apiFn.repositories).toBe('none');
    const apiStatements = roleStatements(defaults.serviceJson, refId(functionResource(apiFn)[1].Properties!.Role)!);
    expect(apiStatements.flatMap(actionsOf).filter((a) => a.startsWith('s3:') || a.startsWith('kms:'))).toEqual([]);
    expect(JSON.stringify(apiStatements)).not.toContain(keysId);
  });

  it('scopes the agent role to the agent queues and the repository prefixes, never deletes', () => {
    const roles = byType(defaults.serviceJson, 'AWS::IAM::Role').filter(([, r]) =>
      JSON.stringify(r.Properties!.AssumeRolePolicyDocument).includes('rolesanywhere.amazonaws.com'),
    );
    expect(roles).toHaveLength(1);
    const [roleId, role] = roles[0]!;
    const trust = (role.Properties!.AssumeRolePolicyDocument as { Statement: Statement[] }).Statement;
    expect(trust.flatMap(actionsOf).sort()).toEqual(['sts:AssumeRole', 'sts:SetSourceIdentity', 'sts:TagSession']);
    for (const s of trust) expect(JSON.stringify(s.Condition)).toContain('trust-anchor/*');

    const all = roleStatements(defaults.serviceJson, roleId);
    const statements = all.filter((s) => s.Effect === 'Allow');
    const actions = new Set(statements.flatMap(actionsOf));
    for (const destroy of AGENT_DENIED_S3_ACTIONS) expect(actions.has(destroy), destroy).toBe(false);
    expect([...actions].some((a) => a === 's3:*' || a === '*' || a.startsWith('s3:Delete'))).toBe(false);
    expect(actions.has('dynamodb:GetItem')).toBe(false);
    const receive = statements.find((s) => actionsOf(s).includes('sqs:ReceiveMessage'))!;
    expect(refId(receive.Resource)).toBe(queueLogicalId(defaults.serviceJson, 'vcd-backup-agent-tasks'));
    const send = statements.find((s) => actionsOf(s).includes('sqs:SendMessage'))!;
    expect(refId(send.Resource)).toBe(queueLogicalId(defaults.serviceJson, 'vcd-backup-agent-results'));
    const puts = statements.filter((s) => actionsOf(s).includes('s3:PutObject'));
    expect(puts).toHaveLength(1);
    const putTargets = JSON.stringify(puts[0]!.Resource);
    expect(putTargets).toContain('vcd-backup-primary-');
    expect(putTargets).toContain('/repo/blocks/*');
    expect(putTargets).toContain('/repo/points/*/*/disks/*');
    expect(putTargets).not.toContain('vcd-backup-cloud-');
    // Create-only: PutObject is allowed only as a conditional create ...
    expect(puts[0]!.Condition).toEqual({ Null: { 's3:if-none-match': 'false' } });
    // ... and explicitly denied without If-None-Match, on every object of every repository bucket.
    const denies = all.filter((s) => s.Effect === 'Deny');
    const denyPut = denies.find((s) => actionsOf(s).includes('s3:PutObject'))!;
    expect(denyPut.Condition).toEqual({ Null: { 's3:if-none-match': 'true' } });
    expect(actionsOf(denyPut)).toEqual(['s3:PutObject']);
    const deniedPutTargets = JSON.stringify(denyPut.Resource);
    expect(deniedPutTargets).toContain('vcd-backup-primary-');
    expect(deniedPutTargets).toContain('vcd-backup-cloud-');
    expect(deniedPutTargets).not.toContain('/repo/'); // the whole bucket, not only the repository prefix
    const denyDestroy = denies.find((s) => actionsOf(s).includes('s3:DeleteObject'))!;
    expect(denyDestroy.Condition).toBeUndefined();
    expect(actionsOf(denyDestroy).sort()).toEqual([...AGENT_DENIED_S3_ACTIONS].sort());
    for (const a of ['s3:DeleteObjectVersion', 's3:PutObjectRetention', 's3:PutObjectLegalHold', 's3:BypassGovernanceRetention', 's3:PutLifecycleConfiguration']) {
      expect(actionsOf(denyDestroy)).toContain(a);
    }
    expect(JSON.stringify(denyDestroy.Resource)).toContain('vcd-backup-cloud-');
    const gets = statements.filter((s) => actionsOf(s).includes('s3:GetObject'));
    expect(JSON.stringify(gets)).toContain('vcd-backup-cloud-');
    for (const s of statements.filter((x) => actionsOf(x).includes('s3:ListBucket'))) {
      expect(s.Condition).toEqual({ StringLike: { 's3:prefix': ['repo/*'] } });
    }
  });

  it('creates the Roles Anywhere trust anchor and profile when configured, and trusts only that anchor', () => {
    const ra = synth({ rolesAnywhere: { certificateBundleFile: 'ca.pem', allowedCommonNames: ['agent-*'] } });
    ra.service.hasResourceProperties('AWS::RolesAnywhere::TrustAnchor', {
      Enabled: true,
      Source: { SourceType: 'CERTIFICATE_BUNDLE', SourceData: { X509CertificateData: CERT } },
    });
    const [anchorId] = byType(ra.serviceJson, 'AWS::RolesAnywhere::TrustAnchor')[0]!;
    const [roleId, role] = byType(ra.serviceJson, 'AWS::IAM::Role').find(([, r]) =>
      JSON.stringify(r.Properties!.AssumeRolePolicyDocument).includes('rolesanywhere.amazonaws.com'),
    )!;
    ra.service.hasResourceProperties('AWS::RolesAnywhere::Profile', { Enabled: true, RoleArns: [{ 'Fn::GetAtt': [roleId, 'Arn'] }], DurationSeconds: 3600 });
    for (const s of (role.Properties!.AssumeRolePolicyDocument as { Statement: Statement[] }).Statement) {
      expect(s.Condition).toEqual({
        ArnLike: { 'aws:SourceArn': { 'Fn::GetAtt': [anchorId, 'TrustAnchorArn'] } },
        StringLike: { 'aws:PrincipalTag/x509Subject/CN': ['agent-*'] },
      });
    }
  });
});

describe('Stack: service / monitoring', () => {
  it('alarms on every DLQ, every function, failed runs and waiting agent tasks, all to the encrypted topic', () => {
    const alarms = byType(defaults.serviceJson, 'AWS::CloudWatch::Alarm');
    expect(alarms).toHaveLength(QUEUES.length + FUNCTIONS.length + 2);
    const [topicId, topic] = byType(defaults.serviceJson, 'AWS::SNS::Topic')[0]!;
    expect(topic.Properties!.KmsMasterKeyId).toBeDefined();
    for (const [, a] of alarms) expect(a.Properties!.AlarmActions).toEqual([{ Ref: topicId }]);
    for (const q of QUEUES) {
      const dlq = queueLogicalId(defaults.serviceJson, dlqName(q));
      defaults.service.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq, 'QueueName'] } }],
        Threshold: 1,
      });
    }
    for (const d of FUNCTIONS) {
      const [fnId] = functionResource(d);
      defaults.service.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'Errors',
        Namespace: 'AWS/Lambda',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId } }],
      });
    }
    defaults.service.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: METRICS.namespace, MetricName: METRICS.failedRuns, Statistic: 'Sum', Threshold: 1 });
    defaults.service.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ApproximateAgeOfOldestMessage', Threshold: 1800 });
    defaults.service.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    defaults.service.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('subscribes the alarm e-mail when configured', () => {
    synth({ alarmEmail: 'ops@example.com' }).service.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });
});
