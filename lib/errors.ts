/**
 * The one error base of the project. Every error a user can meet has a stable `code` (for scripts, the API
 * and alarms) and a message that says what went wrong and how to fix it. Internal causes ride along in
 * `cause` and are never shown to API callers.
 */
export class BackupError extends Error {
  readonly code: string;
  /** True when the message is meant for the person running the command (bad input, missing key, ...). */
  readonly userFacing: boolean;

  constructor(code: string, message: string, options?: { cause?: unknown; userFacing?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.userFacing = options?.userFacing ?? false;
  }
}

/** Bad input from a user or a caller: a flag, a config file, an API body. Exit code 2 in the CLI. */
export class InvalidInputError extends BackupError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'INVALID_INPUT', message, { cause: options?.cause, userFacing: true });
  }
}

/** Configuration read from the environment is missing or invalid. */
export class ConfigError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', message, { cause: options?.cause, userFacing: true });
  }
}

/** A prerequisite on the machine is missing (a Java runtime, a tool). */
export class PrerequisiteError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PREREQUISITE_MISSING', message, { cause: options?.cause, userFacing: true });
  }
}

export function isBackupError(err: unknown): err is BackupError {
  return err instanceof BackupError;
}

/** Formats a zod issue list as `field: problem` lines, so validation errors name the field to fix. */
export function describeIssues(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): string {
  return issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
