// A controller killed and restarted: what it acknowledged is still there, and a staging it was in the
// middle of is marked failed at the next start (it stayed STAGING forever), so a start restages it.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, createBus, MemoryBroker, memoryLogger, type Bus } from "../../bus/index.ts";
import { startController } from "../../controller/main.ts";
import { startNatsServer, type NatsServer } from "../support/nats-server.ts";
import { eventually, freePort } from "../support/ports.ts";
import { startProcess, stopAllProcesses } from "../support/processes.ts";
import { FakeAgent } from "./fake-agent.ts";
import { tarGz } from "./api-client.ts";

const root = resolve(import.meta.dir, "../..");
const bun = join(root, "node_modules/.bin/bun");
const base = mkdtempSync(join(tmpdir(), "skiff-restart-"));
let nats: NatsServer | undefined;
let bus: Bus | undefined;
let agent: FakeAgent | undefined;

afterAll(async () => {
  agent?.end();
  await bus?.close();
  await stopAllProcesses();
  await nats?.stop();
  rmSync(base, { recursive: true, force: true });
});


describe("a controller killed and restarted (issue 7)", () => {
  test("SIGKILL mid-staging: acknowledged apps survive; the app left STAGING is failed at start, then restages", async () => {
    nats = await startNatsServer();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { SKIFF_NATS_URL: nats.url, SKIFF_CONTROLLER_PORT: String(port), SKIFF_DATA_DIR: join(base, "c"), SKIFF_DOMAIN: "skiff.test", SKIFF_BOOTSTRAP_ADMIN_PASSWORD: "adminpass", SKIFF_EMBED_HEALTH_MANAGER: "1" };
    let controller = startProcess("controller", bun, [join(root, "controller/main.ts")], { env });
    await controller.waitForLine(/ready/, 20_000);
    bus = await connectBus({ servers: [nats.url], name: "fake-agent" }, memoryLogger());
    agent = new FakeAgent(bus, "fake1", (req) => fetch(req)).begin();
    await Bun.sleep(300);

    const token = ((await (await fetch(`${url}/v3/tokens`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "adminpass" }) })).json()) as any).access_token;
    const H = { authorization: `bearer ${token}`, "content-type": "application/json" };
    const api = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(url + path, { method, headers: H, body: body === undefined ? undefined : body instanceof Uint8Array ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body) });
      return { status: r.status, json: (await r.json().catch(() => undefined)) as any };
    };
    const acked: string[] = [];
    for (let i = 0; i < 20; i++) if ((await api("POST", "/v3/apps", { name: `kept${i}`, no_route: true })).status === 201) acked.push(`kept${i}`);
    const app = (await api("POST", "/v3/apps", { name: "midway", no_route: true })).json;
    expect((await api("PUT", `/v3/apps/${app.guid}/bits`, await tarGz({ "index.ts": "console.log(1)" }))).status).toBe(200);
    agent.holdStaging = true;
    await api("POST", `/v3/apps/${app.guid}/actions/start`);
    await eventually(async () => ((await api("GET", `/v3/apps/${app.guid}`)).json.package_state === "STAGING" ? true : undefined), 5000, "STAGING");

    controller.child.kill("SIGKILL");
    await controller.exited;
    agent.holdStaging = false;
    controller = startProcess("controller2", bun, [join(root, "controller/main.ts")], { env });
    await controller.waitForLine(/ready/, 20_000);

    const list = (await api("GET", "/v3/apps?per_page=500")).json;
    expect(list.resources.map((a: any) => a.name).filter((n: string) => n.startsWith("kept")).sort()).toEqual(acked.sort());
    const after = (await api("GET", `/v3/apps/${app.guid}`)).json;
    expect([after.state, after.package_state]).toEqual(["STARTED", "FAILED"]);
    expect(after.staging_error).toBe("staging was cut short (the controller restarted); start the app again to restage it");
    const ev = (await api("GET", `/v3/events?target_guids=${app.guid}&types=audit.app.staging.failed`)).json;
    expect(ev.resources[0]).toMatchObject({ actor: { name: "system", type: "system" }, data: { error: after.staging_error } });

    await api("POST", `/v3/apps/${app.guid}/actions/start`);
    await eventually(async () => ((await api("GET", `/v3/apps/${app.guid}`)).json.package_state === "STAGED" ? true : undefined), 10_000, "restaged");
    await eventually(() => (agent!.running(app.guid).length === 1 ? true : undefined), 10_000, "running");
    await controller.stop("SIGTERM");
    expect(await controller.exited).toBe(0);
  }, 90_000);

  test("another controller's staging is left alone while it may still be running, failed once it cannot be", async () => {
    const dir = join(base, "shared");
    const broker = new MemoryBroker();
    const start = (stagerId: string) => startController({ natsUrl: "", port: 0, dataDir: dir, domain: "skiff.test", adminPassword: "adminpass", embedHealthManager: false, stagerId }, { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger(), listen: false });
    const first = await start("c1");
    const space = (await first.ctx.store.listSpaces())[0]!.guid;
    const now = Date.now();
    const mk = async (name: string, by: string, since: number) => {
      await first.ctx.store.tx((q) => first.ctx.store.insertApp(q, { guid: name, name, space_guid: space, state: "STARTED", instances: 1, memory_mb: 64, disk_mb: 64, command: null, env: {}, buildpack: null, stack: null, health_check_type: "port", health_check_endpoint: null, health_check_timeout: 60, package_sha: "ab".repeat(32), package_state: "AWAITING_UPLOAD", staging_error: null, droplet_guid: null, release: 0, created_at: now, updated_at: now }));
      await first.ctx.store.tx((q) => first.ctx.store.markStaging(q, name, by, since));
    };
    await mk("busy-elsewhere", "c2", now - 60_000);
    await mk("stale-elsewhere", "c2", now - 20 * 60_000);
    await mk("mine-before", "c3", now - 1000);
    await first.stop();
    const second = await start("c3");
    const state = async (g: string) => (await second.ctx.store.appByGuid(g))!.package_state;
    expect(await state("busy-elsewhere")).toBe("STAGING");
    expect(await state("stale-elsewhere")).toBe("FAILED");
    expect(await state("mine-before")).toBe("FAILED");
    await second.stop();
  });
});
