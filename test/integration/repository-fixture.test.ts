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

/** Repositories written by format 1 must stay readable by every later build. */
const fixtures = path.join(path.dirname(new URL(import.meta.url).pathname), '../fixtures/repository');
const work = await mkdtemp(path.join(tmpdir(), 'vcdb-fixture-'));
afterAll(() => rm(work, { recursive: true, force: true }));

interface Expected {
  passphrase: string | null;
  points: Array<{ pointId: string; diskId: string; sha256: string }>;
  vappMetadata: { pointId: string; name: string };
}

describe.each(['plain', 'encrypted'])('format 1 fixture repository (%s)', (variant) => {
  it('lists its points, restores every disk byte-identical, reads vapp.json and verifies clean', async () => {
    const expected = JSON.parse(await readFile(path.join(fixtures, `format-1-${variant}.expected.json`), 'utf8')) as Expected;
    const store = new LocalDirStore(path.join(fixtures, `format-1-${variant}`));
    const repository = await Repository.open(store, expected.passphrase ? { kind: 'passphrase', passphrase: new Secret(expected.passphrase) } : undefined);
    const ids: string[] = [];
    for await (const p of repository.listPoints()) ids.push(p.pointId);
    expect(ids.sort()).toEqual(expected.points.map((p) => p.pointId).sort());
    for (const p of expected.points) {
      const out = path.join(work, `${variant}-${p.pointId}.img`);
      await restoreSingleDisk({ repository, clock: new ManualClock('2026-11-22T00:00:00Z'), pointId: p.pointId, diskId: p.diskId, out });
      expect(createHash('sha256').update(await readFile(out)).digest('hex')).toBe(p.sha256);
    }
    expect(await repository.getVAppMetadata('vapp-fixture', expected.vappMetadata.pointId)).toMatchObject({ name: expected.vappMetadata.name });
    expect((await verifyRepository(repository)).ok).toBe(true);
  });
});
