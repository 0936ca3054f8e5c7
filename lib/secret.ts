import { inspect } from 'node:util';

const REDACTED = '***';

/**
 * A secret value (password, token, passphrase, key) that cannot be printed by accident: string conversion,
 * JSON and `util.inspect` all show `***`. Call `reveal()` exactly where the value is needed.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
