import { z } from 'zod';
import { BackupError } from '../errors.js';
import type { QueueDefinition } from '../infra/resources.js';

/**
 * Queue messages (DESIGN §5). Every message has `type`, `version` and the ids it concerns. A version, once
 * released, is never changed: a change that old readers or old queued messages cannot handle adds version 2
 * (with an upgrade from 1) next to it. `test/fixtures/messages/<type>/v<n>.json` holds one message per
 * released version, and a test keeps them parsing.
 *
 * Delivery is at least once, so every id a handler needs to be idempotent is in the message.
 */

const Id = z.string().min(1).max(256);
const Time = z.iso.datetime({ offset: true });
const Bytes = z.number().int().nonnegative();

/** Where a repository is; enough for an agent or a worker to open it (secrets never travel in messages). */
export const RepositoryRef = z.object({
  /** Catalog id of the repository. */
  id: Id.optional(),
  /** `s3://bucket/prefix`, `file:///dir`. */
  url: z.string().min(1),
  prefix: z.string().optional(),
  endpoint: z.url().optional(),
  region: z.string().min(1).optional(),
});
export type RepositoryRef = z.infer<typeof RepositoryRef>;

/** Where an agent reads or writes a disk (DiskBackupTask/DiskRestoreTask v1). */
export const DiskLocatorV1 = z.object({
  kind: z.enum(['file', 'nbd', 'sim']),
  /** Image file path (`file`, `sim`). */
  path: z.string().min(1).optional(),
  /** NBD export (`nbd`). */
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  exportName: z.string().optional(),
  /** Disk size when the source cannot tell. */
  sizeBytes: Bytes.optional(),
});

/** A VM disk as vSphere names it; the agent maps `vcenter` to an endpoint and credentials of its own config. */
export const VsphereDiskRef = z.object({
  /** The vCenter instance id as vCD names it. */
  vcenter: Id,
  /** VM managed object reference (`vm-42`). */
  vm: Id,
  /** Snapshot moref the backup reads from; absent for restores, which write the VM's current disk. */
  snapshot: Id.optional(),
  /** Virtual device key of the disk in the VM (or snapshot) config. */
  deviceKey: z.number().int().nonnegative(),
  /** Backing file, `[ds1] vm/vm.vmdk`. */
  fileName: z.string().min(1),
  /** How the agent moves the bytes; absent: the agent's choice (https for reads). */
  transport: z.enum(['https', 'nbd', 'hotadd']).optional(),
});
export type VsphereDiskRef = z.infer<typeof VsphereDiskRef>;

/** Where an agent reads or writes a disk (v2: adds `vsphere`). */
export const DiskLocator = DiskLocatorV1.extend({
  kind: z.enum(['file', 'nbd', 'sim', 'vsphere']),
  /** The VM disk (`vsphere`). */
  vsphere: VsphereDiskRef.optional(),
}).superRefine((l, ctx) => {
  if (l.kind === 'vsphere' && !l.vsphere) ctx.addIssue({ code: 'custom', path: ['vsphere'], message: 'required when kind is vsphere' });
  if (l.kind !== 'vsphere' && l.vsphere) ctx.addIssue({ code: 'custom', path: ['vsphere'], message: 'only allowed when kind is vsphere' });
});
export type DiskLocator = z.infer<typeof DiskLocator>;

const ByteArea = z.object({ offset: Bytes, length: z.number().int().positive() });

const BlockSize = z
  .number()
  .int()
  .min(256 * 1024)
  .max(8 * 1024 * 1024)
  .refine((n) => (n & (n - 1)) === 0, { message: 'must be a power of two between 256 KiB and 8 MiB' });

const TaskError = z.object({
  code: z.string().min(1),
  message: z.string(),
  /** The agent thinks a later try may succeed (network, throttling). */
  retryable: z.boolean().optional(),
});

