import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createApi, type ApiDeps } from './app.js';

export interface ApiServer {
  /** e.g. `http://127.0.0.1:8080` (the port actually bound when 0 was asked for). */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Serves the API over HTTP for local mode and tests (`port: 0` picks a free port). Binds 127.0.0.1 by
 * default: local tokens are bearer secrets sent in clear text, so the API is not exposed to the network.
 */
export async function startApiServer(options: { deps: ApiDeps; port: number; host?: string }): Promise<ApiServer> {
  const app = createApi(options.deps);
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: (request) => app.fetch(request), port: options.port, hostname: host }, (info: AddressInfo) => {
      const shown = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      resolve({
        url: `http://${shown}:${info.port}`,
        stop: () =>
          new Promise<void>((done, fail) => {
            if ('closeAllConnections' in server) server.closeAllConnections();
            server.close((err) => (err ? fail(err) : done()));
          }),
      });
    });
    server.once('error', reject);
  });
}
