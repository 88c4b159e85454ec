// Running instances with a real agent, nats-server and child processes: start → RUNNING → routes,
// stop, crash, kill, out of memory, health-check timeout, logs, stats, and refused droplets.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { writeTar } from "../../agent/tarball.ts";
import { deaStartSubject, logsSubject, Subjects, type Bus, type DeaStart } from "../../bus/index.ts";
import { startBlobstore, type Blobstore } from "./blobstore.ts";
import { behavioursDroplet, helloDroplet, makeDroplet } from "./droplets.ts";
import { closeBus, collect, pidFromLogs, startAgent, startBus, startMessage, startNatsServer, waitFor, type AgentUnderTest } from "./harness.ts";
import type { NatsServer } from "../support/nats-server.ts";

let nats: NatsServer;
let agent: AgentUnderTest;
let bus: Bus;
let blobs: Blobstore;
let helloSha: string;
let behavioursSha: string;

beforeAll(async () => {
  nats = await startNatsServer();
  blobs = startBlobstore();
  agent = await startAgent(nats);
  bus = await startBus(nats);
  helloSha = blobs.addDroplet(helloDroplet());
  behavioursSha = blobs.addDroplet(behavioursDroplet());
}, 30_000);

afterAll(async () => {
  await agent?.stop();
  await closeBus(bus);
  blobs?.stop();
  await nats?.stop();
}, 60_000);

function start(appId: string, sha: string, overrides: Partial<DeaStart> = {}) {
  const exited = collect(bus, Subjects.dropletExited, "droplet.exited");
  const registered = collect(bus, Subjects.routerRegister, "router.register");
  const logs = collect(bus, logsSubject(appId), "logs");
  return bus.flush().then(() => {
    bus.publish(
      deaStartSubject(agent.id),
      "dea.start",
      startMessage({ droplet: appId, droplet_uri: blobs.dropletUri(sha), droplet_sha256: sha, uris: [`${appId}.skiff.localhost`], ...overrides }),
    );
    return {
      exited: () => exited.filter((e) => e.droplet === appId),
      registered: () => registered.filter((r) => r.app === appId),
      logs,
    };
  });
}

