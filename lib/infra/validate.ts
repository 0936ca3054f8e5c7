import type { IConstruct } from 'constructs';
import { Token } from 'aws-cdk-lib';

/** Thrown by construct constructors for bad props; the message names the construct and says how to fix it. */
export class InfraConfigError extends Error {
  constructor(scope: IConstruct, message: string) {
    super(`${scope.node.path}: ${message}`);
    this.name = 'InfraConfigError';
  }
}

export function check(condition: boolean, scope: IConstruct, message: string): asserts condition {
  if (!condition) throw new InfraConfigError(scope, message);
}

/** Checks a whole number in [min, max]; tokens (deploy-time values) pass. */
export function checkRange(scope: IConstruct, name: string, value: number, min: number, max: number, hint: string): void {
  if (Token.isUnresolved(value)) return;
  check(Number.isInteger(value) && value >= min && value <= max, scope, `${name} must be a whole number from ${min} to ${max} (got ${value}): ${hint}`);
}
