// The load-balancer configurations of docs/load-balancers.md, run as the doc shows them (issue 26):
// nginx and HAProxy each in front of two real routers. With the doc's settings, no request fails at a
// low rate aimed at the routers' idle close, at full load while a router drains, or while one is killed
// (beyond the requests the kill itself takes down); with each front end's defaults, the same load
// shows the failure the doc's settings prevent. A TLS-terminating front end's X-Forwarded-Proto
// reaches the app only from a router that lists it in SKIFF_ROUTER_TRUSTED_PROXIES.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { runWrk } from "../../bench/lib/wrk.ts";
import { eventually } from "../support/ports.ts";
import { stopAllProcesses } from "../support/processes.ts";
import { rawRequest, startRouter, type RunningRouter } from "../router/router-harness.ts";
import { runIdleRace, startTickWatch, type RaceTally, type TickWatch } from "./idle-race.ts";
import { docConfig, docConfigNames, placeConfig } from "./lb-configs.ts";
import { LB_HOST, LB_ROUTER_ENV, startFrontEnd, startLbCluster, type FrontEnd, type LbCluster } from "./lb-cluster.ts";

/** the peers the routers trust: the front ends run on loopback in these tests */
const TRUSTED = { SKIFF_ROUTER_TRUSTED_PROXIES: "127.0.0.1/32" };
/** the documented configurations, and the defaults they are measured against */
const RACED = ["nginx", "haproxy", "nginx-keepalive-defaults", "haproxy-http11-check-only"] as const;

let cluster: LbCluster;
const fe: Record<string, FrontEnd> = {};
/** each router's idle-close tick, learnt while the first tests run (it takes up to 12 s) */
let ticks: TickWatch;

beforeAll(async () => {
  cluster = await startLbCluster(TRUSTED);
  ticks = startTickWatch(cluster.routers.map((r) => r.port));
  for (const name of RACED) fe[name] = await startFrontEnd(cluster, name, { tls: name === "nginx" || name === "haproxy" });
  for (const f of Object.values(fe)) await expectOk(f.url);
}, 60_000);

afterAll(async () => {
  await stopAllProcesses();
  await cluster?.stop();
});

async function expectOk(url: string, init: RequestInit & { tls?: { rejectUnauthorized: boolean } } = {}): Promise<Response> {
  const res = await fetch(`${url}/`, { ...init, headers: { host: LB_HOST, ...(init.headers as Record<string, string>) } });
  expect(res.status).toBe(200);
  return res;
}

