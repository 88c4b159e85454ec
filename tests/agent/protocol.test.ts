// The agent's bus protocol over time, with a real agent and nats-server: the advertise and heartbeat
// timers, router.greet and the register interval it teaches, re-registration after a NATS reconnect,
// cpu and disk in dea.find.droplet stats, and the id kept across restarts.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deaStartSubject, Subjects, type Bus, type DeaStart } from "../../bus/index.ts";
import type { NatsServer } from "../support/nats-server.ts";
import { startBlobstore, type Blobstore } from "./blobstore.ts";
import { behavioursDroplet } from "./droplets.ts";
import { closeBus, collect, startAgent, startBus, startMessage, startNatsServer, waitFor, type AgentUnderTest } from "./harness.ts";
import { startTcpProxy } from "./tcp-proxy.ts";

let nats: NatsServer;
let bus: Bus;
let blobs: Blobstore;
let behavioursSha: string;
const agents: AgentUnderTest[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  blobs = startBlobstore();
  bus = await startBus(nats);
  behavioursSha = blobs.addDroplet(behavioursDroplet());
}, 30_000);

afterAll(async () => {
  for (const a of agents) await a.stop().catch(() => {});
  await closeBus(bus);
  blobs?.stop();
  await nats?.stop();
}, 60_000);

async function agentWith(env: Record<string, string> = {}, natsServer: { url: string } = nats): Promise<AgentUnderTest> {
  const a = await startAgent(natsServer as NatsServer, env);
  agents.push(a);
  return a;
}

function startOn(agent: AgentUnderTest, app: string, overrides: Partial<DeaStart> = {}) {
  bus.publish(
    deaStartSubject(agent.id),
    "dea.start",
    startMessage({ droplet: app, droplet_uri: blobs.dropletUri(behavioursSha), droplet_sha256: behavioursSha, uris: [`${app}.skiff.localhost`], ...overrides }),
  );
}

/** Gaps between consecutive arrival times, in ms. */
const gaps = (times: number[]) => times.slice(1).map((t, k) => t - times[k]!);

