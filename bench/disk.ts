/**
 * `npm run bench -- disk [--size 4GiB] [--block-size 1MiB] [--targets file,s3] [--no-restic] [--dir DIR]`
 *
 * Full backup, 5 %-changed incremental (1 MiB-aligned random writes; measured both without and with
 * changed-block tracking) and full restore of a deterministic synthetic image, to a local-directory
 * repository and to fauxqs (S3, in a separate process). Prints MB/s of disk, bytes uploaded and peak RSS,
 * and, when restic is installed, restic on the same image and repository kind with the ratios.
 */
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CodecPool } from '../lib/agent/codec-pool.js';
import { backupSingleDisk, restoreSingleDisk } from '../lib/agent/disk-jobs.js';
import { systemClock } from '../lib/system-clock.js';
import { LocalDirStore } from '../lib/repository/local-dir-store.js';
import { Repository } from '../lib/repository/repository.js';
import { createS3Client, S3Store } from '../lib/repository/s3-store.js';
import { Secret } from '../lib/secret.js';
import { mutateImage, writeSyntheticImage } from '../test/helpers/synthetic-image.js';
import { dropCaches, hasCommand, measure, MiB, row, sha256File, startFauxqsProcess, timeCommand } from './support.js';

function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|m|g|t)?i?b?$/i.exec(v.trim());
  if (!m) throw new Error(`cannot read size "${v}": use e.g. 4GiB, 512MiB or a byte count`);
  const mult = { k: 1024, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB }[(m[2] ?? '').toLowerCase() as 'k'] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

interface Step {
  tool: string;
  target: string;
  step: string;
  seconds: number;
  mbps: number;
  uploadedMiB: number | null;
  readMiB: number | null;
  peakRssMiB: number | null;
  cache: string;
}

export async function benchDisk(args: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const size = parseSize(opt('--size') ?? '4GiB');
  const blockSize = parseSize(opt('--block-size') ?? '1MiB');
  const targets = (opt('--targets') ?? 'file,s3').split(',');
  const withRestic = !args.includes('--no-restic');
  const dir = path.resolve(opt('--dir') ?? '.vcd-backup/bench');
  await mkdir(dir, { recursive: true });
  const base = path.join(dir, `base-${size}.img`);
  const mutated = path.join(dir, `mutated-${size}.img`);
  const steps: Step[] = [];

  if (!(await stat(base).catch(() => undefined))) {
    process.stderr.write(`generating ${size / MiB} MiB synthetic image (zero, text-like and random regions)...\n`);
    await writeSyntheticImage(base, size, { seed: 'bench' });
  }
  await copyFile(base, mutated);
  const areas = await mutateImage(mutated, size, { share: 0.05, writeSize: MiB, seed: 'bench-mutate' });
  const changedBytes = areas.reduce((n, a) => n + a.length, 0);
  const mutatedSha = await sha256File(mutated);
  process.stderr.write(`image ${size / MiB} MiB, ${areas.length} changed MiB (${((changedBytes / size) * 100).toFixed(1)} %), block size ${blockSize / MiB} MiB\n`);

  const passphrase = new Secret('benchmark passphrase');
  const fauxqs = targets.includes('s3') ? await startFauxqsProcess() : undefined;
  try {
    for (const target of targets) {
      let store;
      if (target === 'file') {
        const repoDir = path.join(dir, 'repo-ours');
        await rm(repoDir, { recursive: true, force: true });
        store = new LocalDirStore(repoDir);
      } else {
        const bucket = `bench-${Date.now()}`;
        const client = createS3Client({ endpoint: fauxqs!.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, forcePathStyle: true });
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
        store = new S3Store({ bucket, prefix: 'repo', client });
      }
      const repository = await Repository.init(store, { clock: systemClock, blockSize, keySource: { kind: 'passphrase', passphrase } });
      const pool = new CodecPool(repository.codecSettings());
      const record = (step: string, m: { seconds: number; peakRssMiB: number }, bytes: number, uploaded: number | null, read: number | null, cache: string) =>
        steps.push({ tool: 'vcd-backup', target, step, seconds: m.seconds, mbps: bytes / 1e6 / m.seconds, uploadedMiB: uploaded === null ? null : uploaded / MiB, readMiB: read === null ? null : read / MiB, peakRssMiB: m.peakRssMiB, cache });
      try {
        let cache = dropCaches();
        const full = await measure(() => backupSingleDisk({ repository, clock: systemClock, sourcePath: base, vappId: 'bench', diskId: 'disk-0', pool }));
        record('full backup', full, size, full.result.bytesUploaded, full.result.bytesRead, cache);

        cache = dropCaches();
        const incr = await measure(() => backupSingleDisk({ repository, clock: systemClock, sourcePath: mutated, vappId: 'bench', diskId: 'disk-0', parentPointId: full.result.pointId, pool }));
        record('incr 5% (read all)', incr, size, incr.result.bytesUploaded, incr.result.bytesRead, cache);

        cache = dropCaches();
        const cbt = await measure(() =>
          backupSingleDisk({ repository, clock: systemClock, sourcePath: mutated, vappId: 'bench', diskId: 'disk-0', parentPointId: full.result.pointId, changedAreas: areas, pool }),
        );
        record('incr 5% (CBT)', cbt, size, cbt.result.bytesUploaded, cbt.result.bytesRead, cache);

        const out = path.join(dir, 'restored.img');
        await rm(out, { force: true });
        cache = dropCaches();
        const restore = await measure(() => restoreSingleDisk({ repository, clock: systemClock, pointId: incr.result.pointId, vappId: 'bench', diskId: 'disk-0', out, pool }));
        record('restore', restore, size, null, null, cache);
        const same = (await sha256File(out)) === mutatedSha;
        if (!same) throw new Error('the restored image differs from the backed-up image');
        process.stderr.write(`${target}: restored image verified by SHA-256; incremental uploaded ${(incr.result.bytesUploaded / MiB).toFixed(1)} MiB for ${(changedBytes / MiB).toFixed(0)} MiB changed (stored, compressed)\n`);
        await rm(out, { force: true });
      } finally {
        await pool.close();
      }
      if (withRestic) await benchRestic(target, dir, base, mutated, size, steps, fauxqs?.endpoint);
    }
  } finally {
    await fauxqs?.stop();
    await rm(mutated, { force: true });
  }
  printTable(steps, size);
}