test("every tested block of the doc runs as it stands: only addresses, ports and certificate paths are replaced", () => {
  const names = docConfigNames();
  expect(names).toEqual(expect.arrayContaining([...RACED, "nginx-defaults", "haproxy-defaults"]));
  const where = { listen: 1, tlsListen: 2, routers: [{ port: 3, statusPort: 4 }, { port: 5, statusPort: 6 }], tls: { cert: "/c", key: "/k", pem: "/p" } };
  for (const name of names) {
    const doc = docConfig(name).split("\n");
    const placed = placeConfig(docConfig(name), where).split("\n");
    expect(placed).toHaveLength(doc.length);
    // the lines that differ are exactly the ones naming an address, a port or a certificate
    doc.forEach((line, i) => {
      if (line !== placed[i]) expect(line).toMatch(/10\.0\.5\.1[12]:8080|listen (80|443 ssl);|bind :(80|443 ssl)|\/etc\/(nginx|haproxy)\/tls\//);
    });
  }
});

describe("what the engine cannot answer, the doc's front ends answer for it (router/README.md, Known limits)", () => {
  /** Raw bytes to a front end; every status line that came back, and whether it closed. */
  async function raw(port: number, data: string, waitMs = 2000): Promise<string[]> {
    const r = await rawRequest(port, data, waitMs);
    return [...r.text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => m[1]!); // responses follow each other's bodies
  }
  const get = (target: string, version = "HTTP/1.1", extra = "") => `GET ${target} ${version}\r\nHost: ${LB_HOST}\r\n${extra}\r\n`;

  for (const name of ["nginx", "haproxy"]) {
    test(`${name}: HTTP/1.0 is served (nginx) or answered 505 at once (HAProxy); an absolute-form target and pipelined requests are served; garbage is a 400; a 10-digit Content-Length a 413; xchunked refused`, async () => {
      const port = fe[name]!.port;
      // nginx speaks HTTP/1.1 to the routers whatever the client spoke; HAProxy passes the client's version on, so it answers HTTP/1.0 itself
      expect(await raw(port, get("/", "HTTP/1.0"))).toEqual([name === "nginx" ? "200" : "505"]);
      expect(await raw(port, get(`http://${LB_HOST}/absolute`, "HTTP/1.1", "Connection: close\r\n"))).toEqual(["200"]);
      expect(await raw(port, get("/1") + get("/2") + get("/3", "HTTP/1.1", "Connection: close\r\n"))).toEqual(["200", "200", "200"]);
      expect(await raw(port, "GARBAGE\r\n\r\n")).toEqual(["400"]);
      expect(await raw(port, `POST / HTTP/1.1\r\nHost: ${LB_HOST}\r\nContent-Length: 1000000000\r\n\r\n`)).toEqual(["413"]);
      // refused before the router sees it (the router would answer 501 itself)
      const [xchunked] = await raw(port, `POST / HTTP/1.1\r\nHost: ${LB_HOST}\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
      expect(name === "nginx" ? "501" : "400").toBe(xchunked!);
    });
  }

  test("more header lines than the router takes: HAProxy answers 400 at once (tune.http.maxhdr); nginx, which has no such limit, waits", async () => {
    const lines = (n: number) => get("/", "HTTP/1.1", `Connection: close\r\n${Array.from({ length: n - 2 }, (_, i) => `X-H${i}: v\r\n`).join("")}`);
    // 45 lines from the client and the ones each front end adds fit in the router's 48
    for (const name of ["nginx", "haproxy"]) expect(await raw(fe[name]!.port, lines(45))).toEqual(["200"]);
    expect(await raw(fe.haproxy!.port, lines(46))).toEqual(["400"]);
    expect(await raw(fe.nginx!.port, lines(46), 1000)).toEqual([]); // nginx answers 504 after proxy_read_timeout (75 s)
  });
});

describe("what a front end with its defaults does (the failures the doc's settings prevent)", () => {
  test("HAProxy's default health check is HTTP/1.0: the routers never answer it, so HAProxy takes both out and answers 503", async () => {
    const haproxy = await startFrontEnd(cluster, "haproxy-defaults");
    try {
      // each check waits for its timeout (inter 2 s) and three in a row take a server out
      await eventually(async () => ((await fetch(`${haproxy.url}/`, { headers: { host: LB_HOST } })).status === 503 ? true : undefined), 20_000, "HAProxy to answer 503");
      expect(haproxy.process.output()).toMatch(/router[12] is DOWN, reason: Layer7 timeout/);
    } finally {
      await haproxy.process.stop("SIGKILL");
    }
  }, 30_000);
});

describe("X-Forwarded-Proto from a TLS-terminating front end (issue 24's trusted front ends)", () => {
  test("https reaches the app through routers that list the front end; a router that does not replaces it with http", async () => {
    const insecure = { tls: { rejectUnauthorized: false } };
    for (const name of ["nginx", "haproxy"]) {
      const f = fe[name]!;
      const overTls = await expectOk(`https://127.0.0.1:${f.tlsPort}`, insecure);
      expect(overTls.headers.get("x-seen-forwarded-proto")).toBe("https");
      const plain = await expectOk(f.url);
      expect(plain.headers.get("x-seen-forwarded-proto")).toBe("http");
      // the client's address, then the front end's, as the router appends its peer
      expect(plain.headers.get("x-seen-forwarded-for")).toBe("127.0.0.1, 127.0.0.1");
    }
    // the same blocks in front of a router without SKIFF_ROUTER_TRUSTED_PROXIES
    const untrusted: RunningRouter = await startRouter(cluster.harness.bundle, cluster.harness.nats, { ...LB_ROUTER_ENV });
    try {
      await eventually(async () => ((await fetch(`${untrusted.url}/`, { headers: { host: LB_HOST } })).status === 200 ? true : undefined), 10_000, "the untrusting router to route");
      for (const name of ["nginx", "haproxy"]) {
        const f = await startFrontEnd({ routers: [untrusted, untrusted], dir: cluster.dir, tls: cluster.tls }, name, { tls: true });
        try {
          await eventually(async () => ((await fetch(`${f.url}/`, { headers: { host: LB_HOST } })).status === 200 ? true : undefined), 10_000, `${name} to route`);
          const overTls = await expectOk(`https://127.0.0.1:${f.tlsPort}`, insecure);
          expect(overTls.headers.get("x-seen-forwarded-proto")).toBe("http");
        } finally {
          await f.process.stop("SIGKILL");
        }
      }
    } finally {
      await untrusted.process.stop("SIGKILL");
    }
  }, 60_000);
});

describe("the idle race: requests that land on connections at the instant the router closes them", () => {
  test("none fails through the doc's nginx and HAProxy; the same load through their keep-alive defaults fails", async () => {
    const waves: string[] = [];
    await ticks.ready;
    const tallies = await runIdleRace({
      frontEnds: Object.fromEntries(RACED.map((n) => [n, fe[n]!.port])),
      ticks: ticks.ticks,
      clients: 24,
      waves: 4,
      host: LB_HOST,
      // each wave's requests sent 15-5 ms before the tick, the front ends held until 10 ms after it
      leadMs: 15,
      spreadMs: 10,
      burst: 4,
      pause: RACED.map((n) => fe[n]!.process.pid),
      onWave: (w) => waves.push(`router ${w.router + 1} at its tick, connections idle ${(w.idleMs / 1000).toFixed(1)} s: ${RACED.map((n) => `${n} ${w.tallies[n]!.failed}`).join(", ")}`),
    });
    await ticks.stop();
    const summary = (t: RaceTally) => `${t.failed} of ${t.sent} failed (${JSON.stringify(t.outcomes)})`;
    console.log(`idle race, failures so far after each wave:\n  ${waves.join("\n  ")}\n${RACED.map((n) => `  ${n}: ${summary(tallies[n]!)}`).join("\n")}`);
    for (const n of RACED) expect(tallies[n]!.sent).toBe(24 * 5);
    expect(summary(tallies.nginx!)).toStartWith("0 of");
    expect(summary(tallies.haproxy!)).toStartWith("0 of");
    // the defaults: nginx answers 502 (a POST met a connection the router closed), HAProxy closes the client's connection
    expect(tallies["nginx-keepalive-defaults"]!.outcomes["status 502"] ?? 0).toBeGreaterThan(0);
    expect(tallies["haproxy-http11-check-only"]!.outcomes["closed without a response"] ?? 0).toBeGreaterThan(0);
  }, 90_000);
});

describe("full load through the doc's front ends (wrk, 32 connections each)", () => {
  const CONNECTIONS = 32;
  const load = (seconds: number) => Promise.all(["nginx", "haproxy"].map((n) => runWrk({ url: `${fe[n]!.url}/`, connections: CONNECTIONS, seconds, host: LB_HOST })));

  test("router 1 drained (SIGTERM) mid-run: no request fails, and it exits 0 when the drain is done", async () => {
    const running = load(9);
    await Bun.sleep(2000);
    const r = cluster.routers[0]!;
    const t0 = performance.now();
    process.kill(r.process.pid, "SIGTERM");
    expect(await r.process.exited).toBe(0);
    const stoppedAfter = (performance.now() - t0) / 1000;
    const [nginx, haproxy] = await running;
    console.log(`drain: router 1 stopped ${stoppedAfter.toFixed(1)} s after SIGTERM; nginx ${nginx!.requests} requests (${nginx!.socketErrors} socket errors, ${nginx!.non2xx} non-2xx), HAProxy ${haproxy!.requests} (${haproxy!.socketErrors}, ${haproxy!.non2xx})`);
    expect(stoppedAfter).toBeGreaterThanOrEqual(4);
    for (const w of [nginx!, haproxy!]) {
      expect(w.requests).toBeGreaterThan(1000);
      expect(w.socketErrors + w.non2xx).toBe(0);
    }
    await cluster.restartRouter(0);
  }, 60_000);

  test("router 2 killed (SIGKILL) mid-run: at most the requests in flight on it fail", async () => {
    // both front ends must see router 1 back first: HAProxy after rise 2 × inter 1 s, nginx on its next try
    await Bun.sleep(3000);
    const running = load(6);
    await Bun.sleep(2500);
    await cluster.routers[1]!.process.stop("SIGKILL");
    const [nginx, haproxy] = await running;
    console.log(`kill: nginx ${nginx!.requests} requests (${nginx!.socketErrors} socket errors, ${nginx!.non2xx} non-2xx), HAProxy ${haproxy!.requests} (${haproxy!.socketErrors}, ${haproxy!.non2xx})`);
    for (const w of [nginx!, haproxy!]) {
      expect(w.requests).toBeGreaterThan(1000);
      // each connection has at most one request in flight, so at most this many were on router 2
      expect(w.socketErrors + w.non2xx).toBeLessThanOrEqual(CONNECTIONS);
    }
    await cluster.restartRouter(1);
  }, 60_000);
});
