import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { z } from 'zod';
import type { Clock } from '../domain/clock.js';
import { systemClock } from '../system-clock.js';
import type { Catalog, DiskOutcome, PointFilter } from './catalog.js';
import { CatalogDataError, CatalogInputError, ConflictError, CONFLICT, NotFoundError } from './errors.js';
import { decideAcquire, decideRenew, liveLeases } from './leases.js';
import { outcomeOf, periodConflict, validateAttempt, validatePatch } from './shared.js';
import {
  addCounters,
  ChainPeriodSchema,
  COUNTER_NAMES,
  Id,
  IdempotencyRecordSchema,
  IsoTime,
  JobSchema,
  LeaseSchema,
  NewRunSchema,
  RepositorySchema,
  RestorePointSchema,
  RunErrorSchema,
  RunSchema,
  TenantSchema,
  TenantUsageSchema,
  PointModelSchema,
  MAX_POINT_MODEL_BYTES,
  VAppProgressSchema,
  parseStored,
  validateDelta,
  validateInput,
  type ChainPeriod,
  type CounterDelta,
  type IdempotencyRecord,
  type Job,
  type Lease,
  type LeaseMode,
  type NewRun,
  type Repository,
  type RestorePoint,
  type Run,
  type RunCounters,
  type RunError,
  type RunState,
  type Tenant,
  type TenantUsage,
  type PointModel,
  type VAppProgress,
  type VAppState,
} from './types.js';

/*
 * Single-table design (table of lib/infra/resources.ts: pk/sk, gsi1 = gsi1pk/gsi1sk, gsi2 = gsi2pk/gsi2sk,
 * TTL attribute `expiresAt` in epoch seconds). Ids never contain "#", so every key below is unambiguous.
 * Entities are stored flat (their fields as top-level attributes) next to the key attributes; zod strips the
 * key attributes again when an item is read back.
 *
 * | item                    | pk                     | sk                        | gsi1pk / gsi1sk                    | gsi2pk / gsi2sk                   |
 * | ----------------------- | ---------------------- | ------------------------- | ---------------------------------- | --------------------------------- |
 * | tenant                  | TENANT#<id>            | TENANT                    | TENANTS / <id>                     |                                   |
 * | repository              | REPO#<id>              | REPO                      | REPOS / <id>                       | TENANT#<tenantId> / REPO#<id> (*) |
 * | job                     | JOB#<id>               | JOB                       | DUE / <nextRunAt>#<id> (**)        | JOBS / <tenantId>#<id>            |
 * | run                     | RUN#<id>               | RUN                       | JOB#<jobId> / RUN#<startedAt>#<id> | TENANT#<tenantId> / RUN#<startedAt>#<id> |
 * | run vApp progress       | RUN#<runId>            | VAPP#<vappId>             |                                    |                                   |
 * | restore point (by id)   | POINT#<id>             | POINT                     | JOB#<jobId> / POINT#<createdAt>#<id> | VAPP#<vappId> / POINT#<createdAt>#<id> |
 * | restore point (chain)   | CHAIN#<repoId>#<vappId> | POINT#<createdAt>#<id>   | REPO#<repoId> / POINT#<createdAt>#<id> | TENANT#<tenantId> / POINT#<createdAt>#<id> |
 * | GFS period of a chain   | CHAIN#<repoId>#<vappId> | PERIOD#<period>          |                                    |                                   |
 * | leases of a resource    | LEASE#<resource>       | LEASE                     |                                    |                                   |
 * | idempotency record      | IDEM#<key>             | IDEM                      |                                    |                                   |
 *
 * (*) only for tenant repositories. (**) only for enabled jobs with a nextRunAt: a sparse index, so the
 * scheduler's "due jobs" query reads exactly the due jobs (`gsi1sk < "<now>$"`, "$" sorting right after "#").
 *
 * - Run counters are top-level numbers `c_<name>` on the run item and on each vApp item, changed only with
 *   `ADD`, so concurrent updates never lose one. A run's totals are the sum over its items.
 * - A vApp item holds string sets `doneDisks` / `failedDisks`; recording a disk is one UpdateItem that ADDs the
 *   disk to the set and the counters under `NOT contains(...)`, so a redelivered result changes nothing, and
 *   the `ALL_NEW` image tells exactly one caller that it completed the vApp.
 * - A restore point is written twice (by id and in its chain) together with its GFS periods in one
 *   TransactWriteItems, each Put under `attribute_not_exists(pk)`.
 * - The leases of a resource live in one item with a `version`; acquire/renew/release read it, decide with the
 *   adapter's clock (lib/catalog/leases.ts) and write under `version = :read` (or `attribute_not_exists`),
 *   retrying when another writer got there first. Its TTL is the latest expiry, so abandoned items go away.
 * - Idempotency records are Puts under `attribute_not_exists(pk) OR expiresAtIso <= :now` (TTL deletion lags).
 */

