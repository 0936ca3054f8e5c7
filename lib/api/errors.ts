import { JobValidationError } from '../domain/jobs/validation.js';
import { BackupError, InvalidInputError } from '../errors.js';

/**
 * API errors. Every error an API caller sees is `{"error": {"code", "message", "details"}}` with a status
 * taken from one table keyed by `code` (never a switch on class names). Errors that are not BackupErrors,
 * and BackupErrors whose code is not in the table, are internal: the caller gets a 500 with a request id
 * and no message or stack; the cause goes to the log.
 */
export class ApiError extends BackupError {
  readonly details: unknown;
  constructor(code: string, message: string, options?: { details?: unknown; cause?: unknown }) {
    super(code, message, { cause: options?.cause, userFacing: true });
    this.details = options?.details;
  }
}

export const API_STATUS: Readonly<Record<string, number>> = {
  INVALID_REQUEST: 400,
  INVALID_JSON: 400,
  INVALID_CURSOR: 400,
  INVALID_HEADER: 400,
  CATALOG_INPUT_INVALID: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  CATALOG_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  ALREADY_EXISTS: 409,
  CATALOG_CONFLICT: 409,
  RUN_STATE_CONFLICT: 409,
  QUOTA_EXCEEDED: 409,
  JOB_IN_USE: 409,
  IDEMPOTENCY_KEY_IN_USE: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  VALIDATION_FAILED: 422,
  INVALID_JOB: 422,
  INVALID_INPUT: 422,
  RETENTION_POLICY_INVALID: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  NOT_IMPLEMENTED: 501,
};

export interface ErrorBody {
  error: { code: string; message: string; details: unknown };
}

/** The status and body for any thrown value; `internal` tells the caller to log the cause. */
export function toErrorResponse(err: unknown, requestId: string): { status: number; body: ErrorBody; internal: boolean } {
  if (err instanceof BackupError) {
    const status = API_STATUS[err.code] ?? (err instanceof InvalidInputError ? 422 : undefined);
    if (status !== undefined) {
      return { status, body: { error: { code: err.code, message: err.message, details: detailsOf(err) } }, internal: false };
    }
  }
  return {
    status: 500,
    body: { error: { code: 'INTERNAL', message: `the service failed to handle the request; quote request id ${requestId} when reporting it`, details: { requestId } } },
    internal: true,
  };
}

function detailsOf(err: BackupError): unknown {
  if (err instanceof ApiError) return err.details ?? null;
  if (err instanceof JobValidationError) return { issues: err.issues };
  return null;
}

// ---------------------------------------------------------------------------------------------- constructors

export const unauthenticated = (message: string) => new ApiError('UNAUTHENTICATED', message);
export const forbidden = (message: string) => new ApiError('FORBIDDEN', message);
/** The same answer for "missing" and "belongs to another tenant", so callers learn nothing about others. */
export const notFound = (what: string, id: string) => new ApiError('NOT_FOUND', `${what} "${id}" does not exist`, { details: { [`${camel(what)}Id`]: id } });
export const validationFailed = (what: string, issues: ReadonlyArray<{ field: string; message: string }>) =>
  new ApiError('VALIDATION_FAILED', `invalid ${what}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { details: { issues } });

function camel(what: string): string {
  return what.replace(/ (\w)/g, (_, c: string) => c.toUpperCase());
}
