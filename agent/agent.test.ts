// The agent's bus protocol over the in-memory bus (no NATS, no instance processes).

import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBus, deaStartSubject, MemoryBroker, memoryLogger, stagingStartSubject, Subjects, type Bus, type MessageKind, type MessageKinds } from "../bus/index.ts";
import { Agent } from "./agent.ts";
import { BUILDPACKS } from "./buildpacks/index.ts";
import { DropletCache } from "./droplet-cache.ts";
import { InstanceStore } from "./instance-store.ts";
import { startFixture } from "./fixtures/start-message.ts";

const dirs: string[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stopEverything();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function setup() {
  const broker = new MemoryBroker();
  const log = memoryLogger();
  const agentBus = createBus(broker.transport(), log);
  const bus = createBus(broker.transport(), log);
  const dataDir = mkdtempSync(join(tmpdir(), "skiff-agent-unit-"));
  dirs.push(dataDir);
  const agent = new Agent(
    agentBus,
    new DropletCache(join(dataDir, "droplets"), 1 << 20),
    new InstanceStore(join(dataDir, "records")),
    {
      identity: { id: "a1", ip: "10.1.2.3", zone: "z", stacks: ["bun"], memoryMb: 1000, diskMb: 2000 },
      dataDir,
      advertiseIntervalMs: 60_000,
      heartbeatIntervalMs: 60_000,
      defaultRegisterIntervalMs: 60_000,
      stopGraceMs: 100,
      unregisterGraceMs: 50,
      evacuationWaitMs: 10,
      stagingTimeoutMs: 5000,
      maxArchiveBytes: 1 << 20,
      logLinesPerApp: 10,
      logLinesPerSecond: 100,
      sampleIntervalMs: 60_000,
      enforceMemoryByRss: true,
      buildpacks: BUILDPACKS,
      staticServerPath: join(import.meta.dir, "static-server.ts"),
      bunPath: process.execPath,
      pathPrefix: [],
    },
    log,
  );
  agents.push(agent);
  return { agent, bus, log };
}

function collect<K extends MessageKind>(bus: Bus, subject: string, kind: K): MessageKinds[K][] {
  const out: MessageKinds[K][] = [];
  bus.subscribe(subject, kind, (m) => void out.push(m));
  return out;
}

const settle = () => Bun.sleep(20);

describe("agent bus protocol", () => {
  test("advertises and heartbeats at start, and on dea.locate / healthmanager.start", async () => {
    const { agent, bus } = await setup();
    const ads = collect(bus, Subjects.deaAdvertise, "dea.advertise");
    const hbs = collect(bus, Subjects.deaHeartbeat, "dea.heartbeat");
    await agent.start();
    await settle();
    expect(ads).toHaveLength(1);
    expect(ads[0]).toMatchObject({ id: "a1", ip: "10.1.2.3", available_memory: 1000, placement_properties: { zone: "z" } });
    // issue 17: the heartbeat also lists the tasks the agent runs (none)
    expect(hbs).toEqual([{ dea: "a1", droplets: [], tasks: [] }]);
    bus.publish(Subjects.deaLocate, "dea.locate", {});
    bus.publish(Subjects.healthManagerStart, "healthmanager.start", {});
    await settle();
    expect(ads).toHaveLength(2);
    expect(hbs).toHaveLength(2);
  });

  test("a start whose droplet cannot be fetched is CRASHED with the reason, heartbeat and all", async () => {
    const { agent, bus } = await setup();
    await agent.start();
    const exited = collect(bus, Subjects.dropletExited, "droplet.exited");
    const hbs = collect(bus, Subjects.deaHeartbeat, "dea.heartbeat");
    bus.publish(deaStartSubject("a1"), "dea.start", startFixture({ droplet_uri: "http://127.0.0.1:1/nothing" }));
    for (let i = 0; i < 100 && exited.length === 0; i++) await Bun.sleep(10);
    expect(exited[0]).toMatchObject({ droplet: "app1", reason: "CRASHED" });
    expect(exited[0]!.exit_description).toMatch(/^failed to start: could not download the droplet/);
    expect(hbs.map((h) => h.droplets[0]?.state)).toEqual(["STARTING", "CRASHED"]);
    expect(agent.list()).toEqual([]);
  });

  test("staging for an invalid app id is refused in the done reply; dea.find.droplet of nothing is silent", async () => {
    const { agent, bus } = await setup();
    await agent.start();
    const replies = collect(bus, "reply.here", "staging.reply");
    bus.publish(stagingStartSubject("a1"), "staging.start", { app_id: "bad.id", task_id: "t1", properties: {}, download_uri: "x", upload_uri: "y" }, { reply: "reply.here" });
    const found = await bus.requestMany(Subjects.deaFindDroplet, "dea.find.droplet", { droplet: "none" }, "dea.find.droplet.reply", { timeoutMs: 30 });
    expect(found).toEqual([]);
    expect(replies).toEqual([{ task_id: "t1", phase: "done", error: "invalid app id" }]);
  });

  test("stopping publishes dea.shutdown and refuses new work", async () => {
    const { agent, bus } = await setup();
    await agent.start();
    const shut = collect(bus, Subjects.deaShutdown, "dea.shutdown");
    await agent.stopEverything();
    await settle();
    expect(shut).toEqual([{ id: "a1", app_id_to_count: {} }]);
  });
});
