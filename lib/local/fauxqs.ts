import { buildApp } from 'fauxqs';

export interface FauxqsServer {
  /** One endpoint for both S3 (path style) and SQS. */
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Starts fauxqs (S3 and SQS in one in-process server) bound to loopback. `startFauxqs` always listens on every
 * interface, so the app is built and bound here instead (see references/local-stack.md).
 */
export async function startFauxqs(options: { port?: number } = {}): Promise<FauxqsServer> {
  const app = buildApp({ logger: false, host: '127.0.0.1' });
  const address = await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const port = Number(new URL(address).port);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      await app.close();
    },
  };
}
