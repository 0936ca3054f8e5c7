/**
 * The service's Lambda functions, defined once: what triggers each one and exactly which resources it may
 * touch. The service stack builds functions, triggers, environment and IAM policies from this list, and
 * the infra tests check the synthesized policies against it. Pure data: no CDK imports.
 *
 * When a handler starts using a new resource, change its row here; the permission and the environment
 * variable follow, and the tests say so if they do not.
 */
import type { QueueDefinition } from './resources.js';

export type QueueId = QueueDefinition['id'];

export type FunctionTrigger =
  /** The EventBridge tick (`tickRate` minutes). */
  | { readonly kind: 'tick' }
  /** An SQS event source mapping with partial batch responses. */
  | {
      readonly kind: 'queue';
      readonly queue: QueueId;
      readonly batchSize: number;
      /** Concurrent invocations the mapping may start (2–1000): protects vCD, DynamoDB and S3 from bursts. */
      readonly maxConcurrency: number;
      /** Wait up to this long to fill a batch. @default 0 */
      readonly maxBatchingWindowSeconds?: number;
    }
  /** The REST API's `{proxy+}` integration. */
  | { readonly kind: 'api' }
  /** The REST API's TOKEN authorizer. */
  | { readonly kind: 'authorizer' };

/** What a function may do with the catalog table (and its indexes). */
export type CatalogAccess = 'none' | 'read' | 'readWrite';

/**
 * What a function may do with the objects under each repository's prefix. `readWriteDelete` is for
 * retention and GC; nothing else deletes.
 */
export type RepositoryAccess = 'none' | 'read' | 'readWrite' | 'readWriteDelete';

export interface FunctionDefinition {
  /** Logical id, also the construct id (`Scheduler`, ...) in PascalCase. */
  readonly id: 'scheduler' | 'runs' | 'agentResults' | 'copyWorker' | 'api' | 'authorizer';
  /** Handler module relative to the project root; it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly trigger: FunctionTrigger;
  readonly memoryMiB: number;
  /** Must not exceed the visibility timeout of a triggering queue (SQS rejects the mapping otherwise). */
  readonly timeoutSeconds: number;
  /** Unless `none`, adds `CATALOG_TABLE` (`loadConfig` requires it) and these rights on table and indexes. */
  readonly catalog: CatalogAccess;
  /** Queues it sends to; each adds `<QUEUE>_QUEUE_URL` and `sqs:SendMessage` on that queue only. */
  readonly sends: readonly QueueId[];
  readonly repositories: RepositoryAccess;
  /** Reads the vCD credentials secret; adds `VCD_URL` and `VCD_SECRET_ARN`. */
  readonly vcd: boolean;
  /**
   * Reads the repository-keys secret (the passphrases that unwrap repository master keys, from which every
   * tenant's keys derive); adds `REPOSITORY_SECRET_ARN`. Only functions that read or write block data.
   */
  readonly keys: boolean;
  /** Verifies API tokens; adds the `JWT_*` settings `lib/api/jwt.ts` reads (issuer, JWKS URL, claims). */
  readonly jwt: boolean;
}

export const FUNCTIONS: readonly FunctionDefinition[] = [
  {
    id: 'scheduler',
    entry: 'lambdas/scheduler.ts',
    description: 'Scheduler tick: enqueues StartBackupRun/StartCopyRun for jobs that are due',
    trigger: { kind: 'tick' },
    memoryMiB: 256,
    timeoutSeconds: 60,
    catalog: 'readWrite',
    sends: ['runs'],
    repositories: 'none',
    // The vCenters (in the vCD secret) for the hourly sweep of snapshots crashed backups left behind.
    vcd: true,
    keys: false,
    jwt: false,
  },
  {
    id: 'runs',
    entry: 'lambdas/runs.ts',
    description: 'Orchestrator: backup, copy, restore, retention and GC runs',
    // One run per invocation: a run can take minutes (maintenance mode, capture) and must not hold others.
    trigger: { kind: 'queue', queue: 'runs', batchSize: 1, maxConcurrency: 10 },
    memoryMiB: 1024,
    timeoutSeconds: 900,
    catalog: 'readWrite',
    // Retries and chained runs (runs), disk tasks for agents (agentTasks), block batches (copyTasks).
    sends: ['runs', 'agentTasks', 'copyTasks'],
    repositories: 'readWriteDelete',
    vcd: true,
    keys: true,
    jwt: false,
  },
  {
    id: 'agentResults',
    entry: 'lambdas/agent-results.ts',
    description: 'Agent results: progress, disk results, restore-point commits',
    trigger: { kind: 'queue', queue: 'agentResults', batchSize: 10, maxConcurrency: 5, maxBatchingWindowSeconds: 2 },
    memoryMiB: 512,
    timeoutSeconds: 90,
    catalog: 'readWrite',
    // StartCopyRun after a commit (runs), retried disk tasks (agentTasks).
    sends: ['runs', 'agentTasks'],
    // Writes vapp.json and point.json; never deletes.
    repositories: 'readWrite',
    // Exits maintenance mode and finishes restores in vCD once the last disk reports.
    vcd: true,
    keys: true,
    jwt: false,
  },
  {
    id: 'copyWorker',
    entry: 'lambdas/copy-worker.ts',
    description: 'Copy worker: copies one batch of blocks between repositories',
    trigger: { kind: 'queue', queue: 'copyTasks', batchSize: 1, maxConcurrency: 20 },
    memoryMiB: 1024,
    timeoutSeconds: 300,
    catalog: 'readWrite',
    // Copy runs and their follow-ups (StartCopyRun) go through the runs queue.
    sends: ['runs'],
    // The last batch commits the target point and applies the copy job's retention there (deletes).
    repositories: 'readWriteDelete',
    vcd: false,
    keys: true,
    jwt: false,
  },
  {
    id: 'api',
    entry: 'lambdas/api.ts',
    description: 'REST API: jobs, runs, restore points, restores',
    trigger: { kind: 'api' },
    memoryMiB: 512,
    // API Gateway stops waiting after 29 s. Tokens are verified by the authorizer, so no JWT settings here.
    timeoutSeconds: 29,
    catalog: 'readWrite',
    sends: ['runs'],
    // Internet-facing: no repository access and no key. Restore plans use the captured model the catalog keeps.
    repositories: 'none',
    // Resolves job scopes in the tenant's organization; validates restore plans against the target vCD.
    vcd: true,
    keys: false,
    jwt: false,
  },
  {
    id: 'authorizer',
    entry: 'lambdas/authorizer.ts',
    description: 'API authorizer: verifies the bearer JWT and maps it to a tenant or the provider',
    trigger: { kind: 'authorizer' },
    memoryMiB: 256,
    timeoutSeconds: 10,
    // Verifies the token's signature and claims only; the api function checks tenants against the catalog.
    catalog: 'none',
    sends: [],
    repositories: 'none',
    vcd: false,
    keys: false,
    jwt: true,
  },
];

/** `agentTasks` → `AGENT_TASKS_QUEUE_URL`, the names `loadConfig` reads. */
export function queueUrlVariable(queue: QueueId): string {
  return `${queue.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_QUEUE_URL`;
}
