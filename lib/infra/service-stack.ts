import { Annotations, CfnOutput, Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { AgentAccess, type RolesAnywhereSettings } from './agent-access.js';
import { FUNCTIONS, queueUrlVariable, type FunctionDefinition, type QueueId, type RepositoryAccess } from './functions.js';
import { acknowledgeRepositoryObjects } from './nag.js';
import { repositoryBucketName, repositoryObjectsArn, type RepositoryRef } from './repository-bucket.js';
import { CATALOG_TABLE, QUEUES } from './resources.js';
import { ServiceApi, type ApiThrottle } from './service-api.js';
import { ServiceFunction } from './service-function.js';
import { ServiceMonitoring } from './service-monitoring.js';
import { ServiceQueue } from './service-queue.js';
import { pascal } from './names.js';
import { check, checkRange } from './validate.js';

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** Who issues API tokens (RS256 JWTs): the `JWT_*` settings of lib/api/jwt.ts. */
export interface JwtSettings {
  /** Value of the tokens' `iss` claim. */
  readonly issuer: string;
  /** HTTPS URL of the issuer's JSON Web Key Set. */
  readonly jwksUrl: string;
  /**
   * The `aud` value of tokens for this API (required: with the issuer alone, a token the same identity
   * provider issued for any other application would be accepted).
   */
  readonly audience: string;
  /** @default 'role' */
  readonly roleClaim?: string;
  /** Value of the role claim that makes the caller the provider. @default 'provider' */
  readonly providerRole?: string;
  /** Claim naming the tenant (vCD organization). @default 'tenant' */
  readonly tenantClaim?: string;
}

export interface ServiceStackProps extends StackProps {
  /** The catalog table (from the stateful stack). */
  readonly table: dynamodb.ITable;
  /** The repository buckets and keys (from the stateful stack). */
  readonly repositories: readonly RepositoryRef[];
  /**
   * Base URL of the vCD instance (`https://vcd.example.com`).
   * @default - not set: functions that talk to vCD fail with a message naming VCD_URL until you deploy with it
   */
  readonly vcdUrl?: string;
  /** Name of the Secrets Manager secret holding the vCD credentials; the stack creates it. @default 'vcd-backup/vcd' */
  readonly vcdSecretName?: string;
  /** Minutes between scheduler ticks (1–60). Jobs cannot start more precisely than this. @default 1 */
  readonly tickRateMinutes?: number;
  /** @default 'INFO' */
  readonly logLevel?: LogLevel;
  /**
   * The issuer of API tokens, for the authorizer. HS256 shared secrets are not offered here: they would sit
   * in plain environment variables.
   * @default - not set: the API refuses every request until you deploy with it (synth warns)
   */
  readonly jwt?: JwtSettings;
  /** @default { rateLimit: 50, burstLimit: 100 } */
  readonly apiThrottle?: ApiThrottle;
  /** A regional WAFv2 web ACL for the API stage. @default - none */
  readonly webAclArn?: string;
  /** Alarm notifications go to this address. @default - topic without subscription */
  readonly alarmEmail?: string;
  /** Create the IAM Roles Anywhere trust anchor and profile for agents. @default - none */
  readonly rolesAnywhere?: RolesAnywhereSettings;
  /** @default FUNCTIONS from lib/infra/functions.ts */
  readonly functions?: readonly FunctionDefinition[];
  /** Directory with package-lock.json and the handler entries. @default the repository root */
  readonly projectRoot?: string;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly functionLogRetention?: logs.RetentionDays;
}

const CATALOG_ACTIONS = {
  read: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'],
  readWrite: [
    'dynamodb:GetItem',
    'dynamodb:BatchGetItem',
    'dynamodb:Query',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:DeleteItem',
    'dynamodb:BatchWriteItem',
    'dynamodb:ConditionCheckItem',
  ],
} as const;

const OBJECT_ACTIONS: Record<Exclude<RepositoryAccess, 'none'>, string[]> = {
  read: ['s3:GetObject'],
  readWrite: ['s3:GetObject', 's3:PutObject'],
  readWriteDelete: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
};

/** SSE-KMS reads need Decrypt, writes GenerateDataKey; Encrypt wraps repository data keys (keys/*.json). */
const KEY_ACTIONS: Record<Exclude<RepositoryAccess, 'none'>, string[]> = {
  read: ['kms:Decrypt'],
  readWrite: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
  readWriteDelete: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
};

/**
 * Everything stateless: queues with DLQs, the functions and their triggers, the API, the vCD secret, the
 * agent role, alarms and the dashboard. Each function gets exactly the access its row in
 * `lib/infra/functions.ts` lists.
 */
export class ServiceStack extends Stack {
  readonly queues: Readonly<Record<QueueId, ServiceQueue>>;
  readonly functions: Readonly<Partial<Record<FunctionDefinition['id'], ServiceFunction>>>;
  readonly vcdSecret: secretsmanager.Secret;
  readonly repositorySecret: secretsmanager.Secret;
  readonly agent: AgentAccess;
  readonly api?: ServiceApi;
  readonly monitoring: ServiceMonitoring;

  constructor(scope: Construct, id: string, props: ServiceStackProps) {
    super(scope, id, props);
    const definitions = props.functions ?? FUNCTIONS;
    const tickRate = props.tickRateMinutes ?? 1;
    checkRange(this, 'tickRate', tickRate, 1, 60, "set 'tickRate' in cdk.json context (or -c tickRate=5) to the minutes between scheduler ticks");
    if (props.vcdUrl === undefined && definitions.some((d) => d.vcd)) {
      Annotations.of(this).addWarningV2(
        'vcd-backup:vcd-url-missing',
        'vcdUrl is not set: the functions that talk to vCD fail until you deploy with -c vcdUrl=https://vcd.example.com (docs/operations.md).',
      );
    }
    if (props.vcdUrl !== undefined) {
      check(
        /^https:\/\/[^\s/]+(\/[^\s]*)?$/.test(props.vcdUrl) && !props.vcdUrl.endsWith('/api'),
        this,
        `vcdUrl '${props.vcdUrl}' must be the https base URL of vCD, e.g. https://vcd.example.com (without /api or /cloudapi)`,
      );
    }
    const secretName = props.vcdSecretName ?? 'vcd-backup/vcd';
    check(/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(secretName), this, `vcdSecretName '${secretName}' may only contain letters, digits and /_+=.@-`);
    check(props.repositories.length > 0, this, 'no repositories: pass the stateful stack repositories');
    if (props.jwt) {
      check(props.jwt.issuer.trim() !== '', this, "jwt.issuer is empty: set it to the 'iss' claim of your identity provider's tokens");
      check(/^https:\/\/\S+$/.test(props.jwt.jwksUrl), this, `jwt.jwksUrl '${props.jwt.jwksUrl}' must be the https URL of the issuer's JSON Web Key Set`);
      check(
        typeof props.jwt.audience === 'string' && props.jwt.audience.trim() !== '',
        this,
        "jwt.audience is empty: set it to the 'aud' claim your identity provider puts in tokens for this API",
      );
    } else if (definitions.some((d) => d.jwt)) {
      Annotations.of(this).addWarningV2(
        'vcd-backup:jwt-missing',
        'jwt is not set: the API authorizer refuses every request. Deploy with -c \'jwt={"issuer":"…","jwksUrl":"https://…","audience":"…"}\' (docs/operations.md).',
      );
    }
    validateFunctions(this, definitions);

    // Queues, each with its DLQ.
    this.queues = Object.fromEntries(QUEUES.map((q) => [q.id, new ServiceQueue(this, `${pascal(q.id)}Queue`, { definition: q })])) as Record<
      QueueId,
      ServiceQueue
    >;

    // vCD credentials: the deploy creates a placeholder; docs/operations.md shows how to put the real value.
    this.vcdSecret = new secretsmanager.Secret(this, 'VcdCredentials', {
      secretName,
      // The format lib/wiring/aws.ts reads.
      description: 'vCD credentials for vcd-backup: {"user","org","password"} or {"apiToken","org"}',
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ user: 'CHANGE_ME', org: 'System' }),
        generateStringKey: 'password',
        excludePunctuation: true,
      },
    });
    Validations.of(this.vcdSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'vCD credentials are rotated in vCD by the provider (docs/operations.md, Rotating credentials); Secrets Manager cannot rotate them.',
    });

    // Repository keys: apart from the vCD credentials, so a function that talks to vCD (the internet-facing
    // API among them) cannot read them. A generated passphrase for every repository; per-repository
    // passphrases may be added under "repositories" (docs/operations.md).
    this.repositorySecret = new secretsmanager.Secret(this, 'RepositoryKeys', {
      secretName: `${secretName.replace(/\/[^/]*$/, '')}/repository-keys`,
      description: 'vcd-backup repository passphrases: {"passphrase": default, "repositories": {"<repository URL>": passphrase}}',
      generateSecretString: { secretStringTemplate: '{}', generateStringKey: 'passphrase', passwordLength: 48, excludePunctuation: true },
    });
    Validations.of(this.repositorySecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'a repository passphrase unwraps keys of data written years ago; it is changed by wrapping the repository master key under a new passphrase (a new key file beside the old), never by rotation in place.',
    });

    const recursive = selfTriggering(definitions);
    const functions: Partial<Record<FunctionDefinition['id'], ServiceFunction>> = {};
    for (const d of definitions) {
      const sf = new ServiceFunction(this, `${pascal(d.id)}Function`, {
        definition: d,
        environment: this.environmentFor(d, props),
        projectRoot: props.projectRoot,
        logRetention: props.functionLogRetention,
        allowRecursiveLoop: recursive.has(d.id),
      });
      this.grant(sf, d, props);
      if (d.trigger.kind === 'queue') {
        sf.function.addEventSource(
          new SqsEventSource(this.queues[d.trigger.queue].queue, {
            batchSize: d.trigger.batchSize,
            maxConcurrency: d.trigger.maxConcurrency,
            maxBatchingWindow: d.trigger.maxBatchingWindowSeconds ? Duration.seconds(d.trigger.maxBatchingWindowSeconds) : undefined,
            reportBatchItemFailures: true,
          }),
        );
      }
      if (d.trigger.kind === 'tick') {
        new events.Rule(this, `${pascal(d.id)}Tick`, {
          description: `vcd-backup scheduler tick, every ${tickRate} minute(s)`,
          schedule: events.Schedule.rate(Duration.minutes(tickRate)),
          // A missed tick is caught up by the next one; retry once, never deliver a stale tick.
          targets: [new targets.LambdaFunction(sf.function, { retryAttempts: 1, maxEventAge: Duration.minutes(Math.max(1, tickRate)) })],
        });
      }
      Validations.of(sf.function).acknowledge({
        id: 'AwsSolutions-L1',
        reason: 'Node.js 22 is the runtime the project targets and tests (DESIGN.md); upgrades are deliberate.',
      });
      functions[d.id] = sf;
    }
    this.functions = functions;

    const apiFn = definitions.find((d) => d.trigger.kind === 'api');
    const authFn = definitions.find((d) => d.trigger.kind === 'authorizer');
    if (apiFn && authFn) {
      this.api = new ServiceApi(this, 'Api', {
        handler: functions[apiFn.id]!.function,
        authorizer: functions[authFn.id]!.function,
        throttle: props.apiThrottle,
        webAclArn: props.webAclArn,
      });
      new CfnOutput(this, 'ApiUrl', { value: this.api.api.url });
    }

    this.agent = new AgentAccess(this, 'Agent', {
      tasksQueue: this.queues.agentTasks.queue,
      resultsQueue: this.queues.agentResults.queue,
      repositories: props.repositories,
      rolesAnywhere: props.rolesAnywhere,
    });

    this.monitoring = new ServiceMonitoring(this, 'Monitoring', {
      functions: Object.values(functions).map((f) => ({ id: f.definition.id, function: f.function })),
      queues: Object.values(this.queues),
      agentTasksQueue: this.queues.agentTasks,
      api: this.api?.api,
      alarmEmail: props.alarmEmail,
    });

    this.suppressReviewedFindings(props);

    new CfnOutput(this, 'AgentRoleArn', { value: this.agent.role.roleArn, description: 'Role agents assume (IAM Roles Anywhere)' });
    if (this.agent.trustAnchor) new CfnOutput(this, 'AgentTrustAnchorArn', { value: this.agent.trustAnchor.attrTrustAnchorArn });
    if (this.agent.profile) new CfnOutput(this, 'AgentProfileArn', { value: this.agent.profile.attrProfileArn });
    new CfnOutput(this, 'AgentTasksQueueUrl', { value: this.queues.agentTasks.queue.queueUrl });
    new CfnOutput(this, 'AgentResultsQueueUrl', { value: this.queues.agentResults.queue.queueUrl });
    new CfnOutput(this, 'VcdSecretArn', { value: this.vcdSecret.secretArn });
    new CfnOutput(this, 'RepositorySecretArn', { value: this.repositorySecret.secretArn });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn });
    new CfnOutput(this, 'DashboardName', { value: this.monitoring.dashboard.dashboardName });
  }

  private environmentFor(d: FunctionDefinition, props: ServiceStackProps): Record<string, string> {
    const env: Record<string, string> = { LOG_LEVEL: props.logLevel ?? 'INFO' };
    if (d.catalog !== 'none') env.CATALOG_TABLE = props.table.tableName;
    const queues = new Set<QueueId>(d.sends);
    // A consumer may extend the visibility of a long message, so it knows its own queue too.
    if (d.trigger.kind === 'queue') queues.add(d.trigger.queue);
    for (const q of queues) env[queueUrlVariable(q)] = this.queues[q].queue.queueUrl;
    if (d.keys) env.REPOSITORY_SECRET_ARN = this.repositorySecret.secretArn;
    if (d.vcd) {
      env.VCD_SECRET_ARN = this.vcdSecret.secretArn;
      if (props.vcdUrl !== undefined) env.VCD_URL = props.vcdUrl;
    }
    if (d.jwt && props.jwt) {
      const j = props.jwt;
      Object.assign(env, { JWT_ISSUER: j.issuer, JWT_JWKS_URL: j.jwksUrl, JWT_AUDIENCE: j.audience });
      if (j.roleClaim !== undefined) env.JWT_ROLE_CLAIM = j.roleClaim;
      if (j.providerRole !== undefined) env.JWT_PROVIDER_ROLE = j.providerRole;
      if (j.tenantClaim !== undefined) env.JWT_TENANT_CLAIM = j.tenantClaim;
    }
    return env;
  }

  private grant(sf: ServiceFunction, d: FunctionDefinition, props: ServiceStackProps): void {
    const role = sf.role;
    if (d.catalog !== 'none') {
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: [...CATALOG_ACTIONS[d.catalog]],
          resources: [props.table.tableArn, ...CATALOG_TABLE.globalIndexes.map((g) => `${props.table.tableArn}/index/${g.name}`)],
        }),
      );
    }
    for (const q of d.sends) this.queues[q].queue.grantSendMessages(role);
    if (d.vcd) this.vcdSecret.grantRead(role);
    if (d.keys) this.repositorySecret.grantRead(role);
    if (d.repositories !== 'none') {
      const repos = props.repositories;
      const buckets = repos.map((r) => this.repositoryBucket(r));
      role.addToPolicy(
        new iam.PolicyStatement({ actions: OBJECT_ACTIONS[d.repositories], resources: repos.map((r, i) => repositoryObjectsArn(buckets[i]!, r.prefix)) }),
      );
      for (const [i, r] of repos.entries()) {
        acknowledgeRepositoryObjects(role, r, '*');
        role.addToPolicy(
          new iam.PolicyStatement({
            actions: ['s3:ListBucket'],
            resources: [buckets[i]!.bucketArn],
            conditions: r.prefix === '' ? undefined : { StringLike: { 's3:prefix': [`${r.prefix}*`] } },
          }),
        );
      }
      role.addToPolicy(new iam.PolicyStatement({ actions: KEY_ACTIONS[d.repositories], resources: repos.map((r) => r.key.keyArn) }));
    }
  }

  /** The repository bucket by its deterministic name: no cross-stack export for buckets. */
  private repositoryBucket(r: RepositoryRef): s3.IBucket {
    const id = `${pascal(r.definition.id)}RepositoryBucket`;
    return (this.node.tryFindChild(id) as s3.IBucket | undefined) ?? s3.Bucket.fromBucketName(this, id, repositoryBucketName(r.definition));
  }

  /** cdk-nag findings that are intended, each with its reason. */
  private suppressReviewedFindings(props: ServiceStackProps): void {
    if (this.api) {
      Validations.of(this.api).acknowledge({
        id: 'AwsSolutions-APIG2',
        reason:
          'The validator rejects requests without the Authorization header; bodies are validated by the api function against the zod message schemas (no API Gateway models to drift from them).',
      });
      Validations.of(this.api).acknowledge({
        id: 'AwsSolutions-COG4',
        reason: 'Callers are vCD tenants and the provider, not Cognito users: the Lambda TOKEN authorizer maps their tokens to a tenant.',
      });
      Validations.of(this.api).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason: 'The account-level API Gateway logging role uses the AWS-managed AmazonAPIGatewayPushToCloudWatchLogs policy, as AWS documents.',
      });
      if (props.webAclArn === undefined) {
        Validations.of(this.api).acknowledge({
          id: 'AwsSolutions-APIG3',
          reason: 'WAF is optional (webAclArn context): every method requires a token and the stage is throttled.',
        });
      }
    }
  }
}

