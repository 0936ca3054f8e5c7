import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { App, StackProps } from 'aws-cdk-lib';
import { z } from 'zod';
import { PROJECT_ROOT } from './service-function.js';
import { ServiceStack, type ServiceStackProps } from './service-stack.js';
import { StatefulStack, type RepositoryConfig } from './stateful-stack.js';

/**
 * The app's configuration, read from CDK context (`cdk.json`, or `-c key=value` on the command line, which
 * arrives as a string: numbers and JSON are parsed). Every key is optional; see docs/operations.md.
 */
const objectLock = z.object({ mode: z.enum(['GOVERNANCE', 'COMPLIANCE']), days: z.number().int().min(1).max(36500) }).strict();
const repository = z.union([
  z.enum(['primary', 'cloud', 'archive']).transform((id) => ({ id })),
  z
    .object({
      id: z.enum(['primary', 'cloud', 'archive']),
      role: z.enum(['primary', 'cloud']).optional(),
      prefix: z.string().optional(),
      objectLock: objectLock.optional(),
    })
    .strict(),
]);
const json = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (typeof v === 'string' && /^\s*[[{]/.test(v) ? JSON.parse(v) : v), schema);
const number = z.coerce.number();

const contextSchema = z.object({
  vcdUrl: z.string().optional(),
  vcdSecretName: z.string().optional(),
  tickRate: number.optional(),
  repositories: json(z.array(repository)).optional(),
  objectLock: json(z.union([objectLock, z.literal(false), z.null()])).optional(),
  noncurrentVersionExpirationDays: number.optional(),
  alarmEmail: z.string().optional(),
  logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).optional(),
  apiThrottle: json(z.object({ rateLimit: z.number().optional(), burstLimit: z.number().optional() }).strict()).optional(),
  webAclArn: z.string().optional(),
  rolesAnywhere: json(
    z
      .object({
        certificateBundleFile: z.string().optional(),
        acmPcaArn: z.string().optional(),
        allowedCommonNames: z.array(z.string()).optional(),
        sessionDurationSeconds: z.number().optional(),
      })
      .strict(),
  ).optional(),
  jwt: json(
    z
      .object({
        issuer: z.string(),
        jwksUrl: z.string(),
        audience: z.string(),
        roleClaim: z.string().optional(),
        providerRole: z.string().optional(),
        tenantClaim: z.string().optional(),
      })
      .strict(),
  ).optional(),
  stackPrefix: z.string().regex(/^[A-Za-z][A-Za-z0-9-]*$/, 'letters, digits and dashes, starting with a letter').optional(),
});

export type AppContext = z.infer<typeof contextSchema>;

const KEYS = Object.keys(contextSchema.shape);

/** Reads and checks the app's context keys; the error names each bad key and what it should be. */
export function readAppContext(app: App): AppContext {
  const raw = Object.fromEntries(KEYS.map((k) => [k, app.node.tryGetContext(k)]).filter(([, v]) => v !== undefined && v !== ''));
  let parsed;
  try {
    parsed = contextSchema.safeParse(raw);
  } catch (err) {
    throw new Error(`cdk context: a JSON value does not parse (${(err as Error).message}); check the -c values and cdk.json`, { cause: err });
  }
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `'${i.path.join('.')}': ${i.message}`).join('; ');
    throw new Error(`cdk context is invalid: ${issues}. Fix it in cdk.json or the -c option (docs/operations.md lists the keys).`);
  }
  return parsed.data;
}

/** The `context` block of cdk.json, for tests and tools that build the app without the CDK CLI. */
export function cdkJsonContext(root: string = PROJECT_ROOT): Record<string, unknown> {
  const parsed = JSON.parse(readFileSync(path.join(root, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return parsed.context ?? {};
}

export interface VcdBackupStacks {
  readonly stateful: StatefulStack;
  readonly service: ServiceStack;
}

/** Builds both stacks from the app's context. `projectRoot` overrides where handlers and the lock file are. */
export function buildApp(app: App, options: { readonly projectRoot?: string; readonly env?: StackProps['env'] } = {}): VcdBackupStacks {
  const ctx = readAppContext(app);
  const prefix = ctx.stackPrefix ?? 'VcdBackup';
  const root = options.projectRoot ?? PROJECT_ROOT;
  const stateful = new StatefulStack(app, `${prefix}Stateful`, {
    env: options.env,
    description: 'vcd-backup: catalog table, repository buckets and keys (retained on delete)',
    repositories: ctx.repositories as RepositoryConfig[] | undefined,
    objectLock: ctx.objectLock || undefined,
    noncurrentVersionExpirationDays: ctx.noncurrentVersionExpirationDays,
  });
  const ra = ctx.rolesAnywhere;
  const serviceProps: ServiceStackProps = {
    env: options.env,
    description: 'vcd-backup: queues, functions, API, agent role, alarms',
    table: stateful.table,
    repositories: stateful.repositories,
    vcdUrl: ctx.vcdUrl,
    vcdSecretName: ctx.vcdSecretName,
    tickRateMinutes: ctx.tickRate,
    logLevel: ctx.logLevel,
    jwt: ctx.jwt,
    apiThrottle: ctx.apiThrottle,
    webAclArn: ctx.webAclArn,
    alarmEmail: ctx.alarmEmail,
    projectRoot: root,
    rolesAnywhere: ra && {
      acmPcaArn: ra.acmPcaArn,
      certificateBundlePem: ra.certificateBundleFile === undefined ? undefined : readCertificate(root, ra.certificateBundleFile),
      allowedCommonNames: ra.allowedCommonNames,
      sessionDurationSeconds: ra.sessionDurationSeconds,
    },
  };
  const service = new ServiceStack(app, `${prefix}Service`, serviceProps);
  service.addStackDependency(stateful);
  return { stateful, service };
}

function readCertificate(root: string, file: string): string {
  const full = path.resolve(root, file);
  try {
    return readFileSync(full, 'utf8');
  } catch (err) {
    throw new Error(`rolesAnywhere.certificateBundleFile: cannot read ${full} (${(err as Error).message}); point it at your agents' CA certificate (PEM)`, {
      cause: err,
    });
  }
}
