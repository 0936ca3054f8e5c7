import { pathToFileURL } from 'node:url';
import { applyRetention, assignFlags, parseRetentionPolicy, type GivenPeriods, type RetentionPoint } from '../lib/domain/retention/index.js';

/**
 * `npm run bench -- retention` (plan half): plans retention over one chain of 100 000 restore points, one
 * every 4 hours from 1980 (about 45 years), with flags assigned as commits would have assigned them. Only
 * the plan is timed; building the chain is setup. Aim (issue 5): under 1 s.
 */
export async function benchRetentionPlan(options: { points?: number; runs?: number } = {}): Promise<void> {
  const count = options.points ?? 100_000;
  const runs = options.runs ?? 5;
  const policy = parseRetentionPolicy({
    shortTerm: { restorePoints: 14 },
    gfs: { weekly: { keep: 8, weekday: 'sunday' }, monthly: { keep: 24, week: 'last' }, yearly: { keep: 10, month: 'january' } },
  });

  const start = Date.UTC(1980, 0, 1, 2);
  const step = 4 * 3_600_000;
  const points: RetentionPoint[] = new Array<RetentionPoint>(count);
  let given: GivenPeriods = new Set();
  for (let i = 0; i < count; i++) {
    const at = start + i * step;
    const commit = assignFlags(policy, given, at);
    given = commit.given;
    points[i] = { id: `p${String(i).padStart(6, '0')}`, createdAt: new Date(at).toISOString(), flags: commit.flags };
  }
  const now = start + (count - 1) * step;

  const rssBefore = process.memoryUsage().rss;
  const peakBefore = process.resourceUsage().maxRSS * 1024;
  const times: number[] = [];
  let kept = 0;
  let deleted = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const plan = applyRetention(policy, points, now);
    times.push(performance.now() - t0);
    kept = plan.keep.length;
    deleted = plan.delete.length;
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  const first = times[0] ?? 0;
  const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;
  const report = {
    bench: 'retention-plan',
    points: count,
    kept,
    deleted,
    firstRunMs: Math.round(first * 10) / 10,
    medianMs: Math.round(median * 10) / 10,
    runs,
    allRunsMs: times.map((t) => Math.round(t * 10) / 10),
    rssBefore: mib(rssBefore),
    peakRssAfterSetup: mib(peakBefore),
    rssAfter: mib(process.memoryUsage().rss),
    peakRss: mib(process.resourceUsage().maxRSS * 1024),
    target: 'under 1000 ms',
    ok: first < 1000,
  };
  console.log(
    `retention plan: ${count} points → keep ${kept}, delete ${deleted}; first run ${report.firstRunMs} ms, median of ${runs} ${report.medianMs} ms ` +
      `(target < 1000 ms: ${report.ok ? 'ok' : 'MISSED'}); peak RSS ${report.peakRss} (${report.peakRssAfterSetup} after building the chain)`,
  );
  console.log(JSON.stringify(report));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchRetentionPlan();
}
