import type { Clock } from './domain/clock.js';

/** The wall clock, for adapters and entry points only. */
export const systemClock: Clock = {
  now: () => new Date(),
};
