// Issue 10: failure scenarios on a real multi-host cluster (network namespaces, see cluster.ts),
// each under a bounded load loop through HAProxy that counts every failed request. A failure is
// "inherent" only when the routers' access logs show it was sent to the instance or host the fault
// hit, while the fault happened (inherent.ts); every other failure is one the platform should have
// saved, and the scenarios assert there are none.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { connectBus, memoryLogger, Subjects, type Bus } from "../../bus/index.ts";
import { SkiffCluster, repoRoot, waitFor } from "./cluster.ts";
import { inherentFailures, type Fault } from "./inherent.ts";
import { describeFailures, formatRow, LoadLoop, type LoadResult, type RequestFailure, type ScenarioResult } from "./load.ts";
import { writeSection } from "./results.ts";
import { isRunning, leftoversOf } from "./topology.ts";
import { join } from "node:path";
import { helloHostPid } from "../support/instance-pid.ts";

const routers = ["router1", "router2"] as const;
/** a request sent this long after a kill may still have gone to the dead instance unknowingly */
const GRACE_MS = 50;
let c: SkiffCluster;
let bus: Bus | undefined;
let appHost: string;
let appGuid: string;
const results: ScenarioResult[] = [];
/** lost NATS interest (cluster.ts natsInterestGaps), found after the scenarios */
const interestGaps: string[] = [];
let tornDown = false;
/** when (performance.now()) the test last heard a router.register from each host address */
const registerHeard = new Map<string, number>();
/** when the test last heard an advertisement or heartbeat from each agent id */
const agentHeard = new Map<string, number>();

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
  await c.dumpNatsState(what);
  throw new Error(`${what}: not reached in ${timeoutMs} ms; routers show ${JSON.stringify(last)}`);
}

/** Instances the agents report (dea.find.droplet), RUNNING or STARTING. */
async function liveInstances(): Promise<{ dea: string; index: number; state: string }[]> {
  const replies = await bus!.requestMany(Subjects.deaFindDroplet, "dea.find.droplet", { droplet: appGuid }, "dea.find.droplet.reply", { timeoutMs: 1000 });
  return replies.filter((r) => r.state === "RUNNING" || r.state === "STARTING").map((r) => ({ dea: r.dea, index: r.index, state: r.state }));
}

const sortedIndices = (xs: { index: number | string }[]) => xs.map((x) => Number(x.index)).sort((a, b) => a - b);

