import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: process.cwd() });

async function ruleIds(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => m.ruleId ?? m.message);
}

describe('layer rules (DESIGN.md §2)', () => {
  it('refuse AWS SDK, node:fs and Lambda types in lib/domain and lib/services', async () => {
    for (const file of ['lib/domain/probe.ts', 'lib/services/probe.ts']) {
      expect(await ruleIds(file, "import { S3Client } from '@aws-sdk/client-s3';\nexport const c = S3Client;\n")).toContain('@typescript-eslint/no-restricted-imports');
      expect(await ruleIds(file, "import { readFile } from 'node:fs/promises';\nexport const r = readFile;\n")).toContain('@typescript-eslint/no-restricted-imports');
      expect(await ruleIds(file, "import type { SQSEvent } from 'aws-lambda';\nexport type E = SQSEvent;\n")).toContain('@typescript-eslint/no-restricted-imports');
    }
  });

  it('refuse the wall clock in the domain', async () => {
    expect(await ruleIds('lib/domain/probe.ts', 'export const t = Date.now();\n')).toContain('no-restricted-syntax');
    expect(await ruleIds('lib/domain/probe.ts', 'export const t = new Date();\n')).toContain('no-restricted-syntax');
    expect(await ruleIds('lib/domain/probe.ts', "export const t = new Date('2026-01-01');\n")).toEqual([]);
  });

  it('allow SDK imports in adapters', async () => {
    expect(await ruleIds('lib/repository/probe.ts', "import { S3Client } from '@aws-sdk/client-s3';\nexport const c = S3Client;\n")).toEqual([]);
  });
});
