import path from 'node:path';
import type { Command } from 'commander';
import { startLocalStack } from '../../local/stack.js';
import { parsePort, printJson, type CliIo } from '../support.js';

interface LocalOptions {
  demo?: boolean;
  once?: boolean;
  json?: boolean;
  dataDir: string;
  port: number;
  vcdUrl?: string;
}

export function registerLocal(program: Command, io: CliIo): void {
  program
    .command('local')
    .description('run the whole service on this machine: embedded S3/SQS (fauxqs) and DynamoDB Local')
    .option('--demo', 'drive the demo scenario once the stack is up')
    .option('--once', 'stop after the scenario instead of serving until Ctrl-C')
    .option('--json', 'print a JSON summary on stdout')
    .option('--data-dir <dir>', 'where local data lives', '.vcd-backup')
    .option('--port <n>', 'API port', parsePort, 8080)
    .option('--vcd-url <url>', 'use a real vCD instead of the simulator')
    .action(async (opts: LocalOptions) => {
      const dataDir = path.resolve(opts.dataDir);
      const stack = await startLocalStack({ dataDir });
      const summary = {
        ok: true,
        dataDir,
        endpoints: stack.endpoints,
        buckets: stack.buckets,
        queues: stack.queueUrls,
        table: stack.tableName,
      };
      if (opts.json) printJson(io, summary);
      else {
        io.stderr(`local stack is up (data under ${dataDir})\n`);
        io.stderr(`  S3 + SQS (fauxqs)  ${stack.endpoints.s3}\n`);
        io.stderr(`  DynamoDB Local     ${stack.endpoints.dynamodb}\n`);
        io.stderr(`  buckets            ${Object.values(stack.buckets).join(', ')}\n`);
        io.stderr(`  queues             ${Object.keys(stack.queueUrls).join(', ')} (each with a DLQ)\n`);
        io.stderr(`  table              ${stack.tableName}\n`);
      }
      if (opts.demo) {
        io.stderr('the demo scenario (backup, copy, retention, restore) is not built yet: only the stack runs for now\n');
      }
      if (opts.once) {
        await stack.stop();
        return;
      }
      io.stderr('press Ctrl-C to stop\n');
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      io.stderr('stopping...\n');
      await stack.stop();
      io.stderr('stopped\n');
    });
}
