/**
 * Typed errors of the vCD client. Every one is a BackupError with a stable code and a message that says what
 * to do. Messages never contain credentials or tokens; vCD stack traces are truncated.
 */
import { BackupError } from '../errors.js';

/** A document vCD (or something pretending to be it) sent that we refuse or cannot read. */
export class VcdXmlError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('VCD_BAD_XML', message, options);
  }
}

/** Login failed or the session cannot be renewed (401). */
export class VcdAuthError extends BackupError {
  readonly status: number | null;
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super('VCD_AUTH_FAILED', message, { cause: options?.cause, userFacing: true });
    this.status = options?.status ?? null;
  }
}

export interface VcdErrorDetails {
  readonly status: number;
  readonly majorErrorCode: string | null;
  readonly minorErrorCode: string | null;
  readonly vcdMessage: string | null;
  readonly method: string;
  readonly path: string;
}

/** Any error answer of vCD, with the fields of its `Error` document. */
export class VcdApiError extends BackupError {
  readonly status: number;
  readonly majorErrorCode: string | null;
  readonly minorErrorCode: string | null;
  readonly vcdMessage: string | null;

  constructor(details: VcdErrorDetails, options?: { cause?: unknown; code?: string; message?: string }) {
    const what = details.vcdMessage ?? `HTTP ${details.status}`;
    super(
      options?.code ?? 'VCD_API_ERROR',
      options?.message ??
        `vCD answered ${details.status}${details.minorErrorCode ? ` ${details.minorErrorCode}` : ''} to ${details.method} ${details.path}: ${what}`,
      { cause: options?.cause },
    );
    this.status = details.status;
    this.majorErrorCode = details.majorErrorCode;
    this.minorErrorCode = details.minorErrorCode;
    this.vcdMessage = details.vcdMessage;
  }
}

/** The object does not exist or is not visible (404, or 403 ACCESS_TO_RESOURCE_IS_FORBIDDEN). */
export class VcdNotFoundError extends VcdApiError {
  constructor(details: VcdErrorDetails, options?: { cause?: unknown }) {
    super(details, {
      cause: options?.cause,
      code: 'VCD_NOT_FOUND',
      message: `${details.path} was not found in vCD, or these credentials cannot see it (${details.status}${
        details.minorErrorCode ? ` ${details.minorErrorCode}` : ''
      }); check the id and that the user is a system administrator or belongs to the owning organization`,
    });
  }
}

/** The object is busy or in a state that forbids the operation (409: running task, maintenance mode). */
export class VcdBusyError extends VcdApiError {
  constructor(details: VcdErrorDetails, options?: { cause?: unknown }) {
    super(details, {
      cause: options?.cause,
      code: 'VCD_BUSY',
      message: `vCD refused ${details.method} ${details.path} because the object is busy or locked (${details.status}${
        details.minorErrorCode ? ` ${details.minorErrorCode}` : ''
      }): ${details.vcdMessage ?? 'no message'}; retry when its running tasks finish or maintenance mode ends`,
    });
  }
}

/** A vCD task ended in error, canceled or aborted. */
export class VcdTaskError extends BackupError {
  readonly taskHref: string;
  readonly taskStatus: string;
  readonly majorErrorCode: string | null;
  readonly minorErrorCode: string | null;
  readonly vcdMessage: string | null;

  constructor(
    info: { taskHref: string; taskStatus: string; operation: string | null; majorErrorCode: string | null; minorErrorCode: string | null; vcdMessage: string | null },
  ) {
    super(
      'VCD_TASK_FAILED',
      `vCD task ${info.operation ?? info.taskHref} ended ${info.taskStatus}${info.vcdMessage ? `: ${info.vcdMessage}` : ''}`,
    );
    this.taskHref = info.taskHref;
    this.taskStatus = info.taskStatus;
    this.majorErrorCode = info.majorErrorCode;
    this.minorErrorCode = info.minorErrorCode;
    this.vcdMessage = info.vcdMessage;
  }
}

/** A request, task or capture did not finish in time. */
export class VcdTimeoutError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('VCD_TIMEOUT', message, options);
  }
}

/** The connection failed (DNS, refused, reset, TLS). */
export class VcdNetworkError extends BackupError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'VCD_NETWORK_ERROR', message, { cause: options?.cause, userFacing: true });
  }
}

/** Exiting maintenance mode failed: tenants stay locked out of their vApp. Alert-level. */
export class MaintenanceExitError extends BackupError {
  readonly alert = true;
  readonly vappId: string;
  /** The error of the work done inside maintenance mode, if it failed too. */
  readonly workError: unknown;
  constructor(vappId: string, options: { cause: unknown; workError?: unknown }) {
    super(
      'VCD_MAINTENANCE_EXIT_FAILED',
      `ALERT: vApp ${vappId} could not be taken out of maintenance mode; its tenants cannot change it until a system administrator runs exitMaintenanceMode on it`,
      { cause: options.cause },
    );
    this.vappId = vappId;
    this.workError = options.workError;
  }
}

/** Trims a vCD message for logs and errors (stack traces can be huge). */
export function truncate(value: string | null | undefined, max = 500): string | null {
  if (value === null || value === undefined) return null;
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
