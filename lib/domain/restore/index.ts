export * from './marker.js';
export * from './options.js';
export * from './planner.js';
export * from './report.js';
