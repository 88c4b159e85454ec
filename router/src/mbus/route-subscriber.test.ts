import { expect, test } from "bun:test";
import { createBus, MemoryBroker, memoryLogger, encode, Subjects, type BusStatus, type Transport } from "../../../bus/index.ts";
import { ReferenceMatcher } from "../matcher/reference-matcher.ts";
import { RouteRegistry } from "../registry/route-registry.ts";
import { RouteSubscriber } from "./route-subscriber.ts";

function setup() {
  const broker = new MemoryBroker();
  const statusListeners: ((s: BusStatus) => void)[] = [];
  const base = broker.transport();
  const transport: Transport = { ...base, onStatus: (l) => void statusListeners.push(l) };
  const routerBus = createBus(transport, memoryLogger());
  const peer = createBus(broker.transport(), memoryLogger());
  const registry = new RouteRegistry(new ReferenceMatcher());
  let now = 0;
  const log = memoryLogger();
  const sub = new RouteSubscriber(routerBus, registry, { id: "r1", hosts: ["127.0.0.1"], minimumRegisterIntervalSeconds: 20, pruneThresholdSeconds: 120, now: () => now }, log);
  return { broker, routerBus, peer, registry, sub, log, emit: (s: BusStatus) => statusListeners.forEach((l) => l(s)), setNow: (n: number) => (now = n) };
}

const flush = () => new Promise((r) => setTimeout(r, 10));

test("publishes router.start at boot and after a reconnect; answers router.greet", async () => {
  const { peer, sub, emit } = setup();
  const starts: unknown[] = [];
  peer.subscribe(Subjects.routerStart, "router.start", (m) => void starts.push(m));
  sub.start();
  await flush();
  expect(starts).toHaveLength(1);
  emit({ type: "disconnect" });
  emit({ type: "reconnect" });
  await flush();
  expect(starts).toHaveLength(2);
  const reply = await peer.request(Subjects.routerGreet, "router.greet", {}, "router.start", { timeoutMs: 1000 });
  expect(reply.id).toBe("r1");
  expect(reply.pruneThresholdInSeconds).toBe(120);
});

test("register in CBOR and CF JSON, unregister, garbage rejected and counted", async () => {
  const { peer, routerBus, registry, sub } = setup();
  sub.start();
  peer.publish(Subjects.routerRegister, "router.register", { host: "10.0.0.1", port: 1, uris: ["a.com"] });
  peer.publishRaw(Subjects.routerRegister, new TextEncoder().encode(JSON.stringify({ host: "10.0.0.2", port: 2, uris: ["a.com"], app: "x", private_instance_index: 0 })));
  await flush();
  expect(registry.lookup("a.com", "/")!.size).toBe(2);
  peer.publishRaw(Subjects.routerRegister, new Uint8Array([0xff, 0x00, 0x13]));
  peer.publishRaw(Subjects.routerRegister, encode("router.register", { host: "", port: 0, uris: [] } as never));
  await flush();
  expect(registry.stats()).toEqual({ routes: 1, endpoints: 2 });
  expect(routerBus.counters().rejected[Subjects.routerRegister]).toBe(2);
  peer.publish(Subjects.routerUnregister, "router.unregister", { host: "10.0.0.1", port: 1, uris: ["a.com"] });
  await flush();
  expect(registry.lookup("a.com", "/")!.size).toBe(1);
});

test("pruning is suspended while disconnected", async () => {
  const { peer, registry, sub, emit, setNow } = setup();
  sub.start();
  peer.publish(Subjects.routerRegister, "router.register", { host: "10.0.0.1", port: 1, uris: ["a.com"], stale_threshold_in_seconds: 1 });
  await flush();
  emit({ type: "disconnect" });
  setNow(10_000);
  expect(registry.pruneStale(10_000)).toBe(0);
  emit({ type: "reconnect" });
  expect(registry.pruneStale(10_500)).toBe(0);
  expect(registry.pruneStale(12_000)).toBe(1);
});

test("a valid change that throws while applied is counted and logged with its subject; the queue keeps draining (issue 5)", async () => {
  const { peer, registry, sub, log } = setup();
  const register = registry.register.bind(registry);
  const unregister = registry.unregister.bind(registry);
  registry.register = (msg, now) => {
    if (msg.port === 2) throw new Error("matcher refused the key");
    register(msg, now);
  };
  registry.unregister = (msg) => {
    if (msg.port === 3) throw new TypeError("boom");
    unregister(msg);
  };
  sub.start();
  peer.publish(Subjects.routerRegister, "router.register", { host: "10.0.0.1", port: 1, uris: ["a.com"] });
  peer.publish(Subjects.routerRegister, "router.register", { host: "10.0.0.2", port: 2, uris: ["b.com"] });
  peer.publish(Subjects.routerRegister, "router.register", { host: "10.0.0.3", port: 3, uris: ["c.com"] });
  peer.publish(Subjects.routerUnregister, "router.unregister", { host: "10.0.0.3", port: 3, uris: ["c.com"] });
  await flush();
  expect(registry.lookup("a.com", "/")!.size).toBe(1);
  expect(registry.lookup("b.com", "/")).toBeUndefined();
  expect(registry.lookup("c.com", "/")!.size).toBe(1);
  expect(sub.applyErrors).toEqual({ [Subjects.routerRegister]: 1, [Subjects.routerUnregister]: 1 });
  expect(log.lines.filter((l) => l.startsWith("error") && l.includes(`"subject":"${Subjects.routerRegister}"`) && l.includes("matcher refused the key"))).toHaveLength(1);
  expect(sub.pending).toBe(0);
  // a later burst is still applied: the failure did not leave the queue stuck as scheduled
  peer.publish(Subjects.routerRegister, "router.register", { host: "10.0.0.4", port: 4, uris: ["d.com"] });
  await flush();
  expect(registry.lookup("d.com", "/")!.size).toBe(1);
});
