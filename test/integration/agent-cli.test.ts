import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeMessage, parseMessage } from '../../lib/queue/messages.js';
import { SqsQueue } from '../../lib/queue/sqs-queue.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { Repository } from '../../lib/repository/repository.js';
import { S3Store } from '../../lib/repository/s3-store.js';
import { Secret } from '../../lib/secret.js';
import { useLocalStack } from '../helpers/local-stack.js';
import { writeSyntheticImage } from '../helpers/synthetic-image.js';

const stack = useLocalStack({ dynamodb: false });
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vcdb-agent-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('vcd-backup agent --config', () => {
  it('takes a DiskBackupTask from the queue, backs the disk up, reports the result, and stops cleanly on SIGTERM', async () => {
    const s = stack();
    await writeFile(path.join(dir, 'pass'), 'agent test passphrase\n');
    const store = new S3Store({ bucket: s.buckets.primary!, prefix: 'agent', client: s.s3 });
    await Repository.init(store, { clock: new ManualClock('2026-11-01T00:00:00Z'), keySource: { kind: 'passphrase', passphrase: new Secret('agent test passphrase'), scrypt: { N: 1024, r: 8, p: 1 } } });
    const disksDir = path.join(dir, 'disks');
    await (await import('node:fs/promises')).mkdir(disksDir, { recursive: true });
    await writeSyntheticImage(path.join(disksDir, 'vm-1-0.img'), 3 * 1024 * 1024, { seed: 'agent', regionSize: 1024 * 1024 });
    const url = `s3://${s.buckets.primary}/agent`;
    const config = path.join(dir, 'agent.json');
    await writeFile(
      config,
      JSON.stringify({
        endpoint: s.endpoints.sqs,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        queues: { tasks: s.queueUrls.agentTasks, results: s.queueUrls.agentResults },
        repositories: [{ url, passphraseFile: 'pass' }],
        diskRoots: ['disks'],
      }),
    );
    const tasks = new SqsQueue({ client: s.sqs, queueUrl: s.queueUrls.agentTasks });
    const results = new SqsQueue({ client: s.sqs, queueUrl: s.queueUrls.agentResults });
    await tasks.send([
      encodeMessage('agentTasks', {
        type: 'DiskBackupTask',
        version: 1,
        taskId: 'task-1',
        runId: 'run-1',
        jobId: 'job-1',
        tenantId: 'acme',
        vappId: 'vapp-1',
        vmId: 'vm-1',
        diskId: 'vm-1-2000',
        pointId: '20261101T000000Z-00000001',
        repository: { url, endpoint: s.endpoints.s3 },
        blockSize: 1024 * 1024,
        diskLocator: { kind: 'file', path: path.join(disksDir, 'vm-1-0.img') },
      }),
      // A task that points outside the disk roots must be refused, not read.
      encodeMessage('agentTasks', {
        type: 'DiskBackupTask',
        version: 1,
        taskId: 'task-2',
        runId: 'run-1',
        jobId: 'job-1',
        tenantId: 'acme',
        vappId: 'vapp-1',
        vmId: 'vm-1',
        diskId: 'etc-passwd',
        pointId: '20261101T000000Z-00000001',
        repository: { url, endpoint: s.endpoints.s3 },
        blockSize: 1024 * 1024,
        diskLocator: { kind: 'file', path: '/etc/passwd' },
      }),
    ]);
    const child = spawn(process.execPath, ['bin/vcd-backup.mjs', 'agent', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    let exited = false;
    const exit = new Promise<number | null>((resolve) => child.once('exit', (c) => { exited = true; resolve(c); }));
    const got = new Map<string, ReturnType<typeof parseMessage<'agentResults'>>>();
    const deadline = Date.now() + 20_000;
    while (!exited && Date.now() < deadline && [...got.values()].filter((m) => m.type === 'TaskResult').length < 2) {
      for (const m of await results.receive({ waitSeconds: 1 })) {
        const msg = parseMessage('agentResults', JSON.parse(m.body));
        if (msg.type === 'TaskResult') got.set(msg.taskId, msg);
        await results.delete(m.receiptHandle);
      }
    }
    child.kill('SIGTERM');
    const code = await exit;
    expect(code, err).toBe(0);
    expect(err).toContain('agent stopped');
    const ok = got.get('task-1');
    expect(ok?.type === 'TaskResult' && ok.ok).toBe(true);
    expect(ok?.type === 'TaskResult' && ok.stats?.bytesRead).toBe(3 * 1024 * 1024);
    const refused = got.get('task-2');
    expect(refused?.type === 'TaskResult' && !refused.ok && refused.error?.code).toBe('DISK_OUTSIDE_ROOTS');
    const repository = await Repository.open(store, { kind: 'passphrase', passphrase: new Secret('agent test passphrase') });
    const index = await repository.readIndex('vapp-1', '20261101T000000Z-00000001', 'vm-1-2000');
    expect(index.diskSize).toBe(3 * 1024 * 1024);
    expect(err).not.toContain('agent test passphrase');
  });
});
