// Issue 24, as a space developer of another org probing the controller: taking another space's
// host with a path (POST /v3/routes, `skiff map-route`, a pushed manifest's `routes:`), catch-all
// routes on the shared domain (`*`, the bare domain, dotted hosts), another org's private domain,
// and requests into a space one cannot see answering other than "not found". The controller listens
// on a free loopback port (memory bus, fake agent), so the real CLI binary runs against it too.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RunningController } from "../../controller/main.ts";
import { newGuid } from "../../controller/src/db/store.ts";
import { runSkiff, startCliController, type CliController } from "./cli-controller.ts";

const BASE = "http://controller.test";
const RESERVED = "Routes for this host and domain have been reserved for another space.";
let controller: CliController;
let dir: string;
let c: RunningController;
let admin: string, owner: string, mallory: string, auditor: string;
let prod: string, lair: string, ownersOrg: string;
let helloGuid: string, mineGuid: string;

async function callAs(tok: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await c.app.handle(new Request(BASE + path, {
    method, headers: { authorization: `bearer ${tok}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  }));
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}
const login = async (username: string, password: string) =>
  ((await (await c.app.handle(new Request(BASE + "/v3/tokens", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }) }))).json()) as any).access_token as string;

/** The real `skiff` binary with its own config folder per user. */
const cliAs = (user: string, ...args: string[]) => runSkiff(join(dir, `home-${user}`), args);
function appDir(name: string, manifest?: string[]): string {
  const d = join(dir, `${name}-${newGuid().slice(0, 8)}`);
  mkdirSync(d);
  writeFileSync(join(d, "index.ts"), `console.log(${JSON.stringify(name)})\n`);
  if (manifest) writeFileSync(join(d, "manifest.yml"), manifest.join("\n") + "\n");
  return d;
}
/** Every route on host `hello` of skiff.test, as host+path by space, seen by the admin. */
async function helloRoutes(space: string): Promise<string[]> {
  return (await callAs(admin, "GET", `/v3/routes?space_guids=${space}&per_page=500`)).json.resources.filter((r: any) => r.host === "hello").map((r: any) => r.url);
}

beforeAll(async () => {
  controller = await startCliController("skiff-claims-");
  ({ dir, c } = controller);
  admin = await login("admin", "adminpass");
  ownersOrg = (await callAs(admin, "POST", "/v3/organizations", { name: "owners" })).json.guid;
  const evil = (await callAs(admin, "POST", "/v3/organizations", { name: "evil" })).json.guid;
  prod = (await callAs(admin, "POST", "/v3/spaces", { name: "prod", organization_guid: ownersOrg })).json.guid;
  lair = (await callAs(admin, "POST", "/v3/spaces", { name: "lair", organization_guid: evil })).json.guid;
  for (const [user, type, space] of [["owner", "space_developer", prod], ["mallory", "space_developer", lair], ["auditor", "space_auditor", prod]] as const) {
    await callAs(admin, "POST", "/v3/users", { username: user, password: `${user}-password` });
    expect((await callAs(admin, "POST", "/v3/roles", { type, user, space_guid: space })).status).toBe(201);
  }
  owner = await login("owner", "owner-password");
  mallory = await login("mallory", "mallory-password");
  auditor = await login("auditor", "auditor-password");
  const hello = await callAs(owner, "POST", "/v3/apps", { name: "hello", space_guid: prod });
  expect(hello.json.routes).toEqual(["hello.skiff.test"]);
  helloGuid = hello.json.guid;
  mineGuid = (await callAs(mallory, "POST", "/v3/apps", { name: "mine", space_guid: lair, no_route: true })).json.guid;
}, 30_000);

afterAll(() => controller?.stop());

describe("a host belongs to one space, whatever the path (issue 24, hole 3)", () => {
  test("POST /v3/routes: another org's developer cannot add hello/admin beside the owner's hello", async () => {
    for (const body of [{ host: "hello", path: "/admin" }, { url: "hello.skiff.test/admin" }, { url: "https://HELLO.skiff.test/admin/x" }, { host: "hello" }]) {
      const r = await callAs(mallory, "POST", "/v3/routes", { space_guid: lair, ...body });
      expect(`${JSON.stringify(body)}: ${r.status}`).toBe(`${JSON.stringify(body)}: 422`);
      expect(r.json.errors[0].detail).toStartWith(RESERVED);
    }
    expect(await helloRoutes(lair)).toEqual([]);
    // the owner adds paths to their own host
    expect((await callAs(owner, "POST", "/v3/routes", { space_guid: prod, host: "hello", path: "/v1" })).status).toBe(201);
  });

  test("skiff map-route: refused with Cloud Controller's message", async () => {
    expect((await cliAs("mallory", "login", "-a", c.url, "-u", "mallory", "-p", "mallory-password")).code).toBe(0);
    const r = await cliAs("mallory", "map-route", "mine", "skiff.test", "--hostname", "hello", "--path", "/admin");
    expect(r.code, r.out + r.err).toBe(1);
    expect(r.err).toContain(RESERVED);
    expect(await helloRoutes(lair)).toEqual([]);
  }, 30_000);

  test("a pushed manifest's routes: refused the same way, before anything is uploaded", async () => {
    const d = appDir("squat", ["applications:", "- name: squat", "  routes:", "  - route: hello.skiff.test/admin"]);
    const r = await cliAs("mallory", "push", d);
    expect(r.code, r.out + r.err).toBe(1);
    expect(r.err).toContain(RESERVED);
    expect(r.out).not.toContain("Uploaded");
    expect(await helloRoutes(lair)).toEqual([]);
    expect((await callAs(admin, "GET", "/v3/apps?names=squat")).json.resources).toEqual([]);
  }, 60_000);

  test("a path route squatted before the fix blocks neither the owner's push nor new paths, and cannot be mapped again", async () => {
    // what the hole left behind: lair's hello/admin, made after prod's hello
    const domain = (await callAs(admin, "GET", "/v3/domains")).json.resources.find((d: any) => d.name === "skiff.test").guid;
    const squat = newGuid();
    await c.ctx.store.db.run(`INSERT INTO routes (guid, host, domain_guid, path, space_guid, created_at) VALUES (?, 'hello', ?, '/admin', ?, ?)`, [squat, domain, lair, Date.now()]);
    expect(await helloRoutes(lair)).toEqual(["hello.skiff.test/admin"]);

    expect((await cliAs("owner", "login", "-a", c.url, "-u", "owner", "-p", "owner-password", "-o", "owners", "-s", "prod")).code).toBe(0);
    const d = appDir("hello", ["applications:", "- name: hello", "  routes:", "  - route: hello.skiff.test", "  - route: hello.skiff.test/v2"]);
    const push = await cliAs("owner", "push", d);
    expect(push.code, push.out + push.err).toBe(0);
    expect(push.out).toContain("running at http://hello.skiff.test");
    expect((await callAs(owner, "GET", `/v3/apps/${helloGuid}`)).json.routes).toEqual(["hello.skiff.test", "hello.skiff.test/v2"]);

    // the squatter can neither map its leftover route again, nor claim it or any other path again
    const map = await callAs(mallory, "POST", `/v3/routes/${squat}/destinations`, { app_guid: mineGuid });
    expect(map.status).toBe(422);
    expect(map.json.errors[0].detail).toStartWith(RESERVED);
    for (const path of ["/admin", "/other"]) expect((await callAs(mallory, "POST", "/v3/routes", { space_guid: lair, host: "hello", path })).status).toBe(422);
    // the owner cannot take that exact path (the row is the squatter's) and is told who can clear it
    const exact = await callAs(owner, "POST", "/v3/routes", { space_guid: prod, host: "hello", path: "/admin" });
    expect(exact.status).toBe(422);
    expect(exact.json.errors[0].detail).toContain("an admin can delete it");
    expect((await callAs(admin, "DELETE", `/v3/routes/${squat}`)).status).toBe(204);
    expect((await callAs(owner, "POST", "/v3/routes", { space_guid: prod, host: "hello", path: "/admin" })).status).toBe(201);
  }, 60_000);
});

describe("no catch-all routes for tenants on the shared domain (issue 24, hole 4)", () => {
  test("a space developer cannot claim *, the bare domain, or names under a host", async () => {
    for (const [body, msg] of [
      [{ host: "*" }, "wildcard host"],
      [{ host: "" }, "Missing host"],
      [{ url: "skiff.test" }, "Missing host"],
      [{ host: "x.hello" }, "one DNS label"],
      [{ host: "*.hello" }, "one DNS label"],
      [{ url: "x.hello.skiff.test" }, "one DNS label"],
      [{ url: "*.skiff.test/login" }, "wildcard host"],
    ] as const) {
      const r = await callAs(mallory, "POST", "/v3/routes", { space_guid: lair, ...body });
      expect(`${JSON.stringify(body)}: ${r.status} ${r.json.errors?.[0]?.detail}`).toContain(`${JSON.stringify(body)}: 422 `);
      expect(r.json.errors[0].detail).toContain(msg);
    }
    const r = await cliAs("mallory", "map-route", "mine", "skiff.test", "--hostname", "*");
    expect(r.code).toBe(1);
    expect(r.err).toContain("wildcard host");
    expect((await callAs(admin, "GET", `/v3/routes?space_guids=${lair}`)).json.resources).toEqual([]);
  }, 30_000);

  test("an admin may make the wildcard; nobody the bare shared domain", async () => {
    const dev = (await callAs(admin, "GET", "/v3/spaces?names=dev")).json.resources[0].guid;
    const w = await callAs(admin, "POST", "/v3/routes", { space_guid: dev, host: "*" });
    expect(w.status).toBe(201);
    expect(w.json.url).toBe("*.skiff.test");
    expect((await callAs(admin, "POST", "/v3/routes", { space_guid: dev, host: "" })).json.errors[0].detail).toContain("Missing host");
  });
});

describe("a private domain is its org's (issue 24)", () => {
  test("only the owning org's spaces route on it; to others it does not exist", async () => {
    const made = await callAs(admin, "POST", "/v3/domains", { name: "owners.example", organization_guid: ownersOrg });
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ shared: false, relationships: { organization: { data: { guid: ownersOrg } } } });
    // the org's developer: any host, the bare domain, a wildcard
    for (const host of ["www", "", "*"]) expect((await callAs(owner, "POST", "/v3/routes", { space_guid: prod, domain: "owners.example", host })).status).toBe(201);
    // another org: not listed, and answered exactly like a domain that does not exist
    expect((await callAs(mallory, "GET", "/v3/domains")).json.resources.map((d: any) => d.name)).toEqual(["skiff.test"]);
    const theirs = await callAs(mallory, "POST", "/v3/routes", { space_guid: lair, domain: "owners.example", host: "x" });
    const none = await callAs(mallory, "POST", "/v3/routes", { space_guid: lair, domain: "nope.example", host: "x" });
    expect(theirs).toEqual(none);
    expect(theirs.status).toBe(422);
    // an admin cannot put another org's space on it either
    const cross = await callAs(admin, "POST", "/v3/routes", { space_guid: lair, domain: "owners.example", host: "x" });
    expect(cross.status).toBe(422);
    expect(cross.json.errors[0].detail).toContain("not available in this space's organization");
  });

  test("a host on the shared domain cannot be another domain's own name", async () => {
    expect((await callAs(admin, "POST", "/v3/domains", { name: "acme.skiff.test", organization_guid: ownersOrg })).status).toBe(201);
    const own = await callAs(owner, "POST", "/v3/routes", { space_guid: prod, host: "acme" });
    expect(own.json.errors[0].detail).toBe("Route conflicts with domain 'acme.skiff.test'.");
    // to another org, without naming that org's private domain
    const other = await callAs(mallory, "POST", "/v3/routes", { space_guid: lair, host: "acme" });
    expect(other.status).toBe(422);
    expect(other.json.errors[0].detail).toBe(RESERVED);
    // and a domain is not made over routes that already are its name
    expect((await callAs(admin, "POST", "/v3/domains", { name: "hello.skiff.test" })).json.errors[0].detail).toContain("routes on hello.skiff.test already exist");
  });
});

describe("a space one cannot see answers like one that does not exist (issue 24)", () => {
  const missing = "00000000-0000-4000-8000-000000000000";

  test("creating an app, a route or a service instance in another org's space", async () => {
    const plan = missing;
    const cases: [string, string, (space: string) => unknown][] = [
      ["POST", "/v3/apps", (space) => ({ name: "probe", space_guid: space })],
      ["POST", "/v3/routes", (space) => ({ space_guid: space, host: "probe" })],
      ["POST", "/v3/service_instances", (space) => ({ type: "managed", name: "probe", relationships: { space: { data: { guid: space } }, service_plan: { data: { guid: plan } } } })],
    ];
    for (const [method, path, body] of cases) {
      const hidden = await callAs(mallory, method, path, body(prod));
      const absent = await callAs(mallory, method, path, body(missing));
      expect(`${path}: ${hidden.status} ${JSON.stringify(hidden.json)}`).toBe(`${path}: ${absent.status} ${JSON.stringify(absent.json)}`);
      expect(`${path}: ${hidden.status}`).toBe(`${path}: 422`);
      expect(hidden.json.errors[0].detail).toContain("space not found");
    }
  });

  test("acting on another org's app or route", async () => {
    const route = (await callAs(owner, "GET", `/v3/routes?space_guids=${prod}`)).json.resources[0].guid;
    for (const [method, path, body] of [
      ["PATCH", `/v3/apps/{app}`, { instances: 2 }],
      ["POST", `/v3/apps/{app}/actions/stop`, undefined],
      ["DELETE", `/v3/apps/{app}`, undefined],
      ["POST", `/v3/routes/{route}/destinations`, { app_guid: mineGuid }],
      ["DELETE", `/v3/routes/{route}`, undefined],
    ] as const) {
      const hidden = await callAs(mallory, method, path.replace("{app}", helloGuid).replace("{route}", route), body);
      const absent = await callAs(mallory, method, path.replace("{app}", missing).replace("{route}", missing), body);
      expect(`${method} ${path}: ${hidden.status} ${JSON.stringify(hidden.json)}`).toBe(`${method} ${path}: ${absent.status} ${JSON.stringify(absent.json)}`);
      expect(hidden.status).toBe(404);
    }
  });

  test("403 stays for one who can see a space but not change it", async () => {
    for (const [path, body] of [["/v3/apps", { name: "peek", space_guid: prod }], ["/v3/routes", { space_guid: prod, host: "peek" }]] as const) {
      const r = await callAs(auditor, "POST", path, body);
      expect(`${path}: ${r.status}`).toBe(`${path}: 403`);
    }
  });
});
