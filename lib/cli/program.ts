import { Command, CommanderError } from 'commander';
import { registerAgent } from './commands/agent.js';
import { registerDisk } from './commands/disk.js';
import { registerLocal } from './commands/local.js';
import { registerLocalToken } from './commands/local-token.js';
import { registerRepo } from './commands/repo.js';
import { registerRepoCopy } from './commands/repo-copy.js';
import { registerRepoMaintenance } from './commands/repo-maintenance.js';
import { registerVcd } from './commands/vcd.js';
import { registerVsphere } from './commands/vsphere.js';
import { registerRestore } from './commands/restore.js';
import { registerRetention } from './commands/retention.js';
import { describeError, EXIT_OK, exitCodeFor, processIo, type CliIo } from './support.js';

/** Builds the `vcd-backup` command tree (DESIGN.md §8). */
export function buildProgram(io: CliIo = processIo): Command {
  const program = new Command('vcd-backup')
    .description('Backup-as-a-service for VMware Cloud Director: vApp-aware, deduplicated, encrypted backups to S3-compatible repositories')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  registerLocalToken(registerLocal(program, io), io);
  const repo = registerRepo(program, io);
  registerRepoMaintenance(repo, io);
  registerRepoCopy(repo, io);
  registerDisk(program, io);
  registerAgent(program, io);
  registerRetention(program, io);
  registerVcd(program, io);
  registerVsphere(program, io);
  registerRestore(program, io);
  exitOverrideAll(program);
  return program;
}

function exitOverrideAll(cmd: Command): void {
  for (const sub of cmd.commands) {
    sub.exitOverride();
    exitOverrideAll(sub);
  }
}

/** Runs the CLI and returns the exit code instead of exiting, so tests can call it in-process. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) return exitCodeFor(err);
    io.stderr(`vcd-backup: ${describeError(err)}\n`);
    return exitCodeFor(err);
  }
}
