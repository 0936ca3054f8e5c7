/**
 * A counting semaphore: at most `limit` holders at once, waiting callers served in order. The pipeline
 * uses it for backpressure (blocks in flight) and to cap concurrent uploads and downloads.
 */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly idle: Array<() => void> = [];

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  }

  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) {
      next(); // the slot passes straight to the next waiter
      return;
    }
    this.active--;
    if (this.active === 0) for (const done of this.idle.splice(0)) done();
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** Resolves when nothing holds a slot. */
  async drain(): Promise<void> {
    if (this.active === 0) return;
    await new Promise<void>((resolve) => this.idle.push(resolve));
  }
}
