// Issue 10: failure scenarios on a real multi-host cluster (network namespaces, see cluster.ts),
// each under a bounded load loop through HAProxy that counts every failed request. A request that was
// in flight on an instance when it was SIGKILLed cannot be saved by anyone (the router sent bytes, so
// it must not retry): the router answers 502 endpoint_failure, counted as "inherent".

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { connectBus, memoryLogger, Subjects, type Bus } from "../../bus/index.ts";
import { SkiffCluster, repoRoot } from "./cluster.ts";
import { describeFailures, formatRow, LoadLoop, type LoadResult, type ScenarioResult } from "./load.ts";
import { writeSection } from "./results.ts";
import { join } from "node:path";

const routers = ["router1", "router2"] as const;
let c: SkiffCluster;
let bus: Bus;
let appHost: string;
let appGuid: string;
const results: ScenarioResult[] = [];

async function endpoints(router: (typeof routers)[number]): Promise<string[]> {
  return (await c.routeEndpoints(router, appHost).catch(() => ["unreachable"])).sort();
}

/** Polls both routers until their endpoint lists satisfy `ok`; returns ms waited. */
async function untilRoutes(ok: (eps: string[]) => boolean, timeoutMs: number, what: string): Promise<number> {
  const t0 = performance.now();
  let last: string[][] = [];
  while (performance.now() - t0 < timeoutMs) {
    last = await Promise.all(routers.map(endpoints));
    if (last.every(ok)) return performance.now() - t0;
    await Bun.sleep(200);
  }
  throw new Error(`${what}: not reached in ${timeoutMs} ms; routers show ${JSON.stringify(last)}`);
}

/** Instances the agents report (dea.find.droplet), RUNNING or STARTING. */
async function liveInstances(): Promise<{ dea: string; index: number; state: string }[]> {
  const replies = await bus.requestMany(Subjects.deaFindDroplet, "dea.find.droplet", { droplet: appGuid }, "dea.find.droplet.reply", { timeoutMs: 1000 });
  return replies.filter((r) => r.state === "RUNNING" || r.state === "STARTING").map((r) => ({ dea: r.dea, index: r.index, state: r.state }));
}

async function served(): Promise<{ pid: number; index: number }> {
  const res = await fetch(c.lbUrl, { headers: { host: appHost }, signal: AbortSignal.timeout(5000) });
  const m = /instance (\d+), pid (\d+)/.exec(await res.text());
  if (!m) throw new Error(`unexpected answer ${res.status}`);
  return { index: Number(m[1]), pid: Number(m[2]) };
}

function load(): LoadLoop {
  return new LoadLoop(c.lbUrl, appHost, { workers: 3, pauseMs: 10, timeoutMs: 15_000, maxMs: 240_000 }).start();
}

function record(scenario: string, r: LoadResult, inherent: number, healMs: number | null, note?: string): ScenarioResult {
  c.mark(`scenario done: ${scenario}`);
  const row: ScenarioResult = { scenario, requests: r.requests, failed: r.failed, inherent, healMs, note };
  results.push(row);
  console.log(`scenario | ${scenario} | ${r.requests} | ${r.failed} | ${inherent} | ${healMs === null ? "—" : (healMs / 1000).toFixed(1) + " s"} | ${describeFailures(r.failures)}`);
  return row;
}

// in flight on an instance that died: the router had sent bytes, so it must not retry
const inFlight = (r: LoadResult) => r.failures.filter((f) => f.status === 502 && f.routerError === "endpoint_failure").length;
const notOn = (ip: string) => (eps: string[]) => eps.length === 3 && eps.every((e) => !e.startsWith(ip + ":"));

