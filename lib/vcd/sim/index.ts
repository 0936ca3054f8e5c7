export { startVcdSimulator, DEFAULT_SIM_VERSIONS } from './server.js';
export type { FaultRule, SimRequestContext, SimResponse, SimRouteHandler, VcdSimulator, VcdSimulatorOptions } from './server.js';
export { demoDisks, demoInventory } from './demo.js';
export { buildState, loadInventoryFile, parseInventory, simInventorySchema, stableUuid } from './inventory.js';
export type { SimInventoryInput, SimInventorySeed, SimState, SimVApp, SimVm } from './inventory.js';
export { renderError, renderTask, renderVApp, renderVm, href as simHref } from './render.js';