function validateFunctions(stack: Stack, definitions: readonly FunctionDefinition[]): void {
  const ids = new Set<string>();
  const consumers = new Map<QueueId, string>();
  for (const d of definitions) {
    check(!ids.has(d.id), stack, `function '${d.id}' is defined twice in lib/infra/functions.ts: keep one row per handler`);
    ids.add(d.id);
    if (d.trigger.kind !== 'queue') continue;
    const t = d.trigger;
    const queue = QUEUES.find((q) => q.id === t.queue);
    check(queue !== undefined, stack, `function '${d.id}' is triggered by unknown queue '${t.queue}': use one of ${QUEUES.map((q) => q.id).join(', ')}`);
    check(!consumers.has(t.queue), stack, `queue '${t.queue}' is consumed by both '${consumers.get(t.queue)}' and '${d.id}': give each queue one consumer function`);
    consumers.set(t.queue, d.id);
    check(
      d.timeoutSeconds <= queue.visibilityTimeoutSeconds,
      stack,
      `function '${d.id}' times out after ${d.timeoutSeconds} s but queue '${queue.name}' hides a message for only ${queue.visibilityTimeoutSeconds} s: lower the timeout in lib/infra/functions.ts or raise visibilityTimeoutSeconds in lib/infra/resources.ts`,
    );
    checkRange(stack, `${d.id}.batchSize`, t.batchSize, 1, 10, 'fix the trigger in lib/infra/functions.ts');
    checkRange(stack, `${d.id}.maxConcurrency`, t.maxConcurrency, 2, 1000, 'SQS event sources allow 2 to 1000 concurrent invocations; fix the trigger in lib/infra/functions.ts');
    checkRange(stack, `${d.id}.maxBatchingWindowSeconds`, t.maxBatchingWindowSeconds ?? 0, 0, 300, 'fix the trigger in lib/infra/functions.ts');
  }
  const apis = definitions.filter((d) => d.trigger.kind === 'api').length;
  const authorizers = definitions.filter((d) => d.trigger.kind === 'authorizer').length;
  check(apis <= 1 && authorizers <= 1, stack, 'define at most one api and one authorizer function');
  check(apis === authorizers, stack, 'the api function needs an authorizer function (and an authorizer is useless without the api): define both or neither');
}

/**
 * Functions that can trigger themselves through queues (runs → runs; copy worker → runs → copy tasks →
 * copy worker). Lambda's recursive-loop detection would drop their messages after ~16 hops.
 */
export function selfTriggering(definitions: readonly FunctionDefinition[]): Set<FunctionDefinition['id']> {
  const consumerOf = new Map<QueueId, FunctionDefinition['id']>();
  for (const d of definitions) if (d.trigger.kind === 'queue') consumerOf.set(d.trigger.queue, d.id);
  const next = (id: FunctionDefinition['id']) =>
    (definitions.find((d) => d.id === id)?.sends ?? []).flatMap((q) => {
      const c = consumerOf.get(q);
      return c === undefined ? [] : [c];
    });
  const result = new Set<FunctionDefinition['id']>();
  for (const d of definitions) {
    const seen = new Set<FunctionDefinition['id']>();
    const stack = next(d.id);
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (id === d.id) {
        result.add(d.id);
        break;
      }
      if (seen.has(id)) continue;
      seen.add(id);
      stack.push(...next(id));
    }
  }
  return result;
}
