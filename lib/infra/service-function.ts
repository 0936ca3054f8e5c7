import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { FunctionDefinition } from './functions.js';
import { check, checkRange } from './validate.js';

/** The repository root: the directory with package.json, package-lock.json and `lambdas/`. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Replaces the native `zstd-napi` addon in bundles (see zstd-node.ts). */
const ZSTD_SHIM = path.join(PROJECT_ROOT, 'lib', 'infra', 'zstd-node.ts');

export interface ServiceFunctionProps {
  readonly definition: FunctionDefinition;
  /** Environment variables (the names `lib/config.ts` reads). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * Directory holding `package-lock.json`; `definition.entry` is relative to it.
   * @default the repository root
   */
  readonly projectRoot?: string;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Let the function send to the queue that triggers it without Lambda's recursive-loop detection
   * dropping the message after ~16 hops (the orchestrator re-enqueues its own runs).
   * @default false
   */
  readonly allowRecursiveLoop?: boolean;
}

/**
 * One handler of `lambdas/`: Node.js 22 on ARM64, bundled as ESM by the esbuild in node_modules (never
 * Docker), named `vcd-backup-<id>` (kebab case), with its own log group `/aws/lambda/<name>` and its own
 * role. The role starts with nothing but writing to that log group; the service stack adds exactly the
 * grants `lib/infra/functions.ts` lists.
 */
export class ServiceFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly definition: FunctionDefinition;

  constructor(scope: Construct, id: string, props: ServiceFunctionProps) {
    super(scope, id);
    const d = props.definition;
    const root = props.projectRoot ?? PROJECT_ROOT;
    const entry = path.join(root, d.entry);
    check(
      existsSync(entry),
      this,
      `handler ${d.entry} does not exist under ${root}: write it (it must export 'handler') or remove '${d.id}' from FUNCTIONS in lib/infra/functions.ts`,
    );
    checkRange(this, `${d.id}.memoryMiB`, d.memoryMiB, 128, 10_240, 'fix the function in lib/infra/functions.ts');
    checkRange(this, `${d.id}.timeoutSeconds`, d.timeoutSeconds, 1, 900, 'Lambda runs at most 15 minutes; fix the function in lib/infra/functions.ts');
    this.definition = d;

    const functionName = `vcd-backup-${d.id.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/lambda/${functionName}`,
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `vcd-backup ${d.id} function`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      functionName,
      entry,
      handler: 'handler',
      projectRoot: root,
      depsLockFilePath: path.join(root, 'package-lock.json'),
      description: d.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: d.memoryMiB,
      timeout: Duration.seconds(d.timeoutSeconds),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      recursiveLoop: props.allowRecursiveLoop ? lambda.RecursiveLoop.ALLOW : lambda.RecursiveLoop.TERMINATE,
      environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
      bundling: {
        // Local esbuild only: synth works with no Docker daemon and no network.
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        // Bundle the SDK versions package-lock.json pins instead of the runtime's.
        bundleAwsSDK: true,
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // zstd-napi is a native addon built for this machine; Lambda gets node:zlib's zstd instead.
        esbuildArgs: { '--alias:zstd-napi': ZSTD_SHIM },
        // CommonJS dependencies inside an ESM bundle still call require().
        banner: "import { createRequire as __vcdCreateRequire } from 'node:module'; const require = __vcdCreateRequire(import.meta.url);",
      },
    });
  }
}
