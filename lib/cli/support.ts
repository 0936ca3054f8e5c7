import { CommanderError, InvalidArgumentError } from 'commander';
import { ConfigError, InvalidInputError, isBackupError } from '../errors.js';
import { ObjectNotFoundError } from '../repository/object-store.js';

/** Exit codes are part of the CLI contract (DESIGN.md §8). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Record<string, string | undefined>;
  /** True when stderr is a terminal, so progress bars may be drawn. */
  readonly interactive: boolean;
}

export const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  interactive: Boolean(process.stderr.isTTY),
};

/** Machine output: one JSON document on stdout. */
export function printJson(io: CliIo, value: unknown): void {
  io.stdout(JSON.stringify(value, null, 2) + '\n');
}

/** Maps an error to the exit code and the one-line message the user sees. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof InvalidInputError || err instanceof ConfigError || err instanceof InvalidArgumentError) return EXIT_USAGE;
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  return EXIT_FAILURE;
}

export function describeError(err: unknown): string {
  if (isBackupError(err)) return `${err.message} [${err.code}]`;
  if (err instanceof ObjectNotFoundError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** commander argument parsers that reject bad values with exit code 2 and a message saying what is allowed. */
export function parsePositiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive whole number, got "${value}"`);
    return n;
  };
}

export function parsePercent(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 100) throw new InvalidArgumentError(`must be a percentage in (0, 100], got "${value}"`);
  return n;
}

export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`must be a TCP port 0-65535, got "${value}"`);
  return n;
}

/** Runs an action with Ctrl-C (and SIGTERM) turned into a clean stop at a block boundary via an AbortSignal. */
export async function withAbortOnSignal<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
