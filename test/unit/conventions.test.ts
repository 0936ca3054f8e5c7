import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig, readEnvSecret } from '../../lib/config.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { BackupError, ConfigError, InvalidInputError } from '../../lib/errors.js';
import { createMemoryLogger } from '../../lib/log.js';
import { Secret } from '../../lib/secret.js';

describe('Secret', () => {
  it('never prints its value through string, JSON, inspect or a logger', () => {
    const secret = new Secret('hunter2-passphrase');
    expect(String(secret)).toBe('***');
    expect(`${secret}`).toBe('***');
    expect(JSON.stringify({ secret })).toBe('{"secret":"***"}');
    expect(inspect({ nested: { secret } })).not.toContain('hunter2');
    const log = createMemoryLogger();
    log.info('opening repository', { passphrase: secret });
    expect(log.lines.join('\n')).not.toContain('hunter2');
    expect(secret.reveal()).toBe('hunter2-passphrase');
  });
});

describe('loadConfig', () => {
  it('parses a complete environment', () => {
    const config = loadConfig({ CATALOG_TABLE: 't', RUNS_QUEUE_URL: 'http://127.0.0.1:1/q', REPOSITORY_PASSPHRASE: 'p' });
    expect(config.catalogTable).toBe('t');
    expect(config.region).toBe('us-east-1');
    expect(config.queues.runs).toBe('http://127.0.0.1:1/q');
    expect(String(config.repositoryPassphrase)).toBe('***');
  });

  it('names the missing variable', () => {
    expect(() => loadConfig({})).toThrow(ConfigError);
    expect(() => loadConfig({})).toThrow(/CATALOG_TABLE/);
  });

  it('names an invalid variable', () => {
    expect(() => loadConfig({ CATALOG_TABLE: 't', RUNS_QUEUE_URL: 'not a url' })).toThrow(/RUNS_QUEUE_URL/);
  });

  it('reads a secret from a named variable and says how to fix a missing one', () => {
    expect(readEnvSecret({ PW: 'x' }, 'PW').reveal()).toBe('x');
    expect(() => readEnvSecret({}, 'PW')).toThrow(/PW is not set/);
  });
});

describe('BackupError', () => {
  it('carries a code, a cause and the subclass name', () => {
    const cause = new Error('root');
    const err = new InvalidInputError('bad flag', { cause });
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.name).toBe('InvalidInputError');
    expect(err.cause).toBe(cause);
    expect(err.userFacing).toBe(true);
  });
});

describe('ManualClock', () => {
  it('stays put until advanced', () => {
    const clock = new ManualClock('2026-01-01T00:00:00Z');
    expect(clock.now().toISOString()).toBe('2026-01-01T00:00:00.000Z');
    clock.advance(60_000);
    expect(clock.now().toISOString()).toBe('2026-01-01T00:01:00.000Z');
  });
});
