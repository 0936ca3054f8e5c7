import { z } from 'zod';
import { ConfigError, describeIssues } from './errors.js';
import { Secret } from './secret.js';

/**
 * The service's configuration, read from the environment exactly once. This module is the only reader of
 * `process.env` in the project: everything else receives a parsed `ServiceConfig`.
 * No placeholder defaults: a missing table name is an error, not a wrong table at run time.
 */
const envSchema = z.object({
  AWS_REGION: z.string().min(1).default('us-east-1'),
  CATALOG_TABLE: z.string().min(1, 'set CATALOG_TABLE to the DynamoDB table name'),
  RUNS_QUEUE_URL: z.url('set RUNS_QUEUE_URL to the runs queue URL').optional(),
  AGENT_TASKS_QUEUE_URL: z.url().optional(),
  AGENT_RESULTS_QUEUE_URL: z.url().optional(),
  COPY_TASKS_QUEUE_URL: z.url().optional(),
  AWS_ENDPOINT_URL: z.url().optional(),
  VCD_URL: z.url().optional(),
  VCD_SECRET_ARN: z.string().optional(),
  REPOSITORY_SECRET_ARN: z.string().optional(),
  LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  REPOSITORY_PASSPHRASE: z.string().min(1).optional(),
});

export interface ServiceConfig {
  readonly region: string;
  readonly catalogTable: string;
  readonly queues: {
    readonly runs?: string;
    readonly agentTasks?: string;
    readonly agentResults?: string;
    readonly copyTasks?: string;
  };
  readonly endpoint?: string;
  readonly vcdUrl?: string;
  readonly vcdSecretArn?: string;
  /** The repository-keys secret: only the functions that read or write block data get it. */
  readonly repositorySecretArn?: string;
  readonly logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  readonly repositoryPassphrase?: Secret;
}

export function loadConfig(env: Record<string, string | undefined>): ServiceConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(`invalid environment: ${describeIssues(parsed.error.issues)}`);
  }
  const e = parsed.data;
  return {
    region: e.AWS_REGION,
    catalogTable: e.CATALOG_TABLE,
    queues: {
      runs: e.RUNS_QUEUE_URL,
      agentTasks: e.AGENT_TASKS_QUEUE_URL,
      agentResults: e.AGENT_RESULTS_QUEUE_URL,
      copyTasks: e.COPY_TASKS_QUEUE_URL,
    },
    endpoint: e.AWS_ENDPOINT_URL,
    vcdUrl: e.VCD_URL,
    vcdSecretArn: e.VCD_SECRET_ARN,
    repositorySecretArn: e.REPOSITORY_SECRET_ARN,
    logLevel: e.LOG_LEVEL,
    repositoryPassphrase: e.REPOSITORY_PASSPHRASE === undefined ? undefined : new Secret(e.REPOSITORY_PASSPHRASE),
  };
}

/** Reads an environment variable for the CLI (`--passphrase-env VAR`), so no other module touches process.env. */
export function readEnvSecret(env: Record<string, string | undefined>, name: string): Secret {
  const value = env[name];
  if (value === undefined || value === '') {
    throw new ConfigError(`environment variable ${name} is not set; export it with the secret before running the command`);
  }
  return new Secret(value);
}
