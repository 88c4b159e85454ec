// Safety properties of the request path against the real router process (issue 5): no request
// smuggled past stage 3, no retry once a byte reached an instance, bounded attempts and timeouts,
// the per-instance connection cap, sticky sessions and least-connection end to end.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Server as NetServer } from "node:net";
import { eventually } from "../support/ports.ts";
import { freePort } from "../support/ports.ts";
import { metricsText, rawBackend, rawRequest, startHarness, startRouter, stopSuite, unacceptingListener, waitForStatus, type Harness, type RunningRouter } from "./router-harness.ts";

const CONNECT_TIMEOUT_MS = 500;
let h: Harness;
let router: RunningRouter;
const servers: NetServer[] = [];

beforeAll(async () => {
  h = await startHarness();
  router = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_MAX_HEADER_BYTES: "2048", SKIFF_ROUTER_MAX_BODY_BYTES: "1000", SKIFF_ROUTER_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS) });
}, 60_000);

afterAll(() => stopSuite(h, servers));

/** A backend that answers "ok" to every request and remembers each request head. */
async function okBackend(): Promise<{ port: number; heads: string[] }> {
  const heads: string[] = [];
  const b = await rawBackend(servers, (s, head) => {
    heads.push(head);
    s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  return { port: b.port, heads };
}

describe("reject-hostile closes the connection (issue 5)", () => {
  let backend: { port: number; heads: string[] };
  const host = "smuggle.skiff.localhost";
  const smuggled = `GET /smuggled HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

  beforeAll(async () => {
    backend = await okBackend();
    await h.register({ port: backend.port, uris: [host] });
    await waitForStatus(router.url, host, 200);
  });

  test("Content-Length: 0 then Content-Length: N: the connection closes and the body never reaches the backend as a request (issue 5)", async () => {
    backend.heads.length = 0;
    // in one write, as a smuggler sends it: uWS aborts the connection (no answer) rather than serve what follows
    const r = await rawRequest(router.port, `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`, 2000);
    expect(r.closed).toBe(true);
    expect(r.text).not.toContain(" 200 ");
    await Bun.sleep(100);
    expect(backend.heads.some((hd) => hd.includes("/smuggled"))).toBe(false);
  });

  test("the same with the smuggled bytes in a later write: 400, then the connection closes (issue 5)", async () => {
    backend.heads.length = 0;
    const socket = connect(router.port, "127.0.0.1");
    let text = "";
    let closed = false;
    socket.on("data", (d) => (text += d.toString("latin1")));
    socket.on("error", () => {});
    socket.on("close", () => (closed = true));
    socket.write(`POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n`);
    await eventually(() => (text.includes("\r\n\r\n") ? true : undefined), 3000, "the 400");
    if (!socket.destroyed) socket.write(smuggled);
    await eventually(() => (closed ? true : undefined), 3000, "the router to close the connection");
    expect(text).toStartWith("HTTP/1.1 400");
    expect(text.toLowerCase()).toContain("x-cf-routererror: invalid_request");
    expect(text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    await Bun.sleep(100);
    expect(backend.heads).toHaveLength(0);
  });

  test("431 and 413 close the connection too; nothing behind them is served (issue 5)", async () => {
    backend.heads.length = 0;
    const tooBig = await rawRequest(router.port, `GET / HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${"a".repeat(2100)}\r\n\r\n`, 2000);
    expect(tooBig.text).toStartWith("HTTP/1.1 431");
    expect(tooBig.closed).toBe(true);
    const tooLong = await rawRequest(router.port, `POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 1001\r\n\r\n`, 2000);
    expect(tooLong.text).toStartWith("HTTP/1.1 413");
    expect(tooLong.closed).toBe(true);
    const pipelined = await rawRequest(router.port, `GET / HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${"a".repeat(2100)}\r\n\r\n${smuggled}`, 2000);
    expect(pipelined.closed).toBe(true);
    expect(pipelined.text).not.toContain(" 200 ");
    await Bun.sleep(100);
    expect(backend.heads).toHaveLength(0);
  });
});

/** A counter from /metrics. */
async function metric(r: RunningRouter, name: string): Promise<number> {
  const text = await metricsText(r);
  const m = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  if (!m) throw new Error(`${name} not in /metrics`);
  return Number(m[1]);
}

/** A backend that answers each request with the name given, after `hold` resolves when one is given. */
async function namedBackend(name: string, onRequest?: (head: string) => Promise<void> | void) {
  const heads: string[] = [];
  const b = await rawBackend(servers, (s, head) => {
    heads.push(head);
    void Promise.resolve(onRequest?.(head)).then(() => {
      if (!s.destroyed) s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${name.length}\r\n\r\n${name}`);
    });
  });
  return { name, port: b.port, heads };
}

