/**
 * What a restore did and did not do. Every step of the plan is listed with its outcome, so a failed restore
 * says exactly where it stopped; rerunning it skips what is already in place.
 */
export type StepStatus = 'done' | 'unchanged' | 'failed' | 'not-run';

export interface StepOutcome {
  readonly kind: string;
  readonly detail: string;
  status: StepStatus;
  error?: string;
}

export class RestoreReport {
  readonly steps: StepOutcome[] = [];

  /** A report continued from the steps stored by an earlier event of the same run. */
  static from(steps: readonly StepOutcome[]): RestoreReport {
    const report = new RestoreReport();
    for (const s of steps) report.record(s.kind, s.detail, s.status, s.error);
    return report;
  }

  /** Records a step; the first call for (kind, detail) creates it, later calls update it. */
  record(kind: string, detail: string, status: StepStatus, error?: string): void {
    const existing = this.steps.find((s) => s.kind === kind && s.detail === detail);
    if (existing) {
      existing.status = status;
      if (error !== undefined) existing.error = error;
      return;
    }
    this.steps.push({ kind, detail, status, ...(error !== undefined ? { error } : {}) });
  }

  /** Runs one step: `work` returns true when it changed something, false when the target already matched. */
  async step(kind: string, detail: string, work: () => Promise<boolean>): Promise<void> {
    try {
      this.record(kind, detail, (await work()) ? 'done' : 'unchanged');
    } catch (err) {
      this.record(kind, detail, 'failed', err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  get failed(): StepOutcome[] {
    return this.steps.filter((s) => s.status === 'failed');
  }

  /** `done: a, b; unchanged: c; failed: d (why); not run: e` */
  summary(): string {
    const by = (status: StepStatus) => this.steps.filter((s) => s.status === status);
    const names = (list: StepOutcome[]) => list.map((s) => `${s.kind}${s.detail ? ` (${s.detail})` : ''}${s.error ? `: ${s.error}` : ''}`).join('; ');
    return (['done', 'unchanged', 'failed', 'not-run'] as const)
      .filter((st) => by(st).length > 0)
      .map((st) => `${st.replace('-', ' ')}: ${names(by(st))}`)
      .join(' | ');
  }

  toJSON(): StepOutcome[] {
    return this.steps.map((s) => ({ ...s }));
  }
}
