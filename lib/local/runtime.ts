import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent } from '../agent/agent.js';
import { FileDiskLocator } from '../agent/disk-locator.js';
import type { Catalog } from '../catalog/catalog.js';
import { DynamoDbCatalog } from '../catalog/dynamodb-catalog.js';
import type { Clock } from '../domain/clock.js';
import { createAgentResultsHandler } from '../handlers/agent-results.js';
import { createRunsHandler } from '../handlers/runs.js';
import { createCopyTasksHandler } from '../handlers/copy-tasks.js';
import { CopyService } from '../services/copy-service.js';
import type { Log } from '../log.js';
import { SqsQueue } from '../queue/sqs-queue.js';
import type { Queue } from '../queue/queue.js';
import type { QueueId } from '../queue/messages.js';
import { Secret } from '../secret.js';
import { BackupService } from '../services/backup-service.js';
import { SchedulerService, type UpkeepSchedule } from '../services/scheduler.js';
import { UpkeepService } from '../services/upkeep-service.js';
import { AgentDiskTasks } from '../services/catalog-disk-writer.js';
import { RestoreService } from '../services/restore-service.js';
import { UsageService } from '../services/usage-service.js';
import type { RestoreTarget } from '../services/restore-ports.js';
import type { VcdGateway } from '../services/ports.js';
import { LambdaPoller } from './lambda-poller.js';
import { RepositoryRegistry } from '../wiring/repository-registry.js';
import type { LocalStack } from './stack.js';

export interface LocalRuntimeOptions {
  readonly stack: LocalStack;
  readonly dataDir: string;
  readonly vcd: VcdGateway;
  readonly clock: Clock;
  readonly log: Log;
  /** Scheduler tick period; 0 disables the tick. @default 60000 */
  readonly tickMs?: number;
  /** Roots the agent may read disks from. */
  readonly diskRoots: readonly string[];
  /** The vCD side of restores; restores are off without it. */
  readonly restoreTarget?: RestoreTarget;
  /** Scheduled repository upkeep (retention daily, GC weekly); absent: only upkeep runs sent by hand. */
  readonly upkeep?: UpkeepSchedule;
  readonly onProgress?: (p: { runId: string; taskId: string; vappId?: string; diskId?: string; bytesDone: number; bytesTotal: number }) => void;
}

export interface LocalRuntime {
  readonly catalog: Catalog;
  readonly queues: Record<QueueId, Queue>;
  readonly repositories: RepositoryRegistry;
  readonly backups: BackupService;
  readonly copies: CopyService;
  readonly scheduler: SchedulerService;
  readonly restores?: RestoreService;
  readonly usage: UsageService;
  readonly upkeep: UpkeepService;
  readonly agent: Agent;
  stop(): Promise<void>;
}

/** The repository passphrase of local mode: made once, kept beside the data (mode 0600), never printed. */
export async function localPassphrase(dataDir: string): Promise<Secret> {
  const file = path.join(dataDir, 'repository-passphrase');
  try {
    return new Secret((await readFile(file, 'utf8')).trim());
  } catch {
    await mkdir(dataDir, { recursive: true });
    const value = randomBytes(24).toString('base64url');
    await writeFile(file, value + '\n', { mode: 0o600 });
    return new Secret(value);
  }
}

/**
 * The service on one machine: the same handlers the Lambda functions run, fed by pollers with Lambda's SQS
 * semantics, a scheduler tick, and one proxy agent, all on the embedded stack.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions): Promise<LocalRuntime> {
  const { stack, clock, log } = options;
  const catalog = new DynamoDbCatalog({ documents: stack.documents!, tableName: stack.tableName, clock });
  const queues = Object.fromEntries(
    (Object.keys(stack.queueUrls) as QueueId[]).map((id) => [id, new SqsQueue({ client: stack.sqs, queueUrl: stack.queueUrls[id], dlqUrl: stack.dlqUrls[id] })]),
  ) as unknown as Record<QueueId, Queue>;
  const repositories = new RepositoryRegistry({ catalog, s3: stack.s3, clock, initMissing: true, keySource: { kind: 'passphrase', passphrase: await localPassphrase(options.dataDir) } });
  const usage = new UsageService({ catalog, repositories, clock, log });
  const copies = new CopyService({ catalog, repositories, copyTasks: queues.copyTasks, runs: queues.runs, clock, log, usage });
  const backups = new BackupService({
    catalog,
    vcd: options.vcd,
    repositories,
    usage,
    agentTasks: queues.agentTasks,
    clock,
    log,
    onPointCommitted: (point) => copies.onSourcePointCommitted(point).then(() => undefined),
  });
  const upkeep = new UpkeepService({ catalog, repositories, clock, log, usage });
  const scheduler = new SchedulerService({ catalog, runs: queues.runs, clock, log, copies, ...(options.upkeep ? { upkeep: options.upkeep } : {}) });
  const restoreDisks = new AgentDiskTasks({ agentTasks: queues.agentTasks });
  const restores = options.restoreTarget
    ? new RestoreService({ catalog, repositories, target: options.restoreTarget, disks: restoreDisks, runsQueue: queues.runs, clock, log })
    : undefined;
  const pollers = [
    new LambdaPoller(queues.runs, createRunsHandler({ backups, restores, copies, upkeep, log }), log, { visibilitySeconds: 300 }),
    new LambdaPoller(queues.copyTasks, createCopyTasksHandler({ copies, log }), log, { visibilitySeconds: 120 }),
    new LambdaPoller(queues.agentResults, createAgentResultsHandler({ backups, restores, catalog, clock, log, onProgress: options.onProgress }), log, { visibilitySeconds: 15 }),
  ];
  // The agent writes create-only, as in production: a registry of its own over the same repositories.
  const agentRepositories = new RepositoryRegistry({ catalog, s3: stack.s3, clock, createOnly: true, keySource: { kind: 'passphrase', passphrase: await localPassphrase(options.dataDir) } });
  const agent = new Agent({
    tasks: queues.agentTasks,
    results: queues.agentResults,
    deps: { repositories: agentRepositories, locator: new FileDiskLocator(options.diskRoots), repositoryLocks: false },
    log,
    waitSeconds: 1,
    progressIntervalMs: 500,
  });
  for (const p of pollers) p.start();
  agent.start();
  const tickMs = options.tickMs ?? 60_000;
  const tick = tickMs > 0 ? setInterval(() => void scheduler.tick().catch((err: unknown) => log.error('scheduler tick failed', { error: (err as Error).message })), tickMs) : undefined;
  return {
    catalog,
    queues,
    repositories,
    backups,
    copies,
    scheduler,
    restores,
    usage,
    upkeep,
    agent,
    async stop() {
      if (tick) clearInterval(tick);
      await agent.stop();
      await Promise.all(pollers.map((p) => p.stop()));
      await repositories.close();
      await agentRepositories.close();
    },
  };
}