export interface DynamoDbCatalogOptions {
  readonly documents: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly clock?: Clock;
  /** Retries of a read-decide-write that lost a race (leases) or of a transaction conflict. @default 25 */
  readonly maxRetries?: number;
}

const KEY_ATTRIBUTES = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'entity', 'expiresAt'] as const;
type Item = Record<string, unknown>;

export class DynamoDbCatalog implements Catalog {
  private readonly documents: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly clock: Clock;
  private readonly maxRetries: number;

  constructor(options: DynamoDbCatalogOptions) {
    this.documents = options.documents;
    this.table = options.tableName;
    this.clock = options.clock ?? systemClock;
    this.maxRetries = options.maxRetries ?? 25;
  }

  // ------------------------------------------------------------------ tenants and repositories

  async putTenant(tenant: Tenant): Promise<void> {
    const t = validateInput(TenantSchema, tenant, 'tenant');
    await this.put({ pk: `TENANT#${t.id}`, sk: 'TENANT', gsi1pk: 'TENANTS', gsi1sk: t.id, entity: 'tenant', ...t });
  }

  async getTenant(id: string): Promise<Tenant | undefined> {
    return this.getParsed(TenantSchema, `TENANT#${id}`, 'TENANT');
  }

  async listTenants(): Promise<Tenant[]> {
    const items = await this.query({ IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p', ExpressionAttributeValues: { ':p': 'TENANTS' } });
    return items.map((i) => this.parse(TenantSchema, i));
  }

  async putTenantUsage(usage: TenantUsage): Promise<void> {
    const u = validateInput(TenantUsageSchema, usage, 'tenant usage');
    await this.put({ pk: `TENANT#${u.tenantId}`, sk: 'USAGE', entity: 'tenantUsage', ...u });
  }

  async getTenantUsage(tenantId: string): Promise<TenantUsage | undefined> {
    return this.getParsed(TenantUsageSchema, `TENANT#${tenantId}`, 'USAGE');
  }

  async putRepository(repository: Repository): Promise<void> {
    const r = validateInput(RepositorySchema, repository, 'repository');
    await this.put({
      pk: `REPO#${r.id}`,
      sk: 'REPO',
      gsi1pk: 'REPOS',
      gsi1sk: r.id,
      ...(r.tenantId !== undefined ? { gsi2pk: `TENANT#${r.tenantId}`, gsi2sk: `REPO#${r.id}` } : {}),
      entity: 'repository',
      ...r,
    });
  }

  async getRepository(id: string): Promise<Repository | undefined> {
    return this.getParsed(RepositorySchema, `REPO#${id}`, 'REPO');
  }

  async listRepositories(filter: { tenantId?: string } = {}): Promise<Repository[]> {
    const items =
      filter.tenantId === undefined
        ? await this.query({ IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p', ExpressionAttributeValues: { ':p': 'REPOS' } })
        : await this.query({
            IndexName: 'gsi2',
            KeyConditionExpression: 'gsi2pk = :p AND begins_with(gsi2sk, :s)',
            ExpressionAttributeValues: { ':p': `TENANT#${filter.tenantId}`, ':s': 'REPO#' },
          });
    return items.map((i) => this.parse(RepositorySchema, i));
  }

  // ------------------------------------------------------------------ jobs

  async putJob(job: Job): Promise<void> {
    const j = validateInput(JobSchema, job, 'job');
    await this.put({
      pk: `JOB#${j.id}`,
      sk: 'JOB',
      ...(j.enabled && j.nextRunAt !== undefined ? { gsi1pk: 'DUE', gsi1sk: `${j.nextRunAt}#${j.id}` } : {}),
      gsi2pk: 'JOBS',
      gsi2sk: `${j.tenantId}#${j.id}`,
      entity: 'job',
      ...j,
    });
  }

  async getJob(id: string): Promise<Job | undefined> {
    return this.getParsed(JobSchema, `JOB#${id}`, 'JOB');
  }

  async listJobs(filter: { tenantId?: string } = {}): Promise<Job[]> {
    const items = await this.query({
      IndexName: 'gsi2',
      KeyConditionExpression: filter.tenantId === undefined ? 'gsi2pk = :p' : 'gsi2pk = :p AND begins_with(gsi2sk, :s)',
      ExpressionAttributeValues: { ':p': 'JOBS', ...(filter.tenantId !== undefined ? { ':s': `${filter.tenantId}#` } : {}) },
    });
    return items.map((i) => this.parse(JobSchema, i)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async deleteJob(id: string): Promise<void> {
    await this.documents.send(new DeleteCommand({ TableName: this.table, Key: { pk: `JOB#${id}`, sk: 'JOB' } }));
  }

  async listDueJobs(now: string, limit = 100): Promise<Job[]> {
    validateInput(IsoTime, now, 'due-jobs query: now');
    const items = await this.query(
      { IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p AND gsi1sk < :until', ExpressionAttributeValues: { ':p': 'DUE', ':until': `${now}$` } },
      limit,
    );
    return items.map((i) => this.parse(JobSchema, i));
  }

  async claimDueJob(jobId: string, expectedNextRunAt: string, newNextRunAt: string | undefined): Promise<boolean> {
    validateInput(IsoTime, expectedNextRunAt, 'claim: expectedNextRunAt');
    if (newNextRunAt !== undefined) validateInput(IsoTime, newNextRunAt, 'claim: newNextRunAt');
    const e = new Expr();
    const update =
      newNextRunAt === undefined
        ? `SET ${e.n('lastRunAt')} = ${e.v(expectedNextRunAt)} REMOVE ${e.n('nextRunAt')}, ${e.n('gsi1pk')}, ${e.n('gsi1sk')}`
        : `SET ${e.n('lastRunAt')} = ${e.v(expectedNextRunAt)}, ${e.n('nextRunAt')} = ${e.v(newNextRunAt)}, ${e.n('gsi1sk')} = ${e.v(`${newNextRunAt}#${jobId}`)}`;
    const condition = `${e.n('nextRunAt')} = ${e.v(expectedNextRunAt)} AND ${e.n('enabled')} = ${e.v(true)}`;
    try {
      await this.documents.send(new UpdateCommand({ TableName: this.table, Key: { pk: `JOB#${jobId}`, sk: 'JOB' }, UpdateExpression: update, ConditionExpression: condition, ...e.params() }));
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  // ------------------------------------------------------------------ runs

  async createRun(run: NewRun): Promise<{ created: boolean; run: Run }> {
    const r = validateInput(NewRunSchema, run, 'run');
    const item: Item = {
      pk: `RUN#${r.id}`,
      sk: 'RUN',
      gsi1pk: `JOB#${r.jobId}`,
      gsi1sk: `RUN#${r.startedAt}#${r.id}`,
      gsi2pk: `TENANT#${r.tenantId}`,
      gsi2sk: `RUN#${r.startedAt}#${r.id}`,
      entity: 'run',
      ...r,
      errors: [],
    };
    try {
      await this.documents.send(new PutCommand({ TableName: this.table, Item: stripUndefined(item), ConditionExpression: 'attribute_not_exists(pk)' }));
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      const existing = await this.getRun(r.id);
      if (!existing) throw err;
      return { created: false, run: existing };
    }
    return { created: true, run: (await this.getRun(r.id))! };
  }

  async getRun(id: string): Promise<Run | undefined> {
    const items = await this.query({ KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': `RUN#${id}` }, ConsistentRead: true });
    const runItem = items.find((i) => i.sk === 'RUN');
    if (!runItem) return undefined;
    let counters = readCounters(runItem);
    const vapps: Record<string, VAppProgress> = {};
    for (const item of items) {
      if (typeof item.sk !== 'string' || !item.sk.startsWith('VAPP#')) continue;
      const progress = this.parseVApp(item);
      vapps[progress.vappId] = progress;
      counters = addCounters(counters, progress.counters);
    }
    return this.parse(RunSchema, { ...runItem, counters, vapps });
  }

  async listRuns(filter: { jobId: string } | { tenantId: string }, limit = 50): Promise<Run[]> {
    const byJob = 'jobId' in filter;
    const items = await this.query(
      {
        IndexName: byJob ? 'gsi1' : 'gsi2',
        KeyConditionExpression: byJob ? 'gsi1pk = :p AND begins_with(gsi1sk, :s)' : 'gsi2pk = :p AND begins_with(gsi2sk, :s)',
        ExpressionAttributeValues: { ':p': byJob ? `JOB#${filter.jobId}` : `TENANT#${filter.tenantId}`, ':s': 'RUN#' },
        ScanIndexForward: false,
      },
      limit,
    );
    const runs = await Promise.all(items.map((i) => this.getRun(String(i.id))));
    return runs.filter((r): r is Run => r !== undefined);
  }

  async updateRunState(id: string, state: RunState, options: { endedAt?: string; expectedStates?: readonly RunState[] } = {}): Promise<void> {
    if (options.endedAt !== undefined) validateInput(IsoTime, options.endedAt, 'run: endedAt');
    const e = new Expr();
    let update = `SET ${e.n('state')} = ${e.v(state)}`;
    if (options.endedAt !== undefined) update += `, ${e.n('endedAt')} = ${e.v(options.endedAt)}`;
    let condition = 'attribute_exists(pk)';
    if (options.expectedStates) {
      condition += options.expectedStates.length === 0 ? ' AND attribute_not_exists(pk)' : ` AND ${e.n('state')} IN (${options.expectedStates.map((s) => e.v(s)).join(', ')})`;
    }
    try {
      await this.documents.send(new UpdateCommand({ TableName: this.table, Key: { pk: `RUN#${id}`, sk: 'RUN' }, UpdateExpression: update, ConditionExpression: condition, ...e.params() }));
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      const current = await this.getItem(`RUN#${id}`, 'RUN');
      if (!current) throw new NotFoundError('run', id);
      throw new ConflictError(`run ${id} is ${String(current.state)}, not ${(options.expectedStates ?? []).join(' or ')}; it cannot become ${state}`, { code: CONFLICT.state, cause: err });
    }
  }

  async appendRunError(id: string, error: RunError): Promise<void> {
    const err = validateInput(RunErrorSchema, error, 'run error');
    const e = new Expr();
    const errors = e.n('errors');
    await this.updateExisting(
      { pk: `RUN#${id}`, sk: 'RUN' },
      e,
      `SET ${errors} = list_append(if_not_exists(${errors}, ${e.v([])}), ${e.v([stripUndefined(err)])})`,
      () => new NotFoundError('run', id),
    );
  }

  async addCounters(runId: string, delta: CounterDelta, vappId?: string): Promise<void> {
    validateDelta(delta);
    const key = vappId === undefined ? { pk: `RUN#${runId}`, sk: 'RUN' } : { pk: `RUN#${runId}`, sk: `VAPP#${vappId}` };
    const missing = () => (vappId === undefined ? new NotFoundError('run', runId) : new NotFoundError('vApp progress', `${runId}/${vappId}`));
    const e = new Expr();
    const adds = counterAdds(e, delta);
    if (adds.length === 0) {
      if (!(await this.getItem(key.pk, key.sk))) throw missing();
      return;
    }
    await this.updateExisting(key, e, `ADD ${adds.join(', ')}`, missing);
  }

  async startVAppAttempt(runId: string, vappId: string, attempt: { attempt: number; disksTotal: number; pointId?: string }): Promise<boolean> {
    validateInput(Id, vappId, 'vApp id');
    validateAttempt(attempt);
    const e = new Expr();
    const sets = [
      `${e.n('entity')} = ${e.v('vapp')}`,
      `${e.n('vappId')} = ${e.v(vappId)}`,
      `${e.n('state')} = ${e.v('running')}`,
      `${e.n('disksTotal')} = ${e.v(attempt.disksTotal)}`,
      `${e.n('disksDone')} = ${e.v(0)}`,
      `${e.n('disksFailed')} = ${e.v(0)}`,
      `${e.n('attempts')} = ${e.v(attempt.attempt)}`,
    ];
    const removes = [e.n('doneDisks'), e.n('failedDisks'), e.n('retryAt'), e.n('error')];
    if (attempt.pointId !== undefined) sets.push(`${e.n('pointId')} = ${e.v(attempt.pointId)}`);
    else removes.push(e.n('pointId'));
    const attempts = e.n('attempts');
    const condition = `attribute_not_exists(${attempts}) OR ${attempts} < ${e.v(attempt.attempt)}`;
    const input: TransactWriteCommandInput = {
      TransactItems: [
        { ConditionCheck: { TableName: this.table, Key: { pk: `RUN#${runId}`, sk: 'RUN' }, ConditionExpression: 'attribute_exists(pk)' } },
        {
          Update: {
            TableName: this.table,
            Key: { pk: `RUN#${runId}`, sk: `VAPP#${vappId}` },
            UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
            ConditionExpression: condition,
            ...e.params(),
          },
        },
      ],
    };
    const failed = await this.transact(input);
    if (failed === undefined) return true;
    if (failed === 0) throw new NotFoundError('run', runId);
    return false;
  }

  async updateVApp(runId: string, vappId: string, patch: { state?: VAppState; error?: string | null; retryAt?: string | null; pointId?: string | null }): Promise<VAppProgress> {
    validatePatch(patch);
    const e = new Expr();
    const sets: string[] = [];
    const removes: string[] = [];
    if (patch.state !== undefined) sets.push(`${e.n('state')} = ${e.v(patch.state)}`);
    for (const field of ['error', 'retryAt', 'pointId'] as const) {
      const value = patch[field];
      if (value === null) removes.push(e.n(field));
      else if (value !== undefined) sets.push(`${e.n(field)} = ${e.v(value)}`);
    }
    const key = { pk: `RUN#${runId}`, sk: `VAPP#${vappId}` };
    const missing = () => new NotFoundError('vApp progress', `${runId}/${vappId}`);
    if (sets.length === 0 && removes.length === 0) {
      const item = await this.getItem(key.pk, key.sk);
      if (!item) throw missing();
      return this.parseVApp(item);
    }
    const update = [sets.length > 0 ? `SET ${sets.join(', ')}` : '', removes.length > 0 ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' ');
    const item = await this.updateExisting(key, e, update, missing);
    return this.parseVApp(item);
  }

  async recordDiskDone(runId: string, vappId: string, diskId: string, stats: CounterDelta = {}): Promise<DiskOutcome> {
    validateDelta(stats);
    return this.recordDisk(runId, vappId, diskId, 'done', stats);
  }

  async recordDiskFailed(runId: string, vappId: string, diskId: string): Promise<DiskOutcome> {
    return this.recordDisk(runId, vappId, diskId, 'failed', {});
  }

  private async recordDisk(runId: string, vappId: string, diskId: string, outcome: 'done' | 'failed', stats: CounterDelta): Promise<DiskOutcome> {
    validateInput(Id, diskId, 'disk id');
    const e = new Expr();
    const key = { pk: `RUN#${runId}`, sk: `VAPP#${vappId}` };
    const disk = e.v(diskId);
    const adds =
      outcome === 'done'
        ? [`${e.n('doneDisks')} ${e.v(new Set([diskId]))}`, `${e.n('disksDone')} ${e.v(1)}`, ...counterAdds(e, stats)]
        : [`${e.n('failedDisks')} ${e.v(new Set([diskId]))}`, `${e.n('disksFailed')} ${e.v(1)}`];
    const condition = `attribute_exists(pk) AND NOT contains(${e.n('doneDisks')}, ${disk}) AND NOT contains(${e.n('failedDisks')}, ${disk})`;
    try {
      const out = await this.documents.send(
        new UpdateCommand({ TableName: this.table, Key: key, UpdateExpression: `ADD ${adds.join(', ')}`, ConditionExpression: condition, ReturnValues: 'ALL_NEW', ...e.params() }),
      );
      return outcomeOf(this.parseVApp(out.Attributes ?? {}), outcome);
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      const item = await this.getItem(key.pk, key.sk);
      if (!item) throw new NotFoundError('vApp progress', `${runId}/${vappId}`);
      return { duplicate: true, completedVApp: false, settledVApp: false, progress: this.parseVApp(item) };
    }
  }

  // ------------------------------------------------------------------ restore points

  async commitRestorePoint(point: RestorePoint, periods: readonly string[] = []): Promise<{ created: boolean }> {
    const p = validateInput(RestorePointSchema, point, 'restore point');
    const now = this.clock.now().toISOString();
    const given = [...new Set(periods)].map((period) =>
      validateInput(ChainPeriodSchema, { repositoryId: p.repositoryId, vappId: p.vappId, period, pointId: p.id, givenAt: now }, 'GFS period'),
    );
    const chain = chainPk(p.repositoryId, p.vappId);
    const notExists = { ConditionExpression: 'attribute_not_exists(pk)' };
    const input: TransactWriteCommandInput = {
      TransactItems: [
        { Put: { TableName: this.table, Item: stripUndefined(pointById(p)), ...notExists } },
        { Put: { TableName: this.table, Item: stripUndefined(pointInChain(p)), ...notExists } },
        ...given.map((g) => ({ Put: { TableName: this.table, Item: { pk: chain, sk: `PERIOD#${g.period}`, entity: 'period', ...g }, ...notExists } })),
      ],
    };
    if (input.TransactItems!.length > 100) throw new CatalogInputError(`invalid restore point: periods: at most 98 GFS periods can be given in one commit (restore point ${p.id})`);
    const failed = await this.transact(input);
    if (failed === undefined) return { created: true };
    if (failed <= 1) return { created: false };
    const period = given[failed - 2]!.period;
    const holder = await this.getItem(chain, `PERIOD#${period}`);
    throw periodConflict(p, period, String(holder?.pointId ?? 'another point'));
  }

  async getRestorePoint(id: string): Promise<RestorePoint | undefined> {
    return this.getParsed(RestorePointSchema, `POINT#${id}`, 'POINT');
  }

  async listRestorePoints(filter: PointFilter): Promise<RestorePoint[]> {
    let input: Omit<QueryCommandInput, 'TableName'>;
    const s = { ':s': 'POINT#' };
    if ('tenantId' in filter) {
      input = { IndexName: 'gsi2', KeyConditionExpression: 'gsi2pk = :p AND begins_with(gsi2sk, :s)', ExpressionAttributeValues: { ':p': `TENANT#${filter.tenantId}`, ...s } };
    } else if ('jobId' in filter) {
      input = { IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p AND begins_with(gsi1sk, :s)', ExpressionAttributeValues: { ':p': `JOB#${filter.jobId}`, ...s } };
    } else if (filter.repositoryId !== undefined && filter.vappId !== undefined) {
      input = { KeyConditionExpression: 'pk = :p AND begins_with(sk, :s)', ExpressionAttributeValues: { ':p': chainPk(filter.repositoryId, filter.vappId), ...s }, ConsistentRead: true };
    } else if (filter.repositoryId !== undefined) {
      input = { IndexName: 'gsi1', KeyConditionExpression: 'gsi1pk = :p AND begins_with(gsi1sk, :s)', ExpressionAttributeValues: { ':p': `REPO#${filter.repositoryId}`, ...s } };
    } else if (filter.vappId !== undefined) {
      input = { IndexName: 'gsi2', KeyConditionExpression: 'gsi2pk = :p AND begins_with(gsi2sk, :s)', ExpressionAttributeValues: { ':p': `VAPP#${filter.vappId}`, ...s } };
    } else {
      throw new CatalogInputError('invalid restore point filter: give repositoryId, vappId, tenantId or jobId');
    }
    const items = await this.query(input);
    return items.map((i) => this.parse(RestorePointSchema, i));
  }

  async setRestorePointFlags(id: string, flags: readonly string[]): Promise<void> {
    const current = await this.getRestorePoint(id);
    if (!current) throw new NotFoundError('restore point', id);
    validateInput(RestorePointSchema, { ...current, flags: [...flags] }, 'restore point flags');
    const update = (key: { pk: string; sk: string }) => ({
      Update: {
        TableName: this.table,
        Key: key,
        UpdateExpression: 'SET #flags = :f',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#flags': 'flags' },
        ExpressionAttributeValues: { ':f': [...flags] },
      },
    });
    const failed = await this.transact({ TransactItems: [update({ pk: `POINT#${id}`, sk: 'POINT' }), update(chainKey(current))] });
    if (failed !== undefined) throw new NotFoundError('restore point', id);
  }

  async putPointModel(model: PointModel): Promise<void> {
    const m = validateInput(PointModelSchema, model, 'point model');
    if (Buffer.byteLength(JSON.stringify(m.model)) > MAX_POINT_MODEL_BYTES) throw new CatalogInputError(`invalid point model: the model of point ${m.pointId} is larger than ${MAX_POINT_MODEL_BYTES} bytes`);
    await this.put({ pk: `POINT#${m.pointId}`, sk: 'MODEL', entity: 'pointModel', ...m });
  }

  async getPointModel(pointId: string): Promise<PointModel | undefined> {
    return this.getParsed(PointModelSchema, `POINT#${pointId}`, 'MODEL');
  }

  async deleteRestorePoint(id: string): Promise<void> {
    const current = await this.getRestorePoint(id);
    if (!current) return;
    const failed = await this.transact({
      TransactItems: [
        { Delete: { TableName: this.table, Key: { pk: `POINT#${id}`, sk: 'POINT' } } },
        { Delete: { TableName: this.table, Key: { pk: `POINT#${id}`, sk: 'MODEL' } } },
        { Delete: { TableName: this.table, Key: chainKey(current) } },
      ],
    });
    if (failed !== undefined) throw new ConflictError(`restore point ${id} changed while it was being deleted; try again`);
  }

  async listChainPeriods(repositoryId: string, vappId: string): Promise<ChainPeriod[]> {
    const items = await this.query({
      KeyConditionExpression: 'pk = :p AND begins_with(sk, :s)',
      ExpressionAttributeValues: { ':p': chainPk(repositoryId, vappId), ':s': 'PERIOD#' },
      ConsistentRead: true,
    });
    return items.map((i) => this.parse(ChainPeriodSchema, i)).sort((a, b) => (a.period < b.period ? -1 : a.period > b.period ? 1 : 0));
  }

  // ------------------------------------------------------------------ leases

  async acquireLease(resource: string, holder: string, mode: LeaseMode, ttlMs: number): Promise<Lease> {
    validateInput(LeaseSchema, { resource, holder, mode, expiresAt: new Date(0).toISOString() }, 'lease');
    const leases = await this.changeLeases(resource, (current) => decideAcquire(current, resource, holder, mode, ttlMs, this.clock.now()));
    return leases.find((l) => l.holder === holder)!;
  }

  async renewLease(resource: string, holder: string, ttlMs: number): Promise<Lease> {
    const leases = await this.changeLeases(resource, (current) => decideRenew(current, resource, holder, ttlMs, this.clock.now()).leases);
    return leases.find((l) => l.holder === holder)!;
  }

  async releaseLease(resource: string, holder: string): Promise<void> {
    await this.changeLeases(resource, (current) => current.filter((l) => l.holder !== holder));
  }

  async listLeases(resource: string): Promise<Lease[]> {
    const { leases } = await this.readLeases(resource);
    return liveLeases(leases, this.clock.now());
  }

  private async readLeases(resource: string): Promise<{ leases: Lease[]; version: number | undefined }> {
    const item = await this.getItem(`LEASE#${resource}`, 'LEASE');
    if (!item) return { leases: [], version: undefined };
    const where = `LEASE#${resource}/LEASE`;
    const leases = parseStored(LeaseSchema.array(), item.leases, `${where} (leases)`);
    if (typeof item.version !== 'number') throw new CatalogDataError(`catalog item ${where} has no numeric version; delete the item to reset the leases of ${resource}`);
    return { leases, version: item.version };
  }

  /** Read-decide-write of a resource's leases under optimistic concurrency (`version`). */
  private async changeLeases(resource: string, decide: (current: Lease[]) => Lease[]): Promise<Lease[]> {
    const key = { pk: `LEASE#${resource}`, sk: 'LEASE' };
    for (let attempt = 0; ; attempt++) {
      const { leases, version } = await this.readLeases(resource);
      const next = liveLeases(decide(leases), this.clock.now());
      const condition = version === undefined ? 'attribute_not_exists(pk)' : '#version = :v';
      const values = version === undefined ? undefined : { ':v': version };
      try {
        if (next.length === 0) {
          if (version === undefined) return next;
          await this.documents.send(
            new DeleteCommand({ TableName: this.table, Key: key, ConditionExpression: condition, ExpressionAttributeNames: { '#version': 'version' }, ExpressionAttributeValues: values }),
          );
        } else {
          const latest = Math.max(...next.map((l) => Date.parse(l.expiresAt)));
          await this.documents.send(
            new PutCommand({
              TableName: this.table,
              Item: { ...key, entity: 'leases', leases: next, version: (version ?? 0) + 1, expiresAt: Math.ceil(latest / 1000) + 60 },
              ConditionExpression: condition,
              ...(version === undefined ? {} : { ExpressionAttributeNames: { '#version': 'version' }, ExpressionAttributeValues: values }),
            }),
          );
        }
        return next;
      } catch (err) {
        if (!isConditionFailed(err) || attempt >= this.maxRetries) throw err;
        await backoff(attempt);
      }
    }
  }

  // ------------------------------------------------------------------ idempotency

  async putIdempotencyRecord(key: string, expiresAt: string, result?: unknown): Promise<{ created: boolean; record: IdempotencyRecord }> {
    const record = validateInput(IdempotencyRecordSchema, { key, expiresAt, ...(result !== undefined ? { result } : {}) }, 'idempotency record');
    const now = this.clock.now().toISOString();
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: `IDEM#${key}`, sk: 'IDEM', entity: 'idempotency', record, expiresAtIso: record.expiresAt, expiresAt: Math.ceil(Date.parse(record.expiresAt) / 1000) },
          ConditionExpression: 'attribute_not_exists(pk) OR expiresAtIso <= :now',
          ExpressionAttributeValues: { ':now': now },
        }),
      );
      return { created: true, record };
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      const existing = await this.getIdempotencyRecord(key);
      if (!existing) throw err;
      return { created: false, record: existing };
    }
  }

  async completeIdempotencyRecord(key: string, result: unknown): Promise<void> {
    validateInput(IdempotencyRecordSchema, { key, expiresAt: new Date(0).toISOString(), result }, 'idempotency record');
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `IDEM#${key}`, sk: 'IDEM' },
          UpdateExpression: 'SET #record.#result = :r',
          ConditionExpression: 'attribute_exists(pk) AND expiresAtIso > :now',
          ExpressionAttributeNames: { '#record': 'record', '#result': 'result' },
          ExpressionAttributeValues: { ':r': result, ':now': this.clock.now().toISOString() },
        }),
      );
    } catch (err) {
      if (isConditionFailed(err)) throw new NotFoundError('idempotency record', key, { cause: err });
      throw err;
    }
  }

  async getIdempotencyRecord(key: string): Promise<IdempotencyRecord | undefined> {
    const item = await this.getItem(`IDEM#${key}`, 'IDEM');
    if (!item) return undefined;
    const record = parseStored(IdempotencyRecordSchema, item.record, `IDEM#${key}/IDEM`);
    return Date.parse(record.expiresAt) <= this.clock.now().getTime() ? undefined : record;
  }

  // ------------------------------------------------------------------ helpers

  private async put(item: Item): Promise<void> {
    await this.documents.send(new PutCommand({ TableName: this.table, Item: stripUndefined(item) }));
  }

  private async getItem(pk: string, sk: string): Promise<Item | undefined> {
    const out = await this.documents.send(new GetCommand({ TableName: this.table, Key: { pk, sk }, ConsistentRead: true }));
    return out.Item;
  }

  private async getParsed<T>(schema: z.ZodType<T>, pk: string, sk: string): Promise<T | undefined> {
    const item = await this.getItem(pk, sk);
    return item ? this.parse(schema, item) : undefined;
  }

  private parse<T>(schema: z.ZodType<T>, item: Item): T {
    const where = `${String(item.pk)}/${String(item.sk)}`;
    const entity: Item = {};
    for (const [k, v] of Object.entries(item)) if (!(KEY_ATTRIBUTES as readonly string[]).includes(k)) entity[k] = v;
    return parseStored(schema, entity, where);
  }

  private parseVApp(item: Item): VAppProgress {
    return this.parse(VAppProgressSchema, { ...item, counters: readCounters(item) });
  }

  /** Every item of a query, following pagination; at most `limit` when given. */
  private async query(input: Omit<QueryCommandInput, 'TableName'>, limit?: number): Promise<Item[]> {
    const items: Item[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({ TableName: this.table, ...input, ...(start ? { ExclusiveStartKey: start } : {}), ...(limit !== undefined ? { Limit: limit - items.length } : {}) }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start && (limit === undefined || items.length < limit));
    return items;
  }

  /** UpdateItem under `attribute_exists(pk)`; `missing()` is thrown when the item does not exist. */
  private async updateExisting(key: { pk: string; sk: string }, e: Expr, update: string, missing: () => Error): Promise<Item> {
    try {
      const out = await this.documents.send(
        new UpdateCommand({ TableName: this.table, Key: key, UpdateExpression: update, ConditionExpression: 'attribute_exists(pk)', ReturnValues: 'ALL_NEW', ...e.params() }),
      );
      return out.Attributes ?? {};
    } catch (err) {
      if (isConditionFailed(err)) throw missing();
      throw err;
    }
  }

  /**
   * Runs a transaction, retrying transaction conflicts. Returns `undefined` when it applied, or the index of the
   * first item whose condition failed (nothing applied).
   */
  private async transact(input: TransactWriteCommandInput): Promise<number | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.documents.send(new TransactWriteCommand(input));
        return undefined;
      } catch (err) {
        if (!isTransactionCanceled(err)) throw err;
        const reasons = (err as { CancellationReasons?: Array<{ Code?: string }> }).CancellationReasons ?? [];
        const failed = reasons.findIndex((r) => r.Code === 'ConditionalCheckFailed');
        if (failed >= 0) return failed;
        const conflict = reasons.some((r) => r.Code === 'TransactionConflict');
        if (!conflict || attempt >= this.maxRetries) throw err;
        await backoff(attempt);
      }
    }
  }
}

