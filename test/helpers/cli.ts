import { runCli } from '../../lib/cli/program.js';
import type { CliIo } from '../../lib/cli/support.js';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  json<T = Record<string, unknown>>(): T;
}

/** Runs the CLI in-process with captured output, as a user's shell would see it. */
export async function cli(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env, interactive: false };
  const code = await runCli(args, io);
  return { code, stdout, stderr, json: <T>() => JSON.parse(stdout) as T };
}
