/**
 * Time is a port: retention, GFS periods, windows, leases and GC ages all depend on "now", and tests must be
 * able to freeze or advance it. Domain code receives a Clock and never reads the wall clock itself.
 */
export interface Clock {
  now(): Date;
}

/** A clock that stays where it is put; tests advance it explicitly. */
export class ManualClock implements Clock {
  private current: number;

  constructor(start: Date | string) {
    this.current = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  set(at: Date | string): void {
    this.current = new Date(at).getTime();
  }

  advance(ms: number): void {
    this.current += ms;
  }
}
