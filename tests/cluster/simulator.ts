// Scale simulation (issue 10): one process that speaks the bus protocol for many agents and their
// instances, with the real encoder (bus/): each simulated agent advertises every 5 s and heartbeats
// every 10 s, each instance re-registers its route every 20 s, all spread evenly over the interval
// as real agents' timers would be; at start every route is registered at once (the burst).
// Answers dea.locate and healthmanager.start like an agent. No instance really listens: the routers
// under test are only asked for their tables, never sent traffic for these routes.
//
//   bun tests/cluster/simulator.ts PLAN.json     (env: SKIFF_NATS_URL, SKIFF_NATS_USER, SKIFF_NATS_PASS)
// Prints JSON lines on stdout: {"event":"burst","start":<epoch ms>,"end":<epoch ms>,"count":N}, then
// {"event":"ready"}.

import { readFileSync } from "node:fs";
import { connectBus, createLogger, Subjects, type Bus } from "../../bus/index.ts";

/** How often each simulated agent advertises and heartbeats, and each instance re-registers (CF's defaults). */
export const SimIntervals = { advertiseMs: 5_000, heartbeatMs: 10_000, registerMs: 20_000 } as const;

/** Messages per second the fleet publishes in steady state: what the NATS server should see coming in. */
export function expectedPublishRate(agents: number, instances: number): number {
  return (agents * 1000) / SimIntervals.advertiseMs + (agents * 1000) / SimIntervals.heartbeatMs + (instances * 1000) / SimIntervals.registerMs;
}

export interface SimulationPlan {
  agents: number;
  /** one per app: its guid, version string (as the health manager computes it) and instance count */
  apps: { guid: string; version: string; instances: number; uri: string }[];
  /** address the simulated instances claim; never contacted */
  instanceHost: string;
}

interface SimInstance {
  app: string;
  version: string;
  uri: string;
  index: number;
  id: string;
  port: number;
}

/** Spreads instances over agents: app a's instance i goes to agent (a + i) mod agents. */
export function layout(plan: SimulationPlan): SimInstance[][] {
  const agents: SimInstance[][] = Array.from({ length: plan.agents }, () => []);
  let n = 0;
  plan.apps.forEach((a, ai) => {
    for (let i = 0; i < a.instances; i++, n++)
      agents[(ai + i) % plan.agents]!.push({ app: a.guid, version: a.version, uri: a.uri, index: i, id: `sim-${ai}-${i}`, port: 20_000 + (n % 40_000) });
  });
  return agents;
}

export class AgentFleet {
  private timers: ReturnType<typeof setInterval>[] = [];
  private readonly started = Date.now();
  constructor(
    private readonly bus: Bus,
    private readonly agents: SimInstance[][],
    private readonly host: string,
  ) {}

  agentId(a: number): string {
    return `sim-agent-${a}`;
  }

  advertise(a: number): void {
    const counts: Record<string, number> = {};
    for (const i of this.agents[a]!) counts[i.app] = (counts[i.app] ?? 0) + 1;
    this.bus.publish(Subjects.deaAdvertise, "dea.advertise", {
      id: this.agentId(a), ip: this.host, stacks: ["bun"], available_memory: 0, available_disk: 0, // full: never placed on
      app_id_to_count: counts, placement_properties: { zone: `sim-${a % 4}` },
    });
  }

  heartbeat(a: number): void {
    this.bus.publish(Subjects.deaHeartbeat, "dea.heartbeat", {
      dea: this.agentId(a),
      droplets: this.agents[a]!.map((i) => ({ droplet: i.app, version: i.version, instance: i.id, index: i.index, state: "RUNNING" as const, state_timestamp: this.started / 1000 })),
    });
  }

  register(i: SimInstance): void {
    this.bus.publish(Subjects.routerRegister, "router.register", {
      host: this.host, port: i.port, uris: [i.uri], app: i.app, private_instance_id: i.id, private_instance_index: String(i.index), stale_threshold_in_seconds: 120,
    });
  }

  /** Every route at once; resolves when the bus has flushed them to the server. */
  async burst(): Promise<number> {
    let n = 0;
    for (const list of this.agents) for (const i of list) (this.register(i), n++);
    await this.bus.flush();
    return n;
  }

  /** Runs `each(k)` for k in 0..count-1 once per period, spread evenly (one timer per slot of 100 ms). */
  private every(periodMs: number, count: number, each: (k: number) => void): void {
    const slots = Math.max(1, Math.round(periodMs / 100));
    let slot = 0;
    this.timers.push(
      setInterval(() => {
        for (let k = slot; k < count; k += slots) each(k);
        slot = (slot + 1) % slots;
      }, periodMs / slots),
    );
  }

  start(): void {
    const all = this.agents.flat();
    this.every(SimIntervals.advertiseMs, this.agents.length, (a) => this.advertise(a));
    this.every(SimIntervals.heartbeatMs, this.agents.length, (a) => this.heartbeat(a));
    this.every(SimIntervals.registerMs, all.length, (k) => this.register(all[k]!));
    this.bus.subscribe(Subjects.deaLocate, "dea.locate", () => this.agents.forEach((_, a) => this.advertise(a)));
    this.bus.subscribe(Subjects.healthManagerStart, "healthmanager.start", () => this.agents.forEach((_, a) => this.heartbeat(a)));
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
  }
}

if (import.meta.main) {
  const plan = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as SimulationPlan;
  const log = createLogger("simulator");
  const env = process.env;
  const bus = await connectBus(
    { servers: (env.SKIFF_NATS_URL || "nats://127.0.0.1:4222").split(","), name: "simulator", user: env.SKIFF_NATS_USER || undefined, pass: env.SKIFF_NATS_PASS || undefined },
    log,
  );
  const fleet = new AgentFleet(bus, layout(plan), plan.instanceHost);
  for (let a = 0; a < plan.agents; a++) (fleet.advertise(a), fleet.heartbeat(a));
  const start = Date.now();
  const count = await fleet.burst();
  console.log(JSON.stringify({ event: "burst", start, end: Date.now(), count }));
  fleet.start();
  console.log(JSON.stringify({ event: "ready" }));
  const stop = async () => {
    fleet.stop();
    await bus.close().catch(() => undefined);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