beforeAll(async () => {
  c = new SkiffCluster();
  await c.start();
  appHost = `hello.${c.domain}`;
  bus = await connectBus({ servers: c.natsUrl.split(","), name: "cluster-test", user: c.natsUser, pass: c.natsPass }, memoryLogger());
  const login = await c.cli(["login", "-a", c.controllerUrl, "-u", "admin", "-p", c.adminPassword]);
  if (login.code !== 0) throw new Error(login.output);
  const push = await c.cli(["push", join(repoRoot, "examples/hello")]);
  if (push.code !== 0) throw new Error(push.output);
  const scale = await c.cli(["scale", "hello", "-i", "3"]);
  if (scale.code !== 0) throw new Error(scale.output);
  await untilRoutes((e) => e.length === 3, 60_000, "3 instances routed");
  const snap = await fetch(`${c.routerStatusUrl("router1")}/routes`, { headers: { authorization: `Basic ${btoa(`${c.statusUser}:${c.statusPass}`)}` } });
  appGuid = ((await snap.json()) as any)[appHost][0].app_id;
}, 150_000);

afterAll(async () => {
  const table = [
    "## Failure scenarios (tests/cluster/scenarios.test.ts)",
    "",
    `Run at ${new Date().toISOString()}; load: 3 workers back to back (10 ms pause) through HAProxy → 2 routers → 3 instances of examples/hello on 3 agents.`,
    "\"inherent\" (included in \"failed\") counts requests the router had already sent to an instance when it died (502 endpoint_failure): the router must not retry them.",
    "Timings shortened for the test: router prune threshold 20 s (every 5 s), agent re-register 5 s, router drain 2 s, router connect timeout 1 s, response timeout 10 s.",
    "",
    "| scenario | requests | failed | inherent | time to heal | note |",
    "| --- | --- | --- | --- | --- | --- |",
    ...results.map(formatRow),
  ].join("\n");
  if (results.length) writeSection("scenarios", table);
  await bus?.close().catch(() => undefined);
  await c?.stop();
}, 60_000);

