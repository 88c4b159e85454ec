// Where to run an instance: a pure function over the agents we have heard from (Cloud Foundry's
// DEA placement): enough memory, disk and the right stack; then the zone with the fewest
// instances of the app; then the fewest instances of the app on the agent; then the most free memory.

export interface AgentView {
  id: string;
  zone: string;
  stacks: string[];
  availableMemory: number;
  availableDisk: number;
  appCounts: Record<string, number>;
}

export interface PlacementRequest {
  app: string;
  memory: number;
  disk: number;
  stack?: string | null;
}

export type Placement = { ok: true; agent: AgentView } | { ok: false; reason: string };

export function placeInstance(agents: readonly AgentView[], req: PlacementRequest): Placement {
  if (agents.length === 0) return { ok: false, reason: "no agents are available (none advertised in the last 10 s)" };
  const fit = agents.filter(
    (a) => a.availableMemory >= req.memory && a.availableDisk >= req.disk && (!req.stack || a.stacks.includes(req.stack)),
  );
  if (fit.length === 0) {
    const stackOk = agents.some((a) => !req.stack || a.stacks.includes(req.stack));
    if (!stackOk) return { ok: false, reason: `no agent offers stack ${req.stack}` };
    return { ok: false, reason: `no agent has ${req.memory} MB memory and ${req.disk} MB disk free` };
  }
  const perZone = new Map<string, number>();
  for (const a of agents) perZone.set(a.zone, (perZone.get(a.zone) ?? 0) + (a.appCounts[req.app] ?? 0));
  let best = fit[0]!;
  for (const a of fit.slice(1)) if (better(a, best, req.app, perZone)) best = a;
  return { ok: true, agent: best };
}

function better(a: AgentView, b: AgentView, app: string, perZone: Map<string, number>): boolean {
  const za = perZone.get(a.zone)!, zb = perZone.get(b.zone)!;
  if (za !== zb) return za < zb;
  const ca = a.appCounts[app] ?? 0, cb = b.appCounts[app] ?? 0;
  if (ca !== cb) return ca < cb;
  if (a.availableMemory !== b.availableMemory) return a.availableMemory > b.availableMemory;
  return a.id < b.id;
}

/** Places several instances one after another, charging each choice before the next. */
export function placeMany(agents: readonly AgentView[], req: PlacementRequest, count: number): Placement[] {
  const views = agents.map((a) => ({ ...a, appCounts: { ...a.appCounts } }));
  const out: Placement[] = [];
  for (let i = 0; i < count; i++) {
    const p = placeInstance(views, req);
    out.push(p);
    if (p.ok) reserve(p.agent, req);
  }
  return out;
}

/** Charges a placement to an agent view until its next advertisement says the truth. */
export function reserve(agent: AgentView, req: PlacementRequest): void {
  agent.availableMemory -= req.memory;
  agent.availableDisk -= req.disk;
  agent.appCounts[req.app] = (agent.appCounts[req.app] ?? 0) + 1;
}
