import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';

const dataDir = `/tmp/vcdb-e2e-demo-${process.pid}`;
afterAll(() => rm(dataDir, { recursive: true, force: true }));

interface Summary {
  ok: boolean;
  backups: Array<{ vappId: string; pointId: string; kind: 'full' | 'incremental'; bytesRead: number; bytesUploaded: number }>;
  copies: Array<{ jobId: string; mode: 'immediate' | 'periodic'; state: string; bytesCopied: number }>;
  restores: Array<{ vappId: string; mode: 'overwrite' | 'new'; disks: number; disksVerified: number; metadataVerified: boolean; ok: boolean }>;
  checks: Array<{ step: string; ok: boolean }>;
}

describe('npm start (vcd-backup local --demo --once --json)', () => {
  it('runs the demo end to end as a user would, with small disks, and reports every step verified', async () => {
    const child = spawn(process.execPath, ['bin/vcd-backup.mjs', 'local', '--demo', '--once', '--json', '--port', '0', '--disk-scale', '0.05', '--data-dir', dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, err).toBe(0);
    const summary = JSON.parse(out) as Summary;
    expect(summary.ok).toBe(true);
    expect(summary.checks.length).toBeGreaterThanOrEqual(4);
    expect(summary.checks.every((c) => c.ok)).toBe(true);
    const full = summary.backups.filter((b) => b.kind === 'full');
    const incr = summary.backups.filter((b) => b.kind === 'incremental');
    expect(full).toHaveLength(2);
    expect(incr).toHaveLength(2);
    for (const b of incr) {
      const f = full.find((x) => x.vappId === b.vappId)!;
      expect(b.pointId).not.toBe(f.pointId);
      expect(b.bytesUploaded).toBeLessThan(f.bytesUploaded);
    }
    expect(summary.copies.filter((c) => c.mode === 'immediate')).toHaveLength(4);
    expect(summary.copies.filter((c) => c.mode === 'periodic')).toHaveLength(1);
    expect(summary.copies.every((c) => c.state === 'succeeded')).toBe(true);
    // forever-incremental: all immediate copies together move exactly what the backups uploaded
    const uploaded = summary.backups.reduce((n, b) => n + b.bytesUploaded, 0);
    const copied = summary.copies.filter((c) => c.mode === 'immediate').reduce((n, c) => n + c.bytesCopied, 0);
    expect(copied).toBeGreaterThan(0);
    expect(copied).toBeLessThanOrEqual(uploaded * 1.05);
    expect(summary.restores.map((r) => r.mode).sort()).toEqual(['new', 'overwrite']);
    for (const r of summary.restores) {
      expect(r.ok).toBe(true);
      expect(r.disks).toBeGreaterThan(0);
      expect(r.disksVerified).toBe(r.disks);
      expect(r.metadataVerified).toBe(true);
    }
    // human output goes to stderr, JSON alone to stdout
    expect(err).toContain('every step verified');
  }, 240_000); // the whole demo in a child process: start-up, eight steps, two restores, on a loaded 2-core machine
});
