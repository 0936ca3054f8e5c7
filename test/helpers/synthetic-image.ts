// The generator lives in lib/local (the demo makes its disks with it); tests and benchmarks use it from here.
export * from '../../lib/local/synthetic-image.js';
