/**
 * netjail's test harness: the simulated network layer, ways to build and
 * inspect a world, and fast-check arbitraries for property tests of your own.
 */
export { clearFault, corruptLeases, crashOwner, currentWorld, injectFault, layerSim, servicesFor } from "./sim/layer.js"
export {
  type DeviceSpec,
  formatWorld,
  type HostSpec,
  isClean,
  type Leftovers,
  leftovers,
  makeWorld,
  SimWorld,
  type World,
  type WorldSpec
} from "./sim/world.js"
export * as Arbitraries from "./sim/arbitraries.js"
export { settle } from "./sim/clock.js"
