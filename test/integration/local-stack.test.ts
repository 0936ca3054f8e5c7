import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { startLocalStack } from '../../lib/local/stack.js';
import { BUCKETS, CATALOG_TABLE, QUEUES } from '../../lib/infra/resources.js';

async function portOpen(endpoint: string): Promise<boolean> {
  const port = Number(new URL(endpoint).port);
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('embedded local stack', () => {
  it('creates every bucket, queue (with a DLQ) and the table, then stops leaving no open port', async () => {
    const stack = await startLocalStack();
    try {
      expect(stack.endpoints.s3).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const buckets = (await stack.s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name);
      expect(buckets).toEqual(expect.arrayContaining(BUCKETS.map((b) => b.name)));
      for (const q of QUEUES) {
        const attrs = await stack.sqs.send(new GetQueueAttributesCommand({ QueueUrl: stack.queueUrls[q.id], AttributeNames: ['All'] }));
        const redrive = JSON.parse(attrs.Attributes?.RedrivePolicy ?? '{}') as { maxReceiveCount?: number; deadLetterTargetArn?: string };
        expect(redrive.maxReceiveCount).toBe(q.maxReceiveCount);
        expect(redrive.deadLetterTargetArn).toContain(`${q.name}-dlq`);
      }
      await stack.sqs.send(new SendMessageCommand({ QueueUrl: stack.queueUrls.runs, MessageBody: '{"hello":1}' }));
      const got = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queueUrls.runs, WaitTimeSeconds: 1 }));
      expect(got.Messages?.[0]?.Body).toBe('{"hello":1}');
      const tables = await stack.dynamodb!.send(new ListTablesCommand({}));
      expect(tables.TableNames).toContain(CATALOG_TABLE.name);
    } finally {
      await stack.stop();
    }
    expect(await portOpen(stack.endpoints.s3)).toBe(false);
    expect(await portOpen(stack.endpoints.dynamodb!)).toBe(false);
  });

  it('`vcd-backup local --once --json` prints endpoints and exits 0 with nothing left listening', async () => {
    const child = spawn(process.execPath, ['bin/vcd-backup.mjs', 'local', '--once', '--json', '--port', '0', '--disk-scale', '0.02', '--data-dir', `/tmp/vcdb-local-${process.pid}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    const summary = JSON.parse(out) as { ok: boolean; endpoints: { s3: string; dynamodb: string; api: string } };
    expect(summary.endpoints.api).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(summary.ok).toBe(true);
    expect(await portOpen(summary.endpoints.s3)).toBe(false);
    expect(await portOpen(summary.endpoints.dynamodb)).toBe(false);
  });

  it('stops cleanly on SIGINT (Ctrl-C) when serving', async () => {
    const child = spawn(process.execPath, ['bin/vcd-backup.mjs', 'local', '--json', '--port', '0', '--disk-scale', '0.02', '--data-dir', `/tmp/vcdb-local-${process.pid}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.trim().endsWith('}')) resolve();
      });
    });
    const summary = JSON.parse(out) as { endpoints: { s3: string; dynamodb: string; api: string } };
    expect(await portOpen(summary.endpoints.dynamodb)).toBe(true);
    const health = await fetch(`${summary.endpoints.api}/openapi.json`);
    expect(health.status).toBe(200);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(err).toContain('stopped');
    expect(await portOpen(summary.endpoints.s3)).toBe(false);
    expect(await portOpen(summary.endpoints.dynamodb)).toBe(false);
    expect(await portOpen(summary.endpoints.api)).toBe(false);
  });
});
