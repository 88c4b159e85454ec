import { describe, expect, test } from "bun:test";
import { placeInstance, placeMany, type AgentView } from "./placement.ts";

const agent = (id: string, o: Partial<AgentView> = {}): AgentView => ({ id, zone: "z1", stacks: ["bun"], availableMemory: 4096, availableDisk: 16384, appCounts: {}, ...o });
const req = { app: "a", memory: 256, disk: 1024 };

describe("placeInstance", () => {
  test("no agents: a reason, not a crash", () => {
    const p = placeInstance([], req);
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.reason).toContain("no agents");
  });
  test("filters out agents without enough memory, disk or the stack", () => {
    const agents = [agent("small", { availableMemory: 100 }), agent("nodisk", { availableDisk: 10 }), agent("other", { stacks: ["java"] }), agent("ok", { availableMemory: 300 })];
    const p = placeInstance(agents, { ...req, stack: "bun" });
    expect(p.ok && p.agent.id).toBe("ok");
    const none = placeInstance([agent("other", { stacks: ["java"] })], { ...req, stack: "bun" });
    expect(!none.ok && none.reason).toContain("stack bun");
    const full = placeInstance([agent("small", { availableMemory: 100 })], req);
    expect(!full.ok && full.reason).toContain("256 MB");
  });
  test("prefers the zone with the fewest instances of the app, even over more free memory", () => {
    const agents = [agent("z1-big", { zone: "z1", availableMemory: 9000, appCounts: { a: 1 } }), agent("z2-small", { zone: "z2", availableMemory: 1000 })];
    expect(placeInstance(agents, req).ok && (placeInstance(agents, req) as { agent: AgentView }).agent.id).toBe("z2-small");
  });
  test("zone counts include agents that cannot take the instance", () => {
    const agents = [agent("z1-full", { zone: "z1", availableMemory: 0, appCounts: { a: 2 } }), agent("z1-free", { zone: "z1", availableMemory: 8000 }), agent("z2", { zone: "z2", availableMemory: 1000, appCounts: { a: 1 } })];
    const p = placeInstance(agents, req);
    expect(p.ok && p.agent.id).toBe("z2");
  });
  test("within a zone: fewest instances of the app on the agent, then most free memory", () => {
    const agents = [agent("busy", { availableMemory: 8000, appCounts: { a: 1 } }), agent("idle-small", { availableMemory: 1000 }), agent("idle-big", { availableMemory: 2000 })];
    const p = placeInstance(agents, req);
    expect(p.ok && p.agent.id).toBe("idle-big");
  });
  test("placeMany spreads instances across zones and agents", () => {
    const agents = [agent("a1", { zone: "z1" }), agent("a2", { zone: "z1" }), agent("b1", { zone: "z2" })];
    const ids = placeMany(agents, req, 4).map((p) => (p.ok ? p.agent.id : "none"));
    expect(ids.filter((i) => i === "b1").length).toBe(2);
    expect(new Set(ids)).toEqual(new Set(["a1", "a2", "b1"]));
    // the inputs were not changed
    expect(agents[0]!.appCounts).toEqual({});
  });
  test("is deterministic on ties (lowest id)", () => {
    expect((placeInstance([agent("b"), agent("a")], req) as { agent: AgentView }).agent.id).toBe("a");
  });
});
