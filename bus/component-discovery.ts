// Cloud Foundry's component discovery on the bus: every component announces itself on
// vcap.component.announce when it connects and answers vcap.component.discover with the same
// message, carrying its bus counters. One request shows what every process accepted and rejected.

import type { Bus, Subscription } from "./bus.ts";
import type { BusCounters } from "./rejections.ts";
import type { ComponentAnnounce } from "./messages.ts";
import { Subjects } from "./subjects.ts";

export interface ComponentIdentity {
  /** "router", "agent", "controller", "health", … */
  type: string;
  /** unique per process: the NATS client name */
  uuid: string;
}

/** The component type is the client name up to its first dash: `agent-3f2a` is an `agent`. */
export function identityFromClientName(name: string): ComponentIdentity {
  const dash = name.indexOf("-");
  return { type: dash > 0 ? name.slice(0, dash) : name, uuid: name };
}

export function announcement(id: ComponentIdentity, startMs: number, counters: BusCounters, nowMs: number): ComponentAnnounce {
  return {
    type: id.type,
    uuid: id.uuid,
    start: startMs,
    uptime: Math.max(0, (nowMs - startMs) / 1000),
    bus: { accepted: counters.accepted, rejected: counters.rejected, handler_errors: counters.handlerErrors },
  };
}

/** Announces the component now and answers every discover request; returns the subscription. */
export function serveComponentDiscovery(bus: Bus, id: ComponentIdentity, now: () => number = Date.now): Subscription {
  const startMs = now();
  const announce = () => announcement(id, startMs, bus.counters(), now());
  const sub = bus.subscribe(Subjects.componentDiscover, "vcap.component.discover", (_msg, meta) => {
    if (meta.reply) bus.publish(meta.reply, "vcap.component.announce", announce());
  });
  bus.publish(Subjects.componentAnnounce, "vcap.component.announce", announce());
  return sub;
}

/** Asks every component on the bus who it is; the replies that arrive within the time. */
export function discoverComponents(bus: Bus, timeoutMs: number): Promise<ComponentAnnounce[]> {
  return bus.requestMany(Subjects.componentDiscover, "vcap.component.discover", {}, "vcap.component.announce", { timeoutMs });
}