const TaskStats = z.object({
  bytesRead: Bytes,
  bytesUploaded: Bytes,
  blocksNew: Bytes,
  blocksReused: Bytes,
  blocksZero: Bytes.optional(),
  bytesWritten: Bytes.optional(),
  durationMs: Bytes.optional(),
  /** Repository key of the disk index the task wrote. */
  indexKey: z.string().min(1).optional(),
  diskSizeBytes: Bytes.optional(),
});

const header = <T extends string, V extends number = 1>(type: T, version: V = 1 as V) => ({ type: z.literal(type), version: z.literal(version) });

// ---------------------------------------------------------------------------------------------- runs queue

export const StartBackupRunV1 = z.object({
  ...header('StartBackupRun'),
  runId: Id,
  jobId: Id,
  tenantId: Id,
  trigger: z.enum(['schedule', 'manual', 'retry']),
  requestedAt: Time,
  /** Only these vApps (a retry of the failed ones); absent: the job's whole scope. */
  vappIds: z.array(Id).min(1).optional(),
});

export const StartCopyRunV1 = z.object({
  ...header('StartCopyRun'),
  runId: Id,
  /** The copy job. */
  jobId: Id,
  tenantId: Id,
  trigger: z.enum(['schedule', 'manual', 'retry', 'immediate']),
  requestedAt: Time,
  /** Immediate mode: the source points just committed; absent: the latest point of each vApp. */
  sourcePointIds: z.array(Id).min(1).optional(),
  vappIds: z.array(Id).min(1).optional(),
});

export const StartRestoreRunV1 = z.object({
  ...header('StartRestoreRun'),
  runId: Id,
  tenantId: Id,
  pointId: Id,
  requestedAt: Time,
  requestedBy: z.string().min(1).optional(),
  /**
   * The restore plan. Its schema belongs to the restore model (`restorePlanSchema`,
   * lib/domain/restore/plan-schema.ts) and the runs function parses it there, failing the run with every bad
   * field named; the envelope keeps the loose record so released v1 messages still parse and reach that check.
   */
  plan: z.record(z.string(), z.unknown()),
});

export const RetentionRunV1 = z.object({
  ...header('RetentionRun'),
  runId: Id,
  tenantId: Id,
  repositoryId: Id,
  jobId: Id.optional(),
  /** Only this vApp's chain (after a commit); absent: every chain of the repository. */
  vappId: Id.optional(),
  trigger: z.enum(['commit', 'schedule', 'manual']),
  requestedAt: Time,
  dryRun: z.boolean().optional(),
});

export const GcRunV1 = z.object({
  ...header('GcRun'),
  runId: Id,
  repositoryId: Id,
  tenantId: Id.optional(),
  requestedAt: Time,
  /** Blocks younger than this are never deleted. */
  graceSeconds: z.number().int().nonnegative().optional(),
  dryRun: z.boolean().optional(),
});

// ---------------------------------------------------------------------------------------------- agent-tasks queue

export const DiskBackupTaskV1 = z.object({
  ...header('DiskBackupTask'),
  taskId: Id,
  runId: Id,
  jobId: Id,
  tenantId: Id,
  vappId: Id,
  vmId: Id,
  diskId: Id,
  pointId: Id,
  repository: RepositoryRef,
  blockSize: BlockSize,
  /** Index of the same disk in the previous point: unchanged blocks are reused from it (incremental). */
  parentIndexKey: z.string().min(1).optional(),
  diskLocator: DiskLocatorV1,
  /** Changed areas since the parent (CBT); absent: read the whole disk. */
  changedAreas: z.array(ByteArea).optional(),
  attempt: z.number().int().min(1).optional(),
});

export const DiskRestoreTaskV1 = z.object({
  ...header('DiskRestoreTask'),
  taskId: Id,
  runId: Id,
  tenantId: Id,
  vappId: Id,
  vmId: Id,
  diskId: Id,
  pointId: Id,
  repository: RepositoryRef,
  /** Index of the disk to restore. */
  indexKey: z.string().min(1),
  /** Where to write the disk. */
  target: DiskLocatorV1,
  attempt: z.number().int().min(1).optional(),
});

