/**
 * Short-term and GFS retention (issue 5), as pure functions the services, the repository CLI and the
 * `retention` CLI share: parse a policy, assign flags when a point is committed, decide what survives at a
 * given instant, and replay a chain's history. No clock inside: every function takes its `now`.
 */
export * from './policy.js';
export * from './periods.js';
export * from './flags.js';
export * from './apply.js';
export * from './simulate.js';
