import { Duration } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { METRICS } from './resources.js';
import type { ServiceQueue } from './service-queue.js';
import { check, checkRange } from './validate.js';

export interface MonitoredFunction {
  readonly id: string;
  readonly function: lambda.IFunction;
}

export interface ServiceMonitoringProps {
  readonly functions: readonly MonitoredFunction[];
  readonly queues: readonly ServiceQueue[];
  /** The queue agents poll; an old message there means no agent is working. */
  readonly agentTasksQueue?: ServiceQueue;
  readonly api?: apigw.RestApi;
  /** Subscribe this address to the alarm topic (it must confirm the subscription). @default - no subscription */
  readonly alarmEmail?: string;
  /** Alarm when the oldest agent task is older than this many minutes. @default 30 */
  readonly agentTaskMaxAgeMinutes?: number;
  /** @default 'vcd-backup' */
  readonly dashboardName?: string;
}

/**
 * Alarms and a dashboard. Every alarm notifies one encrypted SNS topic:
 * - `<queue> dead letters`: any message in a DLQ (a message failed `maxReceiveCount` times);
 * - `<function> errors`: any invocation error in 5 minutes;
 * - `failed runs`: the handlers' `FailedRuns` metric (namespace `VcdBackup`);
 * - `agent tasks waiting`: the oldest agent task is older than `agentTaskMaxAgeMinutes` (no agent polling).
 */
export class ServiceMonitoring extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: ServiceMonitoringProps) {
    super(scope, id);
    if (props.alarmEmail !== undefined) {
      check(/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(props.alarmEmail), this, `alarmEmail '${props.alarmEmail}' is not an e-mail address`);
    }
    const maxAge = props.agentTaskMaxAgeMinutes ?? 30;
    checkRange(this, 'agentTaskMaxAgeMinutes', maxAge, 5, 1440, 'how long a disk task may wait for an agent');

    const key = new kms.Key(this, 'TopicKey', { description: 'vcd-backup alarm topic', enableKeyRotation: true });
    // CloudWatch publishes alarms to the encrypted topic.
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
      }),
    );
    this.topic = new sns.Topic(this, 'Alarms', { displayName: 'vcd-backup alarms', masterKey: key, enforceSSL: true });
    if (props.alarmEmail !== undefined) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    const notify = new actions.SnsAction(this.topic);
    const alarm = (alarmId: string, metric: cloudwatch.IMetric, description: string, threshold = 1, evaluationPeriods = 1) => {
      const a = new cloudwatch.Alarm(this, alarmId, {
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      a.addAlarmAction(notify);
      this.alarms.push(a);
      return a;
    };

    for (const q of props.queues) {
      alarm(
        `${q.node.id}DeadLetters`,
        q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
        `Messages in ${q.definition.name}-dlq: they failed ${q.definition.maxReceiveCount} times. Inspect them, fix the cause, then redrive (docs/operations.md).`,
      );
    }
    for (const f of props.functions) {
      alarm(
        `${f.id}Errors`,
        f.function.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        `The ${f.id} function failed invocations. Its log group has the error and the request id.`,
      );
    }
    const failedRuns = new cloudwatch.Metric({ namespace: METRICS.namespace, metricName: METRICS.failedRuns, period: Duration.minutes(5), statistic: 'Sum' });
    alarm('FailedRuns', failedRuns, 'Backup, copy or restore runs failed. `GET /runs?state=failed` lists them with their errors.');
    if (props.agentTasksQueue) {
      alarm(
        'AgentTasksWaiting',
        props.agentTasksQueue.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: 'Maximum' }),
        `A disk task waited more than ${maxAge} minutes: no agent is polling (check the agent service and its certificate) or agents are overloaded.`,
        maxAge * 60,
        2,
      );
    }

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: props.dashboardName ?? 'vcd-backup' });
    const fnMetric = (pick: (f: lambda.IFunction) => cloudwatch.IMetric) =>
      props.functions.map((f) => (pick(f.function) as cloudwatch.Metric).with({ label: f.id, period: Duration.minutes(5) }));
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 4 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Runs failed', left: [failedRuns], width: 6 }),
      new cloudwatch.GraphWidget({ title: 'Function invocations', left: fnMetric((f) => f.metricInvocations()), width: 6 }),
      new cloudwatch.GraphWidget({ title: 'Function errors', left: fnMetric((f) => f.metricErrors()), width: 6 }),
      new cloudwatch.GraphWidget({ title: 'Function duration (p90)', left: fnMetric((f) => f.metricDuration({ statistic: 'p90' })), width: 6 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Queue depth',
        left: props.queues.map((q) => q.queue.metricApproximateNumberOfMessagesVisible({ label: q.definition.id, period: Duration.minutes(1) })),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Oldest message (s)',
        left: props.queues.map((q) => q.queue.metricApproximateAgeOfOldestMessage({ label: q.definition.id, period: Duration.minutes(1) })),
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Dead letters',
        left: props.queues.map((q) => q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: `${q.definition.id}-dlq`, period: Duration.minutes(1) })),
        width: 8,
      }),
    );
    if (props.api) {
      const api = props.api;
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({ title: 'API requests', left: [api.metricCount({ period: Duration.minutes(5) })], width: 8 }),
        new cloudwatch.GraphWidget({
          title: 'API errors',
          left: [api.metricClientError({ period: Duration.minutes(5) }), api.metricServerError({ period: Duration.minutes(5) })],
          width: 8,
        }),
        new cloudwatch.GraphWidget({ title: 'API latency (p90)', left: [api.metricLatency({ period: Duration.minutes(5), statistic: 'p90' })], width: 8 }),
      );
    }
  }
}