describe("running instances", () => {
  test("hello turns RUNNING, registers its route, answers, reports stats, and stops cleanly", async () => {
    const heartbeats = collect(bus, Subjects.deaHeartbeat, "dea.heartbeat");
    const unregistered = collect(bus, Subjects.routerUnregister, "router.unregister");
    const s = await start("hello", helloSha, { index: 2 });
    const reg = await waitFor(() => s.registered()[0], 15_000, "router.register");
    expect(reg.host).toBe("127.0.0.1");
    expect(reg.uris).toEqual(["hello.skiff.localhost"]);
    expect(reg.private_instance_index).toBe("2");
    const body = await (await fetch(`http://127.0.0.1:${reg.port}/`)).text();
    expect(body).toMatch(/^hello from skiff \(instance 2, pid \d+, uid \d+\)\n$/);
    await waitFor(() => heartbeats.some((h) => h.droplets.some((d) => d.droplet === "hello" && d.state === "RUNNING")), 5000, "RUNNING heartbeat");

    await Bun.sleep(600); // a couple of samples
    const found = await bus.requestMany(Subjects.deaFindDroplet, "dea.find.droplet", { droplet: "hello", include_stats: true }, "dea.find.droplet.reply", { timeoutMs: 500 });
    expect(found).toHaveLength(1);
    expect(found[0]!.state).toBe("RUNNING");
    expect(found[0]!.stats!.port).toBe(reg.port);
    expect(found[0]!.stats!.usage.mem).toBeGreaterThan(1024 * 1024);
    expect(found[0]!.stats!.uptime).toBeGreaterThan(0);

    bus.publish(Subjects.deaStop, "dea.stop", { droplet: "hello" });
    // the routers hear the unregister while the instance still serves: SIGTERM waits for the unregister grace
    await waitFor(() => unregistered.find((u) => u.port === reg.port), 5000, "router.unregister");
    expect((await fetch(`http://127.0.0.1:${reg.port}/`)).status).toBe(200);
    const exit = await waitFor(() => s.exited()[0], 10_000, "droplet.exited");
    expect(exit.reason).toBe("STOPPED");
    expect(unregistered.some((u) => u.port === reg.port)).toBe(true);
    const stillUp = await fetch(`http://127.0.0.1:${reg.port}/`).then(() => true, () => false);
    expect(stillUp).toBe(false);
  }, 30_000);

  test("an app that exits is CRASHED with 'exited with status 1'", async () => {
    const s = await start("crasher", behavioursSha, { env: { MODE: "crash" } });
    const exit = await waitFor(() => s.exited()[0], 15_000, "droplet.exited");
    expect(exit.reason).toBe("CRASHED");
    expect(exit.exit_status).toBe(1);
    expect(exit.exit_description).toBe("exited with status 1");
  }, 30_000);

  test("an app killed by a signal says so", async () => {
    const s = await start("victim", behavioursSha);
    await waitFor(() => s.registered()[0], 15_000, "router.register");
    const pid = pidFromLogs(s.logs);
    process.kill(pid, "SIGKILL");
    const exit = await waitFor(() => s.exited()[0], 10_000, "droplet.exited");
    expect(exit.reason).toBe("CRASHED");
    expect(exit.exit_description).toBe("killed by signal 9");
    expect(exit.exit_status).toBe(137);
  }, 30_000);

  test("an app over its memory limit is killed: out of memory", async () => {
    const s = await start("hog", behavioursSha, { env: { MODE: "hog" }, limits: { mem: 96, disk: 1024, fds: 256 } });
    const exit = await waitFor(() => s.exited()[0], 20_000, "droplet.exited");
    expect(exit.reason).toBe("CRASHED");
    expect(exit.exit_description).toMatch(/^out of memory/);
  }, 30_000);

  test("an app that never listens fails its health check", async () => {
    const s = await start("silent", behavioursSha, { env: { MODE: "silent" }, health_check: { type: "port", timeout: 1 } });
    const exit = await waitFor(() => s.exited()[0], 10_000, "droplet.exited");
    expect(exit.reason).toBe("CRASHED");
    expect(exit.exit_description).toMatch(/^health check timed out/);
    expect(s.registered()).toHaveLength(0);
  }, 30_000);

  test("an http health check waits for a good answer on its endpoint", async () => {
    const s = await start("httpcheck", behavioursSha, { health_check: { type: "http", endpoint: "/healthz", timeout: 10 } });
    const reg = await waitFor(() => s.registered()[0], 15_000, "router.register");
    expect(await (await fetch(`http://127.0.0.1:${reg.port}/healthz`)).text()).toContain("behaviours serve");
    bus.publish(Subjects.deaStop, "dea.stop", { droplet: "httpcheck" });
    await waitFor(() => s.exited()[0], 10_000, "stop");
  }, 30_000);

  test("stdout and stderr stream on logs.<app> and stay in the recent buffer", async () => {
    const s = await start("chatty", behavioursSha, { env: { MODE: "chatty" }, index: 1 });
    await waitFor(() => s.logs.some((l) => l.line === "line 5"), 10_000, "five lines");
    const out = s.logs.find((l) => l.line === "line 1")!;
    expect(out).toMatchObject({ app: "chatty", source: "APP", index: 1, stream: "out" });
    expect(s.logs.some((l) => l.stream === "err" && l.line === "to stderr from 1")).toBe(true);
    const recent = await bus.request(Subjects.deaLogsRecent, "dea.logs.recent", { droplet: "chatty" }, "dea.logs.recent.reply", { timeoutMs: 2000 });
    expect(recent.dea).toBe(agent.id);
    expect(recent.lines.map((l) => l.line)).toContain("line 5");
    bus.publish(Subjects.deaStop, "dea.stop", { droplet: "chatty" });
    await waitFor(() => s.exited()[0], 10_000, "stop");
  }, 30_000);

  test("the instance gets the platform environment and runs unprivileged", async () => {
    const s = await start("envy", behavioursSha, {
      env: { MODE: "env", CUSTOM: "yes" },
      services: [{ name: "db", label: "postgresql", plan: "small", tags: [], instance_guid: "i1", binding_guid: "b1", credentials: { uri: "postgres://u:p@h/db" } }],
    });
    const line = await waitFor(() => s.logs.find((l) => l.line.startsWith("ENV ")), 15_000, "env line");
    const env = JSON.parse(line.line.slice(4));
    expect(env.CUSTOM).toBe("yes");
    expect(env.MEMORY_LIMIT).toBe("256m");
    expect(env.DATABASE_URL).toBe("postgres://u:p@h/db");
    expect(JSON.parse(env.VCAP_SERVICES).postgresql[0].name).toBe("db");
    expect(JSON.parse(env.VCAP_APPLICATION).application_name).toBe("hello");
    expect(env.HOME).toEndWith("/app");
    if (process.getuid?.() === 0) expect(env.uid).not.toBe(0);
    bus.publish(Subjects.deaStop, "dea.stop", { droplet: "envy" });
    await waitFor(() => s.exited()[0], 10_000, "stop");
  }, 30_000);

  // Every instance ran as `nobody`: any app could read another's /proc/<pid>/environ (its
  // VCAP_SERVICES credentials) and signal its processes.
  test.skipIf(process.getuid?.() !== 0)("each instance runs as a uid of its own: one cannot read another's environment, signal it or list its files (issue 6)", async () => {
    const a = await start("tenanta", behavioursSha, { env: { MODE: "serve" }, services: [{ name: "db", label: "postgresql", plan: "small", tags: [], instance_guid: "i1", binding_guid: "b1", credentials: { uri: "postgres://secret@h/db" } }] });
    await waitFor(() => a.registered()[0], 15_000, "tenant a running");
    const first = /pid=(\d+) .* uid=(\d+)/.exec(a.logs.find((l) => l.line.startsWith("pid="))!.line)!;
    const uidA = Number(first[2]);
    // where tenant A really is on the host: its process, and its app directory (from the agent's record)
    const pidA = pidFromLogs(a.logs);
    const records = join(agent.dataDir, "records");
    const idA = readdirSync(records).map((f) => JSON.parse(readFileSync(join(records, f), "utf8"))).find((r) => r.start.droplet === "tenanta").id;
    const homeA = join(agent.dataDir, "instances", idA, "app");
    const b = await start("tenantb", behavioursSha, {
      env: { MODE: "peek", PEEK_PID: String(pidA), PEEK_DIR: homeA, PEEK_RECORDS: join(agent.dataDir, "records"), PEEK_DROPLETS: join(agent.dataDir, "droplets") },
    });
    const peek = JSON.parse((await waitFor(() => b.logs.find((l) => l.line.startsWith("PEEK ")), 15_000, "peek line")).line.slice(5));
    expect(uidA).toBeGreaterThanOrEqual(40000);
    expect(uidA).toBeLessThanOrEqual(49999);
    expect(peek.uid).toBeGreaterThanOrEqual(40000);
    expect(peek.uid).not.toBe(uidA);
    // without a sandbox the kernel refuses (EACCES, EPERM); in one, none of it even exists there
    const refusals = agent.proc.output().includes('sandbox="off')
      ? { environ: "EACCES", signal: "EPERM", files: "EACCES", records: "EACCES", droplets: "EACCES" }
      : { environ: "ENOENT", signal: "ESRCH", files: "ENOENT", records: "ENOENT", droplets: "ENOENT" };
    expect(peek).toMatchObject(refusals);
    for (const app of ["tenanta", "tenantb"]) bus.publish(Subjects.deaStop, "dea.stop", { droplet: app });
    await waitFor(() => a.exited()[0] && b.exited()[0], 10_000, "both stopped");
  }, 30_000);

  test("a droplet whose sha256 does not match is refused", async () => {
    const wrong = "0".repeat(64);
    const bytes = helloDroplet();
    const sha = blobs.addDroplet(bytes);
    blobs.droplets.set(wrong, bytes); // served under a hash it does not have
    const s = await start("corrupt", sha, { droplet_uri: blobs.dropletUri(wrong), droplet_sha256: wrong });
    const exit = await waitFor(() => s.exited()[0], 10_000, "droplet.exited");
    expect(exit.reason).toBe("CRASHED");
    expect(exit.exit_description).toMatch(/sha256 mismatch/);
  }, 30_000);

  test.each([
    ["a .. entry", [{ name: "app/../../escaped-dotdot", data: "x" }], "escaped-dotdot"],
    ["an absolute path", [{ name: "/tmp/skiff-escaped-absolute", data: "x" }], "/tmp/skiff-escaped-absolute"],
    [
      "a file written through a symlink",
      [
        { name: "app/link", type: "2" as const, linkname: "../../.." },
        { name: "app/link/escaped-symlink", data: "x" },
      ],
      "escaped-symlink",
    ],
    [
      "a symlink that resolves outside through another symlink",
      [
        { name: "app/d", type: "2" as const, linkname: "." },
        { name: "app/d/l", type: "2" as const, linkname: "../../../escaped-chain" },
      ],
      "escaped-chain",
    ],
  ])("a hostile droplet with %s is refused and writes nothing outside", async (_what, extra, marker) => {
    const appId = `hostile${Math.random().toString(36).slice(2, 8)}`;
    const sha = blobs.addDroplet(makeDroplet({ "index.ts": "" }, "bun index.ts", extra));
    const s = await start(appId, sha);
    const exit = await waitFor(() => s.exited()[0], 10_000, "droplet.exited");
    expect(exit.reason).toBe("CRASHED");
    expect(exit.exit_description).toMatch(/failed to start/);
    const outside = marker.startsWith("/") ? marker : join(agent.dataDir, marker);
    expect(existsSync(outside)).toBe(false);
    expect(existsSync(join(agent.dataDir, "instances", marker))).toBe(false);
    expect(readdirSync(agent.dataDir).filter((f) => f.startsWith("escaped"))).toEqual([]);
  }, 30_000);

  // Links whose targets each stay inside as text but resolve outside through one another: the root
  // agent used to chown what `app` led to (the data dir itself) and run the instance there.
  const info = { name: "staging_info.json", data: JSON.stringify({ start_command: "sleep 30", detected_buildpack: "test" }) };
  const chain = [
    { name: "z/", type: "5" as const },
    { name: "a/b/c/", type: "5" as const },
    { name: "a/b/c/d", type: "2" as const, linkname: "../../../z" },
  ];
  test.each([
    ["app as a link chain leading out", [info, ...chain, { name: "app", type: "2" as const, linkname: "a/b/c/d/../../.." }], /resolves outside/],
    ["a link inside app/ leading out through a chain", [info, { name: "app/", type: "5" as const }, ...chain, { name: "app/x", type: "2" as const, linkname: "../a/b/c/d/../../../.." }], /resolves outside/],
    ["app as a link to a directory inside", [info, { name: "real/", type: "5" as const }, { name: "app", type: "2" as const, linkname: "real" }], /app\/ is a symlink/],
    ["staging_info.json as a link", [{ name: "real.json", data: info.data }, { name: "staging_info.json", type: "2" as const, linkname: "real.json" }, { name: "app/", type: "5" as const }], /staging_info.json is a symlink/],
  ])("a hostile droplet with %s is refused and root touches nothing outside (issue 6)", async (_what, entries, why) => {
    const before = { data: statSync(agent.dataDir), instances: statSync(join(agent.dataDir, "instances")) };
    const appId = `chain${Math.random().toString(36).slice(2, 8)}`;
    const sha = blobs.addDroplet(new Uint8Array(gzipSync(writeTar(entries))));
    const s = await start(appId, sha, { start_command: "sleep 30", health_check: { type: "process", timeout: 5 } });
    const exit = await waitFor(() => s.exited()[0], 10_000, "droplet.exited");
    expect(exit.reason).toBe("CRASHED");
    expect(exit.exit_description).toMatch(/^failed to start/);
    expect(exit.exit_description).toMatch(why);
    for (const [what, st] of [["data", join(agent.dataDir)], ["instances", join(agent.dataDir, "instances")]] as const) {
      const now = statSync(st);
      expect(`${what} ${now.uid}:${now.gid} ${now.mode.toString(8)}`).toBe(`${what} ${before[what].uid}:${before[what].gid} ${before[what].mode.toString(8)}`);
    }
  }, 30_000);
});
