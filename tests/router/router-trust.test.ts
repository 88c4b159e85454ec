// Whom the router believes, against real router processes (issue 24: one tenant could read every
// other tenant's data): /metrics lists every tenant's routes, so it wants the status credentials
// unless the peer is a listed scraper, and the status password never reaches the log; what a client
// claims about the hops before the router (X-Forwarded-Proto, Forwarded, X-Forwarded-Host/-Port,
// X-Real-IP) reaches an app only from a trusted front end, for plain requests and WebSocket upgrades.
//
// Three routers share one nats-server and one backend: `plain` with the defaults (nobody trusted, the
// password generated into a file), `elsewhere` trusting another network than the test's (the lists
// set, the peer not in them), `trusting` trusting 127.0.0.1/32 for both.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopAllProcesses } from "../support/processes.ts";
import { headersOf, startHarness, startRouter, waitForStatus, type Harness, type RunningRouter } from "./router-harness.ts";

const HOST = "trust.skiff.localhost";
const OTHER_NETWORK = "198.51.100.0/24";
const dir = mkdtempSync(join(tmpdir(), "skiff-router-trust-"));
const passFile = join(dir, "router", "status-password");
const trustingPass = randomBytes(12).toString("base64url");
let h: Harness;
let plain: RunningRouter;
let elsewhere: RunningRouter;
let trusting: RunningRouter;
let backend: ReturnType<typeof Bun.serve>;
/** the headers of each request the backend got, by its path */
const seen = new Map<string, Record<string, string>>();

/** what a client (or a load balancer in front of the router) says about the hops before the router */
const CLAIMS = {
  "x-forwarded-for": "203.0.113.9",
  "x-forwarded-proto": "https",
  forwarded: "for=203.0.113.9;proto=https;host=shop.example.com",
  "x-forwarded-host": "shop.example.com",
  "x-forwarded-port": "443",
  "x-real-ip": "203.0.113.9",
};
const SANITIZED = ["forwarded", "x-forwarded-host", "x-forwarded-port", "x-real-ip"] as const;

beforeAll(async () => {
  h = await startHarness();
  backend = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req, server) {
      const headers = headersOf(req);
      seen.set(new URL(req.url).pathname, headers);
      if (req.headers.get("upgrade") === "websocket" && server.upgrade(req, { data: undefined })) return;
      return new Response("ok");
    },
    websocket: { open: (ws) => void ws.send("hello"), message() {} },
  });
  // SKIFF_ROUTER_STATUS_PASS "" overrides the harness's: the router keeps a generated one in the file
  [plain, elsewhere, trusting] = await Promise.all([
    startRouter(h.bundle, h.nats, { SKIFF_ROUTER_STATUS_PASS: "", SKIFF_ROUTER_STATUS_PASS_FILE: passFile }),
    startRouter(h.bundle, h.nats, { SKIFF_ROUTER_TRUSTED_PROXIES: OTHER_NETWORK, SKIFF_ROUTER_METRICS_ALLOW: OTHER_NETWORK }),
    startRouter(h.bundle, h.nats, { SKIFF_ROUTER_TRUSTED_PROXIES: "127.0.0.1/32", SKIFF_ROUTER_METRICS_ALLOW: "127.0.0.1/32", SKIFF_ROUTER_STATUS_PASS: trustingPass }),
  ]);
  await h.register({ port: backend.port!, uris: [HOST], app: "trust-app" });
  for (const r of [plain, elsewhere, trusting]) await waitForStatus(r.url, HOST, 200);
}, 60_000);

