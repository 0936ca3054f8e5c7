#!/usr/bin/env node
// Runs the TypeScript CLI directly (tsx), so `npx vcd-backup` works right after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

// Node 20 is supported locally; the SDK's notice about its future Node 22 floor is noise on every command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
await import('./cli.ts');
