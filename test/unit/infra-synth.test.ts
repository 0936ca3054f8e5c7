// A full `cdk synth` of the app, in process and offline: no AWS account (environment-agnostic stacks),
// no Docker (CDK_DOCKER points at nothing, so any Docker bundling would fail), no network. The real
// handlers in lambdas/ are bundled by the esbuild in node_modules, and cdk-nag runs as in bin/app.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, cdkJsonContext } from '../../lib/infra/app.js';
import { FUNCTIONS } from '../../lib/infra/functions.js';

let outdir: string;
let assembly: CloudAssembly;
let synthMs: number;

beforeAll(() => {
  outdir = mkdtempSync(path.join(tmpdir(), 'vcd-synth-'));
  process.env.CDK_DOCKER = path.join(outdir, 'docker-is-not-used');
  const app = new App({ outdir, context: cdkJsonContext() });
  buildApp(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  const started = Date.now();
  assembly = app.synth();
  synthMs = Date.now() - started;
}, 180_000);
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

function assetDirs(): string[] {
  const service = assembly.getStackByName('VcdBackupService');
  return Object.values(service.template.Resources as Record<string, { Type: string; Properties: { Code?: { S3Key: string } } }>)
    .filter((r) => r.Type === 'AWS::Lambda::Function')
    .map((r) => path.join(outdir, `asset.${r.Properties.Code!.S3Key.replace(/\.zip$/, '')}`));
}

describe('cdk synth (offline, local esbuild)', () => {
  it('produces both stacks, environment-agnostic, with a passing validation report', () => {
    expect(assembly.stacks.map((s) => s.stackName).sort()).toEqual(['VcdBackupService', 'VcdBackupStateful']);
    for (const s of assembly.stacks) expect(s.environment.account).toBe('unknown-account');
    const report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as { pluginReports: Array<{ violations?: unknown[] }> };
    expect(report.pluginReports.flatMap((p) => p.violations ?? [])).toEqual([]);
    // Six bundles on two cores; the budget keeps `npm test` usable.
    expect(synthMs).toBeLessThan(120_000);
  });

  it('bundles every handler as a minified ESM index.mjs with a source map', () => {
    const service = assembly.getStackByName('VcdBackupService');
    const functions = Object.values(service.template.Resources as Record<string, { Type: string; Properties: Record<string, unknown> }>).filter(
      (r) => r.Type === 'AWS::Lambda::Function',
    );
    expect(functions).toHaveLength(FUNCTIONS.length);
    for (const d of FUNCTIONS) {
      const fn = functions.find((f) => f.Properties.Description === d.description)!;
      const key = (fn.Properties.Code as { S3Key: string }).S3Key;
      const dir = path.join(outdir, `asset.${key.replace(/\.zip$/, '')}`);
      expect(existsSync(path.join(dir, 'index.mjs')), `${d.entry} bundled`).toBe(true);
      expect(existsSync(path.join(dir, 'index.mjs.map'))).toBe(true);
      const code = readFileSync(path.join(dir, 'index.mjs'), 'utf8');
      expect(code.startsWith("import { createRequire as __vcdCreateRequire } from 'node:module';"), d.entry).toBe(true);
      expect(code).toMatch(/export\s*\{[^}]*\bhandler\b[^}]*\}/);
    }
  });

  it('loads every bundle as an ES module exporting handler (no unresolved require, no native addon)', () => {
    for (const dir of assetDirs()) {
      const loaded = spawnSync(process.execPath, ['-e', `import(${JSON.stringify(path.join(dir, 'index.mjs'))}).then((m) => console.log(typeof m.handler))`], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, AWS_REGION: 'eu-west-1', CATALOG_TABLE: 'vcd-backup-catalog', RUNS_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/vcd-backup-runs', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
        timeout: 30_000,
      });
      expect(`${loaded.stdout}${loaded.stderr}`.trim(), dir).toBe('function');
    }
  });
});