afterAll(async () => {
  await stopAllProcesses();
  backend?.stop(true);
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const basic = (user: string, pass: string) => "Basic " + Buffer.from(`${user}:${pass}`).toString("base64");
const generatedPass = () => readFileSync(passFile, "utf8").trim();

describe("the status port's credentials (issue 24)", () => {
  test("/metrics without credentials is 401, with them 200; /health stays open for load balancers", async () => {
    for (const r of [plain, elsewhere]) {
      const anonymous = await fetch(`${r.statusUrl}/metrics`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get("www-authenticate")).toBe('Basic realm="skiff-router"');
      expect(await anonymous.text()).not.toContain(HOST);
      expect((await fetch(`${r.statusUrl}/metrics`, { headers: { authorization: basic("admin", "wrong") } })).status).toBe(401);
      expect((await fetch(`${r.statusUrl}/health`)).status).toBe(200);
    }
    const ok = await fetch(`${elsewhere.statusUrl}/metrics`, { headers: { authorization: elsewhere.auth } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain(`route="${HOST}"`);
  });

  test("a generated password is kept in SKIFF_ROUTER_STATUS_PASS_FILE (0600) and opens /metrics and /routes", async () => {
    expect(statSync(passFile).mode & 0o777).toBe(0o600);
    const auth = { authorization: basic("admin", generatedPass()) };
    const metrics = await fetch(`${plain.statusUrl}/metrics`, { headers: auth });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain(`route="${HOST}"`);
    expect((await fetch(`${plain.statusUrl}/routes`, { headers: auth })).status).toBe(200);
  });

  test("a scraper in SKIFF_ROUTER_METRICS_ALLOW reads /metrics without credentials; /routes still wants them", async () => {
    const res = await fetch(`${trusting.statusUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("skiff_router_routes ");
    expect((await fetch(`${trusting.statusUrl}/routes`)).status).toBe(401);
    expect((await fetch(`${trusting.statusUrl}/routes`, { headers: { authorization: basic("admin", trustingPass) } })).status).toBe(200);
  });

  test("the router's output never contains the status password; it says where the password is", async () => {
    for (const r of [plain, trusting]) expect(r.process.output()).not.toMatch(/\bpass=/);
    const pass = generatedPass();
    expect(plain.process.output()).not.toContain(pass);
    expect(plain.process.output()).toContain(`pass_file=${passFile}`);
    expect(trusting.process.output()).not.toContain(trustingPass);
    expect(trusting.process.output()).toContain("pass_from=SKIFF_ROUTER_STATUS_PASS");
  });
});

/** One request through `r` with every claim; the headers the backend got. */
async function forwardedThrough(r: RunningRouter, path: string): Promise<Record<string, string>> {
  const res = await fetch(`${r.url}${path}`, { headers: { host: HOST, ...CLAIMS } });
  expect(res.status).toBe(200);
  await res.text();
  return seen.get(path)!;
}

/** One WebSocket through `r` with every claim; the headers of the upgrade the backend got. */
async function upgradedThrough(r: RunningRouter, path: string): Promise<Record<string, string>> {
  const ws = new WebSocket(`ws://127.0.0.1:${r.port}${path}`, { headers: { host: HOST, ...CLAIMS } } as never);
  await new Promise<void>((resolve, reject) => {
    ws.onmessage = () => resolve();
    ws.onerror = () => reject(new Error(`websocket through port ${r.port} failed`));
    setTimeout(() => reject(new Error("websocket: no message within 5 s")), 5000);
  });
  ws.close();
  return seen.get(path)!;
}

const CASES = [
  ["a request", "http", forwardedThrough],
  ["a WebSocket upgrade", "ws", upgradedThrough],
] as const;

describe("forwarded headers from a peer that is not a trusted front end (issue 24)", () => {
  for (const [name, kind, through] of CASES) {
    test(`${name}: the app sees X-Forwarded-Proto from the connection (http), none of the other claims, and X-Forwarded-For with the peer appended`, async () => {
      for (const [label, r] of [
        ["plain", plain],
        ["elsewhere", elsewhere],
      ] as const) {
        const got = await through(r, `/${label}-${kind}`);
        expect(got["x-forwarded-proto"]).toBe("http");
        for (const header of SANITIZED) expect(got[header], `${label}: ${header}`).toBeUndefined();
        expect(got["x-forwarded-for"]).toBe("203.0.113.9, 127.0.0.1");
        expect(got.host).toBe(HOST);
      }
    });
  }

  test("without any claim, the app still gets X-Forwarded-Proto: http and the peer in X-Forwarded-For", async () => {
    const res = await fetch(`${plain.url}/bare`, { headers: { host: HOST } });
    await res.text();
    expect(seen.get("/bare")!["x-forwarded-proto"]).toBe("http");
    expect(seen.get("/bare")!["x-forwarded-for"]).toBe("127.0.0.1");
  });
});

describe("forwarded headers from a trusted front end (SKIFF_ROUTER_TRUSTED_PROXIES) pass as sent (issue 24)", () => {
  for (const [name, kind, through] of CASES) {
    test(name, async () => {
      const got = await through(trusting, `/trusted-${kind}`);
      expect(got["x-forwarded-proto"]).toBe("https");
      for (const header of SANITIZED) expect(got[header], header).toBe(CLAIMS[header]);
      expect(got["x-forwarded-for"]).toBe("203.0.113.9, 127.0.0.1");
    });
  }

  test("a trusted front end that sends no X-Forwarded-Proto gets the scheme it spoke", async () => {
    const res = await fetch(`${trusting.url}/trusted-bare`, { headers: { host: HOST } });
    await res.text();
    expect(seen.get("/trusted-bare")!["x-forwarded-proto"]).toBe("http");
  });
});
