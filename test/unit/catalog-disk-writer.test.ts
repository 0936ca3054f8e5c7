import { describe, expect, it } from 'vitest';
import { MemoryCatalog } from '../../lib/catalog/memory-catalog.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { parseMessage } from '../../lib/queue/messages.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import type { TaskResult } from '../../lib/queue/messages.js';
import { CatalogDiskWriter, recordRestoreResult } from '../../lib/services/catalog-disk-writer.js';
import type { DiskWriteRequest } from '../../lib/services/restore-ports.js';

const request = { repository: {} as never, repositoryRef: { url: 'file:///r' }, tenantId: 't', runId: 'run-1', vappId: 'v', pointId: 'p', diskId: 'd', indexKey: 'points/v/p/disks/d.idx', vmId: 'vm', target: { kind: 'file', path: '/x' } } satisfies DiskWriteRequest;

function world() {
  const clock = new ManualClock('2026-11-01T00:00:00Z');
  const catalog = new MemoryCatalog(clock);
  const tasks = new MemoryQueue({ clock });
  const writer = new CatalogDiskWriter({ catalog, agentTasks: tasks, clock, pollMs: 1 });
  /** The agent: takes the task and reports through the agent-results path. */
  const agent = async (outcome: Partial<TaskResult>) => {
    const [m] = await tasks.receive({ waitSeconds: 0 });
    const task = parseMessage('agentTasks', JSON.parse(m!.body));
    await recordRestoreResult(catalog, { type: 'TaskResult', version: 1, taskId: task.taskId, runId: task.runId, vappId: task.vappId, diskId: task.diskId, pointId: task.pointId, kind: 'restore', ok: true, stats: { bytesRead: 1, bytesUploaded: 0, blocksNew: 0, blocksReused: 0, bytesWritten: 4096 }, ...outcome } as TaskResult, clock);
    await tasks.delete(m!.receiptHandle);
  };
  return { clock, catalog, tasks, writer, agent };
}

describe('CatalogDiskWriter (restore disks through the agent, results through the catalog)', () => {
  it('sends a DiskRestoreTask and resolves with the bytes the agent reports', async () => {
    const w = world();
    const pending = w.writer.writeDisk(request);
    await new Promise((r) => setTimeout(r, 5));
    await w.agent({});
    await expect(pending).resolves.toEqual({ bytesWritten: 4096 });
  });

  it('rejects with the agent’s error, and a rerun asks the agent again instead of trusting the old failure', async () => {
    const w = world();
    const first = w.writer.writeDisk(request);
    await new Promise((r) => setTimeout(r, 5));
    await w.agent({ ok: false, stats: undefined, error: { code: 'DISK_OUTSIDE_ROOTS', message: 'no' } });
    await expect(first).rejects.toThrow(/could not write disk d: no/);
    w.clock.advance(60_000);
    const second = w.writer.writeDisk(request);
    await new Promise((r) => setTimeout(r, 5));
    await w.agent({});
    await expect(second).resolves.toEqual({ bytesWritten: 4096 });
  });

  it('a rerun after success does not write the disk again', async () => {
    const w = world();
    const first = w.writer.writeDisk(request);
    await new Promise((r) => setTimeout(r, 5));
    await w.agent({});
    await first;
    await expect(w.writer.writeDisk(request)).resolves.toEqual({ bytesWritten: 4096 });
    expect(await w.tasks.receive({ waitSeconds: 0 })).toEqual([]);
  });
});
