import type { Log } from '../log.js';
import { encodeMessage, parseMessage, type DiskBackupTask, type DiskRestoreTask } from '../queue/messages.js';
import type { Queue, ReceivedMessage } from '../queue/queue.js';
import { failedResult, isPermanentTaskError, runDiskBackupTask, runDiskRestoreTask, type TaskRunnerDeps } from './task-runner.js';

export interface AgentOptions {
  readonly tasks: Queue;
  readonly results: Queue;
  readonly deps: TaskRunnerDeps;
  readonly log: Log;
  /** Disks backed up at once. @default 2 */
  readonly concurrency?: number;
  /** Deliveries of one task before its failure is reported as final. @default 3 */
  readonly maxAttempts?: number;
  /** How long a received task stays hidden; renewed while the task runs. @default 120 */
  readonly visibilitySeconds?: number;
  /** Long-poll wait. @default 20 */
  readonly waitSeconds?: number;
  /** Minimum time between two TaskProgress messages of one task. @default 2000 */
  readonly progressIntervalMs?: number;
}

/**
 * The on-prem proxy agent's task loop: long-polls agent-tasks, runs up to `concurrency` disk backups,
 * keeps each message hidden while it works, reports progress and results on agent-results, and deletes a
 * task only once its result is sent. `stop()` (SIGTERM) stops polling and lets running tasks finish.
 */
export class Agent {
  private stopping = false;
  private readonly running = new Set<Promise<void>>();
  private readonly poll = new AbortController();
  private loop: Promise<void> | undefined;
  tasksDone = 0;
  tasksFailed = 0;

  constructor(private readonly options: AgentOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    const { tasks, log } = this.options;
    const concurrency = this.options.concurrency ?? 2;
    while (!this.stopping) {
      if (this.running.size >= concurrency) {
        await Promise.race(this.running);
        continue;
      }
      let messages: ReceivedMessage[];
      try {
        messages = await tasks.receive({
          maxMessages: Math.min(10, concurrency - this.running.size),
          waitSeconds: this.options.waitSeconds ?? 20,
          visibilityTimeoutSeconds: this.options.visibilitySeconds ?? 120,
          signal: this.poll.signal,
        });
      } catch (err) {
        if (this.stopping) break;
        log.warn('receiving tasks failed; retrying', { error: (err as Error).message });
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (messages.length === 0) {
        // A queue that answers at once when empty (a zero wait) must not turn this loop into a busy spin.
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      for (const message of messages) {
        const job = this.handle(message).finally(() => this.running.delete(job));
        this.running.add(job);
      }
    }
    await Promise.allSettled(this.running);
  }

  private async handle(message: ReceivedMessage): Promise<void> {
    const { tasks, results, log } = this.options;
    let task: DiskBackupTask | DiskRestoreTask;
    try {
      task = parseMessage('agentTasks', JSON.parse(message.body));
    } catch (err) {
      // A message no agent can read would only cycle to the DLQ; leave it to get there and say why.
      log.error('unreadable task message', { messageId: message.messageId, error: (err as Error).message });
      return;
    }
    const visibility = this.options.visibilitySeconds ?? 120;
    const keepHidden = setInterval(() => {
      tasks.extendVisibility(message.receiptHandle, visibility).catch((err: unknown) => log.warn('could not extend a task’s visibility', { taskId: task.taskId, error: (err as Error).message }));
    }, (visibility * 1000) / 3);
    let lastProgress = 0;
    const interval = this.options.progressIntervalMs ?? 2000;
    try {
      const what = task.type === 'DiskBackupTask' ? 'disk backup' : 'disk restore';
      log.info(`${what} started`, { taskId: task.taskId, vappId: task.vappId, diskId: task.diskId, attempt: message.receiveCount });
      const run = task.type === 'DiskBackupTask' ? runDiskBackupTask : runDiskRestoreTask;
      const result = await run(task as never, this.options.deps, {
        onProgress: (bytesDone, bytesTotal) => {
          const now = Date.now();
          if (now - lastProgress < interval && bytesDone < bytesTotal) return;
          lastProgress = now;
          const progress = { type: 'TaskProgress' as const, version: 1 as const, taskId: task.taskId, runId: task.runId, vappId: task.vappId, diskId: task.diskId, bytesDone, bytesTotal, at: new Date(now).toISOString() };
          results.send([encodeMessage('agentResults', progress)]).catch(() => undefined);
        },
      });
      await results.send([encodeMessage('agentResults', result)]);
      await tasks.delete(message.receiptHandle);
      this.tasksDone++;
      log.info(`${what} done`, { taskId: task.taskId, bytesRead: result.stats?.bytesRead, bytesUploaded: result.stats?.bytesUploaded, bytesWritten: result.stats?.bytesWritten });
    } catch (err) {
      const final = isPermanentTaskError(err) || message.receiveCount >= (this.options.maxAttempts ?? 3);
      log.error('disk task failed', { taskId: task.taskId, attempt: message.receiveCount, final, error: (err as Error).message });
      if (final) {
        await results.send([encodeMessage('agentResults', failedResult(task, err))]);
        await tasks.delete(message.receiptHandle);
        this.tasksFailed++;
      } else {
        // Let it come back soon rather than after the whole visibility timeout.
        await tasks.extendVisibility(message.receiptHandle, 2).catch(() => undefined);
      }
    } finally {
      clearInterval(keepHidden);
    }
  }

  /** Stops polling; running tasks finish and report. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.poll.abort();
    await this.loop;
  }
}
