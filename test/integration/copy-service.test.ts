import { createHash, randomUUID } from 'node:crypto';
import type { SQSEvent } from 'aws-lambda';
import { CreateBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { DynamoDbCatalog } from '../../lib/catalog/dynamodb-catalog.js';
import type { RestorePoint } from '../../lib/catalog/types.js';
import { createCopyTasksHandler } from '../../lib/handlers/copy-tasks.js';
import { sqsHandler } from '../../lib/handlers/sqs.js';
import { RepositoryRegistry } from '../../lib/local/repositories.js';
import type { Log } from '../../lib/log.js';
import type { Queue } from '../../lib/queue/queue.js';
import { SqsQueue } from '../../lib/queue/sqs-queue.js';
import { DiskIndexWriter } from '../../lib/repository/disk-index.js';
import { FORMAT_VERSION, indexKey, newPointId, type PointDisk } from '../../lib/repository/format.js';
import { copyPointCatalogId } from '../../lib/services/copy-ids.js';
import { CopyService } from '../../lib/services/copy-service.js';
import { systemClock } from '../../lib/system-clock.js';
import { useLocalStack } from '../helpers/local-stack.js';

const BLOCK = 256 * 1024;
const TENANT = 'urn:vcloud:org:acme';
const quiet: Log = { debug() {}, info() {}, warn() {}, error() {} };
const stack = useLocalStack();

const blockOf = (seed: string) => Buffer.alloc(BLOCK, createHash('sha256').update(seed).digest());

let registry: RepositoryRegistry | undefined;
afterAll(async () => {
  await registry?.close();
});

/** Block objects as the S3 server lists them (not through our store). */
async function blockObjects(bucket: string): Promise<Set<string>> {
  const keys = new Set<string>();
  let token: string | undefined;
  do {
    const page = await stack().s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'repo/blocks/', ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.add(o.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

describe('copy service over SQS, S3 and DynamoDB (real adapters)', () => {
  it('copies a full and then exactly the new blocks of an incremental, fanned out through the copy-tasks queue', async () => {
    const s = stack();
    const catalog = new DynamoDbCatalog({ documents: s.documents!, tableName: s.tableName, clock: systemClock });
    const suffix = randomUUID().slice(0, 8);
    const buckets = { primary: `copy-primary-${suffix}`, cloud: `copy-cloud-${suffix}` };
    for (const b of Object.values(buckets)) await s.s3.send(new CreateBucketCommand({ Bucket: b }));
    for (const [role, bucket] of Object.entries(buckets)) {
      await catalog.putRepository({ id: `repo-${role}-${suffix}`, tenantId: TENANT, url: `s3://${bucket}/repo`, role: role as 'primary' | 'cloud', bucket, prefix: 'repo' });
    }
    const primaryId = `repo-primary-${suffix}`;
    const cloudId = `repo-cloud-${suffix}`;
    const backupJob = `job-backup-${suffix}`;
    const copyJob = `job-copy-${suffix}`;
    await catalog.putJob({ id: backupJob, tenantId: TENANT, kind: 'backup', enabled: true, spec: { name: 'b', tenantId: TENANT, scope: { include: [{ kind: 'vapp', vappId: 'urn:vcloud:vapp:x' }] }, targetRepositoryId: primaryId } });
    await catalog.putJob({ id: copyJob, tenantId: TENANT, kind: 'copy', enabled: true, spec: { name: 'c', tenantId: TENANT, source: { kind: 'backup', jobId: backupJob }, targetRepositoryId: cloudId, mode: 'immediate', retention: { shortTerm: { restorePoints: 5 } } } });

    registry = new RepositoryRegistry({ catalog, s3: s.s3, clock: systemClock, initMissing: true });
    const runs: Queue = new SqsQueue({ client: s.sqs, queueUrl: s.queueUrls.runs, dlqUrl: s.dlqUrls.runs });
    const copyTasks: Queue = new SqsQueue({ client: s.sqs, queueUrl: s.queueUrls.copyTasks, dlqUrl: s.dlqUrls.copyTasks });
    const copies = new CopyService({ catalog, repositories: registry, copyTasks, runs, clock: systemClock, log: quiet });
    const handlers = {
      runs: sqsHandler('runs', quiet, async (m) => {
        if (m.type === 'StartCopyRun') await copies.startRun(m);
      }),
      copyTasks: createCopyTasksHandler({ copies, log: quiet }),
    };
    /** Lambda's SQS event source, one receive at a time, until both queues stay empty. */
    const pump = async () => {
      for (let idle = 0; idle < 2; ) {
        let got = 0;
        for (const [queue, handle] of [
          [runs, handlers.runs],
          [copyTasks, handlers.copyTasks],
        ] as const) {
          const messages = await queue.receive({ waitSeconds: 0 });
          if (messages.length === 0) continue;
          got += messages.length;
          const res = await handle({ Records: messages.map((m) => ({ messageId: m.messageId, body: m.body })) } as unknown as SQSEvent);
          const failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
          expect(failed.size).toBe(0);
          await queue.delete(messages.map((m) => m.receiptHandle));
        }
        idle = got === 0 ? idle + 1 : 0;
      }
    };

    const primary = (await registry.open(primaryId, TENANT)).repository;
    let seq = 0;
    /** A committed backup point of `vappId` with the given block seeds (null = zero block). */
    const backup = async (vappId: string, seeds: ReadonlyArray<string | null>): Promise<{ point: RestorePoint; blocksNew: number }> => {
      const at = new Date(Date.UTC(2026, 10, 2, 10, seq++));
      const pointId = newPointId(at, (seq + 0xabc000).toString(16).padStart(8, '0'));
      const writer = new DiskIndexWriter(primary.codec, indexKey(vappId, pointId, 'disk-0'), BLOCK, seeds.length * BLOCK);
      let blocksNew = 0;
      let bytes = 0;
      for (const seed of seeds) {
        if (seed === null) {
          writer.append(null);
          continue;
        }
        const plain = blockOf(seed);
        const hash = primary.codec.hash(plain);
        if (!(await primary.hasBlock(hash))) {
          const encoded = primary.codec.encodeBlock(plain, hash);
          await primary.putBlock(hash, encoded);
          blocksNew++;
          bytes += encoded.byteLength;
        }
        writer.append(hash);
      }
      await primary.putIndex(vappId, pointId, 'disk-0', writer.finish());
      const disk: PointDisk = { diskId: 'disk-0', vmId: 'vm-1', sizeBytes: seeds.length * BLOCK, blockSize: BLOCK, blocksTotal: seeds.length, blocksZero: seeds.filter((x) => x === null).length, blocksNew, bytesUploaded: bytes };
      await primary.putVAppMetadata(vappId, pointId, { name: vappId });
      await primary.commitPoint({ format: FORMAT_VERSION, pointId, vappId, createdAt: at.toISOString(), parentPointId: null, sourcePointId: null, hasVAppMetadata: true, disks: [disk] });
      const point: RestorePoint = { id: pointId, vappId, vappName: vappId, tenantId: TENANT, jobId: backupJob, repositoryId: primaryId, createdAt: at.toISOString(), sizeBytes: bytes, flags: [], disks: [{ diskId: 'disk-0', vmId: 'vm-1', sizeBytes: disk.sizeBytes, indexKey: indexKey(vappId, pointId, 'disk-0'), bytesUploaded: bytes }] };
      await catalog.commitRestorePoint(point);
      return { point, blocksNew };
    };

    const seeds = Array.from({ length: 150 }, (_, i) => (i % 10 === 9 ? null : `full-${i}`));
    const full = await backup('vapp-1', seeds);
    expect(await copies.onSourcePointCommitted(full.point)).toHaveLength(1);
    await pump();
    const afterFull = await blockObjects(buckets.cloud);
    expect(afterFull.size).toBe(full.blocksNew);
    // Block names are per repository and tenant (format 2): the same count, not the same names.
    expect((await blockObjects(buckets.primary)).size).toBe(full.blocksNew);

    const changed = seeds.map((x, i) => (x !== null && i % 20 === 3 ? `incr-${i}` : x));
    const incr = await backup('vapp-1', changed);
    expect(incr.blocksNew).toBe(8);
    const [runId] = await copies.onSourcePointCommitted(incr.point);
    await pump();
    const run = (await catalog.getRun(runId!))!;
    expect(run).toMatchObject({ kind: 'copy', state: 'succeeded' });
    expect(run.counters.blocksNew).toBe(incr.blocksNew);
    expect(run.counters.bytesUploaded).toBe(incr.point.sizeBytes);
    const afterIncr = await blockObjects(buckets.cloud);
    expect([...afterIncr].filter((k) => !afterFull.has(k))).toHaveLength(incr.blocksNew);

    const cloud = (await registry.open(cloudId, TENANT)).repository;
    expect(await cloud.readPoint('vapp-1', incr.point.id)).toMatchObject({ sourcePointId: incr.point.id, parentPointId: full.point.id });
    const rows = await catalog.listRestorePoints({ repositoryId: cloudId, vappId: 'vapp-1' });
    expect(rows.map((r) => [r.id, r.sourcePointId])).toEqual([
      [copyPointCatalogId(full.point.id, cloudId), full.point.id],
      [copyPointCatalogId(incr.point.id, cloudId), incr.point.id],
    ]);
    expect(await copyTasks.dlqDepth()).toBe(0);
  }, 120_000);
});
