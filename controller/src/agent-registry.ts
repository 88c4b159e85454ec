// The agents the controller has heard from (`dea.advertise`), dropped after 10 s unheard.
// Placements made since the last advertisement are charged locally so a burst of starts spreads out.

import type { DeaAdvertise } from "../../bus/index.ts";
import { reserve, type AgentView, type PlacementRequest } from "./placement.ts";

export const AGENT_TTL_MS = 10_000;

interface Entry {
  view: AgentView;
  ip: string;
  heardAt: number;
}

export class AgentRegistry {
  private readonly agents = new Map<string, Entry>();

  constructor(private readonly ttlMs = AGENT_TTL_MS) {}

  advertise(m: DeaAdvertise, now = Date.now()): void {
    this.agents.set(m.id, {
      heardAt: now,
      ip: m.ip,
      view: {
        id: m.id,
        zone: m.placement_properties?.zone || "default",
        stacks: m.stacks,
        availableMemory: m.available_memory,
        availableDisk: m.available_disk,
        appCounts: { ...m.app_id_to_count },
      },
    });
  }

  remove(id: string): void {
    this.agents.delete(id);
  }

  /** Live agents (heard within the TTL); forgets the others. */
  live(now = Date.now()): AgentView[] {
    const out: AgentView[] = [];
    for (const [id, e] of this.agents) {
      if (now - e.heardAt > this.ttlMs) this.agents.delete(id);
      else out.push(e.view);
    }
    return out;
  }

  charge(agentId: string, req: PlacementRequest): void {
    const e = this.agents.get(agentId);
    if (e) reserve(e.view, req);
  }

  size(now = Date.now()): number {
    return this.live(now).length;
  }
}
