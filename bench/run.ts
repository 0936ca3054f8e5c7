/**
 * `npm run bench -- <name> [options]`: the benchmarks. Never part of `npm test`; they print numbers, they
 * do not assert them.
 */
const [name, ...args] = process.argv.slice(2);

const benches: Record<string, (args: string[]) => Promise<void>> = {
  // `--transport nbd`: read throughput through nbdkit against file reads of the same image.
  disk: async (a) => (a[a.indexOf('--transport') + 1] === 'nbd' ? (await import('./nbd.js')).benchNbdTransport(a) : (await import('./disk.js')).benchDisk(a)),
  // The disk benchmark's restore step, to the local S3 server, beside restic's restore of the same image.
  restore: async (a) => (await import('./disk.js')).benchDisk(['--targets', 's3', ...a]),
  index: async (a) => (await import('./disk-index.js')).benchDiskIndex(a),
  retention: async (a) => {
    await (await import('./retention-plan.js')).benchRetentionPlan();
    await (await import('./gc.js')).benchGc(a);
  },
  gc: async (a) => (await import('./gc.js')).benchGc(a),
  copy: async (a) => (await import('./copy.js')).benchCopy(a),
  capture: async () => (await import('./capture.js')).benchCapture(),
};

const bench = name ? benches[name] : undefined;
if (!bench) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [options]\n`);
  process.exitCode = 2;
} else {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  await bench(args);
}
