// The controller's API in-process (`app.handle`, no port) on the in-memory bus, with a fake agent
// at the bus level: auth, validation, apps, bits, staging, the health manager's restarts, scaling,
// rolling restarts, routes, signed blob URLs, events and the OpenAPI document.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBus, MemoryBroker, memoryLogger, type Bus } from "../../bus/index.ts";
import { startController, type RunningController } from "../../controller/main.ts";
import { eventually } from "../support/ports.ts";
import { FakeAgent } from "./fake-agent.ts";
import { apiCaller, BASE, tarGz } from "./api-client.ts";

let dir: string;
let c: RunningController;
let bus: Bus;
let agent: FakeAgent;
let token: string;

const http = (req: Request) => c.app.handle(req);
const callAs = apiCaller(http);
/** A request as the admin (the suite's token), or without credentials. */
const call = (method: string, path: string, body?: unknown, auth = true) => callAs(auth ? token : null, method, path, body);
const login = async (username: string, password: string) => (await callAs(null, "POST", "/v3/tokens", { username, password })).json.access_token as string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "skiff-ctl-"));
  const broker = new MemoryBroker();
  bus = createBus(broker.transport(), memoryLogger());
  c = await startController(
    { natsUrl: "", port: 0, dataDir: dir, domain: "skiff.test", adminPassword: "adminpass", embedHealthManager: true, publicUrl: BASE, health: { intervalMs: 50, startGraceMs: 0 }, findTimeoutMs: 150, limits: { unpackedBytes: 16 * 1024 * 1024 } },
    { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger(), listen: false },
  );
  agent = new FakeAgent(bus, "agent1", http).begin();
  await Bun.sleep(20);
});

