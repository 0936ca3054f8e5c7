// Constructor and context validation: bad input fails at synth with a message that says how to fix it.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as zlib from 'node:zlib';
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentAccess } from '../../lib/infra/agent-access.js';
import { buildApp, cdkJsonContext } from '../../lib/infra/app.js';
import { FUNCTIONS, queueUrlVariable, type FunctionDefinition } from '../../lib/infra/functions.js';
import { RepositoryBucket } from '../../lib/infra/repository-bucket.js';
import { BUCKETS, METRICS, failedRunsMetricLine } from '../../lib/infra/resources.js';
import { ServiceApi } from '../../lib/infra/service-api.js';
import { PROJECT_ROOT } from '../../lib/infra/service-function.js';
import { ServiceMonitoring } from '../../lib/infra/service-monitoring.js';
import { ServiceStack, selfTriggering } from '../../lib/infra/service-stack.js';
import { Compressor, Decompressor } from '../../lib/infra/zstd-node.js';

let root: string;

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'vcd-infra-'));
  mkdirSync(path.join(root, 'lambdas'));
  for (const f of FUNCTIONS) writeFileSync(path.join(root, f.entry), 'export const handler = async () => ({});\n');
  copyFileSync(path.join(PROJECT_ROOT, 'package-lock.json'), path.join(root, 'package-lock.json'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function build(context: Record<string, unknown>, projectRoot = root) {
  const app = new App({ context: { ...cdkJsonContext(), ...context, 'aws:cdk:bundling-stacks': [] } });
  return buildApp(app, { projectRoot });
}

const fn = (overrides: Partial<FunctionDefinition>): FunctionDefinition[] =>
  FUNCTIONS.map((f) => (f.id === overrides.id ? ({ ...f, ...overrides } as FunctionDefinition) : f));

describe('cdk context', () => {
  it('accepts cdk.json as it is', () => {
    expect(() => build({})).not.toThrow();
  });

  it.each([
    [{ tickRate: 0 }, /tickRate must be a whole number from 1 to 60 \(got 0\).*cdk\.json context/],
    [{ tickRate: '61' }, /tickRate must be a whole number from 1 to 60 \(got 61\)/],
    [{ tickRate: 1.5 }, /tickRate must be a whole number/],
    [{ tickRate: 'often' }, /cdk context is invalid: 'tickRate'/],
    [{ vcdUrl: 'http://vcd.example.com' }, /vcdUrl 'http:\/\/vcd.example.com' must be the https base URL of vCD/],
    [{ vcdUrl: 'https://vcd.example.com/api' }, /without \/api/],
    [{ vcdSecretName: 'bad name!' }, /vcdSecretName 'bad name!' may only contain/],
    [{ repositories: [{ id: 'tape' }] }, /cdk context is invalid: 'repositories\.0/],
    [{ repositories: '[{"id":"primary"},{"id":"primary"}]' }, /repository 'primary' is listed twice/],
    [{ repositories: [{ id: 'cloud' }] }, /no repository has the 'primary' role/],
    [{ repositories: [] }, /repositories is empty/],
    [{ repositories: [{ id: 'primary', prefix: '/abs/' }] }, /prefix '\/abs\/' is not a repository prefix: use '' or segments .* ending in '\/'/],
    [{ repositories: [{ id: 'primary', prefix: 'no-slash' }] }, /prefix 'no-slash' is not a repository prefix/],
    [{ objectLock: { mode: 'GOVERNANCE', days: 0 } }, /cdk context is invalid: 'objectLock/],
    [{ noncurrentVersionExpirationDays: 0 }, /noncurrentVersionExpirationDays must be a whole number from 1 to 36500/],
    [{ alarmEmail: 'ops' }, /alarmEmail 'ops' is not an e-mail address/],
    [{ apiThrottle: { rateLimit: 0 } }, /throttle.rateLimit must be a positive number/],
    [{ apiThrottle: '{"rateLimit": ' }, /JSON value does not parse/],
    [{ webAclArn: 'arn:aws:wafv2:eu-west-1:123456789012:global/webacl/x/y' }, /is not a regional WAFv2 web ACL ARN/],
    [{ rolesAnywhere: {} }, /rolesAnywhere needs exactly one of certificateBundlePem .* and acmPcaArn/],
    [{ rolesAnywhere: { acmPcaArn: 'arn:aws:kms:eu-west-1:1:key/x' } }, /is not an AWS Private CA ARN/],
    [{ rolesAnywhere: { certificateBundleFile: 'missing.pem' } }, /certificateBundleFile: cannot read .*missing\.pem/],
    [{ logLevel: 'TRACE' }, /cdk context is invalid: 'logLevel'/],
    [{ jwt: { issuer: 'https://idp', jwksUrl: 'http://idp/jwks', audience: 'a' } }, /jwt.jwksUrl 'http:\/\/idp\/jwks' must be the https URL/],
    [{ jwt: { issuer: ' ', jwksUrl: 'https://idp/jwks', audience: 'a' } }, /jwt.issuer is empty/],
    [{ jwt: { issuer: 'x', audience: 'a' } }, /cdk context is invalid: 'jwt.jwksUrl'/],
    [{ jwt: { issuer: 'https://idp', jwksUrl: 'https://idp/jwks' } }, /cdk context is invalid: 'jwt.audience'/],
    [{ jwt: { issuer: 'https://idp', jwksUrl: 'https://idp/jwks', audience: ' ' } }, /jwt.audience is empty: set it to the 'aud' claim/],
    [{ stackPrefix: '1abc' }, /'stackPrefix'/],
  ])('rejects %j', (context, message) => {
    expect(() => build(context)).toThrow(message);
  });

  it('reads numbers and JSON given as -c strings', () => {
    const { stateful, service } = build({ tickRate: '15', repositories: '["primary"]', objectLock: '{"mode":"GOVERNANCE","days":3}' });
    expect(stateful.repositories.map((r) => r.definition.id)).toEqual(['primary']);
    expect(service.node.tryFindChild('SchedulerTick')).toBeDefined();
  });

  it('warns at synth that the API refuses every request while jwt is not set', () => {
    const { service } = build({});
    const warnings = Annotations.fromStack(service).findWarning('*', Match.stringLikeRegexp('jwt is not set'));
    expect(warnings).toHaveLength(1);
    const { service: configured } = build({ jwt: { issuer: 'i', jwksUrl: 'https://idp/jwks', audience: 'vcd-backup' } });
    expect(Annotations.fromStack(configured).findWarning('*', Match.stringLikeRegexp('jwt is not set'))).toEqual([]);
  });

  it('warns at synth that vCD cannot be reached while vcdUrl is not set', () => {
    expect(Annotations.fromStack(build({}).service).findWarning('*', Match.stringLikeRegexp('vcdUrl is not set'))).toHaveLength(1);
    expect(Annotations.fromStack(build({ vcdUrl: 'https://vcd.example.com' }).service).findWarning('*', Match.stringLikeRegexp('vcdUrl'))).toEqual([]);
  });

  it('names the stacks after stackPrefix', () => {
    const { stateful, service } = build({ stackPrefix: 'Acme' });
    expect([stateful.stackName, service.stackName]).toEqual(['AcmeStateful', 'AcmeService']);
  });
});

describe('ServiceStack validation', () => {
  function buildWith(functions: FunctionDefinition[], projectRoot = root) {
    const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
    const { stateful } = buildApp(app, { projectRoot: root });
    return () => new ServiceStack(app, 'Custom', { table: stateful.table, repositories: stateful.repositories, functions, projectRoot });
  }

  it('names a missing handler and where to fix it', () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'vcd-infra-empty-'));
    copyFileSync(path.join(PROJECT_ROOT, 'package-lock.json'), path.join(empty, 'package-lock.json'));
    try {
      expect(buildWith([...FUNCTIONS], empty)).toThrow(/handler lambdas\/scheduler\.ts does not exist .*remove 'scheduler' from FUNCTIONS in lib\/infra\/functions\.ts/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it.each([
    [fn({ id: 'api', timeoutSeconds: 901 }), /api\.timeoutSeconds must be a whole number from 1 to 900 \(got 901\): Lambda runs at most 15 minutes/],
    [fn({ id: 'agentResults', timeoutSeconds: 300 }), /'agentResults' times out after 300 s but queue 'vcd-backup-agent-results' hides a message for only 120 s: lower the timeout/],
    [fn({ id: 'runs', trigger: { kind: 'queue', queue: 'runs', batchSize: 1, maxConcurrency: 1 } }), /runs\.maxConcurrency must be a whole number from 2 to 1000/],
    [fn({ id: 'runs', trigger: { kind: 'queue', queue: 'runs', batchSize: 20, maxConcurrency: 2 } }), /runs\.batchSize must be a whole number from 1 to 10/],
    [fn({ id: 'copyWorker', trigger: { kind: 'queue', queue: 'runs', batchSize: 1, maxConcurrency: 2 } }), /queue 'runs' is consumed by both 'runs' and 'copyWorker'/],
    [fn({ id: 'api', memoryMiB: 64 }), /api\.memoryMiB must be a whole number from 128 to 10240/],
    [FUNCTIONS.filter((f) => f.id !== 'authorizer'), /the api function needs an authorizer function/],
    [[...FUNCTIONS, FUNCTIONS[0]!], /function 'scheduler' is defined twice/],
  ])('rejects a bad function list (%#)', (functions, message) => {
    expect(buildWith(functions)).toThrow(message);
  });
});

describe('constructs', () => {
  it('RepositoryBucket rejects a bad Object Lock mode and period', () => {
    const stack = new Stack(new App(), 'S');
    expect(
      () => new RepositoryBucket(stack, 'A', { definition: BUCKETS[0]!, role: 'primary', objectLock: { mode: 'LEGAL' as 'GOVERNANCE', days: 1 } }),
    ).toThrow(/S\/A: objectLock.mode must be 'GOVERNANCE' or 'COMPLIANCE' \(got 'LEGAL'\)/);
    expect(() => new RepositoryBucket(stack, 'B', { definition: BUCKETS[0]!, role: 'primary', objectLock: { mode: 'GOVERNANCE', days: 40000 } })).toThrow(
      /objectLock.days must be a whole number from 1 to 36500 \(got 40000\)/,
    );
  });

  it('AgentAccess rejects a non-PEM certificate and an empty CN list', () => {
    const stack = new Stack(new App(), 'S');
    const queue = new sqs.Queue(stack, 'Q');
    const key = new kms.Key(stack, 'K');
    const repositories = [{ definition: BUCKETS[0]!, role: 'primary' as const, prefix: '', key }];
    expect(() => new AgentAccess(stack, 'A', { tasksQueue: queue, resultsQueue: queue, repositories, rolesAnywhere: { certificateBundlePem: 'hello' } })).toThrow(
      /certificateBundlePem is not a PEM certificate/,
    );
    expect(
      () =>
        new AgentAccess(stack, 'B', {
          tasksQueue: queue,
          resultsQueue: queue,
          repositories,
          rolesAnywhere: { acmPcaArn: 'arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/x', allowedCommonNames: [] },
        }),
    ).toThrow(/allowedCommonNames is empty/);
    expect(() => new AgentAccess(stack, 'C', { tasksQueue: queue, resultsQueue: queue, repositories: [] })).toThrow(/agents need at least one repository/);
  });

  it('ServiceApi and ServiceMonitoring check their limits', () => {
    const stack = new Stack(new App(), 'S');
    const handler = new lambda.Function(stack, 'F', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('x') });
    expect(() => new ServiceApi(stack, 'A', { handler, authorizer: handler, authorizerCacheSeconds: 7200 })).toThrow(/authorizerCacheSeconds must be a whole number from 0 to 3600/);
    expect(() => new ServiceApi(stack, 'B', { handler, authorizer: handler, stageName: 'v-1' })).toThrow(/stageName 'v-1' may only contain/);
    expect(() => new ServiceMonitoring(stack, 'M', { functions: [], queues: [], agentTaskMaxAgeMinutes: 1 })).toThrow(/agentTaskMaxAgeMinutes must be a whole number from 5 to 1440/);
  });
});

describe('FUNCTIONS', () => {
  it('finds the functions that trigger themselves through queues', () => {
    expect([...selfTriggering(FUNCTIONS)].sort()).toEqual(['copyWorker', 'runs']);
  });

  it('maps queue ids to the variables loadConfig reads', () => {
    expect(['runs', 'agentTasks', 'agentResults', 'copyTasks'].map((q) => queueUrlVariable(q as 'runs'))).toEqual([
      'RUNS_QUEUE_URL',
      'AGENT_TASKS_QUEUE_URL',
      'AGENT_RESULTS_QUEUE_URL',
      'COPY_TASKS_QUEUE_URL',
    ]);
  });
});

describe('zstd shim for Lambda bundles', () => {
  const hasZstd = 'zstdCompressSync' in zlib;

  it.skipIf(!hasZstd)('round-trips with node:zlib zstd (Node.js 22.15+)', () => {
    const c = new Compressor();
    c.setParameters({ compressionLevel: 1 });
    const plain = Buffer.alloc(64 * 1024, 7);
    const packed = c.compress(plain);
    expect(packed.length).toBeLessThan(plain.length);
    expect(new Decompressor().decompress(packed).equals(plain)).toBe(true);
  });

  it.skipIf(hasZstd)('says which Node.js it needs where node:zlib has no zstd', () => {
    expect(() => new Compressor().compress(Buffer.from('x'))).toThrow(/need Node\.js 22\.15 or later/);
  });
});

describe('METRICS', () => {
  it('builds an embedded-metric-format line the FailedRuns alarm matches (namespace, name, no dimensions)', () => {
    const line = JSON.parse(failedRunsMetricLine(2, 1_700_000_000_000)) as Record<string, unknown> & { _aws: { CloudWatchMetrics: unknown[] } };
    expect(line.FailedRuns).toBe(2);
    expect(line._aws.CloudWatchMetrics).toEqual([{ Namespace: METRICS.namespace, Dimensions: [[]], Metrics: [{ Name: 'FailedRuns', Unit: 'Count' }] }]);
  });
});
