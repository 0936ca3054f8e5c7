import http from 'node:http';
import { cli } from '../helpers/cli.js';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let server: http.Server;
let url: string;
const seen: Array<{ path: string; body: Record<string, unknown>; auth: string | undefined }> = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      seen.push({ path: req.url ?? '', body, auth: req.headers.authorization });
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/restores/plan' && body.pointId === 'bad') {
        res.end(JSON.stringify({ ok: false, problems: [{ attribute: 'network', value: 'Corp-Net', message: 'network "Corp-Net" does not exist in VDC "vdc-a"', fix: { option: 'networkMap', example: { 'Corp-Net': 'x' } } }] }));
      } else if (req.url === '/v1/restores') {
        res.statusCode = 202;
        res.end(JSON.stringify({ runId: 'restore-1', statusUrl: '/v1/restores/restore-1' }));
      } else res.end(JSON.stringify({ ok: true, plan: { mode: 'new', source: { vappName: 'a', pointId: 'p' }, target: { name: 'a', vdc: { name: 'v' }, vappId: null, resumes: false }, networks: [], owner: null, restoreMetadata: true, powerOn: false, overwrites: [], warnings: [], steps: [] } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** The real `vcd-backup` program, in-process, with the API token in the environment. */
async function run(args: string[]) {
  const r = await cli(args, { VCD_BACKUP_TOKEN: 'tok' });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

describe('vcd-backup restore', () => {
  it('maps the flags to restore options and sends them with the token', async () => {
    const r = await run(['restore', 'plan', '--point', 'p1', '--api', url, '--mode', 'new', '--name', 'b', '--vdc', 'v2', '--network-map', 'A=B', '--network-map', 'C=D', '--storage-policy-map', 'Gold=Silver', '--owner', 'bob', '--power-on', '--no-metadata', '--vm', 'vm-a', '--storage-lease', '0', '--json']);
    expect(r.code).toBe(0);
    expect(seen.at(-1)).toEqual({
      path: '/v1/restores/plan',
      auth: 'Bearer tok',
      body: { pointId: 'p1', mode: 'new', newName: 'b', targetVdc: 'v2', networkMap: { A: 'B', C: 'D' }, storagePolicyMap: { Gold: 'Silver' }, owner: 'bob', powerOn: true, restoreMetadata: false, vmSelection: ['vm-a'], lease: { storageLeaseSeconds: 0 } },
    });
    expect(JSON.parse(r.out).ok).toBe(true);
  });

  it('exits 2 listing every problem with its fix when the plan does not conform', async () => {
    const r = await run(['restore', 'plan', '--point', 'bad', '--api', url]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('network "Corp-Net"');
    expect(r.err).toContain('fix: networkMap {"Corp-Net":"x"}');
  });

  it('run starts a restore and prints its run id; bad flags exit 2', async () => {
    const r = await run(['restore', 'run', '--point', 'p1', '--api', url, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).runId).toBe('restore-1');
    expect((await run(['restore', 'plan', '--point', 'p1', '--api', url, '--network-map', 'nope'])).code).toBe(2);
  });
});