/** v2: the locator may name a vSphere disk (`kind: 'vsphere'`). */
export const DiskBackupTaskV2 = DiskBackupTaskV1.extend({ ...header('DiskBackupTask', 2), diskLocator: DiskLocator });
export const DiskRestoreTaskV2 = DiskRestoreTaskV1.extend({ ...header('DiskRestoreTask', 2), target: DiskLocator });

// ---------------------------------------------------------------------------------------------- agent-results queue

export const TaskProgressV1 = z.object({
  ...header('TaskProgress'),
  taskId: Id,
  runId: Id,
  vappId: Id.optional(),
  diskId: Id.optional(),
  bytesDone: Bytes,
  bytesTotal: Bytes,
  at: Time.optional(),
});

export const TaskResultV1 = z
  .object({
    ...header('TaskResult'),
    taskId: Id,
    runId: Id,
    vappId: Id,
    diskId: Id,
    pointId: Id,
    kind: z.enum(['backup', 'restore']).optional(),
    ok: z.boolean(),
    stats: TaskStats.optional(),
    error: TaskError.optional(),
  })
  .superRefine((m, ctx) => {
    if (!m.ok && !m.error) ctx.addIssue({ code: 'custom', path: ['error'], message: 'required when ok is false' });
    if (m.ok && m.error) ctx.addIssue({ code: 'custom', path: ['error'], message: 'must be absent when ok is true' });
  });

// ---------------------------------------------------------------------------------------------- copy-tasks queue

export const MAX_BLOCKS_PER_COPY_BATCH = 64;

export const CopyBlocksBatchV1 = z.object({
  ...header('CopyBlocksBatch'),
  runId: Id,
  /** Identifies the batch within the run, for idempotency and progress. */
  batchId: Id.optional(),
  sourceRepository: RepositoryRef,
  targetRepository: RepositoryRef,
  blockKeys: z
    .array(z.string().min(1))
    .min(1)
    .max(MAX_BLOCKS_PER_COPY_BATCH, { message: `at most ${MAX_BLOCKS_PER_COPY_BATCH} blocks per batch` })
    .refine((keys) => new Set(keys).size === keys.length, { message: 'must not repeat a block' }),
});

// ---------------------------------------------------------------------------------------------- registry

/** Every released version of every message type. Add `2: ...` (and an upgrade) here; never edit a version. */
export const MESSAGE_VERSIONS = {
  StartBackupRun: { 1: StartBackupRunV1 },
  StartCopyRun: { 1: StartCopyRunV1 },
  StartRestoreRun: { 1: StartRestoreRunV1 },
  RetentionRun: { 1: RetentionRunV1 },
  GcRun: { 1: GcRunV1 },
  DiskBackupTask: { 1: DiskBackupTaskV1, 2: DiskBackupTaskV2 },
  DiskRestoreTask: { 1: DiskRestoreTaskV1, 2: DiskRestoreTaskV2 },
  TaskProgress: { 1: TaskProgressV1 },
  TaskResult: { 1: TaskResultV1 },
  CopyBlocksBatch: { 1: CopyBlocksBatchV1 },
} as const;

export type MessageType = keyof typeof MESSAGE_VERSIONS;
export const MESSAGE_TYPES = Object.keys(MESSAGE_VERSIONS) as MessageType[];

/**
 * How a parsed message of version n becomes version n + 1. Every version below a type's latest needs one, so
 * a reader always hands its handlers the latest shape while old messages are still queued.
 */
type Upgrades = { [T in MessageType]?: Record<number, (message: Record<string, unknown>) => Record<string, unknown>> };
export const MESSAGE_UPGRADES: Upgrades = {
  // v2 only widened the locator, so every v1 message is already a valid v2 one.
  DiskBackupTask: { 1: (m) => ({ ...m, version: 2 }) },
  DiskRestoreTask: { 1: (m) => ({ ...m, version: 2 }) },
};

