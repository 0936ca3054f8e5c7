/**
 * Turning zod issues into messages a person can act on.
 *
 * Why our own wording: zod's defaults ("Invalid input: expected number, received string") name neither the
 * field nor the fix. Every message here is `field.path: what is wrong and what to do`, e.g.
 * `blockSize: must be a power of two between 262144 and 8388608, got 1000000`. Refinements in the job
 * schemas write their own messages in that style; this module rewords zod's built-in checks to match and
 * collects everything into one JobValidationError, so a user fixes all problems in one pass.
 */
import type { z } from 'zod';
import { InvalidInputError } from '../../errors.js';

/** One problem: the dotted field path (`scope.include.0.vappId`, `(root)` for the whole input) and the fix. */
export interface FieldIssue {
  field: string;
  message: string;
}

/** Invalid job input. `issues` lists every problem; the message joins them as `field: problem; ...`. */
export class JobValidationError extends InvalidInputError {
  readonly issues: readonly FieldIssue[];

  constructor(what: string, issues: readonly FieldIssue[]) {
    super(`invalid ${what}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { code: 'INVALID_JOB' });
    this.issues = issues;
  }
}

function fieldOf(path: ReadonlyArray<PropertyKey>): string {
  return path.length > 0 ? path.map(String).join('.') : '(root)';
}

/** A short rendering of a bad value for "got ..." (strings quoted, long values cut). */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

// zod 4 issues are a union; we read the few fields we reword through this loose view.
interface LooseIssue {
  code: string;
  path: PropertyKey[];
  message: string;
  input?: unknown;
  expected?: string;
  keys?: string[];
  values?: unknown[];
  options?: unknown[];
  discriminator?: string;
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  inclusive?: boolean;
  format?: string;
}

/** Rewords one zod issue; returns one or more field issues (unknown keys give one per key). */
export function toFieldIssues(raw: z.core.$ZodIssue): FieldIssue[] {
  const issue = raw as unknown as LooseIssue;
  const field = fieldOf(issue.path);
  const got = 'input' in issue ? `, got ${describeValue(issue.input)}` : '';
  switch (issue.code) {
    case 'invalid_type':
      if (!('input' in issue) || issue.input === undefined) {
        return [{ field, message: `is required (${article(issue.expected ?? 'value')})` }];
      }
      return [{ field, message: `must be ${article(issue.expected ?? 'value')}${got}` }];
    case 'unrecognized_keys':
      return (issue.keys ?? []).map((key) => ({
        field: fieldOf([...issue.path, key]),
        message: 'is not a known field; remove it or check its spelling (names are case-sensitive)',
      }));
    case 'invalid_union':
      if (issue.discriminator !== undefined) {
        // zod reports the whole object as the input; the user needs the discriminator's value.
        const input = issue.input;
        const value = typeof input === 'object' && input !== null ? (input as Record<string, unknown>)[issue.discriminator] : input;
        const options = (issue.options ?? []).map((o) => JSON.stringify(o)).join(', ');
        return [{ field, message: `must be one of ${options}, got ${describeValue(value)}` }];
      }
      return [{ field, message: `${issue.message}${got}` }];
    case 'invalid_value': {
      const values = (issue.values ?? []).map((v) => JSON.stringify(v)).join(', ');
      return [{ field, message: `must be ${(issue.values ?? []).length === 1 ? '' : 'one of '}${values}${got}` }];
    }
    case 'too_small':
      if (issue.origin === 'string' && Number(issue.minimum) === 1) return [{ field, message: 'must not be empty' }];
      if (issue.origin === 'array') return [{ field, message: `must list at least ${String(issue.minimum)} entr${Number(issue.minimum) === 1 ? 'y' : 'ies'}` }];
      if (issue.origin === 'string') return [{ field, message: `must be at least ${String(issue.minimum)} characters long` }];
      return [{ field, message: `must be ${issue.inclusive === false ? 'more than' : 'at least'} ${String(issue.minimum)}${got}` }];
    case 'too_big':
      if (issue.origin === 'array') return [{ field, message: `must list at most ${String(issue.maximum)} entries` }];
      if (issue.origin === 'string') return [{ field, message: `must be at most ${String(issue.maximum)} characters long` }];
      return [{ field, message: `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}${got}` }];
    case 'invalid_format':
      if (issue.format === 'datetime') {
        return [{ field, message: `must be an ISO 8601 date-time with a zone, like "2024-01-01T00:00:00Z"${got}` }];
      }
      return [{ field, message: `${issue.message}${got}` }];
    default:
      return [{ field, message: issue.message }];
  }
}

/**
 * Parses `input` with `schema`; on failure throws JobValidationError listing every bad field.
 * `what` names the document in the message ("backup job", "copy job", "schedule").
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  throw new JobValidationError(what, result.error.issues.flatMap(toFieldIssues));
}
