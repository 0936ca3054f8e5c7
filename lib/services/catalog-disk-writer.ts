/**
 * Sends a restore's disks to the on-prem agent (DESIGN §1): one DiskRestoreTask per disk on the agent-tasks
 * queue. Nothing waits for them: each agent TaskResult advances the restore run through the agent-results
 * handler (`RestoreService.onTaskResult`).
 */
import type { DiskRestoreTask } from '../queue/messages.js';
import { sendMessages, type Queue } from '../queue/queue.js';
import type { DiskTaskSender } from './restore-ports.js';

export class AgentDiskTasks implements DiskTaskSender {
  // `catalog`, `clock` and `pollMs` are accepted and unused: the composition roots still pass what the
  // polling writer this replaced needed, until they construct this class by its own name.
  constructor(private readonly deps: { agentTasks: Queue; catalog?: unknown; clock?: unknown; pollMs?: number }) {}

  async sendDiskTasks(tasks: readonly DiskRestoreTask[]): Promise<void> {
    await sendMessages(this.deps.agentTasks, 'agentTasks', tasks);
  }
}

/** @deprecated The name of the polling writer; use AgentDiskTasks. Kept while the wiring still imports it. */
export const CatalogDiskWriter = AgentDiskTasks;
