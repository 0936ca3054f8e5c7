import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { DynamoDbCatalog } from '../catalog/dynamodb-catalog.js';
import { loadConfig, type ServiceConfig } from '../config.js';
import { BackupError, ConfigError, describeIssues } from '../errors.js';
import { createLambdaLogger, type Log } from '../log.js';
import { SqsQueue } from '../queue/sqs-queue.js';
import type { Queue } from '../queue/queue.js';
import { createS3Client } from '../repository/s3-store.js';
import { Secret } from '../secret.js';
import { BackupService } from '../services/backup-service.js';
import { SchedulerService } from '../services/scheduler.js';
import { UpkeepService } from '../services/upkeep-service.js';
import { CopyService } from '../services/copy-service.js';
import { systemClock } from '../system-clock.js';
import { VcdBackupGateway, type DiskLocate } from '../vcd/backup-gateway.js';
import { VcdRestoreClient } from '../vcd/restore-client.js';
import { RestoreService } from '../services/restore-service.js';
import { UsageService } from '../services/usage-service.js';
import { VsphereBackupGateway } from '../vsphere/gateway.js';
import { AgentDiskTasks } from '../services/catalog-disk-writer.js';
import { VcdClient } from '../vcd/client.js';
import { failedRunsMetricLine } from '../infra/resources.js';
import { RepositoryRegistry } from './repository-registry.js';

/**
 * Dependencies of the Lambda functions in AWS, built once per container (cold start) from the environment
 * the CDK stack sets. Handlers stay thin: they take what they need from here.
 */

/** The vCD secret (Secrets Manager, JSON): credentials only. */
const vcdSecretSchema = z
  .unknown()
  .refine((v) => !(typeof v === 'object' && v !== null && 'repositoryPassphrase' in v), {
    message: 'repositoryPassphrase does not belong in the vCD secret (every function that talks to vCD, the internet-facing API among them, reads it); move it to the repository-keys secret as "passphrase"',
  })
  .pipe(
    z.intersection(
      z.union([
        z.object({ user: z.string().min(1), org: z.string().min(1), password: z.string().min(1) }),
        z.object({ apiToken: z.string().min(1), org: z.string().optional() }),
      ]),
      // The vCenters behind vCD (vCD names each by its vimServer id): VMs are snapshotted through them.
      z.object({
        vcenters: z
          .array(z.object({ id: z.string().min(1), url: z.url(), user: z.string().min(1), password: z.string().min(1), thumbprint: z.string().min(1).optional() }))
          .optional(),
      }),
    ),
  );

/**
 * The repository-keys secret (Secrets Manager, JSON), readable only by the functions that touch block data:
 * the default passphrase and, optionally, one per repository URL, so no single passphrase opens every
 * repository. Each tenant's keys derive from the repository's master key that the passphrase unwraps.
 */
const repositorySecretSchema = z.object({
  passphrase: z.string().min(12),
  repositories: z.record(z.string().min(1), z.string().min(12)).optional(),
});

export interface AwsDeps {
  readonly config: ServiceConfig;
  readonly log: Log;
  readonly catalog: DynamoDbCatalog;
  queue(id: 'runs' | 'agentTasks' | 'agentResults' | 'copyTasks'): Queue;
  backups(): Promise<BackupService>;
  copies(): Promise<CopyService>;
  restores(): Promise<RestoreService>;
  /** Plans and queues restores without any repository key (the API function): the model comes from the catalog. */
  restorePlanner(): Promise<RestoreService>;
  /** vCD for scope resolution inside a tenant's organization (the API's 404 checks, the orchestrator). */
  vcd(): Promise<VcdBackupGateway>;
  scheduler(): Promise<SchedulerService>;
  /** Retention sweeps and GC of the repositories (the runs function). */
  upkeep(): Promise<UpkeepService>;
}

let cached: AwsDeps | undefined;

