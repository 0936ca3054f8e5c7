/**
 * fauxqs in a process of its own for benchmarks, so the S3 server does not share the measured process's
 * event loop (restic talks to its server across processes too). Prints the endpoint, then serves until killed.
 */
import { startFauxqs } from '../lib/local/fauxqs.js';

const server = await startFauxqs();
process.stdout.write(`${server.endpoint}\n`);
process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
