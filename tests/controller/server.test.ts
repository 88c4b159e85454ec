// The controller and the health manager as real processes on a real nats-server, with a fake agent
// speaking the bus protocol, driven by the real CLI: login, push (staging log streamed), apps, app,
// logs, scale, and a crash healed by the separate health-manager process.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, memoryLogger, type Bus } from "../../bus/index.ts";
import { startNatsServer, type NatsServer } from "../support/nats-server.ts";
import { eventually, freePort } from "../support/ports.ts";
import { startProcess, stopAllProcesses, type TestProcess } from "../support/processes.ts";
import { FakeAgent } from "./fake-agent.ts";

const root = resolve(import.meta.dir, "../..");
const bun = join(root, "node_modules/.bin/bun");
let nats: NatsServer;
let dir: string;
let controller: TestProcess;
let health: TestProcess;
let bus: Bus;
let agent: FakeAgent;
let url: string;

async function cli(args: string[]): Promise<{ code: number; output: string }> {
  const p = Bun.spawn([join(root, "cli/bin/skiff"), ...args], { env: { ...process.env, SKIFF_HOME: join(dir, "home") }, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill(), 60_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, output: out + err };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "skiff-ctl-srv-"));
  nats = await startNatsServer();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const env = { SKIFF_NATS_URL: nats.url, SKIFF_CONTROLLER_PORT: String(port), SKIFF_DATA_DIR: join(dir, "c"), SKIFF_DOMAIN: "skiff.test", SKIFF_BOOTSTRAP_ADMIN_PASSWORD: "adminpass", SKIFF_CONTROLLER_URL: url };
  controller = startProcess("controller", bun, [join(root, "controller/main.ts")], { env });
  await controller.waitForLine(/ready/, 20_000);
  health = startProcess("health", bun, [join(root, "controller/health-main.ts")], { env });
  await health.waitForLine(/ready/, 20_000);
  bus = await connectBus({ servers: [nats.url], name: "fake-agent" }, memoryLogger());
  agent = new FakeAgent(bus, "fake1", (req) => fetch(req)).begin();
  await Bun.sleep(200);
}, 60_000);

afterAll(async () => {
  agent?.end();
  await bus?.close();
  await stopAllProcesses();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("controller + health manager processes, driven by the CLI", () => {
  test("login, push (staging log streamed), apps", async () => {
    expect((await cli(["login", "-a", url, "-u", "admin", "-p", "wrong"])).code).toBe(1);
    const login = await cli(["login", "-a", url, "-u", "admin", "-p", "adminpass"]);
    expect(login.code, login.output).toBe(0);
    expect(login.output).toContain("Targeted org skiff, space dev");
    const app = join(dir, "hello");
    mkdirSync(app);
    writeFileSync(join(app, "index.ts"), "console.log('hi')\n");
    const push = await cli(["push", app]);
    expect(push.code, push.output + controller.output() + health.output()).toBe(0);
    expect(push.output).toContain("[STG] OUT fake buildpack: compiling");
    expect(push.output).toContain("running at http://hello.skiff.test");
    const apps = await cli(["apps"]);
    expect(apps.output).toMatch(/hello\s+started\s+1\/1\s+256M\s+1G\s+hello\.skiff\.test/);
    const json = JSON.parse((await cli(["apps", "--json"])).output);
    expect(json[0].name).toBe("hello");
  }, 60_000);

  test("the separate health manager replaces a crashed instance within seconds", async () => {
    const [guid] = [...agent.instances.values()].map((i) => i.droplet);
    const victim = agent.running(guid!)[0]!;
    const t0 = Date.now();
    agent.crash(victim.instance);
    await eventually(() => (agent.running(guid!).length === 1 ? true : undefined), 10_000, "replacement");
    expect(Date.now() - t0).toBeLessThan(5000);
    const show = await cli(["app", "hello"]);
    expect(show.output).toMatch(/#0\s+running/);
  }, 20_000);

  test("scale with the CLI; errors say what to do", async () => {
    expect((await cli(["scale", "hello", "-i", "2"])).code).toBe(0);
    await eventually(() => (agent.instances.size === 2 ? true : undefined), 10_000, "2 instances");
    const missing = await cli(["app", "nope"]);
    expect(missing.code).toBe(1);
    expect(missing.output).toContain("skiff apps");
    expect((await cli(["frobnicate"])).code).toBe(2);
    expect((await cli(["scale", "hello", "-i", "many"])).code).toBe(2);
  }, 20_000);

  test("push with a manifest: instances, memory, env, routes, health check", async () => {
    const app = join(dir, "web");
    mkdirSync(app);
    writeFileSync(join(app, "index.ts"), "console.log('web')\n");
    writeFileSync(join(app, "manifest.yml"), [
      "applications:",
      "- name: web",
      "  instances: 2",
      "  memory: 128M",
      "  env:",
      "    GREETING: hello",
      "  routes:",
      "  - route: web.skiff.test/api",
      "  health-check-type: http",
      "  health-check-http-endpoint: /health",
      "",
    ].join("\n"));
    const push = await cli(["push", app]);
    expect(push.code, push.output).toBe(0);
    expect(push.output).toContain("running at http://web.skiff.test/api");
    await eventually(() => (agent.starts.filter((s) => s.name === "web").length >= 2 ? true : undefined), 10_000, "2 web instances");
    const start = agent.starts.filter((s) => s.name === "web").at(-1)!;
    expect(start.uris).toEqual(["web.skiff.test/api"]);
    expect(start.env).toEqual({ GREETING: "hello" });
    expect(start.limits.mem).toBe(128);
    expect(start.health_check).toEqual({ type: "http", endpoint: "/health", timeout: 60 });
    const routes = await cli(["routes"]);
    expect(routes.output).toMatch(/web\.skiff\.test\/api\s+web/);
    const env = await cli(["env", "web"]);
    expect(env.output).toContain("GREETING: hello");
    const events = await cli(["events", "web"]);
    expect(events.output).toContain("audit.app.create");
  }, 60_000);

  test("a bad manifest gets a clear error", async () => {
    const app = join(dir, "bad");
    mkdirSync(app);
    writeFileSync(join(app, "manifest.yml"), "applications:\n- name: bad\n  memory: lots\n");
    const r = await cli(["push", app]);
    expect(r.code).toBe(1);
    expect(r.output).toContain("memory");
  });

  test("SIGTERM stops both processes cleanly", async () => {
    await health.stop("SIGTERM");
    expect(await health.exited).toBe(0);
    await controller.stop("SIGTERM");
    expect(await controller.exited).toBe(0);
  }, 20_000);
});