export function awsDeps(service: string, env: Record<string, string | undefined>): AwsDeps {
  if (cached) return cached;
  const config = loadConfig(env);
  const log = createLambdaLogger(service, config.logLevel);
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient({ region: config.region }), { marshallOptions: { removeUndefinedValues: true } });
  const catalog = new DynamoDbCatalog({ documents, tableName: config.catalogTable, clock: systemClock });
  const sqs = new SQSClient({ region: config.region, ...(config.endpoint ? { endpoint: config.endpoint } : {}) });
  const urls = { runs: config.queues.runs, agentTasks: config.queues.agentTasks, agentResults: config.queues.agentResults, copyTasks: config.queues.copyTasks };
  const queues = new Map<string, Queue>();
  const queue = (id: keyof typeof urls): Queue => {
    const url = urls[id];
    if (!url) throw new ConfigError(`this function has no ${id} queue: set ${id.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_QUEUE_URL`);
    let q = queues.get(id);
    if (!q) {
      q = new SqsQueue({ client: sqs, queueUrl: url });
      queues.set(id, q);
    }
    return q;
  };
  let secret: ReturnType<typeof readVcdSecret> | undefined;
  const vcdSecret = () => (secret ??= readVcdSecret(config));
  let repositories: Promise<RepositoryRegistry> | undefined;
  const repositoryRegistry = () =>
    (repositories ??= (async () => {
      // The repository-keys secret in AWS; REPOSITORY_PASSPHRASE for tests of the bundles.
      const keys = config.repositorySecretArn ? await readJsonSecret(config, config.repositorySecretArn, 'repository-keys', repositorySecretSchema) : undefined;
      const passphrase = keys?.passphrase ?? config.repositoryPassphrase?.reveal();
      const perRepository = keys?.repositories ?? {};
      return new RepositoryRegistry({
        catalog,
        s3: createS3Client({ region: config.region }),
        clock: systemClock,
        keySource: passphrase ? { kind: 'passphrase', passphrase: new Secret(passphrase) } : undefined,
        keySourceFor: (url) => (perRepository[url] !== undefined ? { kind: 'passphrase', passphrase: new Secret(perRepository[url]) } : undefined),
      });
    })());
  let usage: Promise<UsageService> | undefined;
  const usageService = () => (usage ??= (async () => new UsageService({ catalog, repositories: await repositoryRegistry(), clock: systemClock, log }))());
  let upkeep: Promise<UpkeepService> | undefined;
  const upkeepService = () => (upkeep ??= (async () => new UpkeepService({ catalog, repositories: await repositoryRegistry(), clock: systemClock, log, usage: await usageService() }))());
  let copies: Promise<CopyService> | undefined;
  const copyService = () =>
    (copies ??= (async () =>
      new CopyService({ catalog, repositories: await repositoryRegistry(), copyTasks: lazyQueue('copyTasks'), runs: lazyQueue('runs'), clock: systemClock, log, usage: await usageService() }))());
  /** Resolves a queue on first use, so a function only needs the URLs of the queues it really sends to. */
  const lazyQueue = (id: keyof typeof urls): Queue => ({
    get name() {
      return queue(id).name;
    },
    send: (bodies) => queue(id).send(bodies),
    receive: (options) => queue(id).receive(options),
    delete: (handles) => queue(id).delete(handles),
    extendVisibility: (handle, seconds) => queue(id).extendVisibility(handle, seconds),
    dlqDepth: () => queue(id).dlqDepth(),
  });
  let vcd: Promise<VcdClient> | undefined;
  const vcdClient = () =>
    (vcd ??= (async () => {
      const secretValue = await vcdSecret();
      if (!config.vcdUrl) throw new ConfigError('set VCD_URL to the vCD cell URL');
      const credentials =
        'apiToken' in secretValue
          ? { kind: 'apiToken' as const, org: secretValue.org, token: new Secret(secretValue.apiToken) }
          : { kind: 'password' as const, user: secretValue.user, org: secretValue.org, password: new Secret(secretValue.password) };
      return VcdClient.connect({ url: config.vcdUrl, credentials, log });
    })());
  // Disks are located by the on-prem agent from the VM's vSphere identity (moref), not by the service.
  const locate: DiskLocate = (vm, disk) => ({ kind: 'file', path: `vsphere/${vm.moref ?? vm.uuid}/${disk.instanceId}`, sizeBytes: disk.sizeBytes });
  let restores: Promise<RestoreService> | undefined;
  let planner: Promise<RestoreService> | undefined;
  let backups: Promise<BackupService> | undefined;
  let gateway: Promise<VcdBackupGateway> | undefined;
  let vsphereGateway: Promise<VsphereBackupGateway | undefined> | undefined;
  const vsphere = () =>
    (vsphereGateway ??= (async () => {
      const vcenters = (await vcdSecret()).vcenters ?? [];
      if (vcenters.length === 0) return undefined;
      return new VsphereBackupGateway(
        vcenters.map((v) => ({ id: v.id, url: v.url, userName: v.user, password: new Secret(v.password), ...(v.thumbprint ? { tls: { fingerprint: v.thumbprint } } : {}) })),
        { log },
      );
    })());
  const vcdGateway = () => (gateway ??= (async () => new VcdBackupGateway(await vcdClient(), locate, { log, vsphere: await vsphere() }))());
  cached = {
    config,
    log,
    catalog,
    queue,
    copies: copyService,
    upkeep: upkeepService,
    vcd: vcdGateway,
    backups: () =>
      (backups ??= (async () => {
        const copiesNow = await copyService();
        return new BackupService({
          catalog,
          vcd: await vcdGateway(),
          repositories: await repositoryRegistry(),
          usage: await usageService(),
          vsphere: await vsphere(),
          agentTasks: lazyQueue('agentTasks'),
          clock: systemClock,
          log,
          onPointCommitted: (p) => copiesNow.onSourcePointCommitted(p).then(() => undefined),
          // CloudWatch embedded metric, straight to stdout (the JSON log format would wrap a console line).
          onRunFinished: (_runId, state) => {
            if (state === 'failed') process.stdout.write(failedRunsMetricLine(1, Date.now()) + '\n');
          },
        });
      })()),
    restores: () =>
      (restores ??= (async () =>
        new RestoreService({
          catalog,
          repositories: await repositoryRegistry(),
          target: new VcdRestoreClient(await vcdClient(), { locate, log }),
          disks: new AgentDiskTasks({ agentTasks: lazyQueue('agentTasks') }),
          runsQueue: lazyQueue('runs'),
          clock: systemClock,
          log,
        }))()),
    restorePlanner: () =>
      (planner ??= (async () =>
        new RestoreService({
          catalog,
          repositories: {
            open: () => {
              throw new BackupError(
                'RESTORE_MODEL_NOT_IN_CATALOG',
                'this restore point\'s captured model is not in the catalog (points committed before it was kept there, or a model larger than a catalog item), and the API holds no repository key; plan it with the CLI: vcd-backup restore plan --repo ...',
              );
            },
          },
          target: new VcdRestoreClient(await vcdClient(), { locate, log }),
          disks: { writeDisk: () => Promise.reject(new BackupError('RESTORE_NOT_HERE', 'the API function plans and queues restores; disks are written by the agent')) },
          runsQueue: lazyQueue('runs'),
          clock: systemClock,
          log,
        }))()),
    scheduler: async () =>
      new SchedulerService({ catalog, runs: queue('runs'), clock: systemClock, log, copies: await copyService(), snapshots: config.vcdSecretArn ? await vsphere() : undefined, upkeep: {} }),
  };
  return cached;
}

async function readVcdSecret(config: ServiceConfig): Promise<z.infer<typeof vcdSecretSchema>> {
  if (!config.vcdSecretArn) throw new ConfigError('set VCD_SECRET_ARN to the Secrets Manager secret holding the vCD credentials');
  return readJsonSecret(config, config.vcdSecretArn, 'vCD', vcdSecretSchema);
}

/** Reads a JSON secret and parses it; errors name the secret and the field, never a value. */
async function readJsonSecret<T>(config: ServiceConfig, arn: string, what: string, schema: z.ZodType<T>): Promise<T> {
  const client = new SecretsManagerClient({ region: config.region });
  const res = await client.send(new GetSecretValueCommand({ SecretId: arn }));
  let value: unknown;
  try {
    value = JSON.parse(res.SecretString ?? '');
  } catch {
    throw new ConfigError(`the ${what} secret ${arn} is not JSON (docs/operations.md shows its shape)`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ConfigError(`the ${what} secret ${arn} is invalid: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}