/** The newest version of a message type: what senders send and what parseMessage returns. */
export function latestVersion(type: MessageType): number {
  return Math.max(...Object.keys(MESSAGE_VERSIONS[type]).map(Number));
}

export type StartBackupRun = z.infer<typeof StartBackupRunV1>;
export type StartCopyRun = z.infer<typeof StartCopyRunV1>;
export type StartRestoreRun = z.infer<typeof StartRestoreRunV1>;
export type RetentionRun = z.infer<typeof RetentionRunV1>;
export type GcRun = z.infer<typeof GcRunV1>;
export type DiskBackupTask = z.infer<typeof DiskBackupTaskV2>;
export type DiskRestoreTask = z.infer<typeof DiskRestoreTaskV2>;
export type TaskProgress = z.infer<typeof TaskProgressV1>;
export type TaskResult = z.infer<typeof TaskResultV1>;
export type CopyBlocksBatch = z.infer<typeof CopyBlocksBatchV1>;

/** The current (latest) shape of each message type: what `parseMessage` returns. */
export interface MessageByType {
  StartBackupRun: StartBackupRun;
  StartCopyRun: StartCopyRun;
  StartRestoreRun: StartRestoreRun;
  RetentionRun: RetentionRun;
  GcRun: GcRun;
  DiskBackupTask: DiskBackupTask;
  DiskRestoreTask: DiskRestoreTask;
  TaskProgress: TaskProgress;
  TaskResult: TaskResult;
  CopyBlocksBatch: CopyBlocksBatch;
}

export type QueueId = QueueDefinition['id'];

/** Which message types travel on which queue (DESIGN §5). */
export const QUEUE_MESSAGE_TYPES = {
  runs: ['StartBackupRun', 'StartCopyRun', 'StartRestoreRun', 'RetentionRun', 'GcRun'],
  agentTasks: ['DiskBackupTask', 'DiskRestoreTask'],
  agentResults: ['TaskProgress', 'TaskResult'],
  copyTasks: ['CopyBlocksBatch'],
} as const satisfies Record<QueueId, readonly MessageType[]>;

export type RunsMessage = MessageByType[(typeof QUEUE_MESSAGE_TYPES)['runs'][number]];
export type AgentTaskMessage = MessageByType[(typeof QUEUE_MESSAGE_TYPES)['agentTasks'][number]];
export type AgentResultMessage = MessageByType[(typeof QUEUE_MESSAGE_TYPES)['agentResults'][number]];
export type CopyTaskMessage = MessageByType[(typeof QUEUE_MESSAGE_TYPES)['copyTasks'][number]];
export interface MessageByQueue {
  runs: RunsMessage;
  agentTasks: AgentTaskMessage;
  agentResults: AgentResultMessage;
  copyTasks: CopyTaskMessage;
}
export type AnyMessage = MessageByType[MessageType];

/** Any released version of a queue's messages: what may still be sent or found queued. */
type VersionsOf<T extends MessageType> = (typeof MESSAGE_VERSIONS)[T][keyof (typeof MESSAGE_VERSIONS)[T]];
export type AnyVersionOf<T extends MessageType> = VersionsOf<T> extends infer S ? (S extends z.ZodType ? z.infer<S> : never) : never;
export type AnyVersionByQueue<Q extends QueueId> = AnyVersionOf<(typeof QUEUE_MESSAGE_TYPES)[Q][number]>;

/** The current-version schemas per queue, as zod discriminated unions on `type` (for docs and OpenAPI). */
export const RunsMessageSchema = z.discriminatedUnion('type', [StartBackupRunV1, StartCopyRunV1, StartRestoreRunV1, RetentionRunV1, GcRunV1]);
export const AgentTaskMessageSchema = z.discriminatedUnion('type', [DiskBackupTaskV2, DiskRestoreTaskV2]);
export const AgentResultMessageSchema = z.union([TaskProgressV1, TaskResultV1]);
export const CopyTaskMessageSchema = CopyBlocksBatchV1;