describe("retries and timeouts", () => {
  test("a POST to an instance that closes without answering: 502, and the instance saw it exactly once (issue 5)", async () => {
    const heads: string[] = [];
    const b = await rawBackend(servers, (s, head) => {
      heads.push(head);
      s.destroy(); // read the request, answer nothing
    });
    const c = await rawBackend(servers, (s, head) => {
      heads.push(head);
      s.destroy();
    });
    await h.register({ port: b.port, uris: ["post-close.skiff.localhost"] });
    await h.register({ port: c.port, uris: ["post-close.skiff.localhost"] });
    await Bun.sleep(200);
    const res = await fetch(`${router.url}/orders`, { method: "POST", body: "pay 100", headers: { host: "post-close.skiff.localhost" } });
    expect(res.status).toBe(502);
    expect(res.headers.get("x-cf-routererror")).toBe("endpoint_failure");
    await Bun.sleep(200);
    expect(heads.filter((hd) => hd.startsWith("POST /orders"))).toHaveLength(1);
  });

  test("four dead instances: 502 after exactly 3 connect attempts (issue 5)", async () => {
    for (let i = 0; i < 4; i++) await h.register({ port: await freePort(), uris: ["four-dead.skiff.localhost"] });
    await eventually(async () => ((await fetch(`${router.statusUrl}/routes`, { headers: { authorization: router.auth } }).then((r) => r.json()))["four-dead.skiff.localhost"]?.length === 4 ? true : undefined), 5000, "four endpoints");
    const errors = await metric(router, "skiff_router_upstream_errors_total");
    const retries = await metric(router, "skiff_router_retries_total");
    const res = await fetch(router.url, { headers: { host: "four-dead.skiff.localhost" } });
    expect(res.status).toBe(502);
    expect(res.headers.get("x-cf-routererror")).toBe("endpoint_failure");
    expect((await metric(router, "skiff_router_upstream_errors_total")) - errors).toBe(3);
    expect((await metric(router, "skiff_router_retries_total")) - retries).toBe(2);
  });

  test("an instance that never accepts the connection: 502 within the connect timeout (issue 5)", async () => {
    const never = await unacceptingListener();
    try {
      await h.register({ port: never.port, uris: ["never.skiff.localhost"] });
      await Bun.sleep(200);
      const started = performance.now();
      const res = await fetch(router.url, { headers: { host: "never.skiff.localhost" } });
      const took = performance.now() - started;
      expect(res.status).toBe(502);
      expect(res.headers.get("x-cf-routererror")).toBe("endpoint_failure");
      // the timeout sweep runs every 250 ms
      expect(took).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_MS - 20);
      expect(took).toBeLessThan(CONNECT_TIMEOUT_MS + 250 + 500);
    } finally {
      never.close();
    }
  }, 15_000);
});

