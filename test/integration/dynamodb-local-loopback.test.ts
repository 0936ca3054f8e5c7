import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { ListTablesCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DYNAMODB_LOCAL_HOST, dynamoDbLocalCommand, LOOPBACK_LAUNCHER_SOURCE, startDynamoDbLocal, type DynamoDbLocal } from '../../lib/local/dynamodb-local.js';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../lib/local/stack.js';

/**
 * DynamoDB Local has no authentication: issue 13 requires it to listen on 127.0.0.1 only. The jar itself
 * binds every interface, so this proves the loopback launcher does its job from outside, by connecting to
 * the machine's other addresses.
 */
function connects(host: string, port: number): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** Every address of this machine that is not loopback (IPv4 and IPv6, link-local IPv6 left out: it needs a scope). */
function otherAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal && !(a.family === 'IPv6' && a.address.startsWith('fe80')))
    .map((a) => a!.address);
}

describe('DynamoDB Local listens on loopback only', () => {
  let ddb: DynamoDbLocal;
  beforeAll(async () => {
    ddb = await startDynamoDbLocal();
  }, 90_000);
  afterAll(async () => {
    await ddb?.stop();
  });

  it('serves on 127.0.0.1', async () => {
    expect(ddb.endpoint).toBe(`http://127.0.0.1:${ddb.port}`);
    const client = new DynamoDBClient({ region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoint: ddb.endpoint });
    await expect(client.send(new ListTablesCommand({}))).resolves.toMatchObject({ TableNames: expect.any(Array) as unknown[] });
    client.destroy();
  });

  it.skipIf(otherAddresses().length === 0)('refuses connections on every other address of this machine', async () => {
    for (const address of otherAddresses()) {
      expect(await connects(address, ddb.port), address).not.toBe('connected');
    }
  });
});

describe('the DynamoDB Local command', () => {
  it('runs the loopback launcher with the host before the jar options, never the jar main alone', () => {
    const { command, args } = dynamoDbLocalCommand({ launcher: '/tmp/x/LoopbackDynamoDbLocal.java', port: 4567 });
    expect(command).toBe('java');
    expect(args).not.toContain('-jar');
    const launcherAt = args.indexOf('/tmp/x/LoopbackDynamoDbLocal.java');
    expect(args[launcherAt + 1]).toBe(DYNAMODB_LOCAL_HOST);
    expect(DYNAMODB_LOCAL_HOST).toBe('127.0.0.1');
    expect(args.slice(launcherAt + 2)).toEqual(['-inMemory', '-sharedDb', '-disableTelemetry', '-port', '4567']);
    expect(dynamoDbLocalCommand({ launcher: 'L.java', port: 1, dbPath: '/data' }).args).toContain('/data');
    expect(LOOPBACK_LAUNCHER_SOURCE).toContain('setHost(host)');
  });
});