/** A message body that does not parse; `field` names the first offending field (dotted path). */
export class InvalidMessageError extends BackupError {
  readonly field: string;
  readonly queue: QueueId | undefined;
  constructor(message: string, field: string, queue?: QueueId, options?: { cause?: unknown }) {
    super('INVALID_MESSAGE', message, options);
    this.field = field;
    this.queue = queue;
  }
}

/**
 * Parses a message body (a JSON string or an already parsed value) received on `queue`. Throws
 * InvalidMessageError naming the field when the body is not JSON, has a type that does not belong on this
 * queue, a version this build does not read, or a field that does not match the schema.
 */
export function parseMessage<Q extends QueueId>(queue: Q, body: unknown): MessageByQueue[Q] {
  const where = `message on the ${queue} queue`;
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch (err) {
      throw new InvalidMessageError(`${where} is not JSON: ${(err as Error).message}`, '(root)', queue, { cause: err });
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidMessageError(`${where} must be a JSON object`, '(root)', queue);
  const { type, version } = value as { type?: unknown; version?: unknown };
  const allowed: readonly string[] = QUEUE_MESSAGE_TYPES[queue];
  if (typeof type !== 'string' || !allowed.includes(type)) {
    throw new InvalidMessageError(`${where}: type: expected one of ${allowed.join(', ')}, got ${JSON.stringify(type)}`, 'type', queue);
  }
  const versions: Record<number, z.ZodType> = MESSAGE_VERSIONS[type as MessageType];
  const schema = typeof version === 'number' ? versions[version] : undefined;
  if (!schema) {
    const known = Object.keys(versions).join(', ');
    throw new InvalidMessageError(`${where}: version: ${type} version ${JSON.stringify(version)} is not supported by this build (it reads ${known}); upgrade the reader`, 'version', queue);
  }
  let data = checked(schema, value, `${where}: invalid ${type} v${String(version)}`, queue) as Record<string, unknown>;
  const latest = latestVersion(type as MessageType);
  const upgrades = MESSAGE_UPGRADES[type as MessageType] ?? {};
  for (let v = version as number; v < latest; v++) {
    const upgrade = upgrades[v];
    if (!upgrade) throw new InvalidMessageError(`${where}: version: ${type} v${v} has no upgrade to v${v + 1} in this build; add one to MESSAGE_UPGRADES`, 'version', queue);
    data = upgrade(data);
  }
  // Re-checked so a faulty upgrade shows here, not as a malformed task deep inside a handler.
  if ((version as number) < latest) data = checked(versions[latest]!, data, `${where}: ${type} v${String(version)} upgraded to v${latest} is invalid`, queue) as Record<string, unknown>;
  return data as MessageByQueue[Q];
}

function checked(schema: z.ZodType, value: unknown, what: string, queue: QueueId): unknown {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
    const all = parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(root)'}: ${i.message}`).join('; ');
    throw new InvalidMessageError(`${what}: ${all}`, field, queue);
  }
  return parsed.data;
}

/**
 * Validates a message for `queue` and returns its body; throws InvalidMessageError naming the field. Any
 * released version may be sent (readers upgrade it); new code sends the latest.
 */
export function encodeMessage<Q extends QueueId>(queue: Q, message: MessageByQueue[Q] | AnyVersionByQueue<Q>): string {
  parseMessage(queue, message);
  return JSON.stringify(message);
}

/** The queue a message type travels on. */
export function queueOf(type: MessageType): QueueId {
  for (const [queue, types] of Object.entries(QUEUE_MESSAGE_TYPES) as Array<[QueueId, readonly MessageType[]]>) {
    if (types.includes(type)) return queue;
  }
  throw new InvalidMessageError(`unknown message type ${type}`, 'type');
}
