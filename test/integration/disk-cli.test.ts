import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { cli } from '../helpers/cli.js';
import { useLocalStack } from '../helpers/local-stack.js';
import { mutateImage, writeSyntheticImage } from '../helpers/synthetic-image.js';

const MiB = 1024 * 1024;
const stack = useLocalStack({ dynamodb: false });
let work: string;
let image: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'vcdb-cli-'));
  image = path.join(work, 'disk.img');
  await writeSyntheticImage(image, 4 * MiB + 4096, { seed: 'cli', regionSize: MiB });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});
const sha = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

interface BackupJson {
  pointId: string;
  bytesRead: number;
  bytesUploaded: number;
  blocksTotal: number;
  blocksZero: number;
  blocksNew: number;
  blocksReused: number;
  seconds: number;
}

describe('vcd-backup repo and disk commands', () => {
  it('init, backup, incremental with --changed-areas, points, stats, restore and verify on a file:// repository', async () => {
    const repo = `file://${work}/plain`;
    expect((await cli(['repo', 'init', '--repo', repo, '--block-size', String(MiB), '--json'])).code).toBe(0);

    const full = await cli(['disk', 'backup', '--repo', repo, '--source', image, '--vapp', 'vapp-a', '--disk', 'disk-0', '--json']);
    expect(full.code).toBe(0);
    const f = full.json<BackupJson>();
    for (const field of ['pointId', 'bytesRead', 'bytesUploaded', 'blocksTotal', 'blocksZero', 'blocksNew', 'blocksReused', 'seconds']) expect(f).toHaveProperty(field);
    expect(f.bytesRead).toBe(4 * MiB + 4096);
    expect(f.blocksTotal).toBe(5);

    const areas = await mutateImage(image, 4 * MiB, { share: 0.25, writeSize: MiB, seed: 'cli-m' });
    const areasFile = path.join(work, 'areas.json');
    await writeFile(areasFile, JSON.stringify(areas));
    const incr = await cli(['disk', 'backup', '--repo', repo, '--source', image, '--vapp', 'vapp-a', '--disk', 'disk-0', '--parent', f.pointId, '--changed-areas', areasFile, '--json']);
    expect(incr.code).toBe(0);
    const i = incr.json<BackupJson>();
    expect(i.bytesRead).toBe(areas.length * MiB);
    expect(i.blocksNew).toBe(areas.length);

    const points = await cli(['repo', 'points', '--repo', repo, '--json']);
    expect(points.json<{ points: Array<{ pointId: string; parentPointId: string | null }> }>().points.map((p) => [p.pointId, p.parentPointId])).toEqual([
      [f.pointId, null],
      [i.pointId, f.pointId],
    ]);
    const table = await cli(['repo', 'points', '--repo', repo]);
    expect(table.stdout).toContain(i.pointId);

    const stats = (await cli(['repo', 'stats', '--repo', repo, '--json'])).json<{ points: number; blocksStored: number }>();
    expect(stats.points).toBe(2);
    expect(stats.blocksStored).toBe(f.blocksNew + i.blocksNew);

    const out = path.join(work, 'restored.img');
    const restore = await cli(['disk', 'restore', '--repo', repo, '--point', i.pointId, '--disk', 'disk-0', '--out', out, '--json']);
    expect(restore.code).toBe(0);
    expect(await sha(out)).toBe(await sha(image));

    const verify = await cli(['repo', 'verify', '--repo', repo, '--json']);
    expect(verify.code).toBe(0);
    expect(verify.json<{ ok: boolean; blocksChecked: number }>()).toMatchObject({ ok: true, blocksChecked: stats.blocksStored });
  });

  it('verify exits 1 naming the corrupt block and the points that need it', async () => {
    const dir = path.join(work, 'rot');
    const repo = `file://${dir}`;
    await cli(['repo', 'init', '--repo', repo]);
    const b = (await cli(['disk', 'backup', '--repo', repo, '--source', image, '--vapp', 'vapp-r', '--disk', 'd', '--json'])).json<BackupJson>();
    const blocks = (await import('node:fs/promises')).readdir(path.join(dir, 'blocks'), { recursive: true, withFileTypes: true });
    const victim = (await blocks).find((e) => e.isFile())!;
    const file = path.join(victim.parentPath, victim.name);
    const body = await readFile(file);
    body[10]! ^= 0xff;
    await writeFile(file, body);
    const verify = await cli(['repo', 'verify', '--repo', repo, '--json']);
    expect(verify.code).toBe(1);
    const report = verify.json<{ ok: boolean; problems: Array<{ block: string; points: string[] }> }>();
    expect(report.ok).toBe(false);
    expect(report.problems[0]).toMatchObject({ block: victim.name, points: [`vapp-r/${b.pointId}`] });
    expect(verify.stderr).toContain('VERIFY_FAILED');
  });

  it('encrypted repositories take the passphrase from an environment variable, never a flag', async () => {
    const repo = `file://${work}/enc`;
    const env = { VCDB_PASS: 'a long passphrase for tests' };
    expect((await cli(['repo', 'init', '--repo', repo, '--encrypt'], env)).code).toBe(2);
    expect((await cli(['repo', 'init', '--repo', repo, '--encrypt', '--passphrase-env', 'VCDB_PASS'], env)).code).toBe(0);
    const noKey = await cli(['repo', 'points', '--repo', repo, '--json']);
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('--passphrase-env');
    expect((await cli(['repo', 'points', '--repo', repo, '--passphrase', 'x'])).code).toBe(2);
    expect((await cli(['repo', 'points', '--repo', repo, '--passphrase-env', 'UNSET_VAR'], env)).stderr).toContain('UNSET_VAR is not set');
    const wrong = await cli(['repo', 'points', '--repo', repo, '--passphrase-env', 'VCDB_PASS'], { VCDB_PASS: 'wrong' });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).not.toContain('wrong');
    const b = await cli(['disk', 'backup', '--repo', repo, '--passphrase-env', 'VCDB_PASS', '--source', image, '--vapp', 'v', '--disk', 'd', '--json'], env);
    expect(b.code).toBe(0);
    expect(b.stdout + b.stderr).not.toContain(env.VCDB_PASS);
    // a new repository's passphrase must be long enough; the refusal does not echo it
    const short = await cli(['repo', 'init', '--repo', `file://${work}/enc-short`, '--encrypt', '--passphrase-env', 'VCDB_PASS'], { VCDB_PASS: 'Xq7-tiny' });
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('at least 12 characters');
    expect(short.stderr).not.toContain('Xq7-tiny');
  });

  it('--tenant backs up and restores in a tenant namespace; another tenant sees nothing; the unbound view sees all', async () => {
    const repo = `file://${work}/tenants`;
    const env = { VCDB_PASS: 'a long passphrase for tests' };
    const key = ['--repo', repo, '--passphrase-env', 'VCDB_PASS'];
    expect((await cli(['repo', 'init', ...key, '--encrypt'], env)).code).toBe(0);
    const a = (await cli(['disk', 'backup', ...key, '--tenant', 'acme', '--source', image, '--vapp', 'v', '--disk', 'd', '--json'], env)).json<BackupJson>();
    const g = (await cli(['disk', 'backup', ...key, '--tenant', 'globex', '--source', image, '--vapp', 'v', '--disk', 'd', '--json'], env)).json<BackupJson & { blocksReused: number }>();
    expect(g.blocksReused).toBe(0);
    const points = (args: string[]) => cli(['repo', 'points', ...key, ...args, '--json'], env).then((r) => r.json<{ points: Array<{ pointId: string; tenantId: string }> }>().points);
    expect((await points(['--tenant', 'acme'])).map((p) => p.pointId)).toEqual([a.pointId]);
    expect((await points([])).map((p) => p.tenantId).sort()).toEqual(['acme', 'globex']);
    const refused = await cli(['disk', 'restore', ...key, '--tenant', 'globex', '--point', a.pointId, '--disk', 'd', '--out', path.join(work, 'x.img')], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('POINT_NOT_FOUND');
    const out = path.join(work, 'tenant.img');
    expect((await cli(['disk', 'restore', ...key, '--point', a.pointId, '--disk', 'd', '--out', out], env)).code).toBe(0);
    expect(await sha(out)).toBe(await sha(image));
    const incr = await cli(['disk', 'backup', ...key, '--source', image, '--vapp', 'v', '--disk', 'd', '--parent', a.pointId], env);
    expect(incr.code).toBe(2);
    expect(incr.stderr).toContain('--tenant acme');
    expect((await cli(['repo', 'verify', ...key], env)).code).toBe(0);
  });

  it('works against an s3:// repository with --endpoint and credentials from the environment', async () => {
    await stack().s3.send(new CreateBucketCommand({ Bucket: 'cli-bucket' }));
    const env = { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1' };
    const repo = 's3://cli-bucket/tenants/acme';
    const common = ['--repo', repo, '--endpoint', stack().endpoints.s3];
    expect((await cli(['repo', 'init', ...common], env)).code).toBe(0);
    const b = (await cli(['disk', 'backup', ...common, '--source', image, '--vapp', 'v', '--disk', 'd', '--json'], env)).json<BackupJson>();
    const out = path.join(work, 's3.img');
    expect((await cli(['disk', 'restore', ...common, '--point', b.pointId, '--disk', 'd', '--out', out], env)).code).toBe(0);
    expect(await sha(out)).toBe(await sha(image));
  });

  it('bad input exits 2 with a message that says how to fix it', async () => {
    const repo = `file://${work}/bad`;
    await cli(['repo', 'init', '--repo', repo]);
    const cases: Array<[string[], RegExp]> = [
      [['repo', 'init', '--repo', 'ftp://x/y'], /file:\/\/\/absolute\/dir or s3:\/\/bucket\/prefix/],
      [['repo', 'init', '--repo', 'file://relative/dir'], /absolute path/],
      [['repo', 'init', '--repo', `file://${work}/bs`, '--block-size', '1000'], /power of two/],
      [['repo', 'init', '--repo', repo], /already exists/],
      [['repo', 'points', '--repo', `file://${work}/nothing-here`], /repo init/],
      [['disk', 'restore', '--repo', repo, '--point', 'nope', '--disk', 'd', '--out', path.join(work, 'x')], /repo points/],
      [['disk', 'backup', '--repo', repo, '--source', path.join(work, 'missing.img'), '--vapp', 'v', '--disk', 'd'], /cannot open disk source/],
      [['repo', 'verify', '--repo', repo, '--sample', '0'], /percentage/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(message);
    }
    const areas = path.join(work, 'bad-areas.json');
    await writeFile(areas, '[{"start": -1}]');
    const full = (await cli(['disk', 'backup', '--repo', repo, '--source', image, '--vapp', 'v', '--disk', 'd', '--json'])).json<BackupJson>();
    const bad = await cli(['disk', 'backup', '--repo', repo, '--source', image, '--vapp', 'v', '--disk', 'd', '--parent', full.pointId, '--changed-areas', areas]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/"start": bytes/);
  });
});
