// Keeps the agent registry and the actual-state view current from the bus
// (dea.advertise, dea.shutdown, dea.heartbeat, droplet.exited), and asks agents to speak now.

import { Subjects, type Bus, type Subscription } from "../../bus/index.ts";
import type { AgentRegistry } from "./agent-registry.ts";
import type { ActualState } from "./health/actual-state.ts";

export function feedState(bus: Bus, agents: AgentRegistry, actual: ActualState): Subscription {
  const subs = [
    bus.subscribe(Subjects.deaAdvertise, "dea.advertise", (m) => agents.advertise(m)),
    bus.subscribe(Subjects.deaShutdown, "dea.shutdown", (m) => {
      agents.remove(m.id);
      actual.removeAgent(m.id);
    }),
    bus.subscribe(Subjects.deaHeartbeat, "dea.heartbeat", (m) => actual.heartbeat(m, Date.now())),
    bus.subscribe(Subjects.dropletExited, "droplet.exited", (m) => actual.exited(m)),
  ];
  bus.publish(Subjects.deaLocate, "dea.locate", {});
  // after a NATS reconnect, agents may have missed us: ask again
  bus.onStatus((s) => {
    if (s.type === "reconnect") bus.publish(Subjects.deaLocate, "dea.locate", {});
  });
  return { unsubscribe: () => subs.forEach((s) => s.unsubscribe()) };
}
