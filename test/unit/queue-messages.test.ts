import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  encodeMessage,
  InvalidMessageError,
  latestVersion,
  MESSAGE_TYPES,
  MESSAGE_UPGRADES,
  MESSAGE_VERSIONS,
  parseMessage,
  queueOf,
  QUEUE_MESSAGE_TYPES,
  type MessageType,
} from '../../lib/queue/messages.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import { processBatch, sendMessages } from '../../lib/queue/queue.js';

const FIXTURES = path.resolve('test/fixtures/messages');
const fixture = (type: string, version = 1): Record<string, unknown> => JSON.parse(readFileSync(path.join(FIXTURES, type, `v${version}.json`), 'utf8'));

function rejection(fn: () => unknown): InvalidMessageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidMessageError);
    return err as InvalidMessageError;
  }
  throw new Error('expected the body to be rejected');
}

describe('queue message fixtures', () => {
  it('has a fixture for every released version of every type, and no fixture without a schema', () => {
    const onDisk = readdirSync(FIXTURES).sort();
    expect(onDisk).toEqual([...MESSAGE_TYPES].sort());
    for (const type of MESSAGE_TYPES) {
      const versions = readdirSync(path.join(FIXTURES, type)).sort();
      expect(versions, type).toEqual(Object.keys(MESSAGE_VERSIONS[type]).map((v) => `v${v}.json`).sort());
    }
  });

  for (const type of MESSAGE_TYPES) {
    for (const version of Object.keys(MESSAGE_VERSIONS[type])) {
      it(`${type} v${version} still parses (as a string and as a value) on its queue`, () => {
        const raw = fixture(type, Number(version));
        const queue = queueOf(type);
        const parsed = parseMessage(queue, JSON.stringify(raw));
        // Old versions come out upgraded: handlers only ever see the latest shape.
        expect(parsed).toMatchObject({ type, version: latestVersion(type) });
        expect(parseMessage(queue, raw)).toEqual(parsed);
        expect(JSON.parse(encodeMessage(queue, parsed as never))).toEqual(parsed);
      });
    }
  }
});

describe('message versions and upgrades', () => {
  it('has an upgrade from every version below the latest', () => {
    for (const type of MESSAGE_TYPES) {
      for (const v of Object.keys(MESSAGE_VERSIONS[type]).map(Number)) {
        if (v < latestVersion(type)) expect(MESSAGE_UPGRADES[type]?.[v], `${type} v${v}`).toBeTypeOf('function');
      }
    }
  });

  it('upgrades a DiskBackupTask v1 to v2 without changing anything else', () => {
    const v1 = fixture('DiskBackupTask', 1);
    expect(parseMessage('agentTasks', v1)).toEqual({ ...v1, version: 2 });
    const r1 = fixture('DiskRestoreTask', 1);
    expect(parseMessage('agentTasks', JSON.stringify(r1))).toEqual({ ...r1, version: 2 });
  });

  it('reads a vsphere locator only in v2, and only with its vsphere object', () => {
    const v2 = fixture('DiskBackupTask', 2);
    expect(parseMessage('agentTasks', v2)).toMatchObject({ version: 2, diskLocator: { kind: 'vsphere', vsphere: { vcenter: 'vc-01', vm: 'vm-42', deviceKey: 2000 } } });
    const asV1 = { ...v2, version: 1 };
    expect(rejection(() => parseMessage('agentTasks', asV1)).field).toBe('diskLocator.kind');
    const missing = { ...v2, diskLocator: { kind: 'vsphere' } };
    expect(rejection(() => parseMessage('agentTasks', missing)).field).toBe('diskLocator.vsphere');
    const stray = { ...v2, diskLocator: { kind: 'file', path: '/d/x.img', vsphere: (v2.diskLocator as Record<string, unknown>).vsphere } };
    expect(rejection(() => parseMessage('agentTasks', stray)).field).toBe('diskLocator.vsphere');
    const transport = structuredClone(v2) as { diskLocator: { vsphere: Record<string, unknown> } };
    transport.diskLocator.vsphere.transport = 'san';
    expect(rejection(() => parseMessage('agentTasks', transport)).field).toBe('diskLocator.vsphere.transport');
  });

  it('still accepts a v1 task for sending, and rejects a version past the latest', () => {
    expect(JSON.parse(encodeMessage('agentTasks', fixture('DiskBackupTask', 1) as never))).toMatchObject({ version: 1 });
    const err = rejection(() => parseMessage('agentTasks', { ...fixture('DiskRestoreTask', 2), version: 3 }));
    expect(err.message).toMatch(/version 3 is not supported.*reads 1, 2/);
  });
});

