import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { restoreSingleDisk } from '../../lib/agent/disk-jobs.js';
import { ManualClock } from '../../lib/domain/clock.js';
import { LocalDirStore } from '../../lib/repository/local-dir-store.js';
import { Repository } from '../../lib/repository/repository.js';
import { verifyRepository } from '../../lib/repository/verify.js';
import { Secret } from '../../lib/secret.js';

/** Repositories written by format 1 and 2 must stay readable by every later build. */
const fixtures = path.join(path.dirname(new URL(import.meta.url).pathname), '../fixtures/repository');
const work = await mkdtemp(path.join(tmpdir(), 'vcdb-fixture-'));
afterAll(() => rm(work, { recursive: true, force: true }));

interface Expected {
  passphrase: string | null;
  /** Format 2: the tenant namespace the points were written in. */
  tenantId?: string | null;
  points: Array<{ pointId: string; diskId: string; sha256: string }>;
  vappMetadata: { pointId: string; name: string };
}

describe.each([
  [1, 'plain'],
  [1, 'encrypted'],
  [2, 'plain'],
  [2, 'encrypted'],
])('format %i fixture repository (%s)', (format, variant) => {
  it('lists its points, restores every disk byte-identical, reads vapp.json and verifies clean', async () => {
    const expected = JSON.parse(await readFile(path.join(fixtures, `format-${format}-${variant}.expected.json`), 'utf8')) as Expected;
    const store = new LocalDirStore(path.join(fixtures, `format-${format}-${variant}`));
    const unbound = await Repository.open(store, expected.passphrase ? { kind: 'passphrase', passphrase: new Secret(expected.passphrase) } : undefined);
    expect(unbound.config.format).toBe(format);
    expect(unbound.authenticatesPoints).toBe(format === 2 && variant === 'encrypted');
    const repository = expected.tenantId ? unbound.forTenant(expected.tenantId) : unbound;
    if (expected.tenantId) {
      // another tenant sees none of them; the unbound view sees them all and reads each in its namespace
      for await (const p of unbound.forTenant('someone-else').listPoints()) expect.fail(`another tenant sees ${p.pointId}`);
      const out = path.join(work, `${format}-${variant}-unbound.img`);
      await restoreSingleDisk({ repository: unbound, clock: new ManualClock('2026-11-22T00:00:00Z'), pointId: expected.points[0]!.pointId, diskId: 'disk-0', out });
      expect(createHash('sha256').update(await readFile(out)).digest('hex')).toBe(expected.points[0]!.sha256);
      expect((await verifyRepository(unbound)).ok).toBe(true);
    } else if (format === 1) {
      expect(() => unbound.forTenant('acme')).toThrow(/format-1 repository, which cannot keep tenants apart/);
    }
    const ids: string[] = [];
    for await (const p of repository.listPoints()) ids.push(p.pointId);
    expect(ids.sort()).toEqual(expected.points.map((p) => p.pointId).sort());
    for (const p of expected.points) {
      const out = path.join(work, `${format}-${variant}-${p.pointId}.img`);
      await restoreSingleDisk({ repository, clock: new ManualClock('2026-11-22T00:00:00Z'), pointId: p.pointId, diskId: p.diskId, out });
      expect(createHash('sha256').update(await readFile(out)).digest('hex')).toBe(p.sha256);
    }
    expect(await repository.getVAppMetadata('vapp-fixture', expected.vappMetadata.pointId)).toMatchObject({ name: expected.vappMetadata.name });
    expect((await verifyRepository(repository)).ok).toBe(true);
  });
});