describe("cluster failure scenarios (issue 10)", () => {
  test("SIGKILL an app instance: the router retries elsewhere, the health manager restarts it", async () => {
    const before = await endpoints("router1");
    const loop = load();
    await Bun.sleep(1000);
    const victim = await served();
    c.mark(`SIGKILL instance ${victim.index} (pid ${victim.pid})`);
    process.kill(victim.pid, "SIGKILL");
    const heal = await untilRoutes((e) => e.length === 3 && e.join() !== before.join(), 60_000, "replacement routed");
    await Bun.sleep(1000);
    const r = await loop.stop();
    const inherent = inFlight(r);
    record("SIGKILL one app instance", r, inherent, heal);
    expect(r.failed - inherent, describeFailures(r.failures)).toBe(0);
  }, 90_000);

  test("kill every process of one agent host: its instances come back on the others", async () => {
    const host = c.host("agent2");
    const loop = load();
    await Bun.sleep(1000);
    c.mark("kill all processes of agent2");
    host.killAll();
    const heal = await untilRoutes(notOn(host.ip), 130_000, "instances replaced off agent2");
    const r = await loop.stop();
    const inherent = inFlight(r);
    // Heal is the health manager's missing threshold (an instance unheard for 30 s is missing, counted
    // from its last heartbeat, up to 10 s before the kill) plus placing and starting a replacement.
    record("kill all processes of agent host 2", r, inherent, heal, "heal = up to 30 s without a heartbeat (the HM's missing threshold) + a start elsewhere");
    await c.startAgent("agent2"); // back to three agents for the next scenarios
    expect(r.failed - inherent, describeFailures(r.failures)).toBe(0);
  }, 200_000);

  test("drain and stop a router (SIGTERM): HAProxy takes it out before it stops listening", async () => {
    const loop = load();
    await Bun.sleep(1000);
    const router = c.proc("router1");
    const t0 = performance.now();
    c.mark("SIGTERM router1");
    process.kill(router.pid, "SIGTERM");
    const code = await Promise.race([router.exited, Bun.sleep(40_000).then(() => "timeout")]);
    expect(code).toBe(0);
    await c.startRouter("router1");
    await untilRoutes((e) => e.length === 3, 30_000, "restarted router has the routes");
    await lbServerUp("router1", 10_000);
    const heal = performance.now() - t0;
    await Bun.sleep(1000);
    const r = await loop.stop();
    record("drain + stop router 1 (SIGTERM), restart", r, 0, heal, `drain ${c.timings.drainS} s`);
    expect(r.failed, describeFailures(r.failures)).toBe(0);
  }, 90_000);

  test("kill a NATS node: clients move to the others and the bus keeps working", async () => {
    const nodes = ["nats1", "nats2", "nats3"] as const;
    const perNode = await Promise.all(nodes.map((n) => c.natsClients(n)));
    const total = perNode.reduce((a, b) => a + b, 0);
    // the node with the most clients (clients pick a server at random, so any one may hold none)
    const v = perNode.indexOf(Math.max(...perNode));
    const victim = nodes[v]!;
    const clients = async () => (await Promise.all(nodes.map((n) => c.natsClients(n)))).reduce((a, b) => a + b, 0);
    const loop = load();
    await Bun.sleep(1000);
    c.mark(`SIGKILL ${victim} (${perNode[v]} of ${total} clients on it)`);
    const t0 = performance.now();
    process.kill(c.proc(victim).pid, "SIGKILL");
    // heal: every client that was on the dead node has reconnected to one of the others
    while ((await clients()) < total && performance.now() - t0 < 30_000) await Bun.sleep(100);
    const heal = performance.now() - t0;
    expect(await clients()).toBe(total);
    // and the bus still carries a change end to end: controller → health manager → agent → routers
    const scale = await c.cli(["scale", "hello", "-i", "4"]);
    expect(scale.code, scale.output).toBe(0);
    await untilRoutes((e) => e.length === 4, 60_000, `4th instance routed with ${victim} down`);
    await c.startNats(victim);
    const down = await c.cli(["scale", "hello", "-i", "3"]);
    expect(down.code, down.output).toBe(0);
    await untilRoutes((e) => e.length === 3, 60_000, "back to 3 instances");
    const r = await loop.stop();
    record(`SIGKILL NATS node (${victim}), scale 3→4 while down`, r, 0, heal, `${perNode[v]} of ${total} bus clients were on it; heal = all reconnected to the others`);
    expect(r.failed, describeFailures(r.failures)).toBe(0);
  }, 150_000);

  test("kill the acting health manager: the other takes over the lease and heals", async () => {
    const sql = new SQL(c.databaseUrl);
    const [lease] = await sql`SELECT holder FROM leases WHERE name = 'health-manager'`;
    await sql.close();
    const holder = String(lease?.holder ?? "");
    const acting = (["hm1", "hm2"] as const).find((h) => holder.includes(`-${c.proc(h).pid}-`));
    expect(acting, `lease holder ${holder}`).toBeDefined();
    const before = await endpoints("router1");
    const loop = load();
    await Bun.sleep(1000);
    c.mark(`SIGKILL acting health manager ${acting}`);
    process.kill(c.proc(acting!).pid, "SIGKILL");
    const t0 = performance.now();
    const victim = await served();
    process.kill(victim.pid, "SIGKILL"); // work that only a health manager can do
    await untilRoutes((e) => e.length === 3 && e.join() !== before.join(), 60_000, "instance restarted by the standby");
    const heal = performance.now() - t0;
    const r = await loop.stop();
    const inherent = inFlight(r);
    record(`SIGKILL acting health manager (${acting}) + an instance`, r, inherent, heal);
    await c.startHealthManager(acting!);
    expect(r.failed - inherent, describeFailures(r.failures)).toBe(0);
  }, 90_000);

  test("cut one agent host's link: routes kept until pruned, retried elsewhere; nothing duplicated after", async () => {
    const host = c.host("agent3");
    const loop = load();
    await Bun.sleep(1000);
    const t0 = performance.now();
    c.mark("agent3 link down");
    const cutAt = loop.now();
    host.setLink(false);
    const cutDone = loop.now();
    let heal: number;
    try {
      await untilRoutes(notOn(host.ip), 130_000, "instances replaced off the cut host");
      heal = performance.now() - t0;
    } finally {
      host.setLink(true);
      c.mark("agent3 link up");
    }
    // the cut host's instance may come back with the link; the health manager stops the extra one
    const t1 = performance.now();
    await Bun.sleep(3 * c.timings.registerMs);
    await untilRoutes((e) => e.length === 3, 60_000, "exactly 3 routed after the link returns");
    let instances = await liveInstances();
    for (let i = 0; i < 30 && instances.length !== 3; i++) {
      await Bun.sleep(1000);
      instances = await liveInstances();
    }
    const dedupe = performance.now() - t1;
    const r = await loop.stop();
    // Known limit (router): a request the router writes, after the cut, on an idle kept-alive
    // connection to the cut host gets no answer and ends as 504 endpoint_timeout after
    // SKIFF_ROUTER_RESPONSE_TIMEOUT_MS. Bytes left, so under the retry rule it may not be retried;
    // it was not in flight at the fault, so it is counted as failed, not inherent. At most one per
    // pooled connection: 3 load workers, so 3 per router.
    const timeouts = r.failures.filter((f) => f.status === 504 && f.routerError === "endpoint_timeout");
    const offsets = timeouts.map((f) => `${Math.round(f.at - cutAt)} ms`).join(", ");
    const inherent = inFlight(r);
    record("cut agent host 3's link, restore", r, inherent, heal,
      `${timeouts.length} × 504 endpoint_timeout, sent ${offsets || "—"} after \`ip link set down\` began (it took ${Math.round(cutDone - cutAt)} ms); heal = the HM's 30 s missing threshold + a start elsewhere; after restore: ${instances.length} instances (${(dedupe / 1000).toFixed(1)} s)`);
    expect(instances.length).toBe(3);
    expect(r.failed - inherent - timeouts.length, describeFailures(r.failures)).toBe(0);
    expect(timeouts.length).toBeLessThanOrEqual(3 * routers.length);
  }, 300_000);

  test("SIGKILL and restart the controller: nothing acknowledged is lost", async () => {
    const loop = load();
    await Bun.sleep(1000);
    const scale = await c.cli(["scale", "hello", "-i", "4"]);
    expect(scale.code, scale.output).toBe(0); // acknowledged
    const t0 = performance.now();
    c.mark("SIGKILL controller");
    process.kill(c.proc("controller").pid, "SIGKILL");
    await c.startController();
    const heal = performance.now() - t0;
    const apps = await c.cli(["apps"]);
    expect(apps.code, apps.output).toBe(0);
    await untilRoutes((e) => e.length === 4, 60_000, "the acknowledged scale to 4 survives");
    const down = await c.cli(["scale", "hello", "-i", "3"]);
    expect(down.code, down.output).toBe(0);
    await untilRoutes((e) => e.length === 3, 60_000, "back to 3");
    const r = await loop.stop();
    record("SIGKILL + restart controller (scale acked just before)", r, 0, heal, "heal = kill → controller ready");
    expect(r.failed, describeFailures(r.failures)).toBe(0);
  }, 150_000);

  test("rolling redeploy (skiff restart): every instance replaced, no request lost", async () => {
    const before = await endpoints("router1");
    const loop = load();
    await Bun.sleep(1000);
    const t0 = performance.now();
    c.mark("skiff restart hello");
    const restart = await c.cli(["restart", "hello"]);
    expect(restart.code, restart.output).toBe(0);
    await untilRoutes((e) => e.length === 3 && e.every((x) => !before.includes(x)), 90_000, "all 3 instances replaced");
    const heal = performance.now() - t0;
    await Bun.sleep(1000);
    const r = await loop.stop();
    record("rolling redeploy (skiff restart hello)", r, 0, heal, "heal = restart → all 3 replaced");
    expect(r.failed, describeFailures(r.failures)).toBe(0);
  }, 150_000);
});

/** HAProxy's view of a server, from its stats CSV. */
async function lbServerUp(server: string, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    const csv = await (await fetch(`http://${c.ip("lb")}:8404/stats;csv`)).text().catch(() => "");
    const line = csv.split("\n").find((l) => l.startsWith(`routers,${server},`));
    if (line && line.split(",")[17] === "UP") return;
    await Bun.sleep(100);
  }
  throw new Error(`HAProxy did not mark ${server} UP within ${timeoutMs} ms`);
}
