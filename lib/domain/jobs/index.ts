/**
 * The job model (issues 6 and 7): scope, schedules, windows, retries, backup and copy job specs, and the
 * timing rules of copy jobs. Pure: no I/O, no wall clock. See docs/jobs.md for the JSON shapes.
 */
export * from './calendar.js';
export * from './common.js';
export * from './validation.js';
export * from './scope.js';
export * from './schedule.js';
export * from './window.js';
export * from './retry.js';
export * from './backup-job.js';
export * from './copy-job.js';
export * from './copy-timing.js';
