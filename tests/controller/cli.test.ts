// The `skiff` CLI, run as the real binary against an in-process controller listening on a free
// loopback port (memory bus, fake agent): target, orgs/spaces, app with stats, start/stop, env,
// map/unmap-route, logs (recent and streamed), rollback, events, delete, --json and logout (issue 7).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { logsSubject, Subjects, type Bus, type DeaUpdate } from "../../bus/index.ts";
import type { RunningController } from "../../controller/main.ts";
import { eventually } from "../support/ports.ts";
import { runSkiff, skiffBin, skiffEnv, startCliController, type CliController } from "./cli-controller.ts";
import type { FakeAgent } from "./fake-agent.ts";

let controller: CliController;
let dir: string;
let c: RunningController;
let bus: Bus;
let agent: FakeAgent;
const updates: DeaUpdate[] = [];

const env = () => skiffEnv(join(dir, "home"));

/** Runs the CLI to completion. */
const cli = (...args: string[]) => runSkiff(join(dir, "home"), args);

async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  expect(r.code, `skiff ${args.join(" ")}\n${r.out}${r.err}`).toBe(0);
  return r.out;
}

const json = async (...args: string[]) => JSON.parse(await ok(...args, "--json"));

beforeAll(async () => {
  controller = await startCliController("skiff-cli-");
  ({ dir, c, bus, agent } = controller);
  bus.subscribe(Subjects.deaUpdate, "dea.update", (u) => void updates.push(u));
  const app = join(dir, "hello");
  mkdirSync(app);
  writeFileSync(join(app, "index.ts"), "console.log('v1')\n");
}, 30_000);

afterAll(() => controller?.stop());

