// The console without a browser (issue 18): the controller in-process on the in-memory bus with a
// fake agent, and a fake router status endpoint serving the router's metrics text behind basic auth.
// Sessions (cookie flags, CSRF on every change, logout revokes the token), the same authorization
// as the API (a developer of one space, an auditor), the metrics history and the SSE log stream.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBus, logsSubject, MemoryBroker, memoryLogger, type Bus } from "../../bus/index.ts";
import { startController, type RunningController } from "../../controller/main.ts";
import { csrfTokenOf } from "../../controller/console/session.ts";
import { FakeAgent } from "../controller/fake-agent.ts";
import { eventually } from "../support/ports.ts";
import { apiCaller, BASE, tarGz } from "../controller/api-client.ts";

let dir: string;
let c: RunningController;
let bus: Bus;
let agent: FakeAgent;
let router: ReturnType<typeof Bun.serve>;
let routerRequests = 0;
let admin: string;

const http = (req: Request) => c.app.handle(req);
const api = apiCaller(http);
const login = async (username: string, password: string) => (await api(null, "POST", "/v3/tokens", { username, password })).json.access_token as string;

/** A browser's view: the cookie from /console/session, the CSRF token the pages carry. */
async function consoleSession(token: string) {
  const res = await http(new Request(BASE + "/console/session", { method: "POST", headers: { authorization: `bearer ${token}` } }));
  expect(res.status).toBe(204);
  const cookie = res.headers.get("set-cookie")!.split(";")[0]!;
  const csrf = csrfTokenOf(token);
  const get = (path: string, headers: Record<string, string> = {}) => http(new Request(BASE + path, { headers: { cookie, ...headers } }));
  const post = (path: string, form: Record<string, string> = {}, withCsrf = true) =>
    http(new Request(BASE + path, {
      method: "POST",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded", "hx-request": "true", ...(withCsrf ? { "x-csrf-token": csrf } : {}) },
      body: new URLSearchParams(form).toString(),
    }));
  return { cookie, csrf, get, post, setCookie: res.headers.get("set-cookie")! };
}

async function runningApp(token: string, name: string, space: string, instances = 1): Promise<string> {
  const app = (await api(token, "POST", "/v3/apps", { name, instances, space_guid: space })).json;
  expect((await api(token, "PUT", `/v3/apps/${app.guid}/bits`, await tarGz({ "index.ts": "console.log(1)" }))).status).toBe(200);
  await api(token, "POST", `/v3/apps/${app.guid}/actions/start`);
  await eventually(() => (agent.running(app.guid).length === instances ? true : undefined), 5000, `${name} running`);
  return app.guid;
}

/** The router's metrics text, as router/src/status/router-metrics.ts renders it; counts grow per scrape. */
function routerMetrics(n: number): string {
  return [
    `skiff_router_requests_total{class="2xx"} ${n * 10}`,
    `skiff_router_requests_total{class="5xx"} ${n}`,
    `skiff_router_route_requests_total{route="shop.skiff.test",class="2xx"} ${n * 10}`,
    `skiff_router_route_requests_total{route="shop.skiff.test",class="5xx"} ${n}`,
    `skiff_router_request_duration_seconds_bucket{le="0.001"} ${n * 5}`,
    `skiff_router_request_duration_seconds_bucket{le="0.01"} ${n * 11}`,
    `skiff_router_request_duration_seconds_bucket{le="+Inf"} ${n * 11}`,
    `skiff_router_routes 1`,
    `skiff_router_endpoints 1`,
  ].join("\n") + "\n";
}

let shop: string;
let devSpace: string;
let otherSpace: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "skiff-console-"));
  router = Bun.serve({
    port: 0, hostname: "127.0.0.1",
    fetch(req) {
      if (req.headers.get("authorization") !== `Basic ${btoa("router-status:s3cret")}`) return new Response("401", { status: 401 });
      return new Response(routerMetrics(++routerRequests));
    },
  });
  const broker = new MemoryBroker();
  bus = createBus(broker.transport(), memoryLogger());
  c = await startController(
    {
      natsUrl: "", port: 0, dataDir: dir, domain: "skiff.test", adminPassword: "adminpass", embedHealthManager: true, publicUrl: BASE,
      health: { intervalMs: 50, startGraceMs: 0 }, findTimeoutMs: 150,
      metrics: { intervalMs: 200, routerStatusUrls: [`http://127.0.0.1:${router.port}`], routerStatusPass: "s3cret" },
    },
    { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger(), listen: false },
  );
  agent = new FakeAgent(bus, "agent1", http).begin();
  admin = await login("admin", "adminpass");
  devSpace = (await api(admin, "GET", "/v3/spaces?names=dev")).json.resources[0].guid;
  const org = (await api(admin, "GET", "/v3/organizations")).json.resources[0].guid;
  otherSpace = (await api(admin, "POST", "/v3/spaces", { name: "other", organization_guid: org })).json.guid;
  for (const [u, role, space] of [["dev", "space_developer", devSpace], ["aud", "space_auditor", devSpace]] as const) {
    await api(admin, "POST", "/v3/users", { username: u, password: `${u}password` });
    await api(admin, "POST", "/v3/roles", { type: role, user: u, space_guid: space });
  }
  shop = await runningApp(admin, "shop", devSpace);
  await runningApp(admin, "secret-app", otherSpace);
  await api(admin, "PATCH", `/v3/apps/${shop}/env`, { var: { API_KEY: "hunter2-value" } });
});

