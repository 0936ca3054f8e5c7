import { z } from 'zod';
import type { Clock } from '../domain/clock.js';
import { assignFlags, RETENTION_FLAGS, type CommitFlags, type RetentionFlag, type RetentionPolicy } from '../domain/retention/index.js';
import { describeIssues } from '../errors.js';
import { RepositoryFormatError } from './errors.js';
import { ObjectNotFoundError } from './object-store.js';
import type { Repository } from './repository.js';

/**
 * Retention state of one chain (one vApp in one repository), kept beside its points as
 * `points/{vappId}/chain.json`:
 *
 * ```json
 * { "version": 1, "givenPeriods": ["weekly:2026-03-01", "monthly:2026-02"],
 *   "flags": { "20260301T040000Z-1a2b3c4d": ["weekly", "monthly"] }, "updatedAt": "ISO-8601" }
 * ```
 *
 * The retention rules (docs/retention.md) need each point's GFS flags, given when the point is committed,
 * and the periods that already gave their flag, because a period gives its flag at most once even when its
 * point is deleted later. `point.json` (format 1) has no place for them, so they live here, outside any
 * point's prefix: `listPoints` only looks at `point.json`, GC never touches this object and deleting a point
 * leaves the chain's memory of given periods intact.
 *
 * Writers: `recordPointFlags` after each commit, and `repo forget` (which records the flags it had to
 * replay, see below, and prunes the flags of the points it deleted). It is a read-modify-write of one
 * object: the commits and retention runs of one chain must not run at the same time (the orchestrator
 * serialises a vApp's runs; the CLI user runs one command at a time).
 */
export const CHAIN_STATE_VERSION = 1;
export const chainStateKey = (vappId: string) => `points/${vappId}/chain.json`;

export const chainStateSchema = z.object({
  version: z.literal(CHAIN_STATE_VERSION),
  givenPeriods: z.array(z.string().min(1)),
  flags: z.record(z.string(), z.array(z.enum(RETENTION_FLAGS))),
  updatedAt: z.iso.datetime().optional(),
});
export type ChainState = z.infer<typeof chainStateSchema>;

export function emptyChainState(): ChainState {
  return { version: CHAIN_STATE_VERSION, givenPeriods: [], flags: {} };
}

/** The chain state of a vApp, or an empty one when none was recorded yet. */
export async function readChainState(repository: Repository, vappId: string): Promise<ChainState> {
  const key = chainStateKey(vappId);
  let raw: Buffer;
  try {
    raw = await repository.store.get(key);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) return emptyChainState();
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new RepositoryFormatError(`${key} is not valid JSON: delete it to have the flags replayed from the points' creation times`, { cause: err });
  }
  const parsed = chainStateSchema.safeParse(value);
  if (!parsed.success) throw new RepositoryFormatError(`${key} is not a chain state of version ${CHAIN_STATE_VERSION}: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

export async function writeChainState(repository: Repository, vappId: string, state: ChainState, clock?: Clock): Promise<void> {
  const doc: ChainState = {
    version: CHAIN_STATE_VERSION,
    givenPeriods: [...new Set(state.givenPeriods)].sort(),
    flags: Object.fromEntries(Object.entries(state.flags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    ...(clock ? { updatedAt: clock.now().toISOString() } : state.updatedAt ? { updatedAt: state.updatedAt } : {}),
  };
  await repository.store.put(chainStateKey(vappId), Buffer.from(JSON.stringify(doc, null, 2)));
}

/**
 * Assigns the GFS flags of a point that was just committed and records them, with the periods they used, in
 * the chain state. Call it after `Repository.commitPoint`, in creation order. Idempotent: a point whose flags
 * are already recorded keeps them (a retried commit does not assign twice).
 */
export async function recordPointFlags(
  repository: Repository,
  policy: RetentionPolicy,
  point: { readonly vappId: string; readonly pointId: string; readonly createdAt: string },
  clock?: Clock,
): Promise<CommitFlags> {
  const state = await readChainState(repository, point.vappId);
  const known = state.flags[point.pointId];
  if (known) return { flags: known, periods: {}, given: new Set(state.givenPeriods), newlyGiven: [] };
  const commit = assignFlags(policy, state.givenPeriods, point.createdAt);
  await writeChainState(repository, point.vappId, { ...state, givenPeriods: [...commit.given], flags: { ...state.flags, [point.pointId]: [...commit.flags] } }, clock);
  return commit;
}

export interface ChainPointFlags {
  readonly pointId: string;
  readonly createdAt: string;
  readonly flags: readonly RetentionFlag[];
  /** True when the flags were not recorded and were assigned by replay. */
  readonly replayed: boolean;
}

/**
 * The flags of every point of a chain: recorded flags where the chain state has them; for the others (points
 * committed by a writer that did not record flags, or before chain.json existed) flags are assigned by
 * replaying `assignFlags` over the chain in creation order (then id), starting from the recorded given
 * periods and adding the periods each replayed point takes. Replay sees only the points that still exist: a
 * deleted point that would have taken a period's flag is unknown to it, so a surviving later point of that
 * period may take the flag instead. Recording the replayed flags (forget does) makes the outcome stable.
 */
export function resolveChainFlags(
  policy: RetentionPolicy,
  state: ChainState,
  points: readonly { readonly pointId: string; readonly createdAt: string }[],
): { points: ChainPointFlags[]; state: ChainState; replayed: number } {
  const ordered = [...points].sort((a, b) => {
    const d = Date.parse(a.createdAt) - Date.parse(b.createdAt);
    return d !== 0 ? d : a.pointId < b.pointId ? -1 : a.pointId > b.pointId ? 1 : 0;
  });
  let given: ReadonlySet<string> = new Set(state.givenPeriods);
  const flags: Record<string, RetentionFlag[]> = { ...state.flags };
  const out: ChainPointFlags[] = [];
  let replayed = 0;
  for (const p of ordered) {
    const known = state.flags[p.pointId];
    if (known) {
      out.push({ pointId: p.pointId, createdAt: p.createdAt, flags: known, replayed: false });
      continue;
    }
    const commit = assignFlags(policy, given, p.createdAt);
    given = commit.given;
    flags[p.pointId] = [...commit.flags];
    out.push({ pointId: p.pointId, createdAt: p.createdAt, flags: commit.flags, replayed: true });
    replayed++;
  }
  return { points: out, state: { ...state, givenPeriods: [...given], flags }, replayed };
}