describe("the skiff CLI against a controller (issue 7)", () => {
  test("login and target: show, switch org and space, refuse an unknown one", async () => {
    expect((await cli("apps")).code).toBe(1);
    expect(await ok("login", "-a", c.url, "-u", "admin", "-p", "adminpass")).toContain("Targeted org skiff, space dev.");
    expect(await ok("target")).toMatch(new RegExp(`API endpoint: ${c.url}\\nuser: +admin\\norg: +skiff\\nspace: +dev`));
    expect(await ok("create-org", "other")).toContain("Created org other.");
    expect(await ok("create-space", "qa", "-o", "other")).toContain("Created space qa.");
    expect(await ok("target", "-o", "other", "-s", "qa")).toMatch(/org: +other\nspace: +qa/);
    const cfg = JSON.parse(readFileSync(join(dir, "home/config.json"), "utf8"));
    expect([cfg.org.name, cfg.space.name]).toEqual(["other", "qa"]);
    const bad = await cli("target", "-s", "nope");
    expect(bad.code).toBe(1);
    expect(bad.err).toContain("Space nope not found in other. See: skiff spaces");
    expect(await ok("target", "-o", "skiff", "-s", "dev")).toMatch(/org: +skiff\nspace: +dev/);
    expect((await json("orgs")).map((o: any) => o.name)).toEqual(["other", "skiff"]);
    expect((await json("spaces")).map((s: any) => s.name)).toEqual(["dev"]);
  });

  test("push, then app shows instances with cpu, memory and disk from the agents' stats", async () => {
    expect(await ok("push", join(dir, "hello"))).toContain("running at http://hello.skiff.test");
    const apps = await json("apps");
    expect(apps.map((a: any) => [a.name, a.state, a.instances])).toEqual([["hello", "STARTED", 1]]);
    const shown = await ok("app", "hello");
    expect(shown).toMatch(/requested state: +started/);
    expect(shown).toMatch(/#0 +running +\S+ \S+ +12\.5% +48\.0M of 256M +3\.0M of 1G/);
    const detail = await json("app", "hello");
    expect(detail.instances_detail[0]).toMatchObject({ state: "RUNNING", usage: { cpu: 12.5, mem: 48 * 1024 * 1024, disk: 3 * 1024 * 1024 }, port: 61000 });
  }, 30_000);

  test("stop and start", async () => {
    const guid = (await json("apps"))[0].guid;
    expect(await ok("stop", "hello")).toContain("Stopped hello.");
    await eventually(() => (agent.running(guid).length === 0 ? true : undefined), 5000, "stopped");
    expect((await json("apps"))[0].state).toBe("STOPPED");
    expect(await ok("start", "hello")).toContain("Starting hello.");
    await eventually(() => (agent.running(guid).length === 1 ? true : undefined), 5000, "started");
    expect((await json("apps"))[0].state).toBe("STARTED");
  });

  test("set-env, env and unset-env", async () => {
    expect(await ok("set-env", "hello", "GREETING", "hi there")).toContain("Set GREETING for hello. Run skiff restart hello to apply it.");
    expect(await json("env", "hello")).toEqual({ GREETING: "hi there" });
    expect(await ok("env", "hello")).toContain("GREETING: hi there");
    expect(await ok("unset-env", "hello", "GREETING")).toContain("Removed GREETING from hello.");
    expect(await json("env", "hello")).toEqual({});
    const usage = await cli("set-env", "hello", "ONLY_NAME");
    expect(usage.code).toBe(2);
    expect(usage.err).toContain("Usage: skiff set-env NAME VAR VALUE");
  });

  test("map-route and unmap-route tell the agents (dea.update)", async () => {
    const guid = (await json("apps"))[0].guid;
    updates.length = 0;
    expect(await ok("map-route", "hello", "skiff.test", "--hostname", "api", "--path", "/v1")).toContain("Mapped api.skiff.test/v1 to hello.");
    await eventually(() => updates.find((u) => u.droplet === guid && u.uris.includes("api.skiff.test/v1")), 3000, "dea.update with the route");
    const routes = await json("routes");
    expect(routes.find((r: any) => r.url === "api.skiff.test/v1").destinations).toEqual([{ app: { guid } }]);
    expect(await ok("routes")).toMatch(/api\.skiff\.test\/v1 +hello/);
    expect(await ok("unmap-route", "hello", "skiff.test", "--hostname", "api", "--path", "/v1")).toContain("Unmapped api.skiff.test/v1 from hello.");
    await eventually(() => updates.find((u) => u.droplet === guid && !u.uris.includes("api.skiff.test/v1")), 3000, "dea.update without it");
    expect((await json("routes")).find((r: any) => r.url === "api.skiff.test/v1").destinations).toEqual([]);
    const missing = await cli("unmap-route", "hello", "skiff.test", "--hostname", "nope");
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("Route nope.skiff.test not found. See: skiff routes");
  });

  test("logs --recent prints the agents' buffers; logs streams until Ctrl-C", async () => {
    const guid = (await json("apps"))[0].guid;
    expect(await ok("logs", "hello", "--recent")).toMatch(/\[APP\/0\] OUT recent line from instance 0/);
    const p = Bun.spawn([skiffBin, "logs", "hello"], { env: env(), stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    let out = "";
    const reader = (async () => {
      for await (const chunk of p.stdout as unknown as AsyncIterable<Uint8Array>) out += new TextDecoder().decode(chunk);
    })();
    // the stream begins once the CLI has polled for its position: say the line until it is heard
    let n = 0;
    await eventually(() => {
      bus.publish(logsSubject(guid), "logs", { app: guid, source: "APP", index: 0, stream: "out", ts: Date.now(), line: `streamed ${n++}` });
      return /\[APP\/0\] OUT streamed \d+/.test(out) ? true : undefined;
    }, 10_000, "a streamed line");
    expect(out).toContain("recent line from instance 0");
    p.kill("SIGINT");
    expect(await p.exited).toBe(0);
    await reader;
  }, 20_000);

  test("rollback runs the previous droplet; droplets and events show it", async () => {
    const guid = (await json("apps"))[0].guid;
    writeFileSync(join(dir, "hello", "index.ts"), "console.log('v2')\n");
    await ok("push", join(dir, "hello"));
    const droplets = await json("droplets", "hello");
    expect(droplets.length).toBe(2);
    const [newest, previous] = droplets;
    expect(newest.current).toBe(true);
    expect(await ok("rollback", "hello")).toContain(`Rolling hello back to droplet ${previous.guid}.`);
    expect((await json("droplets", "hello")).find((d: any) => d.current).guid).toBe(previous.guid);
    await eventually(() => (agent.running(guid).length === 1 && agent.running(guid)[0]!.start.droplet_sha256 === previous.sha256 ? true : undefined), 5000, "rolled back");
    const types = (await json("events", "hello")).map((e: any) => e.type);
    for (const t of ["audit.app.rollback", "audit.app.map-route", "audit.app.unmap-route", "audit.app.stop", "audit.app.start"]) expect(types).toContain(t);
    expect(await ok("events", "hello")).toMatch(/audit\.app\.rollback +admin/);
  }, 30_000);

  test("delete, and errors that say what to do", async () => {
    const guid = (await json("apps"))[0].guid;
    expect(await ok("delete", "hello", "-f")).toContain("Deleted app hello.");
    await eventually(() => (agent.running(guid).length === 0 ? true : undefined), 5000, "instances stopped");
    expect(await json("apps")).toEqual([]);
    const gone = await cli("app", "hello");
    expect(gone.code).toBe(1);
    expect(gone.err).toContain("App hello not found in space dev. See: skiff apps");
    const usage = await cli("start");
    expect(usage.code).toBe(2);
    expect(usage.err).toContain("missing the app name. Usage: skiff start NAME");
  });

  test("logout revokes the token and forgets it", async () => {
    const token = JSON.parse(readFileSync(join(dir, "home/config.json"), "utf8")).token;
    expect(await ok("logout")).toContain("Logged out.");
    const res = await fetch(`${c.url}/v3/users/me`, { headers: { authorization: `bearer ${token}` } });
    expect(res.status).toBe(401);
    const after = await cli("apps");
    expect(after.code).toBe(1);
    expect(after.err).toContain("Not logged in. Run: skiff login");
  });
});