afterAll(async () => {
  agent.end();
  await c.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("auth and info", () => {
  test("GET /v3/info needs no token", async () => {
    const r = await call("GET", "/v3/info", undefined, false);
    expect(r.status).toBe(200);
    expect(r.json.default_domain).toBe("skiff.test");
  });
  test("protected endpoints answer 401 in CF's error shape", async () => {
    const r = await call("GET", "/v3/apps", undefined, false);
    expect(r.status).toBe(401);
    expect(r.json.errors[0]).toMatchObject({ code: 10002, title: "CF-NotAuthenticated" });
  });
  test("wrong password is refused; the bootstrap admin logs in", async () => {
    expect((await call("POST", "/v3/tokens", { username: "admin", password: "nope" }, false)).status).toBe(401);
    const r = await call("POST", "/v3/tokens", { username: "admin", password: "adminpass" }, false);
    expect(r.status).toBe(201);
    token = r.json.access_token;
    expect(token.length).toBeGreaterThan(20);
    expect((await call("GET", "/v3/users/me")).json.username).toBe("admin");
  });
});

describe("apps", () => {
  let guid: string;
  test("input is validated with clear errors", async () => {
    for (const [body, msg] of [
      [{ name: "bad name!" }, "app name"],
      [{ name: "x", instances: "three" }, "instances"],
      [{ name: "x", environment_variables: { PORT: "1" } }, "PORT"],
      [{ name: "x", memory_in_mb: 1 }, "memory_in_mb"],
      [{}, "name"],
    ] as const) {
      const r = await call("POST", "/v3/apps", body);
      expect(r.status).toBe(422);
      expect(r.json.errors[0].detail).toContain(msg);
    }
    const bad = await http(new Request(BASE + "/v3/apps", { method: "POST", headers: { authorization: `bearer ${token}`, "content-type": "application/json" }, body: "{nope" }));
    expect(bad.status).toBeGreaterThanOrEqual(400);
  });
  test("create gives the app its default route; names are unique per space", async () => {
    const r = await call("POST", "/v3/apps", { name: "hello", instances: 1, memory_in_mb: 128 });
    expect(r.status).toBe(201);
    guid = r.json.guid;
    expect(r.json.routes).toEqual(["hello.skiff.test"]);
    expect(r.json.state).toBe("STOPPED");
    expect((await call("POST", "/v3/apps", { name: "hello" })).json.errors[0].title).toBe("CF-UniquenessError");
  });
  test("list, filter and paginate", async () => {
    await call("POST", "/v3/apps", { name: "other", no_route: true });
    const all = await call("GET", "/v3/apps?per_page=1");
    expect(all.json.pagination.total_results).toBe(2);
    expect(all.json.resources.length).toBe(1);
    expect(all.json.pagination.next.href).toContain("page=2");
    const one = await call("GET", "/v3/apps?names=hello");
    expect(one.json.resources.map((a: any) => a.name)).toEqual(["hello"]);
    expect((await call("GET", "/v3/apps?page=0")).status).toBe(400);
  });
  test("start without bits says to upload first", async () => {
    const r = await call("POST", `/v3/apps/${guid}/actions/start`);
    expect(r.status).toBe(422);
    expect(r.json.errors[0].detail).toContain("upload");
  });
  test("bits: non-gzip and escaping archives are refused; a tar.gz is stored", async () => {
    expect((await call("PUT", `/v3/apps/${guid}/bits`, new TextEncoder().encode("plain text"))).json.errors[0].detail).toContain("gzip");
    const d = mkdtempSync(join(tmpdir(), "skiff-evil-"));
    await Bun.write(join(d, "a.txt"), "x");
    const p = Bun.spawn(["tar", "-czf", "-", "-P", "-C", d, "a.txt", "--transform", "s,^,../,"], { stdout: "pipe" });
    const evil = new Uint8Array(await new Response(p.stdout).arrayBuffer());
    rmSync(d, { recursive: true, force: true });
    const r = await call("PUT", `/v3/apps/${guid}/bits`, evil);
    expect(r.status).toBe(422);
    expect(r.json.errors[0].detail).toContain("outside");
    const ok = await call("PUT", `/v3/apps/${guid}/bits`, await tarGz({ "index.ts": "console.log(1)" }));
    expect(ok.status).toBe(200);
    expect(ok.json.package_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(ok.json.package_state).toBe("PENDING");
  });
  test("a zip upload is converted to a gzip tar", async () => {
    const d = mkdtempSync(join(tmpdir(), "skiff-zip-"));
    await Bun.write(join(d, "index.ts"), "console.log('zip')");
    Bun.spawnSync(["zip", "-q", "-r", join(d, "app.zip"), "index.ts"], { cwd: d });
    const zip = new Uint8Array(await Bun.file(join(d, "app.zip")).arrayBuffer());
    rmSync(d, { recursive: true, force: true });
    const other = (await call("GET", "/v3/apps?names=other")).json.resources[0].guid;
    const r = await call("PUT", `/v3/apps/${other}/bits`, zip);
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const sha = r.json.package_sha256;
    const gz = await Bun.file(join(dir, "blobs/packages", sha.slice(0, 2), sha)).arrayBuffer();
    expect(new Uint8Array(gz).subarray(0, 2)).toEqual(new Uint8Array([0x1f, 0x8b]));
  });
  test("a small gzip or zip bomb is refused with a clear error and bounded memory (issue 7)", async () => {
    const other = (await call("GET", "/v3/apps?names=other")).json.resources[0].guid;
    const before = (await call("GET", `/v3/apps/${other}`)).json.package_sha256;
    // 100 MiB of zeros behind a tar header (~100 KB gzipped) against the 16 MiB unpacked cap
    const size = 100 * 1024 * 1024;
    const raw = new Uint8Array(512 + size);
    const enc = new TextEncoder();
    raw.set(enc.encode("zeros"), 0);
    raw.set(enc.encode("0000644\0"), 100);
    raw.set(enc.encode(size.toString(8).padStart(11, "0") + "\0"), 124);
    raw[156] = 48;
    raw.fill(32, 148, 156);
    raw.set(enc.encode(raw.subarray(0, 512).reduce((n, b) => n + b, 0).toString(8).padStart(6, "0") + "\0 "), 148);
    const gz = Bun.gzipSync(raw);
    const d = mkdtempSync(join(tmpdir(), "skiff-zipbomb-"));
    await Bun.write(join(d, "zeros"), new Uint8Array(size));
    Bun.spawnSync(["zip", "-q", join(d, "bomb.zip"), "zeros"], { cwd: d });
    const zip = new Uint8Array(await Bun.file(join(d, "bomb.zip")).arrayBuffer());
    rmSync(d, { recursive: true, force: true });
    Bun.gc(true);
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 1);
    const r1 = await call("PUT", `/v3/apps/${other}/bits`, gz);
    const r2 = await call("PUT", `/v3/apps/${other}/bits`, zip);
    clearInterval(sampler);
    for (const r of [r1, r2]) {
      expect(r.status).toBe(422);
      expect(r.json.errors[0].detail).toBe("package refused: the unpacked package is larger than the limit of 16777216 bytes");
    }
    expect((peak - rss0) / 1048576).toBeLessThan(48);
    expect((await call("GET", `/v3/apps/${other}`)).json.package_sha256).toBe(before);
  });
  test("bodies over the cap are refused with 413", async () => {
    const { readCapped } = await import("../../controller/src/api/bits-routes.ts");
    const req = (n: number, len?: number) => new Request("http://x.test/", { method: "PUT", body: new Uint8Array(n), headers: len === undefined ? {} : { "content-length": String(len) } });
    await expect(readCapped(req(10, 10), 5, "package")).rejects.toMatchObject({ status: 413 });
    await expect(readCapped(req(10), 5, "package")).rejects.toMatchObject({ status: 413 });
    expect((await readCapped(req(5), 5, "package")).length).toBe(5);
  });
  test("start stages on an agent, records the droplet, and the health manager starts the instance", async () => {
    const pos = (await call("GET", `/v3/apps/${guid}/logs/poll`)).json.next;
    const r = await call("POST", `/v3/apps/${guid}/actions/start`);
    expect(r.json.state).toBe("STARTED");
    await eventually(async () => ((await call("GET", `/v3/apps/${guid}`)).json.package_state === "STAGED" ? true : undefined), 5000, "staged");
    await eventually(() => (agent.running(guid).length === 1 ? true : undefined), 5000, "an instance");
    const polled = await call("GET", `/v3/apps/${guid}/logs/poll?after=${pos}&wait=0&format=text`);
    const text = polled.json.resources.join("\n");
    expect(text).toContain("[API] OUT Staging hello on agent agent1");
    expect(text).toContain("[STG] OUT fake buildpack: compiling");
    expect(text).toContain("[API] OUT Staging complete");
    const start = agent.starts.at(-1)!;
    expect(start.start_command).toBe("bun index.ts");
    expect(start.uris).toEqual(["hello.skiff.test"]);
    expect(start.limits.mem).toBe(128);
    expect(agent.fetched.every((f) => f.status === 200)).toBe(true);
    const inst = await call("GET", `/v3/apps/${guid}/instances`);
    expect(inst.json.resources.map((x: any) => x.state)).toEqual(["RUNNING"]);
    const droplets = await call("GET", `/v3/apps/${guid}/droplets`);
    expect(droplets.json.resources[0].current).toBe(true);
  });
  test("a crashed instance is replaced at once", async () => {
    const [victim] = agent.running(guid);
    const before = agent.starts.length;
    const t0 = Date.now();
    agent.crash(victim!.instance);
    await eventually(() => (agent.running(guid).length === 1 && agent.starts.length > before ? true : undefined), 3000, "a replacement");
    expect(Date.now() - t0).toBeLessThan(2000);
    const crashes = await c.ctx.store.crashesOf(guid);
    expect(Number(crashes[0]?.crash_count)).toBe(1);
  });
  test("a crash is in the audit log, by the system, without credentials (issue 7)", async () => {
    const ev = await eventually(async () => (await call("GET", `/v3/events?target_guids=${guid}&per_page=100`)).json.resources.find((e: any) => e.type === "audit.app.process.crash"), 3000, "crash event");
    expect(ev.actor).toEqual({ guid: null, type: "system", name: "system" });
    expect(ev.target).toEqual({ guid, type: "app", name: "hello" });
    expect(ev.data).toEqual({ index: 0, exit_status: 137, exit_description: "killed by SIGKILL", crash_count: 1 });
    expect(ev.space).not.toBeNull();
  });
  test("scale out and in", async () => {
    await call("PATCH", `/v3/apps/${guid}`, { instances: 3 });
    await eventually(() => (agent.running(guid).length === 3 ? true : undefined), 3000, "3 instances");
    expect(new Set(agent.running(guid).map((i) => i.index))).toEqual(new Set([0, 1, 2]));
    await call("PATCH", `/v3/apps/${guid}`, { instances: 1 });
    await eventually(() => (agent.running(guid).length === 1 ? true : undefined), 3000, "1 instance");
    expect(agent.running(guid)[0]!.index).toBe(0);
  });
  test("restart rolls instances over to a new version", async () => {
    await call("PATCH", `/v3/apps/${guid}`, { instances: 2 });
    await eventually(() => (agent.running(guid).length === 2 ? true : undefined), 3000, "2 instances");
    const oldVersion = agent.running(guid)[0]!.version;
    let maxSeen = 0;
    const watch = setInterval(() => (maxSeen = Math.max(maxSeen, agent.running(guid).length)), 5);
    await call("POST", `/v3/apps/${guid}/actions/restart`);
    await eventually(() => (agent.running(guid).length === 2 && agent.running(guid).every((i) => i.version !== oldVersion) ? true : undefined), 5000, "rolled");
    clearInterval(watch);
    expect(maxSeen).toBeLessThanOrEqual(3); // one extra at a time
  });
  test("env set and unset", async () => {
    expect((await call("PATCH", `/v3/apps/${guid}/env`, { var: { GREETING: "hi" } })).json.environment_variables).toEqual({ GREETING: "hi" });
    expect((await call("PATCH", `/v3/apps/${guid}/env`, { var: { GREETING: null } })).json.environment_variables).toEqual({});
    expect((await call("PATCH", `/v3/apps/${guid}/env`, { var: { VCAP_X: "1" } })).status).toBe(422);
  });
  test("routes: create, map (dea.update), unmap", async () => {
    const space = (await call("GET", "/v3/spaces")).json.resources[0].guid;
    const r = await call("POST", "/v3/routes", { space_guid: space, url: "api.skiff.test/v1" });
    expect(r.status).toBe(201);
    expect(r.json.url).toBe("api.skiff.test/v1");
    const m = await call("POST", `/v3/routes/${r.json.guid}/destinations`, { app_guid: guid });
    expect(m.json.destinations).toEqual([{ app: { guid } }]);
    expect((await call("GET", `/v3/apps/${guid}`)).json.routes.sort()).toEqual(["api.skiff.test/v1", "hello.skiff.test"]);
    expect((await call("DELETE", `/v3/routes/${r.json.guid}/destinations/${guid}`)).status).toBe(204);
    expect((await call("POST", "/v3/routes", { space_guid: space, url: "x.unknown.example" })).status).toBe(422);
    expect((await call("POST", "/v3/routes", { space_guid: space, host: "Bad_Host" })).status).toBe(422);
  });
  test("signed blob URLs: tampering or expiry is refused", async () => {
    const uri = agent.starts.at(-1)!.droplet_uri;
    const ok = await http(new Request(uri));
    expect(ok.status).toBe(200);
    await ok.arrayBuffer();
    // flip the signature's first hex digit (replacing it with a fixed one left it unchanged 1 time in 16)
    const tampered = uri.replace(/signature=(.)/, (_, c: string) => `signature=${c === "0" ? "1" : "0"}`);
    expect(tampered).not.toBe(uri);
    expect((await http(new Request(tampered))).status).toBe(403);
    expect((await http(new Request(uri.replace(/expires=\d+/, "expires=1")))).status).toBe(403);
  });
  test("failed staging is visible and leaves the running droplet alone", async () => {
    const before = (await call("GET", `/v3/apps/${guid}`)).json.droplet_guid;
    agent.stagingError = "no buildpack detected";
    await call("PUT", `/v3/apps/${guid}/bits`, await tarGz({ "index.ts": "console.log(2)" }));
    await call("POST", `/v3/apps/${guid}/actions/start`);
    const app = await eventually(async () => {
      const a = (await call("GET", `/v3/apps/${guid}`)).json;
      return a.package_state === "FAILED" ? a : undefined;
    }, 3000, "failed staging");
    expect(app.staging_error).toContain("no buildpack");
    expect(app.droplet_guid).toBe(before);
    agent.stagingError = undefined;
  });
  test("rollback to the previous droplet", async () => {
    await call("PUT", `/v3/apps/${guid}/bits`, await tarGz({ "index.ts": "console.log(3)" }));
    await call("POST", `/v3/apps/${guid}/actions/start`);
    await eventually(async () => ((await call("GET", `/v3/apps/${guid}/droplets`)).json.resources.length === 2 ? true : undefined), 3000, "second droplet");
    const [newest, previous] = (await call("GET", `/v3/apps/${guid}/droplets`)).json.resources;
    expect(newest.current).toBe(true);
    const r = await call("POST", `/v3/apps/${guid}/actions/rollback`, {});
    expect(r.json.droplet_guid).toBe(previous.guid);
    await eventually(() => (agent.running(guid).length === 2 && agent.running(guid).every((i) => i.start.droplet_sha256 === previous.sha256) ? true : undefined), 5000, "rolled back");
  });
  test("events record who did what", async () => {
    const types = (await call("GET", `/v3/events?target_guids=${guid}&per_page=100`)).json.resources.map((e: any) => e.type);
    for (const t of ["audit.app.create", "audit.app.upload-bits", "audit.app.start", "audit.app.droplet.create", "audit.app.restart", "audit.app.rollback", "audit.app.staging.failed"]) expect(types).toContain(t);
  });
  test("stop and delete stop every instance", async () => {
    await call("POST", `/v3/apps/${guid}/actions/stop`);
    await eventually(() => (agent.running(guid).length === 0 ? true : undefined), 3000, "stopped");
    expect((await call("DELETE", `/v3/apps/${guid}`)).status).toBe(204);
    expect((await call("GET", `/v3/apps/${guid}`)).status).toBe(404);
  });
});

describe("orgs, spaces, users and roles", () => {
  test("a developer sees only their space", async () => {
    const org = (await call("POST", "/v3/organizations", { name: "acme" })).json;
    const space = (await call("POST", "/v3/spaces", { name: "prod", organization_guid: org.guid })).json;
    expect((await call("POST", "/v3/users", { username: "dev", password: "short" })).status).toBe(422);
    await call("POST", "/v3/users", { username: "dev", password: "devpassword" });
    expect((await call("POST", "/v3/roles", { type: "space_developer", user: "dev", space_guid: space.guid })).status).toBe(201);
    const devToken = (await call("POST", "/v3/tokens", { username: "dev", password: "devpassword" }, false)).json.access_token;
    const as = (path: string, method = "GET", body?: unknown) => http(new Request(BASE + path, { method, headers: { authorization: `bearer ${devToken}`, "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined }));
    const spaces = (await (await as("/v3/spaces")).json()) as any;
    expect(spaces.resources.map((s: any) => s.name)).toEqual(["prod"]);
    expect((await as("/v3/apps", "POST", { name: "mine", space_guid: space.guid })).status).toBe(201);
    const otherSpace = (await call("GET", "/v3/spaces?names=dev")).json.resources[0].guid;
    // a space one cannot see answers as one that does not exist (issue 24)
    expect((await as("/v3/apps", "POST", { name: "theirs", space_guid: otherSpace })).status).toBe(422);
    expect((await as("/v3/organizations", "POST", { name: "x" })).status).toBe(403);
  });
});

test("the OpenAPI document lists the routes with their schemas", async () => {
  const doc = (await call("GET", "/v3/openapi.json", undefined, false)).json;
  expect(doc.openapi).toBe("3.0.3");
  expect(doc.paths["/v3/apps"].post.requestBody.content["application/json"].schema.properties.name).toBeDefined();
  expect(doc.paths["/v3/apps/{guid}/bits"].put).toBeDefined();
});

describe("tenancy and the open endpoints (issue 7)", () => {

  test("an organization is found only by those who can see into it; admins see all", async () => {
    const org = (await call("POST", "/v3/organizations", { name: "tenant-a" })).json;
    const space = (await call("POST", "/v3/spaces", { name: "a1", organization_guid: org.guid })).json;
    const other = (await call("POST", "/v3/organizations", { name: "tenant-b" })).json;
    await call("POST", "/v3/users", { username: "alice", password: "alicepassword" });
    await call("POST", "/v3/users", { username: "nobody", password: "nobodypassword" });
    await call("POST", "/v3/users", { username: "orgman", password: "orgmanpassword" });
    await call("POST", "/v3/roles", { type: "space_auditor", user: "alice", space_guid: space.guid });
    await call("POST", "/v3/roles", { type: "organization_manager", user: "orgman", organization_guid: other.guid });
    const alice = await login("alice", "alicepassword");
    const nobody = await login("nobody", "nobodypassword");
    const orgman = await login("orgman", "orgmanpassword");
    expect((await callAs(alice, "GET", `/v3/organizations/${org.guid}`)).json.name).toBe("tenant-a");
    expect((await callAs(alice, "GET", "/v3/organizations/tenant-a")).status).toBe(200);
    for (const key of [other.guid, "tenant-b", "skiff"]) {
      const r = await callAs(alice, "GET", `/v3/organizations/${key}`);
      expect(r.status).toBe(404);
      expect(r.json.errors[0].detail).toBe("Organization not found");
    }
    expect((await callAs(nobody, "GET", `/v3/organizations/${org.guid}`)).status).toBe(404);
    expect((await callAs(nobody, "GET", "/v3/organizations")).json.resources).toEqual([]);
    expect((await callAs(alice, "GET", "/v3/organizations")).json.resources.map((o: any) => o.name)).toEqual(["tenant-a"]);
    // an org manager sees their org, spaces or not
    expect((await callAs(orgman, "GET", `/v3/organizations/${other.guid}`)).status).toBe(200);
    expect((await callAs(orgman, "GET", "/v3/organizations")).json.resources.map((o: any) => o.name)).toEqual(["tenant-b"]);
    expect((await call("GET", `/v3/organizations/${other.guid}`)).status).toBe(200);
    // creating a space in an org you do not manage is refused the same whether it exists or not
    expect((await callAs(nobody, "POST", "/v3/spaces", { name: "x", organization_guid: other.guid })).status).toBe(403);
    expect((await callAs(nobody, "POST", "/v3/spaces", { name: "x", organization_guid: "no-such-org" })).status).toBe(403);
  });

  test("/v3/events pages like every list, with the real total and filters kept in the links", async () => {
    const app = (await call("POST", "/v3/apps", { name: "evented", no_route: true })).json;
    for (let i = 0; i < 4; i++) await call("PATCH", `/v3/apps/${app.guid}/env`, { var: { N: String(i) } });
    const p1 = await call("GET", `/v3/events?target_guids=${app.guid}&per_page=2`);
    expect(p1.json.pagination.total_results).toBe(5);
    expect(p1.json.pagination.total_pages).toBe(3);
    expect(p1.json.resources.length).toBe(2);
    expect(p1.json.pagination.next.href).toBe(`/v3/events?page=2&per_page=2&target_guids=${app.guid}`);
    const all: string[] = [];
    for (let href = `/v3/events?target_guids=${app.guid}&per_page=2`; href; ) {
      const page = (await call("GET", href)).json;
      all.push(...page.resources.map((e: any) => e.guid));
      href = page.pagination.next?.href;
    }
    expect(new Set(all).size).toBe(5);
    const created = await call("GET", `/v3/events?target_guids=${app.guid}&types=audit.app.create`);
    expect(created.json.resources.map((e: any) => e.type)).toEqual(["audit.app.create"]);
    expect((await call("GET", "/v3/events?per_page=abc")).status).toBe(400);
    // a list's next link keeps its filters: the CLI follows it
    const apps = await call("GET", "/v3/apps?names=evented,other&per_page=1");
    expect(apps.json.pagination.next.href).toBe("/v3/apps?page=2&per_page=1&names=evented%2Cother");
  });

  test("only /, /v3/info, /healthz, login and the OpenAPI document answer without a token", async () => {
    for (const path of ["/", "/v3/info", "/healthz", "/v3/openapi.json"]) expect((await callAs(null, "GET", path)).status).toBe(200);
    const health = await callAs(null, "GET", "/healthz");
    expect(health.json).toMatchObject({ status: "ok", database: "ok", bus: "connected" });
    // every route the document marks as needing a token answers 401 without one, before validating anything
    const doc = (await callAs(null, "GET", "/v3/openapi.json")).json;
    let checked = 0;
    for (const [path, ops] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (!op.security) continue;
        const url = path.replace(/\{\w+\}/g, "00000000-0000-0000-0000-000000000000");
        for (const tok of [null, "not-a-token"]) {
          const r = await callAs(tok, method.toUpperCase(), url, method === "get" ? undefined : {});
          expect(`${method} ${path} ${tok ? "bad token" : "no token"}: ${r.status}`).toBe(`${method} ${path} ${tok ? "bad token" : "no token"}: 401`);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
    for (const open of ["/v3/info", "/healthz", "/v3/openapi.json"]) expect(doc.paths[open]?.get?.security).toBeUndefined();
  });

  test("/healthz answers 503 when the database does not", async () => {
    const db = c.ctx.store.db;
    const orig = db.get;
    db.get = (async () => {
      throw new Error("disk I/O error");
    }) as typeof db.get;
    try {
      const r = await callAs(null, "GET", "/healthz");
      expect(r.status).toBe(503);
      expect(r.json).toMatchObject({ status: "unavailable", database: "failing: disk I/O error" });
    } finally {
      db.get = orig;
    }
  });
});

/** Creates an app, uploads a package, starts it and waits for its instances to run. */
async function runningApp(name: string, instances = 1, space?: string): Promise<string> {
  const app = (await call("POST", "/v3/apps", { name, instances, no_route: true, ...(space ? { space_guid: space } : {}) })).json;
  expect((await call("PUT", `/v3/apps/${app.guid}/bits`, await tarGz({ "index.ts": `console.log(${JSON.stringify(name)})` }))).status).toBe(200);
  await call("POST", `/v3/apps/${app.guid}/actions/start`);
  await eventually(() => (agent.running(app.guid).length === instances ? true : undefined), 5000, `${name} running`);
  return app.guid;
}

describe("guarded behaviour (issue 7)", () => {

  test("the bootstrap admin's password is stored as an argon2id hash, never in clear", async () => {
    const row = await c.ctx.store.db.get<{ password_hash: string }>(`SELECT password_hash FROM users WHERE username = 'admin'`);
    expect(row!.password_hash).toStartWith("$argon2id$");
    expect(row!.password_hash).not.toContain("adminpass");
    expect(await Bun.password.verify("adminpass", row!.password_hash)).toBe(true);
    // a generated one is handed back once (to print) and stored the same way
    const d = mkdtempSync(join(tmpdir(), "skiff-boot-"));
    const broker = new MemoryBroker();
    const other = await startController({ natsUrl: "", port: 0, dataDir: d, domain: "boot.test", embedHealthManager: false }, { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger(), listen: false });
    try {
      const pw = other.generatedPassword!;
      expect(pw.length).toBeGreaterThanOrEqual(16);
      const stored = (await other.ctx.store.db.get<{ password_hash: string }>(`SELECT password_hash FROM users WHERE username = 'admin'`))!.password_hash;
      expect(stored).toStartWith("$argon2id$");
      expect(stored).not.toContain(pw);
      const dump = new TextDecoder("latin1").decode(new Uint8Array(await Bun.file(join(d, "controller.sqlite")).arrayBuffer())) + (await Bun.file(join(d, "controller.sqlite-wal")).exists() ? new TextDecoder("latin1").decode(new Uint8Array(await Bun.file(join(d, "controller.sqlite-wal")).arrayBuffer())) : "");
      expect(dump).not.toContain(pw);
    } finally {
      await other.stop();
      rmSync(d, { recursive: true, force: true });
    }
  });

  test("logout revokes the token", async () => {
    const t1 = await login("admin", "adminpass");
    expect((await callAs(t1, "GET", "/v3/users/me")).status).toBe(200);
    expect((await callAs(t1, "DELETE", "/v3/tokens/current")).status).toBe(204);
    const r = await callAs(t1, "GET", "/v3/users/me");
    expect(r.status).toBe(401);
    expect(r.json.errors[0].detail).toContain("skiff login");
  });

  test("a space auditor reads and changes nothing; another space is not found", async () => {
    const org = (await call("POST", "/v3/organizations", { name: "audited" })).json;
    const s1 = (await call("POST", "/v3/spaces", { name: "s1", organization_guid: org.guid })).json;
    const s2 = (await call("POST", "/v3/spaces", { name: "s2", organization_guid: org.guid })).json;
    await call("POST", "/v3/users", { username: "auditor", password: "auditorpassword" });
    await call("POST", "/v3/roles", { type: "space_auditor", user: "auditor", space_guid: s1.guid });
    const seen = await runningApp("audited-app", 1, s1.guid);
    const hidden = (await call("POST", "/v3/apps", { name: "hidden-app", space_guid: s2.guid, no_route: true })).json.guid;
    const aud = await login("auditor", "auditorpassword");
    expect((await callAs(aud, "GET", `/v3/apps/${seen}`)).status).toBe(200);
    expect((await callAs(aud, "GET", `/v3/apps?space_guids=${s1.guid}`)).json.resources.map((a: any) => a.name)).toEqual(["audited-app"]);
    expect((await callAs(aud, "GET", `/v3/apps/${seen}/instances`)).status).toBe(200);
    expect((await callAs(aud, "GET", `/v3/apps/${seen}/droplets`)).status).toBe(200);
    expect((await callAs(aud, "GET", `/v3/events?target_guids=${seen}`)).json.resources.length).toBeGreaterThan(0);
    for (const [method, path, body] of [
      ["PATCH", `/v3/apps/${seen}`, { instances: 2 }],
      ["POST", `/v3/apps/${seen}/actions/stop`, undefined],
      ["POST", `/v3/apps/${seen}/actions/restart`, undefined],
      ["PATCH", `/v3/apps/${seen}/env`, { var: { X: "1" } }],
      ["GET", `/v3/apps/${seen}/env`, undefined],
      ["DELETE", `/v3/apps/${seen}`, undefined],
      ["POST", "/v3/apps", { name: "sneaky", space_guid: s1.guid }],
      ["POST", "/v3/routes", { space_guid: s1.guid, host: "sneaky" }],
    ] as const) {
      const r = await callAs(aud, method, path, body);
      expect(`${method} ${path}: ${r.status}`).toBe(`${method} ${path}: 403`);
      expect(r.json.errors[0].title).toBe("CF-NotAuthorized");
    }
    expect((await callAs(aud, "GET", `/v3/apps/${hidden}`)).status).toBe(404);
    expect((await callAs(aud, "PATCH", `/v3/apps/${hidden}`, { instances: 2 })).status).toBe(404);
    expect((await callAs(aud, "GET", `/v3/apps?space_guids=${s2.guid}`)).json.resources).toEqual([]);
    // nothing changed
    const app = (await call("GET", `/v3/apps/${seen}`)).json;
    expect([app.state, app.instances]).toEqual(["STARTED", 1]);
    expect(agent.running(seen).length).toBe(1);
    await call("DELETE", `/v3/apps/${seen}`);
  });

  test("a route belongs to one space: another space gets 422", async () => {
    const org = (await call("POST", "/v3/organizations", { name: "routed" })).json;
    const s1 = (await call("POST", "/v3/spaces", { name: "r1", organization_guid: org.guid })).json;
    const s2 = (await call("POST", "/v3/spaces", { name: "r2", organization_guid: org.guid })).json;
    const r1 = await call("POST", "/v3/routes", { space_guid: s1.guid, host: "shared" });
    expect(r1.status).toBe(201);
    expect((await call("POST", "/v3/routes", { space_guid: s1.guid, host: "shared" })).status).toBe(200);
    const r2 = await call("POST", "/v3/routes", { space_guid: s2.guid, host: "shared" });
    expect(r2.status).toBe(422);
    expect(r2.json.errors[0].detail).toContain("reserved for another space");
    const inS2 = (await call("POST", "/v3/apps", { name: "x2", space_guid: s2.guid, no_route: true })).json;
    const m = await call("POST", `/v3/routes/${r1.json.guid}/destinations`, { app_guid: inS2.guid });
    expect(m.status).toBe(422);
    expect(m.json.errors[0].detail).toContain("different spaces");
    // an app whose default route is another space's is refused, and not created
    await call("POST", "/v3/apps", { name: "shared", space_guid: s1.guid });
    const clash = await call("POST", "/v3/apps", { name: "shared", space_guid: s2.guid });
    expect(clash.status).toBe(422);
    expect(clash.json.errors[0].detail).toContain("reserved for another space");
    expect((await call("GET", `/v3/apps?names=shared&space_guids=${s2.guid}`)).json.resources).toEqual([]);
  });

  test("droplets are capped at the newest 5; the sweep deletes the blobs of pruned ones, and of deleted apps", async () => {
    const guid = await runningApp("many-droplets");
    const droplets = [(await call("GET", `/v3/apps/${guid}/droplets`)).json.resources[0].sha256];
    const packages = [(await call("GET", `/v3/apps/${guid}`)).json.package_sha256];
    for (let i = 0; i < 6; i++) {
      packages.push((await call("PUT", `/v3/apps/${guid}/bits`, await tarGz({ "index.ts": `console.log("many-droplets ${i}")` }))).json.package_sha256);
      expect((await call("POST", `/v3/apps/${guid}/actions/stage`)).status).toBe(200);
      droplets.push((await call("GET", `/v3/apps/${guid}/droplets`)).json.resources[0].sha256);
    }
    const list = (await call("GET", `/v3/apps/${guid}/droplets`)).json;
    expect(list.pagination.total_results).toBe(5);
    expect(list.resources[0].current).toBe(true);
    expect(list.resources.map((d: any) => d.created_at)).toEqual([...list.resources.map((d: any) => d.created_at)].sort().reverse());
    const rows = await c.ctx.store.db.all(`SELECT guid FROM droplets WHERE app_guid = ?`, [guid]);
    expect(rows.length).toBe(5);
    const onDisk = (kind: "droplets" | "packages", shas: string[]) => shas.map((s) => c.ctx.blobs.has(kind, s));
    // young blobs are spared (one may be about to be referenced); once old, the pruned ones go
    await c.sweeper.sweep();
    expect(onDisk("droplets", droplets)).toEqual([true, true, true, true, true, true, true]);
    await c.sweeper.sweep(Date.now() + 2 * 3600_000);
    expect(onDisk("droplets", droplets)).toEqual([false, false, true, true, true, true, true]);
    expect(onDisk("packages", packages)).toEqual([false, false, true, true, true, true, true]);
    // the app still rolls onto its current droplet, fetched from the store
    await eventually(() => (agent.running(guid).length === 1 && agent.running(guid)[0]!.start.droplet_sha256 === droplets.at(-1) ? true : undefined), 5000, "on the newest droplet");
    expect(agent.fetched.at(-1)!.status).toBe(200);
    await call("DELETE", `/v3/apps/${guid}`);
    await c.sweeper.sweep(Date.now() + 2 * 3600_000);
    expect(onDisk("droplets", droplets).some(Boolean)).toBe(false);
    expect(onDisk("packages", packages).some(Boolean)).toBe(false);
  });

  test("instance stats from dea.find.droplet replies reach the API", async () => {
    const guid = await runningApp("statful", 2);
    const rows = (await call("GET", `/v3/apps/${guid}/instances`)).json.resources;
    expect(rows.map((r: any) => [r.index, r.state])).toEqual([[0, "RUNNING"], [1, "RUNNING"]]);
    for (const r of rows) {
      expect(r.usage).toMatchObject({ cpu: 12.5, mem: 48 * 1024 * 1024, disk: 3 * 1024 * 1024 });
      expect(r).toMatchObject({ host: "127.0.0.1", port: 61000 + r.index, uptime: 42, quotas: { mem: 256, disk: 1024, fds: 16384 }, agent: "agent1" });
    }
    await call("DELETE", `/v3/apps/${guid}`);
  });

  test("the API shows CRASHED, then FLAPPING with the next restart time", async () => {
    const guid = await runningApp("crashy");
    // the agent is slow to act on the restart: the index shows CRASHED meanwhile
    agent.holdStarts = true;
    agent.crash(agent.running(guid)[0]!.instance);
    const crashed = await eventually(async () => {
      const r = (await call("GET", `/v3/apps/${guid}/instances`)).json.resources;
      return r[0]?.state === "CRASHED" && agent.held.length > 0 ? r[0] : undefined;
    }, 3000, "CRASHED");
    expect(crashed).toMatchObject({ index: 0, crash_count: 1, details: "killed by SIGKILL" });
    expect(Date.parse(crashed.next_restart_at)).toBeLessThanOrEqual(Date.now());
    // it keeps crashing: 3 immediate restarts, then the 4th crash waits 30 s and the index is FLAPPING
    agent.crashOnStart = true;
    agent.releaseHeld();
    const flapping = await eventually(async () => {
      const r = (await call("GET", `/v3/apps/${guid}/instances`)).json.resources;
      return r[0]?.state === "FLAPPING" ? r[0] : undefined;
    }, 5000, "FLAPPING");
    expect(flapping.crash_count).toBe(4);
    const wait = Date.parse(flapping.next_restart_at) - Date.now();
    expect(wait).toBeGreaterThan(25_000);
    expect(wait).toBeLessThanOrEqual(30_000);
    const crashes = (await call("GET", `/v3/events?target_guids=${guid}&types=audit.app.process.crash`)).json;
    expect(crashes.pagination.total_results).toBe(4);
    agent.crashOnStart = false;
    await call("DELETE", `/v3/apps/${guid}`);
  });
});