async function benchRestic(target: string, dir: string, base: string, mutated: string, size: number, steps: Step[], endpoint?: string): Promise<void> {
  if (!hasCommand('restic')) {
    process.stderr.write('restic is not installed (apt-get install -y restic): no comparison\n');
    return;
  }
  const src = path.join(dir, 'src');
  await mkdir(src, { recursive: true });
  const disk = path.join(src, 'disk.img');
  const repo = target === 'file' ? path.join(dir, 'repo-restic') : `s3:${endpoint}/restic-${Date.now()}`;
  if (target === 'file') await rm(repo, { recursive: true, force: true });
  const env = { RESTIC_PASSWORD: 'benchmark passphrase', RESTIC_REPOSITORY: repo, AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', RESTIC_CACHE_DIR: path.join(dir, 'restic-cache') };
  if (target !== 'file') {
    // restic needs the bucket to exist on servers that do not create it on demand
    const client = createS3Client({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, forcePathStyle: true });
    await client.send(new CreateBucketCommand({ Bucket: repo.split('/').pop()! }));
  }
  // restic asks a non-AWS endpoint for the bucket's region and chokes on fauxqs' answer; name it instead.
  const opts = target === 'file' ? [] : ['-o', 's3.region=us-east-1'];
  const init = timeCommand('restic', [...opts, 'init', '--repository-version', '2'], env);
  if (!init.ok) {
    process.stderr.write(`restic init failed on ${target}: ${init.output.slice(0, 400)}\n`);
    return;
  }
  const duBytes = async () => (target === 'file' ? Number(timeCommand('du', ['-sb', repo], {}).output.split('\t')[0]) : NaN);
  const run = async (step: string, cmd: string[], prepare?: () => Promise<void>) => {
    await prepare?.();
    const before = await duBytes();
    const cache = dropCaches();
    const res = timeCommand('restic', [...opts, ...cmd], env);
    if (!res.ok) {
      process.stderr.write(`restic ${step} failed on ${target}: ${res.output.slice(0, 400)}\n`);
      return false;
    }
    const after = await duBytes();
    steps.push({ tool: 'restic', target, step, seconds: res.seconds, mbps: size / 1e6 / res.seconds, uploadedMiB: Number.isNaN(after) ? null : (after - before) / MiB, readMiB: null, peakRssMiB: null, cache });
    return true;
  };
  if (!(await run('full backup', ['backup', '--host', 'bench', disk], () => copyFile(base, disk)))) return;
  if (!(await run('incr 5% (read all)', ['backup', '--host', 'bench', disk], () => copyFile(mutated, disk)))) return;
  const target_ = path.join(dir, 'restic-restore');
  await rm(target_, { recursive: true, force: true });
  await run('restore', ['restore', 'latest', '--target', target_]);
  await rm(target_, { recursive: true, force: true });
  await rm(src, { recursive: true, force: true });
  if (target === 'file') await rm(repo, { recursive: true, force: true });
}

function printTable(steps: Step[], size: number): void {
  const widths = [11, 7, 20, 9, 9, 13, 10, 10, 6];
  const out: string[] = [];
  out.push(`\nDisk pipeline benchmark: ${(size / MiB).toFixed(0)} MiB image, ${process.arch}, Node ${process.version}`);
  out.push(row(['tool', 'target', 'step', 'seconds', 'MB/s', 'uploaded MiB', 'read MiB', 'peak RSS', 'cache'], widths));
  for (const s of steps) {
    out.push(
      row(
        [s.tool, s.target, s.step, s.seconds.toFixed(2), s.mbps.toFixed(0), s.uploadedMiB === null ? '-' : s.uploadedMiB.toFixed(1), s.readMiB === null ? '-' : s.readMiB.toFixed(0), s.peakRssMiB === null ? '-' : `${s.peakRssMiB} MiB`, s.cache],
        widths,
      ),
    );
  }
  const ours = steps.filter((s) => s.tool === 'vcd-backup');
  const theirs = steps.filter((s) => s.tool === 'restic');
  if (theirs.length > 0) {
    out.push('\nvcd-backup vs restic (speed ratio > 1 means vcd-backup is faster)');
    for (const t of theirs) {
      const o = ours.find((s) => s.target === t.target && s.step === t.step);
      if (o) out.push(`  ${t.target.padEnd(5)} ${t.step.padEnd(20)} ${(t.seconds / o.seconds).toFixed(2)}x  (${o.seconds.toFixed(2)} s vs ${t.seconds.toFixed(2)} s)`);
    }
  }
  process.stdout.write(out.join('\n') + '\n');
}