describe("agent protocol over time (issue 6)", () => {
  test("dea.advertise and dea.heartbeat go out on their configured intervals", async () => {
    const ads: number[] = [];
    const beats: number[] = [];
    const agent = await agentWith({ SKIFF_AGENT_ADVERTISE_MS: "200", SKIFF_AGENT_HEARTBEAT_MS: "300" });
    bus.subscribe(Subjects.deaAdvertise, "dea.advertise", (m) => void (m.id === agent.id && ads.push(Date.now())));
    bus.subscribe(Subjects.deaHeartbeat, "dea.heartbeat", (m) => void (m.dea === agent.id && beats.push(Date.now())));
    await bus.flush();
    await Bun.sleep(1600);
    expect(ads.length).toBeGreaterThanOrEqual(6);
    expect(beats.length).toBeGreaterThanOrEqual(4);
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    expect(median(gaps(ads))).toBeGreaterThan(150);
    expect(median(gaps(ads))).toBeLessThan(300);
    expect(median(gaps(beats))).toBeGreaterThan(230);
    expect(median(gaps(beats))).toBeLessThan(400);
  }, 30_000);

  test("router.greet at start teaches the register interval: routes are re-registered on it", async () => {
    // play a router that answers router.greet with a 1 s interval (the agent's default is 20 s)
    let greeted = 0;
    const sub = bus.subscribe(Subjects.routerGreet, "router.greet", (_m, meta) => {
      greeted++;
      if (meta.reply) bus.publish(meta.reply, "router.start", { id: "r-test", hosts: ["127.0.0.1"], minimumRegisterIntervalInSeconds: 1, pruneThresholdInSeconds: 3 });
    });
    await bus.flush();
    const agent = await agentWith();
    await waitFor(() => greeted >= 1 || undefined, 5000, "router.greet");
    await Bun.sleep(100); // the reply's way back
    sub.unsubscribe();
    const registers: number[] = [];
    bus.subscribe(Subjects.routerRegister, "router.register", (m) => void (m.app === "greeted" && registers.push(Date.now())));
    await bus.flush();
    startOn(agent, "greeted");
    await waitFor(() => registers.length >= 1 || undefined, 15_000, "first register");
    await Bun.sleep(2600);
    // the first when RUNNING, then every second (on the default 20 s, it would be one)
    expect(registers.length).toBeGreaterThanOrEqual(3);
    expect(registers.length).toBeLessThanOrEqual(5);
    bus.publish(Subjects.deaStop, "dea.stop", { droplet: "greeted" });
  }, 30_000);

  test("after a NATS reconnect the agent re-registers its routes, advertises and heartbeats at once", async () => {
    const proxy = startTcpProxy(nats.port);
    try {
      const agent = await agentWith({}, proxy);
      const registers: number[] = [];
      const ads: number[] = [];
      const beats: number[] = [];
      bus.subscribe(Subjects.routerRegister, "router.register", (m) => void (m.app === "reconnecting" && registers.push(Date.now())));
      bus.subscribe(Subjects.deaAdvertise, "dea.advertise", (m) => void (m.id === agent.id && ads.push(Date.now())));
      bus.subscribe(Subjects.deaHeartbeat, "dea.heartbeat", (m) => void (m.dea === agent.id && beats.push(Date.now())));
      await bus.flush();
      startOn(agent, "reconnecting");
      await waitFor(() => registers.length === 1 || undefined, 15_000, "registered");
      await Bun.sleep(200);
      const cutAt = Date.now();
      proxy.cut(); // only the agent's connection: this test's bus hears everything
      await agent.proc.waitForLine(/reconnected to NATS/, 10_000);
      await waitFor(() => registers.some((t) => t > cutAt) || undefined, 5000, "register after the reconnect");
      expect(ads.some((t) => t > cutAt)).toBe(true);
      expect(beats.some((t) => t > cutAt)).toBe(true);
      bus.publish(Subjects.deaStop, "dea.stop", { droplet: "reconnecting" });
    } finally {
      proxy.stop();
    }
  }, 30_000);

  test("dea.find.droplet stats carry cpu % and disk use", async () => {
    const agent = await agentWith();
    const registered = collect(bus, Subjects.routerRegister, "router.register");
    await bus.flush();
    startOn(agent, "busy", { env: { MODE: "busy" } });
    await waitFor(() => registered.find((r) => r.app === "busy"), 15_000, "running");
    await Bun.sleep(1200); // a few 250 ms samples
    const [found] = await bus.requestMany(Subjects.deaFindDroplet, "dea.find.droplet", { droplet: "busy", include_stats: true }, "dea.find.droplet.reply", { timeoutMs: 500 });
    expect(found!.stats!.usage.cpu).toBeGreaterThan(20); // it burns 30 of every 40 ms
    expect(found!.stats!.usage.cpu).toBeLessThan(150);
    expect(found!.stats!.usage.disk).toBeGreaterThanOrEqual(4096); // app.ts and staging_info.json, in blocks
    expect(found!.stats!.usage.mem).toBeGreaterThan(1024 * 1024);
    const [quiet] = await bus.requestMany(Subjects.deaFindDroplet, "dea.find.droplet", { droplet: "busy" }, "dea.find.droplet.reply", { timeoutMs: 500 });
    expect(quiet!.stats).toBeUndefined();
    bus.publish(Subjects.deaStop, "dea.stop", { droplet: "busy" });
  }, 30_000);

  test("without SKIFF_AGENT_ID the id is made once and kept in the data dir across restarts", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "skiff-agent-id-"));
    try {
      const idOf = (a: AgentUnderTest) => /agent: ready id=(\S+)/.exec(a.proc.output())![1]!;
      const first = await startAgent(nats, { SKIFF_DATA_DIR: dataDir, SKIFF_AGENT_ID: "" });
      const id = idOf(first);
      expect(id).toMatch(/^agent-[0-9a-f]{12}$/);
      await first.stop();
      const second = await startAgent(nats, { SKIFF_DATA_DIR: dataDir, SKIFF_AGENT_ID: "" });
      expect(idOf(second)).toBe(id);
      expect(readFileSync(join(dataDir, "agent-id"), "utf8").trim()).toBe(id);
      await second.stop();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);
});
