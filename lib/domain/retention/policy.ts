import { z } from 'zod';
import { InvalidInputError } from '../../errors.js';

/**
 * The retention policy a job carries, in the JSON shape users write by hand (issue 5):
 *
 * ```json
 * { "shortTerm": { "restorePoints": 7 },
 *   "gfs": { "weekly": { "keep": 4, "weekday": "sunday" },
 *            "monthly": { "keep": 12, "week": "last" },
 *            "yearly": { "keep": 3, "month": "january" } } }
 * ```
 *
 * Objects are strict: a misspelt field ("weekdy") is refused rather than silently ignored, because an ignored
 * field in a retention policy means restore points deleted that the user meant to keep.
 */

export const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;
export const MONTH_WEEKS = ['first', 'second', 'third', 'fourth', 'last'] as const;
export const MONTHS = [
  'january', 'february', 'march', 'april', 'may', 'june',
  'july', 'august', 'september', 'october', 'november', 'december',
] as const;

export type Weekday = (typeof WEEKDAYS)[number];
export type MonthWeek = (typeof MONTH_WEEKS)[number];
export type Month = (typeof MONTHS)[number];

/** GFS flags, in the order they cascade (weekly feeds monthly, monthly feeds yearly). */
export const RETENTION_FLAGS = ['weekly', 'monthly', 'yearly'] as const;
export type RetentionFlag = (typeof RETENTION_FLAGS)[number];

const count = (what: string) =>
  z.number({ error: `must be a whole number of ${what}, at least 1` }).int({ error: `must be a whole number of ${what}, at least 1` }).min(1, { error: `must be a whole number of ${what}, at least 1` });

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(', ')}` });

const ShortTermSchema = z
  .strictObject({
    restorePoints: count('restore points').optional(),
    days: count('days').optional(),
  })
  .check((ctx) => {
    const given = ['restorePoints', 'days'].filter((k) => ctx.value[k as 'restorePoints' | 'days'] !== undefined);
    if (given.length !== 1) {
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        path: [],
        message: given.length === 0
          ? 'give exactly one of restorePoints (keep the N newest points) or days (keep the last N days)'
          : 'give only one of restorePoints or days, not both',
      });
    }
  });

export const RetentionPolicySchema = z.strictObject({
  shortTerm: ShortTermSchema,
  gfs: z
    .strictObject({
      weekly: z.strictObject({ keep: count('weeks'), weekday: oneOf(WEEKDAYS) }).optional(),
      monthly: z.strictObject({ keep: count('months'), week: oneOf(MONTH_WEEKS) }).optional(),
      yearly: z.strictObject({ keep: count('years'), month: oneOf(MONTHS) }).optional(),
    })
    .optional(),
});

type RawPolicy = z.infer<typeof RetentionPolicySchema>;

/** Short-term retention, normalised to a tagged union so callers cannot see both or neither. */
export type ShortTerm = { readonly kind: 'restorePoints'; readonly count: number } | { readonly kind: 'days'; readonly count: number };

export interface RetentionPolicy {
  readonly shortTerm: ShortTerm;
  readonly weekly?: { readonly keep: number; readonly weekday: Weekday };
  readonly monthly?: { readonly keep: number; readonly week: MonthWeek };
  readonly yearly?: { readonly keep: number; readonly month: Month };
}

export const EXAMPLE_POLICY = '{"shortTerm": {"restorePoints": 7}, "gfs": {"weekly": {"keep": 4, "weekday": "sunday"}, "monthly": {"keep": 12, "week": "last"}, "yearly": {"keep": 3, "month": "january"}}}';

/**
 * Validates a policy document (already parsed from JSON) and normalises it. Throws InvalidInputError with
 * code RETENTION_POLICY_INVALID whose message names every bad field and what it allows, e.g.
 * `gfs.weekly.weekday: must be one of sunday, monday, ...`.
 */
export function parseRetentionPolicy(value: unknown, source = 'retention policy'): RetentionPolicy {
  const result = RetentionPolicySchema.safeParse(value);
  if (!result.success) {
    throw new InvalidInputError(
      `${source} is invalid: ${describePolicyIssues(result.error.issues)}. A valid policy looks like ${EXAMPLE_POLICY} (each gfs part is optional)`,
      { code: 'RETENTION_POLICY_INVALID' },
    );
  }
  return normalise(result.data);
}

/** The inverse of parseRetentionPolicy: the JSON document for a policy. */
export function policyToJson(policy: RetentionPolicy): RawPolicy {
  const gfs: NonNullable<RawPolicy['gfs']> = {};
  if (policy.weekly) gfs.weekly = { ...policy.weekly };
  if (policy.monthly) gfs.monthly = { ...policy.monthly };
  if (policy.yearly) gfs.yearly = { ...policy.yearly };
  const shortTerm = policy.shortTerm.kind === 'days' ? { days: policy.shortTerm.count } : { restorePoints: policy.shortTerm.count };
  return Object.keys(gfs).length > 0 ? { shortTerm, gfs } : { shortTerm };
}

function normalise(raw: RawPolicy): RetentionPolicy {
  const shortTerm: ShortTerm = raw.shortTerm.days !== undefined
    ? { kind: 'days', count: raw.shortTerm.days }
    : { kind: 'restorePoints', count: raw.shortTerm.restorePoints ?? 1 };
  return {
    shortTerm,
    ...(raw.gfs?.weekly ? { weekly: raw.gfs.weekly } : {}),
    ...(raw.gfs?.monthly ? { monthly: raw.gfs.monthly } : {}),
    ...(raw.gfs?.yearly ? { yearly: raw.gfs.yearly } : {}),
  };
}

const ALLOWED_KEYS: Record<string, readonly string[]> = {
  '': ['shortTerm', 'gfs'],
  shortTerm: ['restorePoints', 'days'],
  gfs: ['weekly', 'monthly', 'yearly'],
  'gfs.weekly': ['keep', 'weekday'],
  'gfs.monthly': ['keep', 'week'],
  'gfs.yearly': ['keep', 'month'],
};

function describePolicyIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const parent = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        const allowed = ALLOWED_KEYS[parent] ?? [];
        return issue.keys
          .map((key) => `${parent ? `${parent}.` : ''}${key}: unknown field (allowed here: ${allowed.join(', ')})`)
          .join('; ');
      }
      if (issue.code === 'invalid_type' && issue.expected === 'object') {
        const fields = ALLOWED_KEYS[parent];
        const missing = issue.message.endsWith('received undefined');
        return `${parent || '(root)'}: ${missing ? 'is missing, give' : 'must be'} an object${fields ? ` with ${fields.join(', ')}` : ''}`;
      }
      return `${parent || '(root)'}: ${issue.message}`;
    })
    .join('; ');
}
