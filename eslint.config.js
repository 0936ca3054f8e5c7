// Lint enforces the layers of DESIGN.md §2: the domain and the services talk to ports, never to SDKs,
// the file system or Lambda types, and the domain never reads the wall clock (a Clock is passed in).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const forbiddenInCore = {
  patterns: [
    { group: ['@aws-sdk/*', '@aws-lambda-powertools/*', 'aws-lambda', 'aws-cdk-lib', 'aws-cdk-lib/*'], message: 'lib/domain and lib/services talk to ports; SDKs belong in adapters (DESIGN.md §2).' },
  ],
  paths: [
    { name: 'node:fs', message: 'No file system in lib/domain or lib/services: use a port.' },
    { name: 'node:fs/promises', message: 'No file system in lib/domain or lib/services: use a port.' },
    { name: 'fs', message: 'No file system in lib/domain or lib/services: use a port.' },
    { name: 'fs/promises', message: 'No file system in lib/domain or lib/services: use a port.' },
  ],
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'cdk.out/**', '.vcd-backup/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', structuredClone: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', fetch: 'readonly', performance: 'readonly', queueMicrotask: 'readonly', setImmediate: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['lib/domain/**/*.ts', 'lib/services/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', forbiddenInCore],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'Use the injected Clock, not Date.now().' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Use the injected Clock, not new Date().' },
      ],
    },
  },
);
