#!/usr/bin/env node
/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy --all` (cdk.json runs it with tsx). Configuration comes
 * from CDK context (cdk.json or -c key=value); docs/operations.md lists the keys.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildApp } from '../lib/infra/app.js';

const app = new App();
buildApp(app);
// cdk-nag 3 is a policy-validation plugin: any unacknowledged AwsSolutions finding fails the synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
