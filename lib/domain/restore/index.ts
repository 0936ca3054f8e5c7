export * from './marker.js';
export * from './options.js';
export * from './planner.js';
export * from './report.js';
export * from './plan-schema.js';
export * from './run-state.js';
