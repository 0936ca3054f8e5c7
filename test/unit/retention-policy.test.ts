import { describe, expect, it } from 'vitest';
import { parseRetentionPolicy, policyToJson } from '../../lib/domain/retention/index.js';
import { InvalidInputError } from '../../lib/errors.js';

function errorOf(value: unknown): InvalidInputError {
  try {
    parseRetentionPolicy(value);
  } catch (err) {
    if (err instanceof InvalidInputError) return err;
    throw err;
  }
  throw new Error('expected the policy to be refused');
}

describe('retention policy', () => {
  it('parses the full policy of the issue', () => {
    const doc = {
      shortTerm: { restorePoints: 7 },
      gfs: { weekly: { keep: 4, weekday: 'sunday' }, monthly: { keep: 12, week: 'last' }, yearly: { keep: 3, month: 'january' } },
    };
    const policy = parseRetentionPolicy(doc);
    expect(policy).toEqual({
      shortTerm: { kind: 'restorePoints', count: 7 },
      weekly: { keep: 4, weekday: 'sunday' },
      monthly: { keep: 12, week: 'last' },
      yearly: { keep: 3, month: 'january' },
    });
    expect(policyToJson(policy)).toEqual(doc);
  });

  it('takes days instead of restore points, and GFS parts are optional', () => {
    const policy = parseRetentionPolicy({ shortTerm: { days: 14 }, gfs: { monthly: { keep: 6, week: 'first' } } });
    expect(policy.shortTerm).toEqual({ kind: 'days', count: 14 });
    expect(policy.weekly).toBeUndefined();
    expect(policy.monthly).toEqual({ keep: 6, week: 'first' });
    expect(parseRetentionPolicy({ shortTerm: { restorePoints: 1 } })).toEqual({ shortTerm: { kind: 'restorePoints', count: 1 } });
  });

  const bad: Array<[name: string, value: unknown, mentions: string[]]> = [
    ['a weekday out of the list', { shortTerm: { days: 1 }, gfs: { weekly: { keep: 1, weekday: 'Sunday' } } }, ['gfs.weekly.weekday', 'sunday, monday, tuesday, wednesday, thursday, friday, saturday']],
    ['a week out of the list', { shortTerm: { days: 1 }, gfs: { monthly: { keep: 1, week: 'fifth' } } }, ['gfs.monthly.week', 'first, second, third, fourth, last']],
    ['a month out of the list', { shortTerm: { days: 1 }, gfs: { yearly: { keep: 1, month: 'jan' } } }, ['gfs.yearly.month', 'january, february']],
    ['keep zero', { shortTerm: { days: 1 }, gfs: { weekly: { keep: 0, weekday: 'monday' } } }, ['gfs.weekly.keep', 'at least 1']],
    ['keep a fraction', { shortTerm: { days: 1 }, gfs: { yearly: { keep: 1.5, month: 'may' } } }, ['gfs.yearly.keep', 'whole number of years']],
    ['keep as a string', { shortTerm: { restorePoints: '7' } }, ['shortTerm.restorePoints', 'whole number of restore points']],
    ['both short-term kinds', { shortTerm: { days: 1, restorePoints: 2 } }, ['shortTerm', 'only one of restorePoints or days']],
    ['no short-term kind', { shortTerm: {} }, ['shortTerm', 'exactly one of restorePoints', 'days']],
    ['no short-term at all', { gfs: {} }, ['shortTerm', 'missing', 'restorePoints, days']],
    ['a misspelt field', { shortTerm: { days: 1 }, gfs: { weekley: { keep: 1, weekday: 'monday' } } }, ['gfs.weekley', 'unknown field', 'weekly, monthly, yearly']],
    ['a misspelt top-level field', { shortTerm: { days: 1 }, gsf: {} }, ['gsf', 'unknown field', 'shortTerm, gfs']],
    ['not an object', [1, 2], ['(root)', 'must be an object']],
  ];
  it.each(bad)('refuses %s, naming the field and what it allows', (_name, value, mentions) => {
    const err = errorOf(value);
    expect(err.code).toBe('RETENTION_POLICY_INVALID');
    for (const m of mentions) expect(err.message).toContain(m);
    expect(err.message).toContain('A valid policy looks like');
  });

  it('names the source in the message', () => {
    expect(() => parseRetentionPolicy({}, '--policy file "p.json"')).toThrow(/^--policy file "p\.json" is invalid: shortTerm/);
  });
});