describe("balancing", () => {
  test("__VCAP_ID__ sends every request to that instance out of three (issue 5)", async () => {
    const backends = [await namedBackend("one"), await namedBackend("two"), await namedBackend("three")];
    for (const b of backends) await h.register({ port: b.port, uris: ["sticky.skiff.localhost"], private_instance_id: `sticky-${b.name}` });
    await eventually(async () => ((await fetch(`${router.statusUrl}/routes`, { headers: { authorization: router.auth } }).then((r) => r.json()))["sticky.skiff.localhost"]?.length === 3 ? true : undefined), 5000, "three endpoints");
    for (let i = 0; i < 9; i++) {
      const res = await fetch(router.url, { headers: { host: "sticky.skiff.localhost", cookie: "JSESSIONID=s1; __VCAP_ID__=sticky-two; other=x" } });
      expect(await res.text()).toBe("two");
    }
    const plain = new Set<string>();
    for (let i = 0; i < 6; i++) plain.add(await (await fetch(router.url, { headers: { host: "sticky.skiff.localhost" } })).text());
    expect(plain.size).toBe(3); // without the cookie, round-robin over all three
  });

  test("least-connection end to end: while one instance holds a request, the next requests go to the idle one (issue 5)", async () => {
    const releases: (() => void)[] = [];
    const slow = await namedBackend("slow", () => new Promise<void>((r) => releases.push(r)));
    const fast = await namedBackend("fast");
    for (const b of [slow, fast]) await h.register({ port: b.port, uris: ["least.skiff.localhost"], options: { loadbalancing: "least-connection" } });
    await eventually(async () => ((await fetch(`${router.statusUrl}/routes`, { headers: { authorization: router.auth } }).then((r) => r.json()))["least.skiff.localhost"]?.length === 2 ? true : undefined), 5000, "two endpoints");
    // get one request held by the slow instance (the first pick is a tie)
    const held: Promise<Response>[] = [];
    while (slow.heads.length === 0) {
      const p = fetch(router.url, { headers: { host: "least.skiff.localhost" } });
      await Bun.sleep(100);
      if (slow.heads.length > 0) held.push(p);
      else await p;
    }
    for (let i = 0; i < 8; i++) expect(await (await fetch(router.url, { headers: { host: "least.skiff.localhost" } })).text()).toBe("fast");
    expect(slow.heads).toHaveLength(1); // round-robin would have sent half of them to the slow one
    for (const r of releases) r();
    expect(await (await held[0]!).text()).toBe("slow");
  });

  test("a full per-instance connection cap: 503 no_endpoints; the in-flight count returns to 0 after success, upstream failure and client abort (issue 5)", async () => {
    const capped = await startRouter(h.bundle, h.nats, { SKIFF_ROUTER_MAX_CONNS_PER_ENDPOINT: "1" });
    const releases: (() => void)[] = [];
    const b = await rawBackend(servers, (s, head) => {
      if (head.startsWith("GET /hold")) releases.push(() => s.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld"));
      else if (head.startsWith("GET /die")) s.destroy();
      else if (head.startsWith("GET /never")) {
        // keeps the request until the client goes away
      } else s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    try {
      await h.register({ port: b.port, uris: ["capped.skiff.localhost"] });
      await waitForStatus(capped.url, "capped.skiff.localhost", 200);
      const get = (path: string) => fetch(`${capped.url}${path}`, { headers: { host: "capped.skiff.localhost" } });
      const held = get("/hold");
      await eventually(() => (releases.length > 0 ? true : undefined), 3000, "the held request to arrive");
      const refused = await get("/");
      expect(refused.status).toBe(503);
      expect(refused.headers.get("x-cf-routererror")).toBe("no_endpoints");
      releases[0]!();
      expect(await (await held).text()).toBe("held");
      expect((await get("/")).status).toBe(200);
      // an upstream that dies gives its slot back
      expect((await get("/die")).status).toBe(502);
      expect((await get("/")).status).toBe(200);
      // so does a client that goes away while its request is in flight
      void rawRequest(capped.port, "GET /never HTTP/1.1\r\nHost: capped.skiff.localhost\r\n\r\n", 300);
      await Bun.sleep(100);
      expect((await get("/")).status).toBe(503);
      await Bun.sleep(400);
      expect((await get("/")).status).toBe(200);
      expect(await metric(capped, "skiff_router_active_requests")).toBe(0);
    } finally {
      await capped.process.stop();
    }
  }, 20_000);
});
