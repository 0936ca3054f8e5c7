import { afterAll, beforeAll } from 'vitest';
import { startLocalStack, type LocalStack, type LocalStackOptions } from '../../lib/local/stack.js';

/**
 * Starts the embedded stack for one test file and stops it afterwards (also when tests fail).
 * The returned getter throws if used before `beforeAll` ran.
 */
export function useLocalStack(options: LocalStackOptions = {}): () => LocalStack {
  let stack: LocalStack | undefined;
  beforeAll(async () => {
    stack = await startLocalStack(options);
  });
  afterAll(async () => {
    await stack?.stop();
  });
  return () => {
    if (!stack) throw new Error('the local stack is not started yet');
    return stack;
  };
}
