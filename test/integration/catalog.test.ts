import { randomUUID } from 'node:crypto';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoDbCatalog } from '../../lib/catalog/dynamodb-catalog.js';
import { CatalogDataError } from '../../lib/catalog/errors.js';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { catalogContract } from '../contracts/catalog.contract.js';
import { useLocalStack } from '../helpers/local-stack.js';

const stack = useLocalStack();

const dynamo = (clock = new ManualClock('2026-03-02T10:00:00.000Z')) => {
  const s = stack();
  if (!s.documents) throw new Error('DynamoDB Local did not start');
  return new DynamoDbCatalog({ documents: s.documents, tableName: s.tableName, clock });
};

catalogContract('memory', async (clock) => new MemoryCatalog(clock));
catalogContract('DynamoDB Local', async (clock) => dynamo(clock));

describe('DynamoDbCatalog', () => {
  it('parses every item it reads back and names the item and the field when one is invalid', async () => {
    const id = `job-${randomUUID().slice(0, 8)}`;
    await stack().documents!.send(
      new PutCommand({ TableName: stack().tableName, Item: { pk: `JOB#${id}`, sk: 'JOB', id, tenantId: 't', kind: 'backup', enabled: 'yes', spec: {} } }),
    );
    const read = dynamo().getJob(id);
    await expect(read).rejects.toBeInstanceOf(CatalogDataError);
    await expect(dynamo().getJob(id)).rejects.toThrow(new RegExp(`JOB#${id}/JOB.*enabled`));
  });

  it('keeps run counters exact under 50 parallel ADDs on one vApp', async () => {
    const catalog = dynamo();
    const runId = `run-${randomUUID().slice(0, 8)}`;
    await catalog.createRun({ id: runId, jobId: 'j', tenantId: 't', kind: 'backup', state: 'running', startedAt: '2026-03-02T10:00:00.000Z' });
    await catalog.startVAppAttempt(runId, 'v', { attempt: 1, disksTotal: 50 });
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => catalog.recordDiskDone(runId, 'v', `d${i}`, { bytesRead: 3, blocksReused: 1 })));
    expect(outcomes.filter((o) => o.completedVApp)).toHaveLength(1);
    const run = (await catalog.getRun(runId))!;
    expect(run.counters).toMatchObject({ bytesRead: 150, blocksReused: 50 });
  });
});
