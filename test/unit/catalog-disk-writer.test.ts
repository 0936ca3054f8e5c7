import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/domain/clock.js';
import { parseMessage, type DiskRestoreTask } from '../../lib/queue/messages.js';
import { MemoryQueue } from '../../lib/queue/memory-queue.js';
import { AgentDiskTasks } from '../../lib/services/catalog-disk-writer.js';
import { sendsTasks } from '../../lib/services/restore-ports.js';

const task = (diskId: string): DiskRestoreTask => ({
  type: 'DiskRestoreTask',
  version: 2,
  taskId: `t-${diskId}`,
  runId: 'run-1',
  tenantId: 't',
  vappId: 'v',
  vmId: 'vm',
  diskId,
  pointId: 'p',
  repository: { url: 'file:///r' },
  indexKey: `points/v/p/disks/${diskId}.idx`,
  target: { kind: 'file', path: '/x' },
});

describe('AgentDiskTasks (restore disks through the agent)', () => {
  it('sends one DiskRestoreTask per disk and returns without waiting for any result', async () => {
    const queue = new MemoryQueue({ clock: new ManualClock('2026-11-01T00:00:00Z') });
    const sender = new AgentDiskTasks({ agentTasks: queue });
    expect(sendsTasks(sender)).toBe(true);
    await sender.sendDiskTasks([task('d1'), task('d2')]);
    const received = await queue.receive({ waitSeconds: 0, maxMessages: 10 });
    expect(received.map((m) => parseMessage('agentTasks', JSON.parse(m.body)))).toMatchObject([{ taskId: 't-d1' }, { taskId: 't-d2' }]);
  });
});
