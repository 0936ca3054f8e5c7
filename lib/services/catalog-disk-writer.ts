/**
 * Sends a restore's disks to the on-prem agent (DESIGN §1): one DiskRestoreTask per disk on the agent-tasks
 * queue. Nothing waits for them: each agent TaskResult advances the restore run through the agent-results
 * handler (`RestoreService.onTaskResult`).
 */
import type { DiskRestoreTask } from '../queue/messages.js';
import { sendMessages, type Queue } from '../queue/queue.js';
import type { DiskTaskSender } from './restore-ports.js';

export class AgentDiskTasks implements DiskTaskSender {
  constructor(private readonly deps: { agentTasks: Queue }) {}

  async sendDiskTasks(tasks: readonly DiskRestoreTask[]): Promise<void> {
    await sendMessages(this.deps.agentTasks, 'agentTasks', tasks);
  }
}

