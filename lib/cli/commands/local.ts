import path from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import { createCliLogger, type Log } from '../../log.js';
import { runDemo, ensureDemoDisks, type DemoSummary } from '../../local/demo.js';
import { startLocalRuntime } from '../../local/runtime.js';
import { startLocalStack } from '../../local/stack.js';
import { systemClock } from '../../system-clock.js';
import { VcdBackupGateway, simDiskLocate } from '../../vcd/backup-gateway.js';
import { VcdClient } from '../../vcd/client.js';
import { demoInventory, startVcdSimulator } from '../../vcd/sim/index.js';
import { Secret } from '../../secret.js';
import { byteProgress, formatBytes, table, type Progress } from '../progress.js';
import { parsePort, printJson, type CliIo } from '../support.js';

interface LocalOptions {
  demo?: boolean;
  once?: boolean;
  json?: boolean;
  dataDir: string;
  port: number;
  vcdUrl?: string;
  verbose?: boolean;
}

const quietLog: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

export function registerLocal(program: Command, io: CliIo): Command {
  return program
    .command('local')
    .description('run the whole service on this machine: embedded S3/SQS (fauxqs), DynamoDB Local, the vCD simulator, the handlers and one agent')
    .option('--demo', 'drive the demo scenario: full backup, disk changes, incremental, verification')
    .option('--once', 'exit after the scenario (status 0 only if every step was verified) instead of serving until Ctrl-C')
    .option('--json', 'print one JSON summary on stdout')
    .option('--data-dir <dir>', 'where local data (disk images, keys) lives', '.vcd-backup')
    .option('--port <n>', 'API port', parsePort, 8080)
    .option('--vcd-url <url>', 'use a real vCD (API token in $VCD_API_TOKEN) instead of the simulator')
    .option('--verbose', 'log every service step on stderr')
    .action(async (opts: LocalOptions) => {
      if (opts.demo && opts.vcdUrl) throw new InvalidInputError('--demo changes disks of the simulator and cannot run against a real vCD: drop --demo or --vcd-url');
      const dataDir = path.resolve(opts.dataDir);
      const say = (line: string) => io.stderr(line + '\n');
      const log = opts.verbose ? createCliLogger({ verbose: true, write: (l) => io.stderr(l + '\n') }) : quietLog;
      const inventory = demoInventory(dataDir);
      if (!opts.vcdUrl) await ensureDemoDisks(inventory, say);
      // The catalog is in memory like the S3 buckets (fauxqs 1.9.2 cannot persist on Node 20): a persisted
      // catalog over vanished repositories would list points that no longer exist.
      const stack = await startLocalStack({});
      const sim = opts.vcdUrl ? undefined : await startVcdSimulator({ inventory });
      const vcdUrl = opts.vcdUrl ?? sim!.url;
      const credentials = opts.vcdUrl
        ? { kind: 'apiToken' as const, token: new Secret(requireEnv(io, 'VCD_API_TOKEN')) }
        : { kind: 'password' as const, user: 'administrator', org: 'System', password: new Secret('vmware') };
      const client = await VcdClient.connect({ url: vcdUrl, credentials, log });
      let bar: Progress | undefined;
      const tasks = new Map<string, { done: number; total: number }>();
      const runtime = await startLocalRuntime({
        stack,
        dataDir,
        vcd: new VcdBackupGateway(client, simDiskLocate(dataDir), { log }),
        clock: systemClock,
        log,
        diskRoots: [path.join(dataDir, 'disks')],
        tickMs: opts.demo && opts.once ? 0 : 30_000,
        onProgress: (p) => {
          tasks.set(p.taskId, { done: p.bytesDone, total: p.bytesTotal });
          if (!bar) return;
          let done = 0;
          for (const t of tasks.values()) done += t.done;
          bar.update(done, { disks: tasks.size });
        },
      });
      const stopAll = async () => {
        await runtime.stop();
        await client.logout().catch(() => undefined);
        await sim?.stop();
        await stack.stop();
      };
      let summary: DemoSummary | undefined;
      try {
        const endpoints = { s3: stack.endpoints.s3, sqs: stack.endpoints.sqs, dynamodb: stack.endpoints.dynamodb, vcd: vcdUrl };
        if (!opts.json || !opts.demo) {
          say(`local service is up (data under ${dataDir})`);
          say(`  S3 + SQS (fauxqs)  ${endpoints.s3}`);
          say(`  DynamoDB Local     ${endpoints.dynamodb}`);
          say(`  vCD ${sim ? 'simulator ' : '          '}     ${vcdUrl}`);
          say(`  buckets            ${Object.values(stack.buckets).join(', ')}`);
          say(`  queues             ${Object.keys(stack.queueUrls).join(', ')} (each with a DLQ)`);
        }
        if (opts.demo) {
          const diskBytes = inventory.orgs?.[0]?.vdcs?.[0]?.vapps?.flatMap((v) => v.vms ?? []).flatMap((vm) => vm.disks ?? []).reduce((n, d) => n + d.sizeBytes, 0) ?? 0;
          summary = await runDemo({
            runtime,
            sim: sim!,
            inventory,
            dataDir,
            clock: systemClock,
            log,
            say: (line) => {
              bar?.stop();
              bar = undefined;
              say(line);
              if (line.startsWith('running the')) {
                tasks.clear();
                bar = byteProgress(io, '  disks', diskBytes);
              }
            },
          });
          bar?.stop();
          bar = undefined;
          printSummary(io, summary);
          if (opts.json) printJson(io, summary);
        } else if (opts.json) {
          printJson(io, { ok: true, dataDir, endpoints, buckets: stack.buckets, queues: stack.queueUrls, table: stack.tableName });
        }
        if (!opts.once) {
          say('serving; press Ctrl-C to stop');
          await new Promise<void>((resolve) => {
            process.once('SIGINT', () => resolve());
            process.once('SIGTERM', () => resolve());
          });
          say('stopping...');
        }
      } finally {
        bar?.stop();
        await stopAll();
        say('stopped');
      }
      if (summary && !summary.ok) throw new DemoFailedError(summary);
    });
}

class DemoFailedError extends Error {
  constructor(summary: DemoSummary) {
    super(`the demo found problems: ${summary.checks.filter((c) => !c.ok).map((c) => `${c.step} (${c.detail})`).join('; ')}`);
  }
}

function requireEnv(io: CliIo, name: string): string {
  const v = io.env[name];
  if (!v) throw new InvalidInputError(`--vcd-url needs an API token in the environment variable ${name}`);
  return v;
}

function printSummary(io: CliIo, s: DemoSummary): void {
  const rows = [['VAPP', 'KIND', 'POINT', 'READ', 'UPLOADED']];
  for (const b of s.backups) rows.push([b.vappName, b.kind, b.pointId, formatBytes(b.bytesRead), formatBytes(b.bytesUploaded)]);
  io.stderr('\n' + table(rows));
  io.stderr(
    `\n${s.totals.vapps} vApps, ${s.totals.points} restore points; read ${formatBytes(s.totals.bytesRead)}, uploaded ${formatBytes(s.totals.bytesUploaded)} ` +
      `(${s.totals.reduction ?? '-'}x less than read) in ${s.totals.seconds} s — ${s.ok ? 'every step verified' : 'SOME STEPS FAILED'}\n\n`,
  );
}