/** Builds expression attribute names and values, so no attribute name can collide with a reserved word. */
class Expr {
  private readonly names: Record<string, string> = {};
  private readonly values: Record<string, unknown> = {};
  private next = 0;

  n(name: string): string {
    const placeholder = `#${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
    this.names[placeholder] = name;
    return placeholder;
  }

  v(value: unknown): string {
    const placeholder = `:v${this.next++}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  params(): { ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Record<string, unknown> } {
    return {
      ...(Object.keys(this.names).length > 0 ? { ExpressionAttributeNames: this.names } : {}),
      ...(Object.keys(this.values).length > 0 ? { ExpressionAttributeValues: this.values } : {}),
    };
  }
}

function counterAdds(e: Expr, delta: CounterDelta): string[] {
  const adds: string[] = [];
  for (const name of COUNTER_NAMES) {
    const value = delta[name];
    if (value !== undefined && value !== 0) adds.push(`${e.n(`c_${name}`)} ${e.v(value)}`);
  }
  return adds;
}

function readCounters(item: Item): RunCounters {
  return Object.fromEntries(COUNTER_NAMES.map((n) => [n, item[`c_${n}`] ?? 0])) as RunCounters;
}

function chainPk(repositoryId: string, vappId: string): string {
  return `CHAIN#${repositoryId}#${vappId}`;
}

function chainKey(p: RestorePoint): { pk: string; sk: string } {
  return { pk: chainPk(p.repositoryId, p.vappId), sk: `POINT#${p.createdAt}#${p.id}` };
}

function pointById(p: RestorePoint): Item {
  const order = `POINT#${p.createdAt}#${p.id}`;
  return { pk: `POINT#${p.id}`, sk: 'POINT', gsi1pk: `JOB#${p.jobId}`, gsi1sk: order, gsi2pk: `VAPP#${p.vappId}`, gsi2sk: order, entity: 'point', ...p };
}

function pointInChain(p: RestorePoint): Item {
  const order = `POINT#${p.createdAt}#${p.id}`;
  return { ...chainKey(p), gsi1pk: `REPO#${p.repositoryId}`, gsi1sk: order, gsi2pk: `TENANT#${p.tenantId}`, gsi2sk: order, entity: 'chainpoint', ...p };
}

/** Drops `undefined` values at every level (DynamoDB has no undefined), whatever the client's marshalling options. */
function stripUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => stripUndefined(v)) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = stripUndefined(v);
    return out as T;
  }
  return value;
}

function isConditionFailed(err: unknown): boolean {
  return err instanceof Error && err.name === 'ConditionalCheckFailedException';
}

function isTransactionCanceled(err: unknown): boolean {
  return err instanceof Error && err.name === 'TransactionCanceledException';
}

async function backoff(attempt: number): Promise<void> {
  const ms = Math.min(200, 5 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random());
  await new Promise((resolve) => setTimeout(resolve, ms));
}
