import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll } from 'vitest';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { LocalDirStore } from '../../lib/repository/local-dir-store.js';
import { MemoryStore } from '../../lib/repository/memory-store.js';
import { S3Store } from '../../lib/repository/s3-store.js';
import { objectStoreContract } from '../contracts/object-store.contract.js';
import { useLocalStack } from '../helpers/local-stack.js';

const stack = useLocalStack({ dynamodb: false });
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

objectStoreContract('memory', async () => new MemoryStore());

objectStoreContract('local directory', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vcdb-store-'));
  dirs.push(dir);
  return new LocalDirStore(dir);
});

objectStoreContract('S3 (fauxqs)', async () => {
  const bucket = `contract-${randomUUID().slice(0, 8)}`;
  await stack().s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return new S3Store({ bucket, prefix: 'repo/a', client: stack().s3 });
});