async function served(): Promise<{ pid: number; index: number }> {
  const res = await fetch(c.lbUrl, { headers: { host: appHost }, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  const m = /instance (\d+), pid (\d+)/.exec(text);
  if (!m) throw new Error(`unexpected answer ${res.status}`);
  return { index: Number(m[1]), pid: helloHostPid(text)! };
}

/** The address ("ip:port") the routers hold for an instance index. */
async function addressOf(index: number): Promise<string> {
  const e = (await c.routeEntries("router1", appHost)).find((x) => x.index === String(index));
  if (!e) throw new Error(`router1 holds no endpoint for instance ${index}`);
  return e.address;
}

function load(): LoadLoop {
  return new LoadLoop(c.lbUrl, appHost, { workers: 3, pauseMs: 10, timeoutMs: 15_000, maxMs: 240_000 }).start();
}

/** The failures sent into `fault` (inherent.ts), read once the routers' access logs have flushed (200 ms). */
async function inherentOf(r: LoadResult, fault: Pick<Fault, "at" | "done" | "hits"> & Partial<Fault>): Promise<RequestFailure[]> {
  if (r.failed > 0) await Bun.sleep(500);
  return inherentFailures(r.failures, c.accessLines(), { status: 502, routerError: "endpoint_failure", graceMs: GRACE_MS, ...fault });
}

function record(scenario: string, r: LoadResult, inherent: number, healMs: number | null, note?: string): ScenarioResult {
  c.mark(`scenario done: ${scenario}`);
  const row: ScenarioResult = { scenario, requests: r.requests, failed: r.failed, inherent, healMs, note };
  results.push(row);
  console.log(`scenario | ${scenario} | ${r.requests} | ${r.failed} | ${inherent} | ${healMs === null ? "—" : (healMs / 1000).toFixed(1) + " s"} | ${describeFailures(r.failures)}`);
  return row;
}

const onHost = (ip: string) => (e: string) => e.startsWith(ip + ":");
const notOn = (ip: string) => (eps: string[]) => eps.length === 3 && !eps.some(onHost(ip));

beforeAll(async () => {
  c = new SkiffCluster();
  await c.start();
  appHost = `hello.${c.domain}`;
  bus = await connectBus(c.busConfig("cluster-test"), memoryLogger());
  bus.subscribe(Subjects.routerRegister, "router.register", (m) => void registerHeard.set(m.host, performance.now()));
  bus.subscribe(Subjects.deaAdvertise, "dea.advertise", (m) => void agentHeard.set(m.id, performance.now()));
  bus.subscribe(Subjects.deaHeartbeat, "dea.heartbeat", (m) => void agentHeard.set(m.dea, performance.now()));
  const login = await c.cli(["login", "-a", c.controllerUrl, "-u", "admin", "-p", c.adminPassword]);
  if (login.code !== 0) throw new Error(login.output);
  const push = await c.cli(["push", join(repoRoot, "examples/hello")]);
  if (push.code !== 0) throw new Error(push.output);
  const scale = await c.cli(["scale", "hello", "-i", "3"]);
  if (scale.code !== 0) throw new Error(scale.output);
  await untilRoutes((e) => e.length === 3, 60_000, "3 instances routed");
  appGuid = (await c.routeEntries("router1", appHost))[0]!.appId;
}, 150_000);

async function closeBus(): Promise<void> {
  const b = bus;
  bus = undefined;
  await b?.close().catch(() => undefined);
}

afterAll(async () => {
  const t = c.timings;
  const table = [
    "## Failure scenarios (tests/cluster/scenarios.test.ts)",
    "",
    `Run at ${new Date().toISOString()}; load: 3 workers back to back (10 ms pause) through HAProxy → 2 routers → 3 instances of examples/hello on 3 agents.`,
    `"inherent" (included in "failed") counts requests nobody could save: the routers' access logs show they were sent to the killed instance or host while it died (in flight at the kill, or sent at most ${GRACE_MS} ms after it), so bytes reached it and BRIEF forbids a retry (502 endpoint_failure); in the link cut, requests written into pooled keep-alive connections to the cut host (504 endpoint_timeout, see its note). Any other failure would be a lost retry; the scenarios assert there are none, and that inherent ≤ the 3 load workers (link cut: ≤ the pooled connections to the host).`,
    `Timings shortened for the test: router prune threshold ${t.staleThresholdS} s (every ${t.pruneIntervalS} s), agent re-register ${t.registerMs / 1000} s, router drain ${t.drainS} s, router connect timeout 1 s, response timeout 10 s; the health managers' lease lasts 10 s.`,
    "",
    "| scenario | requests | failed | inherent | time to heal | note |",
    "| --- | --- | --- | --- | --- | --- |",
    ...results.map(formatRow),
  ].join("\n");
  if (results.length) console.log(`cluster results written to ${writeSection("scenarios", table)}`);
  await closeBus();
  await c?.stop();
}, 60_000);

describe("cluster failure scenarios (issue 10)", () => {
  // After each scenario: does every NATS node still know every live subscription on the others? A gap
  // seen twice, 2 s apart, is a lost interest (a route's view being exchanged is not), and the node
  // would never again pass that subject to that subscriber (nats-server 2.9.10 after a reload of users,
  // docs/operations.md "NATS users").
  afterEach(async () => {
    if (tornDown) return;
    let gaps = await c.natsInterestGaps();
    if (gaps.length) {
      await Bun.sleep(2000);
      const again = new Set(await c.natsInterestGaps());
      gaps = gaps.filter((g) => again.has(g));
    }
    c.mark(`NATS interest gaps after the scenario: ${gaps.length ? gaps.join("; ") : "none"}`);
    interestGaps.push(...gaps.map((g) => `after scenario ${results.length}: ${g}`));
  });
  test("SIGKILL an app instance: the router retries elsewhere, the health manager restarts it", async () => {
    const before = await endpoints("router1");
    const loop = load();
    await Bun.sleep(1000);
    const victim = await served();
    const address = await addressOf(victim.index);
    c.mark(`SIGKILL instance ${victim.index} (pid ${victim.pid}, ${address})`);
    const at = loop.now();
    process.kill(victim.pid, "SIGKILL");
    const done = loop.now();
    const heal = await untilRoutes((e) => e.length === 3 && e.join() !== before.join(), 60_000, "replacement routed");
    await Bun.sleep(1000);
    const r = await loop.stop();
    const inherent = await inherentOf(r, { at, done, hits: (e) => e === address });
    record("SIGKILL one app instance", r, inherent.length, heal);
    expect(r.failed - inherent.length, describeFailures(r.failures)).toBe(0);
    expect(inherent.length).toBeLessThanOrEqual(loop.workerCount);
  }, 90_000);

  test("kill every process of one agent host: its instances come back on the others", async () => {
    const host = c.host("agent2");
    const loop = load();
    await Bun.sleep(1000);
    c.mark("kill all processes of agent2");
    const at = loop.now();
    host.killAll();
    const done = loop.now();
    const heal = await untilRoutes(notOn(host.ip), 130_000, "instances replaced off agent2");
    const r = await loop.stop();
    const inherent = await inherentOf(r, { at, done, hits: onHost(host.ip) });
    // Heal is the health manager's missing threshold (an instance unheard for 30 s is missing, counted
    // from its last heartbeat, up to 10 s before the kill) plus placing and starting a replacement.
    record("kill all processes of agent host 2", r, inherent.length, heal, "heal = up to 30 s without a heartbeat (the HM's missing threshold) + a start elsewhere");
    await c.startAgent("agent2"); // back to three agents for the next scenarios
    expect(r.failed - inherent.length, describeFailures(r.failures)).toBe(0);
    expect(inherent.length).toBeLessThanOrEqual(loop.workerCount);
  }, 200_000);

  test("drain and stop a router (SIGTERM): HAProxy marks it DOWN before it stops, and never retries", async () => {
    // HAProxy's retries and redispatch (cluster.ts) would hide a router that stopped at once: the
    // proof of a drain is HAProxy's own view, polled while it happens, and its retry counters.
    const counters = (s: Map<string, Record<string, string>>) =>
      ["routers/router1", "routers/router2", "routers/BACKEND"].map((k) => `${k} wretr=${s.get(k)?.wretr} wredis=${s.get(k)?.wredis}`);
    const sum = (s: Map<string, Record<string, string>>) =>
      ["routers/router1", "routers/router2", "routers/BACKEND"].reduce((n, k) => n + Number(s.get(k)?.wretr || 0) + Number(s.get(k)?.wredis || 0), 0);
    const before = await c.lbStats();
    const loop = load();
    await Bun.sleep(1000);
    const router = c.proc("router1");
    let exitedAt: number | undefined;
    void router.exited.then(() => (exitedAt = performance.now()));
    const t0 = performance.now();
    c.mark("SIGTERM router1");
    process.kill(router.pid, "SIGTERM");
    const seen: string[] = [];
    let downAt: number | undefined;
    while (exitedAt === undefined && performance.now() - t0 < 40_000) {
      const status = (await c.lbStats().catch(() => undefined))?.get("routers/router1")?.status;
      if (status && seen.at(-1) !== status) seen.push(`${status} at ${Math.round(performance.now() - t0)} ms`);
      if (downAt === undefined && status?.startsWith("DOWN")) downAt = performance.now();
      await Bun.sleep(50);
    }
    const code = await Promise.race([router.exited, Bun.sleep(5_000).then(() => "timeout")]);
    expect(code).toBe(0);
    const downMs = downAt === undefined ? undefined : downAt - t0;
    const exitMs = exitedAt! - t0;
    await c.startRouter("router1");
    await untilRoutes((e) => e.length === 3, 30_000, "restarted router has the routes");
    await lbServerUp("router1", 10_000);
    const heal = performance.now() - t0;
    await Bun.sleep(1000);
    const r = await loop.stop();
    const after = await c.lbStats();
    record("drain + stop router 1 (SIGTERM), restart", r, 0, heal,
      `drain ${c.timings.drainS} s; HAProxy saw router1 DOWN ${downMs === undefined ? "never" : `${(downMs / 1000).toFixed(2)} s`} after SIGTERM, the process exited at ${(exitMs / 1000).toFixed(2)} s; HAProxy retries + redispatches during it: ${sum(after) - sum(before)}`);
    expect(downMs, `router1's status in HAProxy while it drained: ${seen.join(", ")}`).toBeDefined();
    expect(downMs!).toBeLessThan(exitMs);
    expect(downMs!).toBeLessThan(c.timings.drainS * 1000); // DOWN while the router still accepted
    expect(sum(after) - sum(before), `before: ${counters(before)}; after: ${counters(after)}`).toBe(0);
    expect(r.failed, describeFailures(r.failures)).toBe(0);
  }, 90_000);

  test("kill a NATS node (its host): clients move to the others, the bus keeps working, the node rejoins", async () => {
    const nodes = ["nats1", "nats2", "nats3"] as const;
    const perNode = await Promise.all(nodes.map((n) => c.natsClients(n)));
    const total = perNode.reduce((a, b) => a + b, 0);
    // the node with the most clients (clients pick a server at random, so any one may hold none)
    const v = perNode.indexOf(Math.max(...perNode));
    const victim = nodes[v]!;
    const others = nodes.filter((n) => n !== victim);
    expect(perNode[v], `clients per node ${perNode}`).toBeGreaterThanOrEqual(1);
    const clients = async () => (await Promise.all(nodes.map((n) => c.natsClients(n)))).reduce((a, b) => a + b, 0);
    const loop = load();
    await Bun.sleep(1000);
    c.mark(`kill every process of host ${victim}, its supervisor too (${perNode[v]} of ${total} clients on it)`);
    const t0 = performance.now();
    // the host is lost with its service manager: nothing restarts nats-server until the host boots
    c.killHost(victim);
    // heal: every client that was on the dead node has reconnected to one of the others
    while ((await clients()) < total && performance.now() - t0 < 30_000) await Bun.sleep(100);
    const heal = performance.now() - t0;
    expect(await clients()).toBe(total);
    expect(await c.natsClients(victim)).toBe(0);
    // the survivors lost their route to it
    await waitFor(async () => (await Promise.all(others.map((n) => c.natsRoutes(n)))).every((n) => n === 1), 5_000, `${others} down to one cluster route`);
    // and the bus still carries a change end to end: controller → health manager → agent → routers
    const scale = await c.cli(["scale", "hello", "-i", "4"]);
    expect(scale.code, scale.output).toBe(0);
    await untilRoutes((e) => e.length === 4, 60_000, `4th instance routed with ${victim} down`);
    await c.startNats(victim);
    const t1 = performance.now();
    await waitFor(async () => (await Promise.all(nodes.map((n) => c.natsRoutes(n)))).every((n) => n === 2), 15_000, `${victim} rejoined the cluster (every node routes to both others)`);
    const rejoin = performance.now() - t1;
    const down = await c.cli(["scale", "hello", "-i", "3"]);
    expect(down.code, down.output).toBe(0);
    await untilRoutes((e) => e.length === 3, 60_000, "back to 3 instances");
    const r = await loop.stop();
    record(`kill NATS host (${victim}), scale 3→4 while down`, r, 0, heal,
      `${perNode[v]} of ${total} bus clients were on it; heal = all reconnected to the others; booted again, it rejoined the cluster routes in ${(rejoin / 1000).toFixed(1)} s`);
    expect(r.failed, describeFailures(r.failures)).toBe(0);
  }, 150_000);

  test("kill the acting health manager (its host): the other takes over the lease and heals", async () => {
    const leaseHolder = async () => {
      const sql = c.sql();
      try {
        const [lease] = await sql`SELECT holder FROM leases WHERE name = 'health-manager'`;
        return String(lease?.holder ?? "");
      } finally {
        await sql.close();
      }
    };
    const holds = (holder: string, h: "hm1" | "hm2") => holder.includes(`-${c.proc(h).pid}-`);
    const holder = await leaseHolder();
    const acting = (["hm1", "hm2"] as const).find((h) => holds(holder, h));
    expect(acting, `lease holder ${holder}`).toBeDefined();
    const standby = acting === "hm1" ? "hm2" : "hm1";
    const before = await endpoints("router1");
    const loop = load();
    await Bun.sleep(1000);
    c.mark(`kill every process of the acting health manager's host ${acting}, its supervisor too`);
    // its supervisor goes with it: a restarted health manager on that host would compete for the lease
    c.killHost(acting!);
    const t0 = performance.now();
    const victim = await served();
    const address = await addressOf(victim.index);
    const at = loop.now();
    process.kill(victim.pid, "SIGKILL"); // work that only a health manager can do
    const done = loop.now();
    await untilRoutes((e) => e.length === 3 && e.join() !== before.join(), 60_000, "instance restarted by the standby");
    const heal = performance.now() - t0;
    const newHolder = await leaseHolder();
    const r = await loop.stop();
    const inherent = await inherentOf(r, { at, done, hits: (e) => e === address });
    record(`kill acting health manager's host (${acting}) + SIGKILL an instance`, r, inherent.length, heal, `the lease moved to ${standby}; heal ≈ the lease's 10 s TTL: the standby acts once the dead holder's lease expires`);
    await c.startHealthManager(acting!);
    expect(holds(newHolder, standby), `lease holder after: ${newHolder}`).toBe(true);
    expect(r.failed - inherent.length, describeFailures(r.failures)).toBe(0);
    expect(inherent.length).toBeLessThanOrEqual(loop.workerCount);
  }, 90_000);

  test("cut one agent host's link: routes kept until the prune threshold, retried elsewhere; nothing duplicated after", async () => {
    const host = c.host("agent3");
    const agentId = `agent3-${c.topology.id}`;
    const entries = (await c.routeEntries("router1", appHost)).filter((e) => onHost(host.ip)(e.address));
    expect(entries.length, "agent3 runs an instance").toBeGreaterThan(0);
    const thresholdMs = entries[0]!.staleThresholdS * 1000;
    const pruneMs = c.timings.pruneIntervalS * 1000;
    const loop = load();
    await Bun.sleep(1000);
    // the upstream connections each router holds to the host as it is cut: each can swallow at most
    // one request the router cannot know the fate of
    const pooled = routers.map((rt) => c.upstreamConnections(rt, host.ip));
    const t0 = performance.now();
    c.mark("agent3 link down");
    const cutAt = loop.now();
    host.setLink(false);
    const cutDone = loop.now();
    // Read again once cut: a connection opened between the first reading and the cut is established
    // now (and stays so, no FIN can pass); one opened after it never gets past SYN-SENT.
    const pooledAfterCut = routers.map((rt) => c.upstreamConnections(rt, host.ip));
    for (const i of pooled.keys()) pooled[i] = Math.max(pooled[i]!, pooledAfterCut[i]!);
    const lastRegister = registerHeard.get(host.ip);
    expect(lastRegister, "agent3's registrations were heard").toBeDefined();
    let heal: number;
    let keptAt: number, prunedAt: number | undefined;
    let kept: string[][];
    let lastSeen: string[][] = [];
    try {
      // kept: shortly before the threshold, counted from the last registration heard before the cut
      await Bun.sleep(lastRegister! + thresholdMs - 1000 - performance.now());
      keptAt = performance.now() - lastRegister!;
      kept = await Promise.all(routers.map(endpoints));
      // pruned: by the threshold + one prune interval + a margin for the poll and a busy machine
      const deadline = lastRegister! + thresholdMs + pruneMs + 2000;
      while (performance.now() < deadline) {
        lastSeen = await Promise.all(routers.map(endpoints));
        if (lastSeen.every((eps) => !eps.some(onHost(host.ip)))) {
          prunedAt = performance.now() - lastRegister!;
          break;
        }
        await Bun.sleep(200);
      }
      if (prunedAt === undefined) await c.dumpNatsState(`agent3's endpoints not pruned by the deadline: ${JSON.stringify(lastSeen)}`);
      await untilRoutes(notOn(host.ip), 130_000, "instances replaced off the cut host");
      heal = performance.now() - t0;
    } finally {
      host.setLink(true);
      c.mark("agent3 link up");
    }
    // The cut host's instance may still run when the link returns; the health manager stops the extra
    // one. Wait until agent3 is heard again (so dea.find.droplet reaches it too), then for exactly one
    // instance per index, and check it holds through a re-register round.
    const restoredAt = performance.now();
    await waitFor(() => (agentHeard.get(agentId) ?? 0) > restoredAt, 30_000, "agent3 heard on the bus after the link returned");
    let instances = await liveInstances();
    while (sortedIndices(instances).join() !== "0,1,2" && performance.now() - restoredAt < 45_000) {
      await Bun.sleep(500);
      instances = await liveInstances();
    }
    const dedupe = performance.now() - restoredAt;
    await Bun.sleep(c.timings.registerMs + 1000);
    const settled = await liveInstances();
    const routed = await Promise.all(routers.map((rt) => c.routeEntries(rt, appHost)));
    if (routed.some((eps) => sortedIndices(eps).join() !== "0,1,2")) await c.dumpNatsState("a router's routes after agent3's link returned");
    const r = await loop.stop();
    // Requests the router wrote into pooled keep-alive connections to the host after (or just before)
    // the cut get no answer: bytes may have arrived, so by BRIEF's rule the router must not retry them,
    // and they end as 504 endpoint_timeout after SKIFF_ROUTER_RESPONSE_TIMEOUT_MS. Inherent to that
    // rule, and bounded: one per connection pooled to the host when it was cut.
    const timeouts = await inherentOf(r, { at: cutAt, done: cutDone, hits: onHost(host.ip), status: 504, routerError: "endpoint_timeout", graceMs: Infinity });
    const offsets = timeouts.map((f) => `${Math.round(f.at - cutAt)} ms`).join(", ");
    const pooledTotal = pooled[0]! + pooled[1]!;
    record("cut agent host 3's link, restore", r, timeouts.length, heal,
      `inherent: ${timeouts.length} × 504 endpoint_timeout, written into pooled keep-alive connections to agent3 (${pooled.join(" + ")} pooled when cut: the bound), sent ${offsets || "—"} after \`ip link set down\` began (it took ${Math.round(cutDone - cutAt)} ms); routes kept ${(keptAt! / 1000).toFixed(1)} s after agent3's last registration, pruned by ${prunedAt === undefined ? "—" : (prunedAt / 1000).toFixed(1) + " s"} (threshold ${thresholdMs / 1000} s + prune every ${pruneMs / 1000} s); heal = the HM's 30 s missing threshold + a start elsewhere; after restore: indices ${sortedIndices(settled).join(",")} (${(dedupe / 1000).toFixed(1)} s)`);
    for (const [i, eps] of kept!.entries()) expect(eps.some(onHost(host.ip)), `${routers[i]} at ${keptAt!.toFixed(0)} ms: ${eps}`).toBe(true);
    expect(prunedAt, `agent3's endpoints still routed ${thresholdMs + pruneMs + 2000} ms after its last registration: ${JSON.stringify(lastSeen)}`).toBeDefined();
    expect(sortedIndices(instances)).toEqual([0, 1, 2]);
    expect(sortedIndices(settled)).toEqual([0, 1, 2]);
    for (const eps of routed) expect(sortedIndices(eps)).toEqual([0, 1, 2]);
    expect(r.failed - timeouts.length, describeFailures(r.failures)).toBe(0);
    expect(timeouts.length).toBeLessThanOrEqual(pooledTotal);
  }, 300_000);

  test("SIGKILL the controller in the middle of acknowledged writes: every one survives; push works after", async () => {
    const api = c.api();
    const hello = (await api.get(`/v3/apps?names=hello`)).resources[0];
    const space: string = hello.relationships.space.data.guid;
    // writes go to a stopped app, so they churn nothing under the load: scale, set-env, route create
    const ledger = await api.post("/v3/apps", { name: "ledger", space_guid: space, no_route: true });
    const acked = { instances: ledger.instances as number, env: new Map<string, string>(), routes: [] as string[], count: 0 };
    let unacked: { op: string; instances?: number } | undefined;
    let stopWriting = false;
    const writer = (async () => {
      for (let i = 0; !stopWriting; i++) {
        const op = ["scale", "set-env", "route create"][i % 3]!;
        try {
          if (op === "scale") {
            await api.patch(`/v3/apps/${ledger.guid}`, { instances: i + 2 });
            acked.instances = i + 2;
          } else if (op === "set-env") {
            await api.patch(`/v3/apps/${ledger.guid}/env`, { var: { [`W${i}`]: `v${i}` } });
            acked.env.set(`W${i}`, `v${i}`);
          } else {
            await api.post("/v3/routes", { space_guid: space, host: `w${i}` });
            acked.routes.push(`w${i}`);
          }
          acked.count++;
        } catch {
          unacked = { op, instances: op === "scale" ? i + 2 : undefined }; // in flight at the kill: either outcome is right
          return;
        }
      }
    })();
    const loop = load();
    await waitFor(() => acked.count >= 30, 20_000, "30 acknowledged writes");
    const t0 = performance.now();
    c.mark(`SIGKILL controller after ${acked.count} acknowledged writes`);
    // the process only: its unit restarts on failure after RestartSec (1 s), as systemd would
    process.kill(c.proc("controller").pid, "SIGKILL");
    await Promise.race([writer, Bun.sleep(10_000)]);
    stopWriting = true;
    await c.startController();
    const heal = performance.now() - t0;

    const app = await api.get(`/v3/apps/${ledger.guid}`);
    const env = (await api.get(`/v3/apps/${ledger.guid}/env`)).environment_variables as Record<string, string>;
    const hosts = new Set((await api.all(`/v3/routes?space_guids=${space}`)).map((x: any) => x.host));
    const lostEnv = [...acked.env].filter(([k, v]) => env[k] !== v).map(([k]) => k);
    const lostRoutes = acked.routes.filter((h) => !hosts.has(h));
    // `skiff apps` after the restart: hello still runs 3 of 3, ledger keeps its acknowledged scale
    let apps = await c.cli(["apps"]);
    for (let i = 0; i < 5 && !/^hello\s+started\s+3\/3\s/m.test(apps.output); i++) {
      await Bun.sleep(1000);
      apps = await c.cli(["apps"]);
    }
    // staging and a first start after the restart: push a second app and reach it through HAProxy
    const push = await c.cli(["push", join(repoRoot, "examples/hello"), "--name", "hello2", "-i", "1", "-t", "60"]); // normally 1-2 s
    let pushed = "";
    for (let i = 0; i < 50 && !pushed.startsWith("hello from skiff"); i++) {
      pushed = await fetch(c.lbUrl, { headers: { host: `hello2.${c.domain}` } }).then((x) => x.text()).catch(() => "");
      if (!pushed.startsWith("hello from skiff")) await Bun.sleep(100);
    }
    await c.cli(["delete", "hello2", "-f"]);
    await api.del(`/v3/apps/${ledger.guid}`);
    const r = await loop.stop();
    record("SIGKILL + restart controller amid acknowledged writes", r, 0, heal,
      `killed after ${acked.count} acknowledged writes (scale, set-env, route create on a stopped app), all visible after the restart${unacked ? `; the one in flight (${unacked.op}) unacknowledged` : ""}; \`skiff apps\` and a push of a second app work after; heal = kill → controller ready (its unit restarts it on failure after RestartSec 1 s)`);
    expect(acked.count).toBeGreaterThanOrEqual(30);
    expect(lostEnv, "acknowledged set-env lost").toEqual([]);
    expect(lostRoutes, "acknowledged routes lost").toEqual([]);
    expect([acked.instances, unacked?.instances].filter((x) => x !== undefined)).toContain(app.instances);
    expect(apps.code, apps.output).toBe(0);
    expect(apps.output).toMatch(new RegExp(`^hello\\s+started\\s+3/3\\s.*hello\\.${c.domain.replace(".", "\\.")}`, "m"));
    expect(apps.output).toMatch(new RegExp(`^ledger\\s+stopped\\s+0/${app.instances}\\s`, "m"));
    expect(push.code, push.output).toBe(0);
    expect(pushed).toStartWith("hello from skiff");
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

  test("no NATS node lost interest in a live subscriber on another, after any scenario", () => {
    expect(interestGaps).toEqual([]);
  });

  test("teardown leaves no namespace, link or process of the run", async () => {
    const id = c.topology.id;
    // every process on every host: the components and the app instances the agents started
    const pids = [...c.topology.hosts.values()].flatMap((h) => h.pids());
    expect(leftoversOf(id).length).toBeGreaterThan(0);
    expect(pids.length).toBeGreaterThan(10);
    await closeBus();
    tornDown = true;
    await c.stop();
    expect(leftoversOf(id)).toEqual([]);
    for (let i = 0; i < 50 && pids.some(isRunning); i++) await Bun.sleep(50);
    expect(pids.filter(isRunning)).toEqual([]);
  }, 60_000);
});

/** HAProxy's view of a server, from its stats CSV. */
async function lbServerUp(server: string, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    const status = (await c.lbStats().catch(() => undefined))?.get(`routers/${server}`)?.status;
    if (status === "UP") return;
    await Bun.sleep(100);
  }
  throw new Error(`HAProxy did not mark ${server} UP within ${timeoutMs} ms`);
}
