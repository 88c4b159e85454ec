// The agent's own lifecycle with real processes: SIGTERM evacuation, a restart that finds instances
// left behind, memory limits by RSS sampling where no cgroup is used, dea.update, fd limits, and
// staged static and Node droplets actually serving.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deaStartSubject, logsSubject, stagingStartSubject, Subjects, type Bus, type DeaStart, type StagingReply } from "../../bus/index.ts";
import { isAlive } from "../../agent/proc-stats.ts";
import { openInstanceCgroups } from "../../agent/instance-cgroup.ts";
import { startBlobstore, type Blobstore } from "./blobstore.ts";
import { behavioursDroplet, helloDroplet, orphansDroplet } from "./droplets.ts";
import { isGone } from "../../agent/process-tree.ts";
import { closeBus, collect, hostPid, pidFromLogs, REPO, startAgent, startBus, startMessage, startNatsServer, waitFor, type AgentUnderTest } from "./harness.ts";
import type { NatsServer } from "../support/nats-server.ts";

let nats: NatsServer;
let bus: Bus;
let blobs: Blobstore;
let helloSha: string;
let behavioursSha: string;
let orphansSha: string;
const agents: AgentUnderTest[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  blobs = startBlobstore();
  bus = await startBus(nats);
  helloSha = blobs.addDroplet(helloDroplet());
  behavioursSha = blobs.addDroplet(behavioursDroplet());
  orphansSha = blobs.addDroplet(orphansDroplet());
}, 30_000);

afterAll(async () => {
  for (const a of agents) await a.stop().catch(() => {});
  await closeBus(bus);
  blobs?.stop();
  await nats?.stop();
}, 60_000);

async function agentWith(env: Record<string, string> = {}): Promise<AgentUnderTest> {
  const a = await startAgent(nats, env);
  agents.push(a);
  return a;
}

function sendStart(agent: AgentUnderTest, overrides: Partial<DeaStart> & { droplet: string }) {
  const sha = overrides.droplet_sha256 ?? helloSha;
  bus.publish(
    deaStartSubject(agent.id),
    "dea.start",
    startMessage({ droplet_uri: blobs.dropletUri(sha), droplet_sha256: sha, uris: [`${overrides.droplet}.skiff.localhost`], ...overrides }),
  );
}


