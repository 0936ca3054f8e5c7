import { runCli } from '../lib/cli/program.js';

process.exitCode = await runCli(process.argv.slice(2));
