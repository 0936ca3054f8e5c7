// cdk-nag's AwsSolutions pack over the whole app, registered exactly as bin/app.ts does. cdk-nag 3 is a
// policy-validation plugin: an unacknowledged finding makes app.synth() throw and writes
// validation-report.json. Bundling is skipped (stub handlers); infra-synth.test.ts bundles the real ones.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, cdkJsonContext } from '../../lib/infra/app.js';
import { FUNCTIONS } from '../../lib/infra/functions.js';
import { PROJECT_ROOT } from '../../lib/infra/service-function.js';

const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
let root: string;

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'vcd-nag-'));
  mkdirSync(path.join(root, 'lambdas'));
  for (const f of FUNCTIONS) writeFileSync(path.join(root, f.entry), 'export const handler = async () => ({});\n');
  copyFileSync(path.join(PROJECT_ROOT, 'package-lock.json'), path.join(root, 'package-lock.json'));
  writeFileSync(path.join(root, 'ca.pem'), CERT);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function checkedApp(context: Record<string, unknown> = {}) {
  const outdir = mkdtempSync(path.join(root, 'out-'));
  const app = new App({ outdir, context: { ...cdkJsonContext(), ...context, 'aws:cdk:bundling-stacks': [] } });
  const stacks = buildApp(app, { projectRoot: root });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stacks, outdir };
}

function expectClean(context: Record<string, unknown>) {
  const { app, stacks, outdir } = checkedApp(context);
  expect(() => app.synth()).not.toThrow();
  const report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as { pluginReports: Array<{ violations?: unknown[] }> };
  expect(report.pluginReports.flatMap((p) => p.violations ?? [])).toEqual([]);
  // No construct reported an error annotation (cdk-nag 3 no longer reports through annotations).
  for (const stack of [stacks.stateful, stacks.service]) {
    expect(Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  }
}

describe('cdk-nag AwsSolutions', () => {
  it('passes the app as configured in cdk.json', () => {
    expectClean({});
  });

  it('passes with every option on: Object Lock, Roles Anywhere, WAF, alarm e-mail, vCD URL, JWT issuer, whole-bucket prefix', () => {
    expectClean({
      objectLock: { mode: 'GOVERNANCE', days: 14 },
      repositories: [{ id: 'primary', prefix: '' }, { id: 'cloud' }, { id: 'archive', role: 'cloud', prefix: 'a/b/' }],
      rolesAnywhere: { certificateBundleFile: 'ca.pem', allowedCommonNames: ['agent-*'] },
      webAclArn: 'arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/vcd/0b1c',
      alarmEmail: 'ops@example.com',
      vcdUrl: 'https://vcd.example.com',
      jwt: { issuer: 'https://idp.example.com/', jwksUrl: 'https://idp.example.com/jwks.json', audience: 'vcd-backup' },
    });
  });

  it('fails the synth on an unacknowledged finding, naming the rule (the checks really run)', () => {
    const { app, stacks, outdir } = checkedApp();
    stacks.service.functions.api!.role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:*'], resources: ['*'] }));
    expect(() => app.synth()).toThrow(/AwsSolutions-IAM5\[Action::s3:\*\]/);
    const report = readFileSync(path.join(outdir, 'validation-report.json'), 'utf8');
    expect(report).toContain('AwsSolutions-IAM5[Action::s3:*]');
    expect(report).toContain('AwsSolutions-IAM5[Resource::*]');
    expect(report).toContain('VcdBackupService/ApiFunction/Role/DefaultPolicy/Resource');
  });
});
