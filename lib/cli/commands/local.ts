import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { createLocalAuthenticator, loadOrCreateApiSecret, startApiServer } from '../../api/index.js';
import { InvalidInputError } from '../../errors.js';
import { createCliLogger, type Log } from '../../log.js';
import { runDemo, ensureDemoDisks, type DemoSummary } from '../../local/demo.js';
import { startLocalRuntime } from '../../local/runtime.js';
import { startLocalStack } from '../../local/stack.js';
import { systemClock } from '../../system-clock.js';
import { VcdBackupGateway, simDiskLocate } from '../../vcd/backup-gateway.js';
import { VcdClient } from '../../vcd/client.js';
import { VcdRestoreClient } from '../../vcd/restore-client.js';
import { addRestoreRoutes } from '../../vcd/sim/restore-routes.js';
import { demoInventory, startVcdSimulator, type SimInventoryInput } from '../../vcd/sim/index.js';
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
  diskScale: number;
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
    .addOption(new Option('--disk-scale <fraction>', 'scale the demo disks (tests use small ones)').default(1).argParser(parseScale).hideHelp())
    .action(async (opts: LocalOptions) => {
      if (opts.demo && opts.vcdUrl) throw new InvalidInputError('--demo changes disks of the simulator and cannot run against a real vCD: drop --demo or --vcd-url');
      const dataDir = path.resolve(opts.dataDir);
      const say = (line: string) => io.stderr(line + '\n');
      const log = opts.verbose ? createCliLogger({ verbose: true, write: (l) => io.stderr(l + '\n') }) : quietLog;
      const inventory = scaleInventory(demoInventory(dataDir), opts.diskScale);
      if (!opts.vcdUrl) await ensureDemoDisks(inventory, say);
      // The catalog is in memory like the S3 buckets (fauxqs 1.9.2 cannot persist on Node 20): a persisted
      // catalog over vanished repositories would list points that no longer exist.
      const stack = await startLocalStack({});
      const sim = opts.vcdUrl ? undefined : await startVcdSimulator({ inventory });
      if (sim) addRestoreRoutes(sim, { diskDir: path.join(dataDir, 'disks') });
      const vcdUrl = opts.vcdUrl ?? sim!.url;
      const credentials = opts.vcdUrl
        ? { kind: 'apiToken' as const, token: new Secret(requireEnv(io, 'VCD_API_TOKEN')) }
        : { kind: 'password' as const, user: 'administrator', org: 'System', password: new Secret('vmware') };
      const client = await VcdClient.connect({ url: vcdUrl, credentials, log });
      let bar: Progress | undefined;
      const tasks = new Map<string, { done: number; total: number }>();
      const gateway = new VcdBackupGateway(client, simDiskLocate(dataDir), { log });
      const runtime = await startLocalRuntime({
        stack,
        dataDir,
        vcd: gateway,
        clock: systemClock,
        log,
        diskRoots: [path.join(dataDir, 'disks')],
        restoreTarget: new VcdRestoreClient(client, { locate: simDiskLocate(dataDir), log }),
        tickMs: opts.demo && opts.once ? 0 : 30_000,
        onProgress: (p) => {
          tasks.set(p.taskId, { done: p.bytesDone, total: p.bytesTotal });
          if (!bar) return;
          let done = 0;
          for (const t of tasks.values()) done += t.done;
          bar.update(done, { disks: tasks.size });
        },
      });
      const api = await startApiServer({
        port: opts.port,
        deps: { catalog: runtime.catalog, runsQueue: runtime.queues.runs, restores: runtime.restores, vcd: gateway, clock: systemClock, auth: createLocalAuthenticator({ secret: await loadOrCreateApiSecret(dataDir) }), log },
      });
      const agentConfig = path.join(dataDir, 'agent-config.json');
      await writeFile(
        agentConfig,
        JSON.stringify(
          {
            endpoint: stack.endpoints.sqs,
            credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
            queues: { tasks: stack.queueUrls.agentTasks, results: stack.queueUrls.agentResults },
            repositories: ['acme-primary', 'acme-cloud'].map((id) => ({ url: `s3://vcd-backup-${id.split('-')[1]}/acme`, passphraseFile: 'repository-passphrase' })),
            diskRoots: ['disks'],
          },
          null,
          2,
        ) + '\n',
      );
      const stopAll = async () => {
        await api.stop();
        await runtime.stop();
        await client.logout().catch(() => undefined);
        await sim?.stop();
        await stack.stop();
      };
      let summary: DemoSummary | undefined;
      try {
        const endpoints = { api: api.url, s3: stack.endpoints.s3, sqs: stack.endpoints.sqs, dynamodb: stack.endpoints.dynamodb, vcd: vcdUrl };
        if (!opts.json || !opts.demo) {
          say(`local service is up (data under ${dataDir})`);
          say(`  API                ${api.url}  (token: npx vcd-backup local token --provider --data-dir ${opts.dataDir})`);
          say(`  S3 + SQS (fauxqs)  ${endpoints.s3}`);
          say(`  DynamoDB Local     ${endpoints.dynamodb}`);
          say(`  vCD ${sim ? 'simulator ' : '          '}     ${vcdUrl}`);
          say(`  more agents        npx vcd-backup agent --config ${agentConfig}`);
          say(`  buckets            ${Object.values(stack.buckets).join(', ')}`);
          say(`  queues             ${Object.keys(stack.queueUrls).join(', ')} (each with a DLQ)`);
        }
        if (opts.demo) {
          const diskBytes = inventory.orgs?.[0]?.vdcs?.[0]?.vapps?.flatMap((v) => v.vms ?? []).flatMap((vm) => vm.disks ?? []).reduce((n, d) => n + d.sizeBytes, 0) ?? 0;
          summary = await runDemo({
            runtime,
            sim: sim!,
            vcd: client,
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

function parseScale(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new InvalidInputError(`--disk-scale must be a fraction in (0, 1], got "${value}"`);
  return n;
}

/** Shrinks the demo disks (whole MiB, at least 1) so tests run the same scenario in seconds. */
function scaleInventory(inventory: SimInventoryInput, scale: number): SimInventoryInput {
  if (scale === 1) return inventory;
  const MiB = 1 << 20;
  return JSON.parse(JSON.stringify(inventory), (key, value: unknown) =>
    key === 'sizeBytes' && typeof value === 'number' ? Math.max(MiB, Math.round((value * scale) / MiB) * MiB) : value,
  ) as SimInventoryInput;
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
  if (s.copies.length > 0) {
    const copyRows = [['COPY JOB', 'MODE', 'RUN', 'VAPPS', 'BLOCKS', 'COPIED']];
    for (const c of s.copies) copyRows.push([c.jobId, c.mode, c.runId, String(c.vapps), String(c.blocksCopied), formatBytes(c.bytesCopied)]);
    io.stderr('\n' + table(copyRows));
  }
  if (s.restores.length > 0) {
    const restoreRows = [['RESTORE', 'MODE', 'FROM POINT', 'DISKS VERIFIED', 'METADATA', 'OK']];
    for (const r of s.restores) restoreRows.push([r.vappName, r.mode, r.pointId, `${r.disksVerified}/${r.disks}`, r.metadataVerified ? 'matches' : 'differs', r.ok ? 'yes' : 'NO']);
    io.stderr('\n' + table(restoreRows));
  }
  io.stderr(
    `\n${s.totals.vapps} vApps, ${s.totals.points} restore points; read ${formatBytes(s.totals.bytesRead)}, uploaded ${formatBytes(s.totals.bytesUploaded)} ` +
      `(${s.totals.reduction ?? '-'}x less than read) in ${s.totals.seconds} s — ${s.ok ? 'every step verified' : 'SOME STEPS FAILED'}\n\n`,
  );
}