afterAll(async () => {
  agent?.end();
  await c?.stop();
  router?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

describe("the console's session", () => {
  test("a browser asking for / is sent to the console, which wants a login; API clients still get the links", async () => {
    const r = await http(new Request(BASE + "/", { headers: { accept: "text/html,application/xhtml+xml" } }));
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/console/");
    expect((await api(null, "GET", "/")).json.links.console.href).toBe("/console/");
    const page = await http(new Request(BASE + "/console/"));
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toStartWith("/console/login");
    const loginPage = await http(new Request(BASE + "/console/login"));
    expect(loginPage.status).toBe(200);
    expect(loginPage.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(await loginPage.text()).toContain('id="login"');
    // the console's paths are not the API's: not in the OpenAPI document
    expect(Object.keys((await api(null, "GET", "/v3/openapi.json")).json.paths).some((p) => p.startsWith("/console"))).toBe(false);
  });

  test("the session cookie is HttpOnly and SameSite=Strict, and /console/session wants the token as a bearer header", async () => {
    const s = await consoleSession(admin);
    expect(s.setCookie).toMatch(/HttpOnly/);
    expect(s.setCookie).toMatch(/SameSite=Strict/);
    expect(s.setCookie).not.toMatch(/Secure/); // plain HTTP here; over TLS it is Secure (session.test.ts)
    expect((await http(new Request(BASE + "/console/session", { method: "POST" }))).status).toBe(401);
    expect((await http(new Request(BASE + "/console/session", { method: "POST", headers: { authorization: "bearer forged-token-forged-token" } }))).status).toBe(401);
    // the cookie never authenticates /v3 itself
    expect((await http(new Request(BASE + "/v3/apps", { headers: { cookie: s.cookie } }))).status).toBe(401);
  });

  test("a change without the CSRF token (or with another session's) is refused and changes nothing", async () => {
    const s = await consoleSession(admin);
    const before = (await api(admin, "GET", `/v3/apps/${shop}`)).json.instances;
    const refused = await s.post(`/console/apps/${shop}/scale`, { instances: "3", memory_in_mb: "256" }, false);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("CSRF");
    const other = await consoleSession(await login("admin", "adminpass"));
    const wrong = await http(new Request(BASE + `/console/apps/${shop}/stop`, { method: "POST", headers: { cookie: s.cookie, "x-csrf-token": other.csrf } }));
    expect(wrong.status).toBe(403);
    // through the page scripts' API path too
    const viaProxy = await http(new Request(BASE + `/console/api/v3/apps/${shop}/actions/stop`, { method: "POST", headers: { cookie: s.cookie } }));
    expect(viaProxy.status).toBe(403);
    expect((await api(admin, "GET", `/v3/apps/${shop}`)).json).toMatchObject({ instances: before, state: "STARTED" });
  });

  test("logout revokes the token and clears the cookie", async () => {
    const token = await login("admin", "adminpass");
    const s = await consoleSession(token);
    expect((await s.get("/console/")).status).toBe(200);
    const out = await http(new Request(BASE + "/console/logout", { method: "POST", headers: { cookie: s.cookie, "content-type": "application/x-www-form-urlencoded" }, body: `_csrf=${s.csrf}` }));
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    expect((await api(token, "GET", "/v3/apps")).status).toBe(401);
    expect((await s.get("/console/")).status).toBe(303);
  });
});

describe("the console decides nothing the API does not", () => {
  test("the admin sees every app; a space developer only theirs, and another space's app is not found", async () => {
    const a = await consoleSession(admin);
    const home = await (await a.get("/console/")).text();
    expect(home).toContain('data-app="shop"');
    expect(home).toContain('data-app="secret-app"');
    const secret = (await api(admin, "GET", "/v3/apps?names=secret-app")).json.resources[0].guid;

    const d = await consoleSession(await login("dev", "devpassword"));
    const devHome = await (await d.get("/console/")).text();
    expect(devHome).toContain('data-app="shop"');
    expect(devHome).not.toContain("secret-app");
    expect((await d.get(`/console/apps/${secret}`)).status).toBe(404);
    expect((await d.get(`/console/api/v3/apps/${secret}/metrics`)).status).toBe(404);
    expect((await d.post(`/console/apps/${secret}/stop`)).status).toBe(404);
    expect((await d.get("/console/cluster")).status).toBe(403);
    expect(await (await d.get("/console/")).text()).not.toContain("/console/cluster");
    expect((await api(admin, "GET", `/v3/apps/${secret}`)).json.state).toBe("STARTED");
  });

  test("an auditor reads the app but gets no buttons, no environment, and every change is refused", async () => {
    const s = await consoleSession(await login("aud", "audpassword"));
    const page = await (await s.get(`/console/apps/${shop}`)).text();
    expect(page).toContain("shop");
    expect(page).not.toContain('data-action="stop"');
    expect(page).not.toContain("hunter2");
    expect(page).toContain("Only space developers see the environment");
    const stop = await s.post(`/console/apps/${shop}/stop`);
    expect(stop.status).toBe(403);
    expect((await api(admin, "GET", `/v3/apps/${shop}`)).json.state).toBe("STARTED");
  });

  test("env values are masked until asked, and shown to a developer when asked", async () => {
    const s = await consoleSession(await login("dev", "devpassword"));
    const page = await (await s.get(`/console/apps/${shop}`)).text();
    expect(page).toContain("API_KEY");
    expect(page).not.toContain("hunter2-value");
    expect(await (await s.get(`/console/apps/${shop}/env?reveal=1`, { "hx-request": "true" })).text()).toContain("hunter2-value");
  });

  test("scale from the console: the API's scale, then the new instance reported", async () => {
    const s = await consoleSession(await login("dev", "devpassword"));
    const r = await s.post(`/console/apps/${shop}/scale`, { instances: "2", memory_in_mb: "256" });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(r.headers.get("hx-trigger")).toBe("app-changed");
    await eventually(() => (agent.running(shop).length === 2 ? true : undefined), 5000, "second instance");
    const events = (await api(admin, "GET", `/v3/events?target_guids=${shop}&types=audit.app.scale`)).json.resources;
    expect(events[0].actor.name).toBe("dev");
    const table = await (await s.get(`/console/apps/${shop}/instances`, { "hx-request": "true" })).text();
    expect(table).toContain('data-running="2"');
    expect(table).toContain("12.5%"); // the agent's CPU figure
  });
});

describe("metrics and logs", () => {
  test("per-app requests/s and 5xx/s from the routers' per-route counters, CPU and memory per instance", async () => {
    const s = await consoleSession(admin);
    const m = await eventually(async () => {
      const r = await (await s.get(`/console/api/v3/apps/${shop}/metrics`)).json() as any;
      return r.requests.t.length >= 2 && r.instances.length > 0 && r.instances[0].t.length >= 2 ? r : undefined;
    }, 10_000, "two collections");
    // 10 requests and one 5xx per 200 ms scrape: about 55/s and 5/s
    const last = m.requests.rps.at(-1);
    expect(last).toBeGreaterThan(20);
    expect(m.requests.errors_per_second.at(-1)).toBeGreaterThan(1);
    expect(m.router_latency.p50_ms.at(-1)).toBeGreaterThan(0);
    expect(m.instances[0].cpu.at(-1)).toBeCloseTo(12.5);
    expect(m.instances[0].mem_bytes.at(-1)).toBe(48 * 1024 * 1024);
    const cluster = await (await s.get("/console/api/v3/cluster")).json() as any;
    expect(cluster.routers.scraped[0]).toMatchObject({ ok: true, routes: 1 });
    expect(cluster.routers.scraped[0].top_routes[0].route).toBe("shop.skiff.test");
    expect(cluster.agents.map((a: any) => a.id)).toContain("agent1");
    expect(cluster.health_manager.leader).toBeTruthy();
    const page = await (await s.get("/console/cluster")).text();
    expect(page).toContain("agent1");
    expect(page).toContain("shop.skiff.test");
  });

  test("the log stream: recent lines first, then live lines, with a source filter", async () => {
    const s = await consoleSession(admin);
    const res = await s.get(`/console/api/v3/apps/${shop}/logs/stream?sources=APP`);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.getReader();
    let text = "";
    const until = async (what: RegExp) => {
      const deadline = Date.now() + 5000;
      while (!what.test(text) && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      expect(text).toMatch(what);
    };
    await until(/event: recent\ndata: .*recent line from instance/);
    const line = (source: "APP" | "RTR", n: string) => bus.publish(logsSubject(shop), "logs", { app: shop, source, index: 0, stream: "out", ts: Date.now(), line: n });
    line("RTR", "router line, filtered out");
    line("APP", "hello from the app");
    await until(/event: lines\ndata: .*hello from the app/);
    expect(text).not.toContain("router line");
    await reader.cancel();
  });
});