describe("agent lifecycle", () => {
  test("SIGTERM evacuates: DEA_EVACUATION for every instance, then stops them and leaves no process", async () => {
    const agent = await agentWith();
    const exited = collect(bus, Subjects.dropletExited, "droplet.exited");
    const shutdown = collect(bus, Subjects.deaShutdown, "dea.shutdown");
    const registered = collect(bus, Subjects.routerRegister, "router.register");
    const logs = collect(bus, logsSubject("evac"), "logs");
    await bus.flush();
    for (const index of [0, 1]) sendStart(agent, { droplet: "evac", index, droplet_sha256: behavioursSha });
    await waitFor(() => registered.filter((r) => r.app === "evac").length === 2, 15_000, "two instances running");
    await waitFor(() => logs.filter((l) => l.line.startsWith("pid=")).length === 2, 5000, "pids");
    const pids = logs.filter((l) => l.line.startsWith("pid=")).map((l) => hostPid(l.line));
    await agent.proc.stop("SIGTERM", 15_000);
    const evac = exited.filter((e) => e.droplet === "evac");
    expect(evac).toHaveLength(2);
    expect(evac.every((e) => e.reason === "DEA_EVACUATION")).toBe(true);
    expect(shutdown.some((s) => s.id === agent.id && s.app_id_to_count.evac === 2)).toBe(true);
    expect(await agent.proc.exited).toBe(0);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
  }, 30_000);

  // Evacuation slept a fixed SKIFF_AGENT_EVACUATION_MS whatever happened: it now waits for each
  // instance's replacement (router.register or a RUNNING heartbeat from another agent), the fixed
  // time being only the upper bound.
  test("SIGTERM waits for each evacuated instance's replacement, not a fixed time (issue 6)", async () => {
    const agent = await agentWith({ SKIFF_AGENT_EVACUATION_MS: "20000" });
    const exited = collect(bus, Subjects.dropletExited, "droplet.exited");
    const registered = collect(bus, Subjects.routerRegister, "router.register");
    const logs = collect(bus, logsSubject("evac2"), "logs");
    await bus.flush();
    for (const index of [0, 1]) sendStart(agent, { droplet: "evac2", index, droplet_sha256: behavioursSha });
    await waitFor(() => registered.filter((r) => r.app === "evac2").length === 2, 15_000, "two instances running");
    const pids = await waitFor(() => {
      const p = logs.filter((l) => l.line.startsWith("pid=")).map((l) => hostPid(l.line));
      return p.length === 2 ? p : undefined;
    }, 5000, "pids");
    process.kill(agent.proc.pid, "SIGTERM");
    await waitFor(() => exited.filter((e) => e.droplet === "evac2" && e.reason === "DEA_EVACUATION").length === 2, 5000, "DEA_EVACUATION");
    // the agent keeps serving while no replacement is heard
    await Bun.sleep(800);
    expect(pids.filter((p) => isGone(p))).toEqual([]);
    expect(agent.proc.child.exitCode).toBeNull();
    // one replacement registers its route, the other is seen RUNNING in another agent's heartbeat
    bus.publish(Subjects.routerRegister, "router.register", { host: "10.9.9.9", port: 61000, uris: ["evac2.skiff.localhost"], app: "evac2", private_instance_id: "elsewhere0", private_instance_index: "0" });
    await Bun.sleep(300);
    expect(agent.proc.child.exitCode).toBeNull();
    const t0 = Date.now();
    bus.publish(Subjects.deaHeartbeat, "dea.heartbeat", { dea: "other-agent", droplets: [{ droplet: "evac2", version: behavioursSha, instance: "elsewhere1", index: 1, state: "RUNNING", state_timestamp: Date.now() / 1000 }] });
    expect(await agent.proc.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000); // the instances' stop (SIGTERM, they exit at once), far from 20 s
    expect(agent.proc.output()).toMatch(/every evacuated instance has a replacement/);
    for (const pid of pids) expect(isGone(pid)).toBe(true);
  }, 40_000);

  test("with no replacement heard, evacuation gives up after SKIFF_AGENT_EVACUATION_MS (issue 6)", async () => {
    const agent = await agentWith({ SKIFF_AGENT_EVACUATION_MS: "1500" });
    const registered = collect(bus, Subjects.routerRegister, "router.register");
    await bus.flush();
    sendStart(agent, { droplet: "evac3", droplet_sha256: behavioursSha });
    await waitFor(() => registered.find((r) => r.app === "evac3"), 15_000, "running");
    const t0 = Date.now();
    process.kill(agent.proc.pid, "SIGTERM");
    expect(await agent.proc.exited).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    expect(agent.proc.output()).toMatch(/stopped waiting for replacements.*without_replacement=1/);
  }, 30_000);

  // Both are DEA_SHUTDOWN, never CRASHED: the app did nothing wrong, and a CRASHED report would bump the
  // crash count of an index already running elsewhere (found by the cluster suite, issue 10).
  test.each([
    ["still running", false, /agent restarted/],
    ["already dead", true, /while the agent was down/],
  ] as const)("an agent that restarts stops the instances it left behind (%s) and reports them", async (_case, killInstanceToo, description) => {
    const dataDir = mkdtempSync(join(tmpdir(), "skiff-agent-restart-"));
    const id = `restart${Math.random().toString(36).slice(2, 8)}`;
    const first = await startAgent(nats, { SKIFF_DATA_DIR: dataDir }, id);
    const registered = collect(bus, Subjects.routerRegister, "router.register");
    const logs = collect(bus, logsSubject("orphan"), "logs");
    await bus.flush();
    sendStart(first, { droplet: "orphan", droplet_sha256: behavioursSha });
    await waitFor(() => registered.find((r) => r.app === "orphan"), 15_000, "running");
    const pid = await waitFor(() => (logs.some((l) => l.line.startsWith("pid=")) ? pidFromLogs(logs) : undefined), 5000, "pid");
    // the agent dies without a chance to stop its instances
    process.kill(first.proc.pid, "SIGKILL");
    await first.proc.exited;
    expect(isAlive(pid)).toBe(true);
    if (killInstanceToo) {
      process.kill(pid, "SIGKILL");
      await waitFor(() => !isAlive(pid) || undefined, 5000, "instance dead");
    }

    const exited = collect(bus, Subjects.dropletExited, "droplet.exited");
    await bus.flush();
    const second = await startAgent(nats, { SKIFF_DATA_DIR: dataDir }, id);
    agents.push(second);
    const report = await waitFor(() => exited.find((e) => e.droplet === "orphan"), 10_000, "droplet.exited for the orphan");
    expect(report.reason).toBe("DEA_SHUTDOWN");
    expect(report.exit_description).toMatch(description);
    await waitFor(() => !isAlive(pid) || undefined, 5000, "orphan gone");
    expect(readdirSync(join(dataDir, "instances"))).toEqual([]);
    await second.stop();
    rmSync(dataDir, { recursive: true, force: true });
    // the killed agent's cgroup can outlive the second agent's sweep by a moment on a busy host
    for (let k = 0; k < 20 && !(openInstanceCgroups(id)?.sweep(true) ?? true); k++) await Bun.sleep(100);
  }, 40_000);

  test.skipIf(process.getuid?.() !== 0)("as root, the memory cgroup alone enforces the limit (no RSS sampling)", async () => {
    const agent = await agentWith({ SKIFF_AGENT_SAMPLE_MS: "600000" });
    expect(agent.proc.output()).toMatch(/memory_limits="cgroup v[12]"/);
    const exited = collect(bus, Subjects.dropletExited, "droplet.exited");
    await bus.flush();
    sendStart(agent, { droplet: "cghog", droplet_sha256: behavioursSha, env: { MODE: "hog" }, limits: { mem: 96, disk: 1024, fds: 256 } });
    const exit = await waitFor(() => exited.find((e) => e.droplet === "cghog"), 20_000, "droplet.exited");
    expect(exit.exit_description).toMatch(/^out of memory/);
  }, 30_000);

  test("--no-sandbox (SKIFF_AGENT_SANDBOX=off) says loudly that instances are not isolated, and runs them as before (issue 25)", async () => {
    const agent = await agentWith({ SKIFF_AGENT_SANDBOX: "off" });
    expect(agent.proc.output()).toMatch(/warn .*instances are NOT isolated/);
    expect(agent.proc.output()).toMatch(/sandbox="off: instances are NOT isolated"/);
    const logs = collect(bus, logsSubject("unboxed"), "logs");
    await bus.flush();
    sendStart(agent, { droplet: "unboxed", droplet_sha256: behavioursSha, env: { MODE: "env" } });
    const line = await waitFor(() => logs.find((l) => l.line.startsWith("ENV ")), 15_000, "env line");
    const env = JSON.parse(line.line.slice(4));
    expect(env.HOME).toBe(join(agent.dataDir, "instances", env.HOME.split("/").at(-2), "app")); // the host's path, as before
    expect(env.TMPDIR).toEndWith("/tmp");
    expect(env.HOME).not.toBe("/home/vcap/app");
    bus.publish(Subjects.deaStop, "dea.stop", { droplet: "unboxed" });
  }, 30_000);

  test("without cgroups, RSS sampling enforces the memory limit", async () => {
    const agent = await agentWith({ SKIFF_AGENT_MEMORY_ENFORCEMENT: "rss" });
    const exited = collect(bus, Subjects.dropletExited, "droplet.exited");
    await bus.flush();
    sendStart(agent, { droplet: "rsshog", droplet_sha256: behavioursSha, env: { MODE: "hog" }, limits: { mem: 128, disk: 1024, fds: 256 } });
    const exit = await waitFor(() => exited.find((e) => e.droplet === "rsshog"), 20_000, "droplet.exited");
    expect(exit.reason).toBe("CRASHED");
    expect(exit.exit_description).toMatch(/^out of memory/);
  }, 30_000);

  test("dea.update re-registers only the routes that changed; router.start re-registers everything", async () => {
    const agent = await agentWith();
    const registered = collect(bus, Subjects.routerRegister, "router.register");
    const unregistered = collect(bus, Subjects.routerUnregister, "router.unregister");
    await bus.flush();
    sendStart(agent, { droplet: "movable", uris: ["a.skiff.localhost", "b.skiff.localhost"] });
    await waitFor(() => registered.find((r) => r.app === "movable"), 15_000, "running");
    bus.publish(Subjects.deaUpdate, "dea.update", { droplet: "movable", uris: ["b.skiff.localhost", "c.skiff.localhost"] });
    await waitFor(() => unregistered.find((r) => r.app === "movable"), 5000, "unregister");
    await waitFor(() => registered.filter((r) => r.app === "movable").length === 2, 5000, "register of the new route");
    expect(unregistered.find((r) => r.app === "movable")!.uris).toEqual(["a.skiff.localhost"]);
    expect(registered.filter((r) => r.app === "movable")[1]!.uris).toEqual(["c.skiff.localhost"]);
    bus.publish(Subjects.routerStart, "router.start", { id: "r1", hosts: ["127.0.0.1"], minimumRegisterIntervalInSeconds: 20, pruneThresholdInSeconds: 120 });
    await waitFor(() => registered.filter((r) => r.app === "movable").length === 3, 5000, "re-registration on router.start");
    expect(registered.filter((r) => r.app === "movable")[2]!.uris).toEqual(["b.skiff.localhost", "c.skiff.localhost"]);
    bus.publish(Subjects.deaStop, "dea.stop", { droplet: "movable" });
  }, 30_000);

  test("staged static and Node droplets serve, and the fd limit applies", async () => {
    const agent = await agentWith();
    const registered = collect(bus, Subjects.routerRegister, "router.register");
    for (const [appId, fixture] of [["site", "static-site"], ["nodeapp", "node-app"]] as const) {
      const replies: StagingReply[] = [];
      const inbox = bus.inbox();
      bus.subscribe(inbox, "staging.reply", (m) => void replies.push(m));
      await bus.flush();
      bus.publish(stagingStartSubject(agent.id), "staging.start", {
        app_id: appId,
        task_id: `t-${appId}`,
        properties: {},
        download_uri: blobs.addPackage(appId, join(REPO, "agent/fixtures", fixture)),
        upload_uri: blobs.uploadUri(appId),
      }, { reply: inbox });
      const done = await waitFor(() => replies.find((r) => r.phase === "done"), 30_000, `staging ${appId}`);
      expect(done.error).toBeUndefined();
      sendStart(agent, { droplet: appId, droplet_sha256: done.droplet_sha!, index: 3 });
    }
    const site = await waitFor(() => registered.find((r) => r.app === "site"), 15_000, "site running");
    expect(await (await fetch(`http://127.0.0.1:${site.port}/`)).text()).toContain("hello from a static site");
    expect((await fetch(`http://127.0.0.1:${site.port}/.skiff/static-server.ts`)).status).toBe(404);
    const node = await waitFor(() => registered.find((r) => r.app === "nodeapp"), 15_000, "node app running");
    expect(await (await fetch(`http://127.0.0.1:${node.port}/`)).text()).toBe("hello from node (instance 3)\n");

    const logs = collect(bus, logsSubject("fds"), "logs");
    await bus.flush();
    const fdsDroplet = blobs.addDroplet(
      (await import("./droplets.ts")).makeDroplet({}, "sh -c 'echo fds=$(ulimit -n); exec sleep 30'"),
    );
    sendStart(agent, { droplet: "fds", droplet_sha256: fdsDroplet, limits: { mem: 64, disk: 64, fds: 77 }, health_check: { type: "process", timeout: 5 } });
    const line = await waitFor(() => logs.find((l) => l.line.startsWith("fds=")), 10_000, "fds line");
    expect(line.line).toBe("fds=77");
    for (const app of ["site", "nodeapp", "fds"]) bus.publish(Subjects.deaStop, "dea.stop", { droplet: app });
  }, 60_000);

  // A stop used to signal only the instance's session and process group: a setsid grandchild or a
  // double-forked daemon outlived it. Each way the agent finds an instance's processes is covered:
  // its own uid and memory cgroup (root, the default), the cgroup alone, and /proc alone (parent walk
  // + CF_INSTANCE_GUID tag).
  test.each([
    ["own uid and memory cgroup", {}],
    ["memory cgroup alone", { SKIFF_AGENT_RUN_AS: "" }],
    ["/proc walk and tag, no cgroup", { SKIFF_AGENT_MEMORY_ENFORCEMENT: "rss", SKIFF_AGENT_RUN_AS: "" }],
  ] as const)("no process an instance started survives its stop or its crash (%s) (issue 6)", async (_how, env) => {
    const agent = await agentWith(env);
    const grace = 2000; // the harness's SKIFF_AGENT_STOP_GRACE_MS
    for (const mode of ["stop", "crash"] as const) {
      const app = `orphans${mode}${Math.random().toString(36).slice(2, 6)}`;
      const exited = collect(bus, Subjects.dropletExited, "droplet.exited");
      const logs = collect(bus, logsSubject(app), "logs");
      await bus.flush();
      sendStart(agent, { droplet: app, droplet_sha256: orphansSha, env: { MODE: mode }, health_check: { type: "process", timeout: 5 } });
      const pidOf = (what: string) => {
        const l = logs.find((x) => x.line.startsWith(`${what}=`));
        return l ? hostPid(l.line, what) : undefined;
      };
      const pids = await waitFor(() => {
        const all = ["leader", "grandchild", "daemon", "child"].map(pidOf);
        return all.every((p) => p !== undefined) ? (all as number[]) : undefined;
      }, 15_000, "every pid printed");
      const t0 = Date.now();
      if (mode === "stop") bus.publish(Subjects.deaStop, "dea.stop", { droplet: app });
      const exit = await waitFor(() => exited.find((e) => e.droplet === app), 15_000, "droplet.exited");
      expect(exit.reason).toBe(mode === "stop" ? "STOPPED" : "CRASHED");
      if (mode === "stop") expect(Date.now() - t0).toBeLessThan(grace + 1500);
      expect(pids.filter((p) => !isGone(p))).toEqual([]);
    }
  }, 60_000);

  // An agent killed outright leaves its instances running; its restart stopped their first process
  // only, so a daemon they had started lived on. It is found by the instance's own uid (recorded) or,
  // without one, by its CF_INSTANCE_GUID. (In a sandbox the daemon dies with the first process: its
  // PID namespace ends with it. So these run without one, where the sweep is all there is.)
  test.each([
    ["own uid", { SKIFF_AGENT_SANDBOX: "off" }],
    ["tag only", { SKIFF_AGENT_MEMORY_ENFORCEMENT: "rss", SKIFF_AGENT_RUN_AS: "", SKIFF_AGENT_SANDBOX: "off" }],
  ] as const)("an agent that restarts sweeps every process its instances left, daemons too (%s) (issue 6)", async (_how, env) => {
    const dataDir = mkdtempSync(join(tmpdir(), "skiff-agent-restart-"));
    const id = `sweep${Math.random().toString(36).slice(2, 8)}`;
    const first = await startAgent(nats, { ...env, SKIFF_DATA_DIR: dataDir }, id);
    const app = `left${Math.random().toString(36).slice(2, 6)}`;
    const logs = collect(bus, logsSubject(app), "logs");
    await bus.flush();
    sendStart(first, { droplet: app, droplet_sha256: orphansSha, health_check: { type: "process", timeout: 5 } });
    const pids = await waitFor(() => {
      const all = ["leader", "grandchild", "daemon", "child"].map((w) => logs.find((l) => l.line.startsWith(`${w}=`)));
      return all.every(Boolean) ? all.map((l, k) => hostPid(l!.line, ["leader", "grandchild", "daemon", "child"][k])) : undefined;
    }, 15_000, "every pid printed");
    process.kill(first.proc.pid, "SIGKILL");
    await first.proc.exited;
    process.kill(pids[0]!, "SIGKILL"); // the first process dies too: only what it left is running
    await waitFor(() => isGone(pids[0]!) || undefined, 5000, "leader gone");
    expect(pids.slice(1).filter((p) => isGone(p))).toEqual([]);

    const exited = collect(bus, Subjects.dropletExited, "droplet.exited");
    await bus.flush();
    const second = await startAgent(nats, { ...env, SKIFF_DATA_DIR: dataDir }, id);
    agents.push(second);
    await waitFor(() => exited.find((e) => e.droplet === app), 10_000, "droplet.exited for the instance left behind");
    expect(pids.filter((p) => !isGone(p))).toEqual([]);
    await second.stop();
    rmSync(dataDir, { recursive: true, force: true });
    for (let k = 0; k < 20 && !(openInstanceCgroups(id)?.sweep(true) ?? true); k++) await Bun.sleep(100);
  }, 40_000);
});
