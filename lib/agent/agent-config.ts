import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { readEnvSecret } from '../config.js';
import { InvalidInputError, describeIssues } from '../errors.js';
import type { KeySource } from '../repository/keys.js';
import { Secret } from '../secret.js';

/**
 * The on-prem agent's configuration file (`vcd-backup agent --config FILE`). Secrets are never in it:
 * passphrases come from environment variables or files named here, and AWS credentials from the standard
 * chain (IAM Roles Anywhere on the proxy) unless `credentials` names a local test server's fixed keys.
 */
/**
 * Queue URLs as SQS and local servers give them. Not parsed as WHATWG URLs: fauxqs answers
 * `http://sqs.<region>.127.0.0.1:<port>/...`, which the SDK accepts (it sends to `endpoint`) but URL() does not.
 */
const queueUrl = z.string().regex(/^https?:\/\/\S+$/, { message: 'must be an http(s) queue URL' });

export const agentConfigSchema = z.strictObject({
  region: z.string().min(1).default('us-east-1'),
  /** SQS/S3 endpoint for local or S3-compatible deployments; AWS when absent. */
  endpoint: z.url().optional(),
  /** Only for local servers that accept fixed keys; production uses the AWS credential chain. */
  credentials: z.strictObject({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) }).optional(),
  queues: z.strictObject({ tasks: queueUrl, results: queueUrl }),
  repositories: z
    .array(
      z
        .strictObject({
          url: z.string().min(1),
          endpoint: z.url().optional(),
          passphraseEnv: z.string().min(1).optional(),
          passphraseFile: z.string().min(1).optional(),
          keyFile: z.string().min(1).optional(),
        })
        .refine((r) => [r.passphraseEnv, r.passphraseFile, r.keyFile].filter(Boolean).length <= 1, { message: 'give at most one of passphraseEnv, passphraseFile, keyFile' }),
    )
    .min(1),
  /** Directories (or device paths) the agent may read and write disks under. */
  diskRoots: z.array(z.string().min(1)).min(1),
  concurrency: z.number().int().min(1).max(32).default(2),
  /** Deliveries of a task before its failure is final. */
  maxAttempts: z.number().int().min(1).max(10).default(3),
  /**
   * NBD servers reachable over TCP that tasks may name (`host:port`). Unix sockets need no entry: they must lie
   * under diskRoots. Without this list a task could make the agent read any NBD server its network reaches.
   */
  nbdEndpoints: z.array(z.string().regex(/^[^\s:/]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, { message: 'must be host:port' })).default([]),
  /** The vCenters whose VM disks tasks may name (`kind: 'vsphere'`), by the instance id vCD uses for them. */
  vcenters: z
    .array(
      z
        .strictObject({
          id: z.string().min(1),
          /** `https://vcenter.example/sdk` */
          url: z.url(),
          user: z.string().min(1),
          passwordEnv: z.string().min(1).optional(),
          passwordFile: z.string().min(1).optional(),
          /** SHA-256 of the vCenter certificate, to pin instead of trusting the system CAs. */
          thumbprint: z.string().regex(/^([0-9a-fA-F]{2}:?){32}$/, { message: 'must be a SHA-256 fingerprint (64 hex digits, colons optional)' }).optional(),
          /**
           * SHA-1 of the vCenter certificate as VDDK wants it (`AA:BB:...`, 20 bytes): nbdkit's vddk plugin
           * verifies the server with it. Required for the nbd transport; `openssl x509 -fingerprint -sha1`.
           */
          vddkThumbprint: z.string().regex(/^([0-9a-fA-F]{2}:){19}[0-9a-fA-F]{2}$/, { message: 'must be a SHA-1 fingerprint as VDDK takes it: 20 hex pairs separated by colons' }).optional(),
        })
        .refine((v) => [v.passwordEnv, v.passwordFile].filter(Boolean).length === 1, { message: 'give exactly one of passwordEnv, passwordFile' }),
    )
    .default([])
    .refine((vs) => new Set(vs.map((v) => v.id)).size === vs.length, { message: 'vCenter ids must be unique' }),
  /** VMware's VDDK (the directory holding lib64/libvixDiskLib.so): enables the nbd transport through nbdkit vddk. */
  vddkLibDir: z.string().min(1).optional(),
  /** @default 'nbdkit' on PATH */
  nbdkit: z.string().min(1).optional(),
});
export type AgentConfig = z.infer<typeof agentConfigSchema>;

export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new InvalidInputError(`agent config ${file} is not a readable JSON file: ${(err as Error).message}`, { cause: err });
  }
  const parsed = agentConfigSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(`agent config ${file} is invalid: ${describeIssues(parsed.error.issues)}`);
  const base = path.dirname(path.resolve(file));
  // Relative paths in the file are relative to the file, not to wherever the agent was started.
  return {
    ...parsed.data,
    diskRoots: parsed.data.diskRoots.map((r) => path.resolve(base, r)),
    repositories: parsed.data.repositories.map((r) => ({
      ...r,
      passphraseFile: r.passphraseFile && path.resolve(base, r.passphraseFile),
      keyFile: r.keyFile && path.resolve(base, r.keyFile),
    })),
    vcenters: parsed.data.vcenters.map((v) => ({ ...v, passwordFile: v.passwordFile && path.resolve(base, v.passwordFile) })),
    vddkLibDir: parsed.data.vddkLibDir && path.resolve(base, parsed.data.vddkLibDir),
  };
}

/** A configured vCenter with its password read (held as a Secret: it never reaches a log or an error). */
export interface VcenterCredentials {
  readonly id: string;
  readonly url: string;
  readonly user: string;
  readonly password: Secret;
  readonly thumbprint?: string;
  readonly vddkThumbprint?: string;
}

/** Reads every configured vCenter's password once at start, so a missing secret fails the start, not a task. */
export async function agentVcenterCredentials(config: AgentConfig, env: Record<string, string | undefined>): Promise<Map<string, VcenterCredentials>> {
  const out = new Map<string, VcenterCredentials>();
  for (const v of config.vcenters) {
    const password = v.passwordEnv ? readEnvSecret(env, v.passwordEnv) : new Secret((await readSecretFile(v.passwordFile!)).trim());
    out.set(v.id, { id: v.id, url: v.url, user: v.user, password, ...(v.thumbprint ? { thumbprint: v.thumbprint } : {}), ...(v.vddkThumbprint ? { vddkThumbprint: v.vddkThumbprint.toUpperCase() } : {}) });
  }
  return out;
}

/** The key source of each configured repository, read once at start (a missing secret fails the start). */
export async function agentKeySources(config: AgentConfig, env: Record<string, string | undefined>): Promise<Map<string, KeySource>> {
  const out = new Map<string, KeySource>();
  for (const repo of config.repositories) {
    if (repo.passphraseEnv) out.set(repo.url, { kind: 'passphrase', passphrase: readEnvSecret(env, repo.passphraseEnv) });
    else if (repo.passphraseFile) out.set(repo.url, { kind: 'passphrase', passphrase: new Secret((await readSecretFile(repo.passphraseFile)).trim()) });
    else if (repo.keyFile) out.set(repo.url, { kind: 'key-file', keyMaterial: new Secret(await readSecretFile(repo.keyFile)) });
  }
  return out;
}

async function readSecretFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}
