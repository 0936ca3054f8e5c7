import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, DeleteObjectsCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, describe, expect, it } from 'vitest';
import { CreateOnlyStore } from '../../lib/repository/create-only-store.js';
import { LocalDirStore } from '../../lib/repository/local-dir-store.js';
import { CreateOnlyViolationError, ObjectExistsError, StoreError } from '../../lib/repository/object-store.js';
import { createS3Client, S3Store } from '../../lib/repository/s3-store.js';
import { openStore } from '../../lib/repository/url.js';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/local/stack.js';
import { useLocalStack } from '../helpers/local-stack.js';

/**
 * Create-only stores (issue 13: the agent cannot destroy what exists). The wire side runs against the real
 * local server; fauxqs 1.9.2 ignores `If-None-Match` on PUT (it always overwrites), so the server's 412 and
 * 409 answers are produced with aws-sdk-client-mock.
 */
const stack = useLocalStack({ dynamodb: false });
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A client on the local server that records the headers of every PUT it sends. */
function recordingClient(): { client: S3Client; puts: Array<Record<string, string>> } {
  const client = createS3Client({ region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoint: stack().endpoints.s3, forcePathStyle: true });
  const puts: Array<Record<string, string>> = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { method?: string; headers?: Record<string, string> };
      if (request.method === 'PUT') puts.push({ ...request.headers });
      return next(args);
    },
    { step: 'finalizeRequest', name: 'recordPutHeaders' },
  );
  return { client, puts };
}

async function bucket(): Promise<string> {
  const name = `create-only-${randomUUID().slice(0, 8)}`;
  await stack().s3.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

describe('S3Store createOnly against the local server', () => {
  it('sends If-None-Match: * on every PUT and stores the object', async () => {
    const { client, puts } = recordingClient();
    const store = new S3Store({ bucket: await bucket(), prefix: 'repo', client, createOnly: true });
    const body = randomBytes(5000);
    await store.put('blocks/ab/abcd', body);
    await store.put('points/v/p/disks/d.idx', [body.subarray(0, 10), body.subarray(10)]);
    expect(Buffer.compare(await store.get('blocks/ab/abcd'), body)).toBe(0);
    expect(Buffer.compare(await store.get('points/v/p/disks/d.idx'), body)).toBe(0);
    expect(puts.map((h) => h['if-none-match'])).toEqual(['*', '*']);
    client.destroy();
  });

  it('a store that is not create-only sends no condition', async () => {
    const { client, puts } = recordingClient();
    const store = new S3Store({ bucket: await bucket(), client });
    await store.put('config.json', Buffer.from('{}'));
    expect(puts[0]?.['if-none-match']).toBeUndefined();
    client.destroy();
  });

  it('refuses deletions locally and leaves the object in place', async () => {
    const { client } = recordingClient();
    const name = await bucket();
    const store = new S3Store({ bucket: name, prefix: 'repo', client, createOnly: true });
    await store.put('blocks/ab/abcd', Buffer.from('x'));
    const sent = countDeletes(client);
    await expect(store.deleteMany(['blocks/ab/abcd'])).rejects.toBeInstanceOf(CreateOnlyViolationError);
    await expect(store.deleteMany(['blocks/ab/abcd'])).rejects.toMatchObject({ code: 'STORE_CREATE_ONLY', message: expect.stringMatching(/create-only.*blocks\/ab\/abcd|blocks\/ab\/abcd.*create-only/) });
    expect(sent()).toBe(0);
    expect(await store.stat('blocks/ab/abcd')).toBeDefined();
    await store.deleteMany([]); // nothing to delete is not a deletion
    client.destroy();
  });

  it('openStore passes createOnly through for s3:// URLs', async () => {
    const store = openStore(`s3://${await bucket()}/repo`, { endpoint: stack().endpoints.s3, credentials: LOCAL_CREDENTIALS, createOnly: true });
    expect(store).toBeInstanceOf(S3Store);
    expect((store as S3Store).createOnly).toBe(true);
    await store.put('blocks/aa/aa', Buffer.from('y'));
    await expect(store.deleteMany(['blocks/aa/aa'])).rejects.toBeInstanceOf(CreateOnlyViolationError);
  });
});

/** Counts DeleteObjects requests the client sends from now on. */
function countDeletes(client: S3Client): () => number {
  let deletes = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === DeleteObjectsCommand.name) deletes++;
      return next(args);
    },
    { step: 'initialize', name: `countDeletes${randomUUID()}` },
  );
  return () => deletes;
}

