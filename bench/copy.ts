/**
 * `npm run bench -- copy [--size 4GiB] [--block-size 1MiB] [--modes raw,reencrypt] [--no-verify] [--dir DIR]`
 *
 * Repository-to-repository copy between two buckets of one fauxqs S3 server (in a separate process): a
 * deterministic synthetic image is backed up (full, then a 5 % incremental of 1 MiB-aligned random writes)
 * into a source bucket; the full is copied to a target bucket, then the incremental. Modes: `raw` copies
 * between plaintext repositories (stored bytes move as they are, after verification); `reencrypt` copies
 * between encrypted repositories with different keys (decode, re-name, re-encrypt). Prints MB/s and the
 * bytes the incremental copy moved against the bytes the source incremental uploaded (aim: exactly 1.00).
 */
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CodecPool } from '../lib/agent/codec-pool.js';
import { backupSingleDisk, restoreSingleDisk } from '../lib/agent/disk-jobs.js';
import { copyPoint, type CopyPointResult } from '../lib/repository/copy-point.js';
import type { KeySource } from '../lib/repository/keys.js';
import { Repository } from '../lib/repository/repository.js';
import { createS3Client, S3Store } from '../lib/repository/s3-store.js';
import { Secret } from '../lib/secret.js';
import { systemClock } from '../lib/system-clock.js';
import { mutateImage, writeSyntheticImage } from '../test/helpers/synthetic-image.js';
import { measure, MiB, row, sha256File, startFauxqsProcess } from './support.js';

function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|m|g|t)?i?b?$/i.exec(v.trim());
  if (!m) throw new Error(`cannot read size "${v}": use e.g. 4GiB, 512MiB or a byte count`);
  const mult = { k: 1024, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB }[(m[2] ?? '').toLowerCase() as 'k'] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

interface Line {
  mode: string;
  step: string;
  seconds: number;
  diskMBps: number;
  copiedMBps: number;
  blocksCopied: number;
  copiedMiB: number;
  newMiB: number;
  ratio: number;
  peakRssMiB: number;
}

