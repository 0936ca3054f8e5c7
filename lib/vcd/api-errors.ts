/**
 * vCD error answers → typed errors (references/vcd-api.md §9). The legacy API answers with an XML `Error`
 * document, CloudAPI with JSON `{minorErrorCode, message}`; some answers have no body at all.
 */
import {
  truncate,
  VcdApiError,
  VcdAuthError,
  VcdBusyError,
  VcdNotFoundError,
  type VcdErrorDetails,
} from './errors.js';
import { attr, parseXml } from './xml.js';

export interface ErrorDocument {
  readonly majorErrorCode: string | null;
  readonly minorErrorCode: string | null;
  readonly message: string | null;
}

/** Reads an XML `Error` or a CloudAPI JSON error; all-null when the body is neither. */
export function parseErrorBody(contentType: string | undefined, body: Buffer): ErrorDocument {
  const text = body.toString('utf8').trim();
  if (text === '') return { majorErrorCode: null, minorErrorCode: null, message: null };
  if (text.startsWith('<')) {
    try {
      const node = parseXml(text, { maxBytes: 4 * 1024 * 1024 });
      if (node.name === 'Error') {
        return {
          majorErrorCode: attr(node, 'majorErrorCode') ?? null,
          minorErrorCode: attr(node, 'minorErrorCode') ?? null,
          message: truncate(attr(node, 'message') ?? null),
        };
      }
    } catch {
      // not an Error document: fall through
    }
  } else if ((contentType ?? '').includes('json') || text.startsWith('{')) {
    try {
      const json = JSON.parse(text) as Record<string, unknown>;
      const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : null);
      return { majorErrorCode: str(json.majorErrorCode), minorErrorCode: str(json.minorErrorCode), message: truncate(str(json.message)) };
    } catch {
      // fall through
    }
  }
  return { majorErrorCode: null, minorErrorCode: null, message: null };
}

export function mapError(status: number, contentType: string | undefined, body: Buffer, method: string, path: string): Error {
  const doc = parseErrorBody(contentType, body);
  const details: VcdErrorDetails = {
    status,
    majorErrorCode: doc.majorErrorCode,
    minorErrorCode: doc.minorErrorCode,
    vcdMessage: doc.message,
    method,
    path,
  };
  if (status === 401) {
    return new VcdAuthError(`vCD answered 401 to ${method} ${path}: the session is not valid (${doc.message ?? 'no message'})`, { status });
  }
  // vCD answers 403 ACCESS_TO_RESOURCE_IS_FORBIDDEN both for "forbidden" and for "does not exist".
  if (status === 404 || (status === 403 && doc.minorErrorCode === 'ACCESS_TO_RESOURCE_IS_FORBIDDEN')) return new VcdNotFoundError(details);
  if (status === 409) return new VcdBusyError(details);
  return new VcdApiError(details);
}
