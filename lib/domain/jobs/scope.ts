/**
 * What a backup job protects (DESIGN §6 "Job scope").
 *
 * A scope is an include list plus exclusions. Includes name vCD objects at any level: a VM (a standalone VM,
 * which vCD keeps in a vApp of its own, or a linked-clone VM; its vApp is backed up with only that VM), a
 * vApp, an org VDC, an organization, or the whole vCD instance. Resolving includes to vApps needs the vCD
 * query service and is the orchestrator's job; what is pure, and lives here, is the schema and the rule
 * that applies exclusions to the resolved candidates (`applyExclusions`).
 *
 * Exclusions: by vApp id, by VM id, or by name pattern (`*` any run of characters, `?` one character,
 * case-insensitive, matched against the whole vApp name and each VM name). An excluded vApp is skipped
 * entirely; an excluded VM is left out of its vApp's backup; a vApp left with no VMs is skipped.
 */
import { z } from 'zod';
import { vcdIdSchema } from './common.js';

export const scopeItemSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('vm'), vmId: vcdIdSchema('vm') }),
  z.strictObject({ kind: z.literal('vapp'), vappId: vcdIdSchema('vapp') }),
  z.strictObject({ kind: z.literal('orgVdc'), vdcId: vcdIdSchema('vdc') }),
  z.strictObject({ kind: z.literal('org'), orgId: vcdIdSchema('org') }),
  z.strictObject({ kind: z.literal('instance') }),
]);
export type ScopeItem = z.output<typeof scopeItemSchema>;

export const exclusionSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('vapp'), vappId: vcdIdSchema('vapp') }),
  z.strictObject({ kind: z.literal('vm'), vmId: vcdIdSchema('vm') }),
  z.strictObject({ kind: z.literal('name'), pattern: z.string().trim().min(1).max(256) }),
]);
export type Exclusion = z.output<typeof exclusionSchema>;

function itemKey(item: { kind: string } & Record<string, unknown>): string {
  return JSON.stringify(Object.entries(item).sort(([a], [b]) => a.localeCompare(b)));
}

export const scopeSchema = z
  .strictObject({
    include: z.array(scopeItemSchema).min(1).max(1000),
    exclude: z.array(exclusionSchema).max(1000).default([]),
  })
  .superRefine((scope, ctx) => {
    // A duplicate is harmless to run but almost always a copy-paste slip; say so instead of silently merging.
    const seen = new Map<string, number>();
    scope.include.forEach((item, index) => {
      const key = itemKey(item);
      const first = seen.get(key);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['include', index], message: `repeats include.${first}; remove one of them` });
      } else {
        seen.set(key, index);
      }
    });
    const instanceAt = scope.include.findIndex((item) => item.kind === 'instance');
    if (instanceAt >= 0 && scope.include.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['include'],
        message: 'the whole instance already includes everything; keep only { "kind": "instance" } and use exclude to leave things out',
      });
    }
  });

export type Scope = z.output<typeof scopeSchema>;
export type ScopeInput = z.input<typeof scopeSchema>;

/** Compiles a name pattern (`*`, `?`, case-insensitive, whole-name match) to a RegExp. */
export function namePatternToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('')
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'is');
}

export function matchesNamePattern(pattern: string, name: string): boolean {
  return namePatternToRegExp(pattern).test(name);
}

/** A vApp the orchestrator resolved from the includes, with its VMs. */
export interface ScopeCandidate {
  vappId: string;
  name: string;
  vms: ReadonlyArray<{ vmId: string; name: string }>;
  /** Set when the vApp was included through a `vm` item only: back up just these VMs. */
  onlyVmIds?: ReadonlyArray<string>;
}

/** What remains of a candidate after exclusions: the vApp and the VM ids to back up. */
export interface ScopedVApp {
  vappId: string;
  name: string;
  vmIds: string[];
}

/**
 * Applies the scope's exclusions to the resolved candidates. Candidates are de-duplicated by vApp id (a vApp
 * reached through both its VDC and its own id is backed up once; if any route included it whole, it is
 * whole). Order follows first appearance, so runs are reproducible.
 */
export function applyExclusions(scope: Pick<Scope, 'exclude'>, candidates: ReadonlyArray<ScopeCandidate>): ScopedVApp[] {
  const excludedVApps = new Set<string>();
  const excludedVms = new Set<string>();
  const patterns: RegExp[] = [];
  for (const ex of scope.exclude) {
    if (ex.kind === 'vapp') excludedVApps.add(ex.vappId);
    else if (ex.kind === 'vm') excludedVms.add(ex.vmId);
    else patterns.push(namePatternToRegExp(ex.pattern));
  }
  const byName = (name: string): boolean => patterns.some((re) => re.test(name));

  const merged = new Map<string, { candidate: ScopeCandidate; whole: boolean; only: Set<string> }>();
  for (const candidate of candidates) {
    const entry = merged.get(candidate.vappId) ?? { candidate, whole: false, only: new Set<string>() };
    if (candidate.onlyVmIds === undefined) entry.whole = true;
    else for (const id of candidate.onlyVmIds) entry.only.add(id);
    merged.set(candidate.vappId, entry);
  }

  const result: ScopedVApp[] = [];
  for (const { candidate, whole, only } of merged.values()) {
    if (excludedVApps.has(candidate.vappId) || byName(candidate.name)) continue;
    const vmIds = candidate.vms
      .filter((vm) => whole || only.has(vm.vmId))
      .filter((vm) => !excludedVms.has(vm.vmId) && !byName(vm.name))
      .map((vm) => vm.vmId);
    if (vmIds.length === 0) continue;
    result.push({ vappId: candidate.vappId, name: candidate.name, vmIds });
  }
  return result;
}