export async function benchCopy(args: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const size = parseSize(opt('--size') ?? '4GiB');
  const blockSize = parseSize(opt('--block-size') ?? '1MiB');
  const modes = (opt('--modes') ?? 'raw,reencrypt').split(',');
  const verify = !args.includes('--no-verify');
  const dir = path.resolve(opt('--dir') ?? '.vcd-backup/bench');
  await mkdir(dir, { recursive: true });
  const base = path.join(dir, `base-${size}.img`);
  const mutated = path.join(dir, `copy-mutated-${size}.img`);
  if (!(await stat(base).catch(() => undefined))) {
    process.stderr.write(`generating ${size / MiB} MiB synthetic image (zero, text-like and random regions)...\n`);
    await writeSyntheticImage(base, size, { seed: 'bench' });
  }
  await copyFile(base, mutated);
  const areas = await mutateImage(mutated, size, { share: 0.05, writeSize: MiB, seed: 'bench-mutate' });
  const mutatedSha = verify ? await sha256File(mutated) : '';
  process.stderr.write(`image ${size / MiB} MiB, ${areas.length} changed MiB, block size ${blockSize / MiB} MiB\n`);

  const lines: Line[] = [];
  const fauxqs = await startFauxqsProcess();
  const client = createS3Client({ endpoint: fauxqs.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, forcePathStyle: true });
  const newRepository = async (label: string, keySource?: KeySource) => {
    const bucket = `bench-copy-${label}-${Date.now()}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    return Repository.init(new S3Store({ bucket, prefix: 'repo', client }), { clock: systemClock, blockSize, keySource });
  };
  try {
    for (const mode of modes) {
      if (mode !== 'raw' && mode !== 'reencrypt') throw new Error(`unknown mode "${mode}": use raw or reencrypt`);
      const keys = (name: string): KeySource | undefined => (mode === 'raw' ? undefined : { kind: 'passphrase', passphrase: new Secret(`benchmark ${name}`) });
      const source = await newRepository('src', keys('source'));
      const target = await newRepository('dst', keys('target'));
      const pool = new CodecPool(source.codecSettings());
      let full, incr;
      try {
        process.stderr.write(`${mode}: backing up the source (full, then 5 % with CBT)...\n`);
        full = await backupSingleDisk({ repository: source, clock: systemClock, sourcePath: base, vappId: 'bench', diskId: 'disk-0', pool });
        incr = await backupSingleDisk({ repository: source, clock: systemClock, sourcePath: mutated, vappId: 'bench', diskId: 'disk-0', parentPointId: full.pointId, changedAreas: areas, pool });
      } finally {
        await pool.close();
      }
      const record = (step: string, m: { result: CopyPointResult; seconds: number; peakRssMiB: number }, newBytes: number) =>
        lines.push({
          mode,
          step,
          seconds: m.seconds,
          diskMBps: size / 1e6 / m.seconds,
          copiedMBps: m.result.bytesCopied / 1e6 / m.seconds,
          blocksCopied: m.result.blocksCopied,
          copiedMiB: m.result.bytesCopied / MiB,
          newMiB: newBytes / MiB,
          ratio: m.result.bytesCopied / newBytes,
          peakRssMiB: m.peakRssMiB,
        });
      process.stderr.write(`${mode}: copying the full...\n`);
      const copiedFull = await measure(() => copyPoint({ source, target, pointId: full.pointId, vappId: 'bench' }));
      record('copy full', copiedFull, full.bytesUploaded);
      process.stderr.write(`${mode}: copying the 5 % incremental...\n`);
      const copiedIncr = await measure(() => copyPoint({ source, target, pointId: incr.pointId, vappId: 'bench' }));
      record('copy incr 5%', copiedIncr, incr.bytesUploaded);
      if (copiedIncr.result.blocksCopied !== incr.blocksNew) {
        process.stderr.write(`${mode}: WARNING the incremental copy moved ${copiedIncr.result.blocksCopied} blocks, the source incremental uploaded ${incr.blocksNew}\n`);
      }
      if (verify) {
        const out = path.join(dir, 'copy-restored.img');
        await restoreSingleDisk({ repository: target, clock: systemClock, pointId: incr.pointId, vappId: 'bench', diskId: 'disk-0', out });
        const same = (await sha256File(out)) === mutatedSha;
        await rm(out, { force: true });
        if (!same) throw new Error(`${mode}: the copied incremental does not restore to the backed-up image`);
        process.stderr.write(`${mode}: the copied incremental restores byte-identical (SHA-256)\n`);
      }
    }
  } finally {
    client.destroy();
    await fauxqs.stop();
    await rm(mutated, { force: true });
  }
  const widths = [10, 13, 8, 10, 12, 14, 11, 8, 11, 9];
  const out: string[] = [];
  out.push(`\nCopy benchmark: ${(size / MiB).toFixed(0)} MiB image, ${blockSize / MiB} MiB blocks, two buckets on one fauxqs process, ${process.arch}, Node ${process.version}`);
  out.push(row(['mode', 'step', 'seconds', 'disk MB/s', 'copied MB/s', 'blocks copied', 'copied MiB', 'new MiB', 'copied/new', 'peak RSS'], widths));
  for (const l of lines) {
    out.push(row([l.mode, l.step, l.seconds.toFixed(2), l.diskMBps.toFixed(0), l.copiedMBps.toFixed(0), l.blocksCopied, l.copiedMiB.toFixed(1), l.newMiB.toFixed(1), l.ratio.toFixed(2), `${l.peakRssMiB} MiB`], widths));
  }
  out.push('copied/new: stored bytes the copy wrote to the target ÷ stored bytes the source backup uploaded for that point');
  process.stdout.write(out.join('\n') + '\n');
}
