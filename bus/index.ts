// The bus: the one module every skiff component shares. It imports none of them.

export * from "./messages.ts";
export * from "./subjects.ts";
export { encode, decode, parse, DecodeError } from "./codec.ts";
export { decoders } from "./schemas.ts";
export { createBus, RequestTimeoutError, type Bus, type BusStatus, type Handler, type MessageMeta, type Subscription, type Transport } from "./bus.ts";
export { connectNats, BusConnectError, type NatsConfig } from "./nats-transport.ts";
export { MemoryBroker } from "./memory-transport.ts";
export { type BusCounters } from "./rejections.ts";
export { serveComponentDiscovery, discoverComponents, identityFromClientName, type ComponentIdentity } from "./component-discovery.ts";
export { createLogger, memoryLogger, type Logger, type LogLevel } from "./log.ts";
export { logTag } from "./log-tag.ts";
export { serviceEnvironment, serviceUrlVariables, urlVariablesByScheme, vcapServices, type VcapServiceEntry } from "./service-env.ts";

import { createBus, type Bus } from "./bus.ts";
import { connectNats, type NatsConfig } from "./nats-transport.ts";
import { identityFromClientName, serveComponentDiscovery } from "./component-discovery.ts";
import type { Logger } from "./log.ts";

/**
 * Connects to NATS and returns the typed Bus. The process then answers vcap.component.discover
 * (as Cloud Foundry's components do) under its client name, with its bus counters.
 */
export async function connectBus(config: NatsConfig, log: Logger): Promise<Bus> {
  const bus = createBus(await connectNats(config, log.child("bus")), log.child("bus"));
  serveComponentDiscovery(bus, identityFromClientName(config.name));
  return bus;
}
