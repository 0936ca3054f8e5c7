/**
 * The service's stateful resources, defined once. The embedded local stack creates them on fauxqs and
 * DynamoDB Local; the CDK stateful stack creates the same ones in AWS. Pure data: no SDK, no CDK imports.
 */
export interface QueueDefinition {
  /** Logical id used in code (`runs`, `agentTasks`, ...). */
  readonly id: 'runs' | 'agentTasks' | 'agentResults' | 'copyTasks';
  readonly name: string;
  /** How long a received message stays hidden; handlers extend it for long work. */
  readonly visibilityTimeoutSeconds: number;
  /** Receives before a message moves to the dead-letter queue. */
  readonly maxReceiveCount: number;
}

export interface TableDefinition {
  readonly name: string;
  readonly partitionKey: 'pk';
  readonly sortKey: 'sk';
  readonly globalIndexes: ReadonlyArray<{ readonly name: string; readonly partitionKey: string; readonly sortKey: string }>;
  readonly ttlAttribute: string;
}

export interface BucketDefinition {
  readonly id: 'primary' | 'cloud' | 'archive';
  readonly name: string;
}

export const QUEUES: readonly QueueDefinition[] = [
  { id: 'runs', name: 'vcd-backup-runs', visibilityTimeoutSeconds: 900, maxReceiveCount: 5 },
  { id: 'agentTasks', name: 'vcd-backup-agent-tasks', visibilityTimeoutSeconds: 300, maxReceiveCount: 5 },
  { id: 'agentResults', name: 'vcd-backup-agent-results', visibilityTimeoutSeconds: 120, maxReceiveCount: 5 },
  { id: 'copyTasks', name: 'vcd-backup-copy-tasks', visibilityTimeoutSeconds: 300, maxReceiveCount: 5 },
];

export const CATALOG_TABLE: TableDefinition = {
  name: 'vcd-backup-catalog',
  partitionKey: 'pk',
  sortKey: 'sk',
  globalIndexes: [
    { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
    { name: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
  ],
  ttlAttribute: 'expiresAt',
};

export const BUCKETS: readonly BucketDefinition[] = [
  { id: 'primary', name: 'vcd-backup-primary' },
  { id: 'cloud', name: 'vcd-backup-cloud' },
  { id: 'archive', name: 'vcd-backup-archive' },
];

export function dlqName(queue: QueueDefinition): string {
  return `${queue.name}-dlq`;
}

/**
 * Custom CloudWatch metrics. Handlers publish them as embedded-metric-format log lines (no
 * `cloudwatch:PutMetricData` permission needed), without dimensions; the service stack alarms on them.
 * `failedRunsMetricLine` builds the line.
 */
export const METRICS = {
  namespace: 'VcdBackup',
  /** Count of backup, copy or restore runs that ended `failed` (one per run, published when it ends). */
  failedRuns: 'FailedRuns',
} as const;

/**
 * One CloudWatch embedded-metric-format line reporting `count` failed runs. A Lambda handler writes it
 * with `process.stdout.write(line + '\n')`: the functions use Lambda's JSON log format, which would wrap a
 * `console.log` line and hide the metric. The alarm matches namespace, name and the empty dimension set.
 */
export function failedRunsMetricLine(count: number, timestampMs: number): string {
  return JSON.stringify({
    _aws: {
      Timestamp: timestampMs,
      CloudWatchMetrics: [{ Namespace: METRICS.namespace, Dimensions: [[]], Metrics: [{ Name: METRICS.failedRuns, Unit: 'Count' }] }],
    },
    [METRICS.failedRuns]: count,
  });
}
