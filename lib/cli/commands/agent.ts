import { SQSClient } from '@aws-sdk/client-sqs';
import type { Command } from 'commander';
import { Agent } from '../../agent/agent.js';
import { agentKeySources, agentVcenterCredentials, loadAgentConfig } from '../../agent/agent-config.js';
import { AgentDiskLocator } from '../../agent/disk-locator.js';
import { InvalidInputError } from '../../errors.js';
import { createCliLogger } from '../../log.js';
import { SqsQueue } from '../../queue/sqs-queue.js';
import { systemClock } from '../../system-clock.js';
import { RepositoryRegistry } from '../../wiring/repository-registry.js';
import type { CliIo } from '../support.js';

export function registerAgent(program: Command, io: CliIo): void {
  program
    .command('agent')
    .description('run the on-prem proxy agent: long-polls disk tasks, reads and writes disks, uploads blocks')
    .requiredOption('--config <file>', 'agent configuration (JSON): queues, repositories, disk roots')
    .option('--verbose', 'log every step')
    .action(async (opts: { config: string; verbose?: boolean }) => {
      const config = await loadAgentConfig(opts.config);
      const keys = await agentKeySources(config, io.env);
      const vcenters = await agentVcenterCredentials(config, io.env);
      const locator = new AgentDiskLocator({
        diskRoots: config.diskRoots,
        nbdEndpoints: config.nbdEndpoints,
        vcenters,
        ...(config.vddkLibDir ? { vddkLibDir: config.vddkLibDir } : {}),
        ...(config.nbdkit ? { nbdkit: config.nbdkit } : {}),
      });
      const log = createCliLogger({ verbose: opts.verbose, write: (l) => io.stderr(l + '\n') });
      const sqs = new SQSClient({ region: config.region, ...(config.endpoint ? { endpoint: config.endpoint } : {}), ...(config.credentials ? { credentials: config.credentials } : {}) });
      const endpointOf = new Map(config.repositories.map((r) => [r.url, r.endpoint ?? config.endpoint]));
      // Create-only: the agent adds blocks, indexes and descriptors but can neither replace nor delete anything
      // (its IAM role demands the conditional PUTs; lib/infra/agent-access.ts).
      const repositories = new RepositoryRegistry({ clock: systemClock, keySourceFor: (url) => keys.get(url), credentials: config.credentials, createOnly: true });
      const allowed = new Set(config.repositories.map((r) => r.url));
      const agent = new Agent({
        tasks: new SqsQueue({ client: sqs, queueUrl: config.queues.tasks }),
        results: new SqsQueue({ client: sqs, queueUrl: config.queues.results }),
        deps: {
          // Only the repositories of the config: a task cannot point the agent at another bucket.
          repositories: {
            open: async (ref, tenantId) => {
              if (!allowed.has(ref.url)) throw new InvalidInputError(`repository ${ref.url} is not in the agent config; add it to "repositories"`, { code: 'DISK_REPOSITORY_NOT_CONFIGURED' });
              return repositories.open({ ...ref, endpoint: ref.endpoint ?? endpointOf.get(ref.url) }, tenantId);
            },
          },
          locator,
          repositoryLocks: false,
        },
        log,
        concurrency: config.concurrency,
        maxAttempts: config.maxAttempts,
      });
      agent.start();
      log.info(`agent started: ${config.concurrency} disk(s) at a time, disks under ${config.diskRoots.join(', ')}${vcenters.size > 0 ? `, vCenters ${[...vcenters.keys()].join(', ')}` : ''}; Ctrl-C or SIGTERM stops it after running tasks finish`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      log.info('stopping: finishing running tasks');
      await agent.stop();
      // vCenter sessions count against a per-user limit: end them rather than let them time out.
      await locator.close();
      await repositories.close();
      sqs.destroy();
      log.info(`agent stopped (${agent.tasksDone} done, ${agent.tasksFailed} failed)`);
    });
}