function s3Error(name: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: status }, message: name });
}

describe('S3Store createOnly: answers the local server cannot give (aws-sdk-client-mock)', () => {
  const mocked = () => {
    const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    return { client, mock: mockClient(client) };
  };

  it('412 PreconditionFailed: put resolves (the key names immutable content), create says "exists"', async () => {
    const { client, mock } = mocked();
    mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    const store = new S3Store({ bucket: 'b', prefix: 'p', client, createOnly: true });
    await expect(store.put('blocks/ab/abcd', Buffer.from('x'))).resolves.toBeUndefined();
    await expect(store.create('blocks/ab/abcd', Buffer.from('x'))).resolves.toBe('exists');
    const inputs = mock.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
    expect(inputs.every((i) => i.IfNoneMatch === '*' && i.Key === 'p/blocks/ab/abcd')).toBe(true);
  });

  it('a 412 without the error code (a bare status) is recognised too', async () => {
    const { client, mock } = mocked();
    mock.on(PutObjectCommand).rejects(s3Error('Unknown', 412));
    const store = new S3Store({ bucket: 'b', client, createOnly: true });
    await expect(store.create('k', Buffer.from('x'))).resolves.toBe('exists');
  });

  it('maps 412 to ObjectExistsError for callers of create in a plain store, never to a generic failure', async () => {
    const { client, mock } = mocked();
    mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    const store = new S3Store({ bucket: 'b', client });
    await expect(store.create('k', Buffer.from('x'))).resolves.toBe('exists');
    expect(mock.commandCalls(PutObjectCommand)[0]!.args[0].input.IfNoneMatch).toBe('*');
    // The typed error itself, for code that inspects store errors.
    expect(new ObjectExistsError('k', store.description)).toMatchObject({ code: 'OBJECT_EXISTS', key: 'k' });
  });

  it('409 ConditionalRequestConflict is retried, then reported as a failure, never as "exists"', async () => {
    const { client, mock } = mocked();
    mock.on(PutObjectCommand).rejectsOnce(s3Error('ConditionalRequestConflict', 409)).resolvesOnce({});
    const store = new S3Store({ bucket: 'b', client, createOnly: true, conflictRetryDelayMs: 0 });
    await expect(store.create('k', Buffer.from('x'))).resolves.toBe('created');
    expect(mock.commandCalls(PutObjectCommand)).toHaveLength(2);

    mock.reset();
    mock.on(PutObjectCommand).rejects(s3Error('ConditionalRequestConflict', 409));
    const failing = store.put('k', Buffer.from('x'));
    await expect(failing).rejects.toBeInstanceOf(StoreError);
    await expect(failing).rejects.toThrow(/conflicted with another write.*retry the task/);
  });

  it('other failures keep their mapping', async () => {
    const { client, mock } = mocked();
    mock.on(PutObjectCommand).rejects(s3Error('AccessDenied', 403));
    const store = new S3Store({ bucket: 'b', client, createOnly: true });
    await expect(store.put('k', Buffer.from('x'))).rejects.toMatchObject({ code: 'STORE_ACCESS_DENIED' });
  });
});

describe('CreateOnlyStore (local directories)', () => {
  it('keeps what exists, adds what does not, refuses deletions', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vcdb-create-only-'));
    dirs.push(dir);
    const store = openStore(`file://${dir}`, { createOnly: true });
    expect(store).toBeInstanceOf(CreateOnlyStore);
    await store.put('blocks/ab/abcd', Buffer.from('first'));
    await store.put('blocks/ab/abcd', Buffer.from('second'));
    expect((await store.get('blocks/ab/abcd')).toString()).toBe('first');
    await expect(store.deleteMany(['blocks/ab/abcd'])).rejects.toBeInstanceOf(CreateOnlyViolationError);
    expect((await new LocalDirStore(dir).get('blocks/ab/abcd')).toString()).toBe('first');
  });
});
