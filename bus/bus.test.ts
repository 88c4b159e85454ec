import { describe, expect, test } from "bun:test";
import { createBus, RequestTimeoutError } from "./bus.ts";
import { MemoryBroker, subjectMatches } from "./memory-transport.ts";
import { memoryLogger } from "./log.ts";
import { sampleMessages } from "./fixtures.ts";
import type { RouterRegister } from "./messages.ts";

const tick = () => new Promise((r) => setTimeout(r, 5));

function pair() {
  const broker = new MemoryBroker();
  const log = memoryLogger();
  return { broker, log, a: createBus(broker.transport(), log), b: createBus(broker.transport(), log) };
}

describe("Bus over the in-memory transport", () => {
  test("delivers a valid message to a subscriber of the subject", async () => {
    const { a, b } = pair();
    const got: RouterRegister[] = [];
    b.subscribe("router.register", "router.register", (m) => void got.push(m));
    a.publish("router.register", "router.register", sampleMessages["router.register"]);
    await tick();
    expect(got).toEqual([sampleMessages["router.register"]]);
    expect(b.counters().accepted["router.register"]).toBe(1);
  });

  test("an invalid message is counted, logged once per burst, and never reaches the handler", async () => {
    const { a, b, log } = pair();
    let calls = 0;
    b.subscribe("router.register", "router.register", () => void calls++);
    for (let i = 0; i < 50; i++) a.publishRaw("router.register", new Uint8Array([0xff, i]));
    a.publish("router.register", "router.unregister", { host: "h", port: 0, uris: [] }); // port 0 is invalid
    await tick();
    expect(calls).toBe(0);
    expect(b.counters().rejected["router.register"]).toBe(51);
    expect(log.lines.filter((l) => l.includes("invalid message rejected")).length).toBe(1);
    expect(log.lines[0]).toContain("router.register");
  });

  test("a throwing or rejecting handler is caught and counted", async () => {
    const { a, b } = pair();
    b.subscribe("dea.locate", "dea.locate", () => {
      throw new Error("boom");
    });
    b.subscribe("router.greet", "router.greet", async () => {
      throw new Error("async boom");
    });
    a.publish("dea.locate", "dea.locate", {});
    a.publish("router.greet", "router.greet", {});
    await tick();
    expect(b.counters().handlerErrors).toEqual({ "dea.locate": 1, "router.greet": 1 });
  });

  test("request returns the first reply; requestMany collects until the time is up", async () => {
    const { a, b } = pair();
    const c = createBus(new MemoryBroker().transport(), memoryLogger()); // another broker: never answers
    for (const dea of ["agent-1", "agent-2"]) {
      b.subscribe("dea.find.droplet", "dea.find.droplet", (m, meta) => {
        a.publish(meta.reply!, "dea.find.droplet.reply", { ...sampleMessages["dea.find.droplet.reply"], dea, droplet: m.droplet });
      });
    }
    const one = await a.request("dea.find.droplet", "dea.find.droplet", { droplet: "x" }, "dea.find.droplet.reply", { timeoutMs: 500 });
    expect(one.droplet).toBe("x");
    const all = await a.requestMany("dea.find.droplet", "dea.find.droplet", { droplet: "y" }, "dea.find.droplet.reply", { timeoutMs: 50 });
    expect(all.map((r) => r.dea).sort()).toEqual(["agent-1", "agent-2"]);
    expect(c.request("dea.find.droplet", "dea.find.droplet", { droplet: "z" }, "dea.find.droplet.reply", { timeoutMs: 20 })).rejects.toBeInstanceOf(RequestTimeoutError);
  });

  test("queue groups deliver each message to one member", async () => {
    const { a, b } = pair();
    let n = 0;
    b.subscribe("dea.heartbeat", "dea.heartbeat", () => void n++, { queue: "hm" });
    b.subscribe("dea.heartbeat", "dea.heartbeat", () => void n++, { queue: "hm" });
    for (let i = 0; i < 10; i++) a.publish("dea.heartbeat", "dea.heartbeat", sampleMessages["dea.heartbeat"]);
    await tick();
    expect(n).toBe(10);
  });

  test("subject wildcards follow NATS: * is one token, > the rest", () => {
    const m = (p: string, s: string) => subjectMatches(p.split("."), s.split("."));
    expect(m("logs.*", "logs.app1")).toBe(true);
    expect(m("logs.*", "logs.app1.x")).toBe(false);
    expect(m("dea.>", "dea.a.start")).toBe(true);
    expect(m("dea.>", "dea")).toBe(false);
    expect(m("dea.*.start", "dea.a.start")).toBe(true);
    expect(m("dea.*.start", "dea.a.stop")).toBe(false);
  });
});

describe("raw subscriptions, decoded later", () => {
  test("bytes arrive undecoded; decode() validates and counts on the subscription's subject", async () => {
    const { a, b } = pair();
    const got: Uint8Array[] = [];
    b.subscribeRaw("router.register", (data) => void got.push(data.slice()));
    a.publish("router.register", "router.register", sampleMessages["router.register"]);
    a.publishRaw("router.register", new Uint8Array([0xff]));
    await tick();
    expect(got.length).toBe(2);
    expect(b.counters().accepted["router.register"]).toBe(0); // listed at subscribe, nothing counted until decoded
    expect(b.decode("router.register", "router.register", got[0]!)).toEqual(sampleMessages["router.register"]);
    expect(b.decode("router.register", "router.register", got[1]!)).toBeUndefined();
    expect(b.counters().accepted["router.register"]).toBe(1);
    expect(b.counters().rejected["router.register"]).toBe(1);
  });
});
