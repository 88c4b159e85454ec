// The bus against a real nats-server: typed round trips, request/reply, garbage survival, reconnect.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connectBus, Subjects } from "./index.ts";
import { memoryLogger } from "./log.ts";
import { sampleMessages } from "./fixtures.ts";
import { startNatsServer, type NatsServer } from "../tests/support/nats-server.ts";
import { eventually } from "../tests/support/ports.ts";
import type { Bus } from "./bus.ts";

let nats: NatsServer;
let a: Bus;
let b: Bus;

beforeAll(async () => {
  nats = await startNatsServer();
  a = await connectBus({ servers: [nats.url], name: "test-a" }, memoryLogger());
  b = await connectBus({ servers: [nats.url], name: "test-b" }, memoryLogger());
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await nats?.stop();
});

describe("Bus over a real nats-server", () => {
  test("every message kind crosses NATS intact", async () => {
    const got = new Map<string, unknown>();
    const kinds = Object.keys(sampleMessages) as (keyof typeof sampleMessages)[];
    for (const kind of kinds) b.subscribe(`t.${kind}`, kind, (m) => void got.set(kind, m));
    await b.flush();
    for (const kind of kinds) a.publish(`t.${kind}`, kind, sampleMessages[kind] as never);
    await eventually(() => (got.size === kinds.length ? true : undefined), 5000, "all kinds delivered");
    for (const kind of kinds) expect(got.get(kind)).toEqual(sampleMessages[kind]);
  });

  test("garbage on a subject is counted and the subscription keeps working", async () => {
    const seen: string[] = [];
    b.subscribe(Subjects.routerUnregister, "router.unregister", (m) => void seen.push(m.host));
    await b.flush();
    a.publishRaw(Subjects.routerUnregister, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    a.publishRaw(Subjects.routerUnregister, new TextEncoder().encode('{"host":5}'));
    a.publish(Subjects.routerUnregister, "router.unregister", { host: "ok", port: 1, uris: [] });
    await eventually(() => (seen.length === 1 ? true : undefined), 5000, "valid message after garbage");
    expect(seen).toEqual(["ok"]);
    expect(b.counters().rejected[Subjects.routerUnregister]).toBe(2);
  });

  test("request/reply through a NATS inbox", async () => {
    b.subscribe(Subjects.routerGreet, "router.greet", (_m, meta) => {
      b.publish(meta.reply!, "router.start", sampleMessages["router.start"]);
    });
    await b.flush();
    const reply = await a.request(Subjects.routerGreet, "router.greet", {}, "router.start", { timeoutMs: 2000 });
    expect(reply).toEqual(sampleMessages["router.start"]);
  });

  test("reports disconnect and reconnect when the server restarts", async () => {
    const events: string[] = [];
    const port = nats.port;
    const c = await connectBus({ servers: [nats.url], name: "test-c" }, memoryLogger());
    c.onStatus((s) => void events.push(s.type));
    await nats.stop();
    await eventually(() => (events.includes("disconnect") ? true : undefined), 5000, "disconnect event");
    nats = await startNatsServer({ port }); // a new server on the same port; the client retries it forever
    await eventually(() => (events.includes("reconnect") ? true : undefined), 10_000, "reconnect event");
    await c.close();
  });
});

test("a request nobody answers times out quietly: NATS's no-responders status is not an invalid message", async () => {
  const rejected = () => Object.values(a.counters().rejected).reduce((x, y) => x + y, 0);
  const before = rejected();
  const replies = await a.requestMany("nobody.listens.here", "router.greet", {}, "router.start", { timeoutMs: 200 });
  expect(replies).toEqual([]);
  expect(rejected()).toBe(before);
});
