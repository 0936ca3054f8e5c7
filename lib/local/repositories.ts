// Moved to lib/wiring: the registry serves AWS and local mode alike.
export * from '../wiring/repository-registry.js';
