import path from 'node:path';
import { cli } from '../helpers/cli.js';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const fx = (name: string) => path.join(import.meta.dirname, '../fixtures/vcd', name);

/** The real `vcd-backup` program, in-process (test/helpers/cli.ts). */
const run = (args: string[]) => cli(args);

describe('vcd inspect', () => {
  it('prints the model of saved documents as JSON', async () => {
    const r = await run([
      'vcd', 'inspect', '--vapp-xml', fx('vapp-10.6.xml'), '--metadata-xml', fx('vapp-10.6-metadata.xml'),
      '--vm-metadata-xml', `urn:vcloud:vm:aa11bb22-cc33-4d44-8e55-ff6677889900=${fx('vm-db-01-metadata-ns6.xml')}`,
      '--vm-metadata-xml', `vm-bb22cc33-dd44-4e55-9f66-001122334455=${fx('vm-app-01-metadata-empty.xml')}`,
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(readFileSync(fx('vapp-10.6.expected.json'), 'utf8')));
    expect(r.stderr).toContain('contains secrets');
    expect(r.stderr + r.stdout).not.toContain('S3cr3t');
  });

  it('prints a human summary on stderr without --json', async () => {
    const r = await run(['vcd', 'inspect', '--vapp-xml', fx('vapp-5x.xml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('vApp legacy-web');
    expect(r.stderr).toContain('moref vm-595');
  });

  it('exits 2 with a fix-it message for a missing file, a bad spec, an unknown VM or a DOCTYPE', async () => {
    const missing = await run(['vcd', 'inspect', '--vapp-xml', fx('nope.xml'), '--json']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read the file/);
    const spec = await run(['vcd', 'inspect', '--vapp-xml', fx('vapp-10.6.xml'), '--vm-metadata-xml', 'justafile.xml']);
    expect(spec.code).toBe(2);
    expect(spec.stderr).toMatch(/expects VM_ID=FILE/);
    const unknown = await run(['vcd', 'inspect', '--vapp-xml', fx('vapp-10.6.xml'), '--vm-metadata-xml', `vm-00000000-0000-4000-8000-000000000000=${fx('vm-db-01-metadata-ns6.xml')}`]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no VM with that id/);
    const doctype = await run(['vcd', 'inspect', '--vapp-xml', fx('billion-laughs.xml'), '--json']);
    expect(doctype.code).toBe(2);
    expect(doctype.stderr).toMatch(/DOCTYPE/);
    const notVapp = await run(['vcd', 'inspect', '--vapp-xml', fx('vapp-10.6-metadata.xml'), '--json']);
    expect(notVapp.code).toBe(2);
    expect(notVapp.stderr).toMatch(/expected a VApp document/);
  });

  it('exits 2 when --vapp-xml is missing', async () => {
    const r = await run(['vcd', 'inspect', '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--vapp-xml/);
  });
});
