import { Logger } from '@aws-lambda-powertools/logger';

/** Minimal logging surface the project uses, so services can take either logger. */
export interface Log {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Structured JSON logs for Lambda functions (Powertools). */
export function createLambdaLogger(serviceName: string, level: string = 'INFO'): Log {
  const logger = new Logger({ serviceName, logLevel: level as 'INFO' });
  return {
    debug: (m, f) => logger.debug(m, f ?? {}),
    info: (m, f) => logger.info(m, f ?? {}),
    warn: (m, f) => logger.warn(m, f ?? {}),
    error: (m, f) => logger.error(m, f ?? {}),
  };
}

/**
 * Readable logs for people at a terminal, always on stderr so stdout stays clean for `--json` output.
 */
export function createCliLogger(options: { verbose?: boolean; write?: (line: string) => void } = {}): Log {
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const fmt = (fields?: Record<string, unknown>) =>
    fields && Object.keys(fields).length > 0
      ? ' ' + Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')
      : '';
  return {
    debug: (m, f) => {
      if (options.verbose) write(`debug: ${m}${fmt(f)}`);
    },
    info: (m, f) => write(`${m}${fmt(f)}`),
    warn: (m, f) => write(`warning: ${m}${fmt(f)}`),
    error: (m, f) => write(`error: ${m}${fmt(f)}`),
  };
}

/** A logger that records lines, for tests that check what was (and was not) logged. */
export function createMemoryLogger(): Log & { lines: string[] } {
  const lines: string[] = [];
  const logger = createCliLogger({ verbose: true, write: (l) => lines.push(l) });
  return Object.assign(logger, { lines });
}