describe('parseMessage rejects bad bodies and names the field', () => {
  const cases: Array<{ name: string; type: MessageType; change: (m: Record<string, unknown>) => void; field: string | RegExp }> = [
    { name: 'missing runId', type: 'StartBackupRun', change: (m) => delete m.runId, field: 'runId' },
    { name: 'unknown trigger', type: 'StartBackupRun', change: (m) => (m.trigger = 'cron'), field: 'trigger' },
    { name: 'bad requestedAt', type: 'StartBackupRun', change: (m) => (m.requestedAt = 'yesterday'), field: 'requestedAt' },
    { name: 'empty vappIds', type: 'StartBackupRun', change: (m) => (m.vappIds = []), field: 'vappIds' },
    { name: 'block size not a power of two', type: 'DiskBackupTask', change: (m) => (m.blockSize = 1_000_000), field: 'blockSize' },
    { name: 'unknown disk locator kind', type: 'DiskBackupTask', change: (m) => ((m.diskLocator as Record<string, unknown>).kind = 'vddk'), field: 'diskLocator.kind' },
    { name: 'repository without url', type: 'DiskBackupTask', change: (m) => delete (m.repository as Record<string, unknown>).url, field: 'repository.url' },
    { name: 'negative changed area', type: 'DiskBackupTask', change: (m) => ((m.changedAreas as Array<Record<string, unknown>>)[1]!.offset = -1), field: 'changedAreas.1.offset' },
    { name: 'failed result without error', type: 'TaskResult', change: (m) => (m.ok = false), field: 'error' },
    { name: 'negative bytesDone', type: 'TaskProgress', change: (m) => (m.bytesDone = -5), field: 'bytesDone' },
    { name: 'too many blocks', type: 'CopyBlocksBatch', change: (m) => (m.blockKeys = Array.from({ length: 65 }, (_, i) => `k${i}`)), field: 'blockKeys' },
    { name: 'repeated block', type: 'CopyBlocksBatch', change: (m) => (m.blockKeys = ['a', 'a']), field: 'blockKeys' },
    { name: 'restore plan not an object', type: 'StartRestoreRun', change: (m) => (m.plan = 'recreate'), field: 'plan' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const body = fixture(c.type);
      c.change(body);
      const err = rejection(() => parseMessage(queueOf(c.type), JSON.stringify(body)));
      expect(err.field).toEqual(c.field);
      expect(err.message).toContain(String(c.field));
      expect(err.code).toBe('INVALID_MESSAGE');
    });
  }

  it('rejects a type that belongs on another queue', () => {
    const err = rejection(() => parseMessage('agentTasks', fixture('StartBackupRun')));
    expect(err.field).toBe('type');
    expect(err.message).toMatch(/DiskBackupTask, DiskRestoreTask/);
  });

  it('rejects an unknown version, saying which ones this build reads', () => {
    const err = rejection(() => parseMessage('runs', { ...fixture('StartBackupRun'), version: 2 }));
    expect(err.field).toBe('version');
    expect(err.message).toMatch(/version 2 is not supported.*reads 1/);
    expect(rejection(() => parseMessage('runs', { ...fixture('StartBackupRun'), version: '1' })).field).toBe('version');
  });

  it('rejects bodies that are not JSON objects', () => {
    expect(rejection(() => parseMessage('runs', '{"type":')).field).toBe('(root)');
    expect(rejection(() => parseMessage('runs', '[1,2]')).field).toBe('(root)');
    expect(rejection(() => parseMessage('runs', 'null')).field).toBe('(root)');
    expect(rejection(() => parseMessage('runs', {})).field).toBe('type');
  });

  it('encodeMessage refuses to send an invalid message', () => {
    const bad = { ...fixture('TaskProgress'), bytesTotal: 'lots' };
    expect(rejection(() => encodeMessage('agentResults', bad as never)).field).toBe('bytesTotal');
  });

  it('maps every type to exactly one queue', () => {
    const all = Object.values(QUEUE_MESSAGE_TYPES).flat();
    expect([...all].sort()).toEqual([...MESSAGE_TYPES].sort());
  });
});

describe('processBatch', () => {
  const records = Array.from({ length: 5 }, (_, i) => ({ messageId: `m${i}`, body: String(i) }));

  it('reports only the failed records', async () => {
    const seen: string[] = [];
    const errors: string[] = [];
    const out = await processBatch(
      records,
      async (r) => {
        seen.push(r.messageId);
        if (Number(r.body) % 2 === 1) throw new Error(`bad ${r.body}`);
      },
      { onError: (r) => errors.push(r.messageId) },
    );
    expect(out).toEqual({ batchItemFailures: [{ itemIdentifier: 'm1' }, { itemIdentifier: 'm3' }] });
    expect(seen).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(errors).toEqual(['m1', 'm3']);
  });

  it('runs records concurrently when asked, still reporting in input order', async () => {
    let running = 0;
    let peak = 0;
    const out = await processBatch(
      records,
      async (r) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 10));
        running--;
        if (r.messageId === 'm4' || r.messageId === 'm0') throw new Error('x');
      },
      { concurrency: 3 },
    );
    expect(peak).toBe(3);
    expect(out.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['m0', 'm4']);
  });

  it('in FIFO mode fails every record after the first failure without handling it', async () => {
    const seen: string[] = [];
    const out = await processBatch(
      records,
      async (r) => {
        seen.push(r.messageId);
        if (r.messageId === 'm2') throw new Error('x');
      },
      { fifo: true },
    );
    expect(seen).toEqual(['m0', 'm1', 'm2']);
    expect(out.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['m2', 'm3', 'm4']);
  });

  it('returns no failures for an empty batch', async () => {
    expect(await processBatch([], async () => {})).toEqual({ batchItemFailures: [] });
  });
});

describe('sendMessages', () => {
  it('validates typed messages before anything is sent', async () => {
    const queue = new MemoryQueue();
    const good = parseMessage('agentResults', fixture('TaskProgress'));
    const bad = { ...good, bytesDone: -1 };
    await expect(sendMessages(queue, 'agentResults', [good, bad])).rejects.toMatchObject({ field: 'bytesDone' });
    expect(queue.depth()).toBe(0);
    await sendMessages(queue, 'agentResults', [good]);
    expect(queue.depth()).toBe(1);
  });
});
