// Issue 25, with real instances in a one-machine cluster: every instance runs in a sandbox of its own
// and sees its droplet, not the host. A probe app looks for the checkout, /root, /etc/shadow, the
// agent's and controller's state, another instance's droplet and processes, and writes everywhere; a
// fork bomb meets the pids cap while another app keeps answering through the router; an allocation
// past the memory limit ends CRASHED "out of memory"; writes past the disk quota fail; a stop reaches
// every process with SIGTERM and leaves none behind. The public samples stage and serve inside too.
// Every refusal is asserted as the sandbox gives it (ENOENT: the path does not exist there), so with
// the agent's --no-sandbox these tests fail.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { connectBus, memoryLogger, Subjects, type Bus, type DropletExited, type LogLine } from "../../bus/index.ts";
import { repoRoot, startLocalCluster, type Cluster } from "../../scripts/local-cluster.ts";
import { processesOfUid } from "../../agent/process-tree.ts";
import { mountsUnder } from "../../agent/disk-volume.ts";
import { ETC_ESSENTIALS, SANDBOX_ETC_FILES } from "../../agent/sandbox.ts";
import { eventually } from "../support/ports.ts";

type Outcome = { path: string; ok: boolean; detail: string };
type Whoami = { pid: number; uid: number; hostname: string; cwd: string; home: string; tmpdir: string; path: string; execPath: string; init: string };

const isRoot = process.getuid?.() === 0;
const probeApp = join(import.meta.dir, "fixtures/probe-app");
/** the cap the cluster's agent gets: small, so the fork bomb reaches it at once */
const PIDS_MAX = 256;
let cluster: Cluster;
let dataDir: string;
let bus: Bus;
const exits: DropletExited[] = [];
const cellLines: LogLine[] = [];
const appLogs: LogLine[] = [];

async function cli(...args: string[]): Promise<string> {
  const r = await cluster.cli(args);
  if (r.code !== 0) throw new Error(`skiff ${args.join(" ")} failed:\n${r.output}`);
  return r.output;
}

const viaRouter = (app: string, path = "/", init?: RequestInit) =>
  fetch(`http://127.0.0.1:${cluster.routerPort}${path}`, { ...init, headers: { ...init?.headers, host: `${app}.${cluster.domain}` } });

async function answer(app: string, path = "/", init?: RequestInit): Promise<Response> {
  return eventually(async () => {
    const res = await viaRouter(app, path, init).catch(() => undefined);
    return res?.status === 200 ? res : undefined;
  }, 60_000, `${app}${path} through the router`);
}

const post = async (app: string, path: string, body?: unknown): Promise<any> => {
  const text = await (await answer(app, path, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body), headers: { "content-type": "application/json" } })).text();
  return text.startsWith("{") ? JSON.parse(text) : text;
};

/** The agent's record of an app's (first) instance: its id, uid and outer pid. */
function record(appName: string): { id: string; pid: number; uid: number; start: { droplet: string } } {
  const dir = join(cluster.paths.agentDir, "records");
  const recs = readdirSync(dir).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")));
  const rec = recs.find((r) => r.start.name === appName);
  if (!rec) throw new Error(`no record of ${appName}`);
  return rec;
}

const agentId = () => /agent: ready id=(\S+)/.exec(cluster.processes.find((p) => p.name === "agent")!.output())![1]!;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "skiff-sandbox-"));
  cluster = await startLocalCluster({ dataDir, echo: !!process.env.SKIFF_TEST_ECHO, extraEnv: { SKIFF_AGENT_PIDS_MAX: String(PIDS_MAX), SKIFF_AGENT_STOP_GRACE_MS: "3000" } });
  const creds = await Bun.file(cluster.paths.natsCredentials).json();
  bus = await connectBus({ servers: [cluster.natsUrl], name: "sandbox-test", user: creds.user, pass: creds.pass }, memoryLogger());
  bus.subscribe(Subjects.dropletExited, "droplet.exited", (m) => void exits.push(m));
  bus.subscribe("logs.>", "logs", (m) => void (m.source === "CELL" ? cellLines : appLogs).push(m));
  await bus.flush();
  await cli("login", "-a", cluster.controllerUrl, "-u", "admin", "-p", cluster.adminPassword);
}, 120_000);

afterAll(async () => {
  await bus?.close().catch(() => {});
  await cluster?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe.if(isRoot)("every instance in a sandbox of its own (issue 25)", () => {
  test("the agent runs instances in bubblewrap and enforces memory, pids, CPU and disk", () => {
    const agent = cluster.processes.find((p) => p.name === "agent")!.output();
    expect(agent, "install bubblewrap (apt-get install bubblewrap)").toMatch(/sandbox="bubblewrap/);
    expect(agent).toMatch(/cgroups="cgroup v[12]: memory, pids, cpu"/);
    expect(agent).toMatch(/disk_quotas="a volume per instance/);
  });

  test("the public samples stage and serve inside the sandbox: Bun, Node, static, Procfile, local deps, an Express app from npm", async () => {
    const samples: [name: string, dir: string, body: RegExp][] = [
      ["hello", join(repoRoot, "examples/hello"), /^hello from skiff/],
      ["nodeapp", join(repoRoot, "agent/fixtures/node-app"), /^hello from node/],
      ["site", join(repoRoot, "agent/fixtures/static-site"), /hello from a static site/],
      ["procfile", join(repoRoot, "agent/fixtures/procfile-app"), /^hello from procfile/],
      ["bundeps", join(repoRoot, "agent/fixtures/bun-deps"), /bun/],
    ];
    // Cloud Foundry's Node.js sample is an Express app whose dependencies npm fetches while it stages
    const registry = await fetch("https://registry.npmjs.org/express", { method: "HEAD", signal: AbortSignal.timeout(5000) }).then((r) => r.ok).catch(() => false);
    if (registry) samples.push(["express", join(import.meta.dir, "fixtures/express-app"), /^express says hello from express instance 0/]);
    else console.warn("the npm registry is out of reach: the Express sample is not pushed");
    for (const [name, dir, body] of samples) {
      await cli("push", dir, "--name", name, "-m", "128M");
      expect(await (await answer(name)).text(), name).toMatch(body);
      // it really runs sandboxed: its PID 1 is bwrap, and its cwd is Cloud Foundry's
      const rec = record(name);
      expect(readFileSync(`/proc/${rec.pid}/comm`, "utf8").trim(), name).toBe("bwrap");
    }
  }, 240_000);

  let probe: Whoami;
  /** another instance (the hello sample): the probe must not see it */
  const victim = () => record("hello");

  test("inside, the app sees its droplet at /home/vcap/app, /tmp, and PID 1 is the sandbox's, which names no host path", async () => {
    await cli("push", probeApp, "--name", "probe", "-m", "256M", "-k", "256M");
    probe = await (await answer("probe", "/whoami")).json();
    expect(probe).toMatchObject({ cwd: "/home/vcap/app", home: "/home/vcap/app", tmpdir: "/tmp", execPath: "/opt/skiff/bin/bun" });
    expect(probe.path.split(":")).toContain("/opt/skiff/bin"); // after node_modules/.bin, which `bun run` puts first
    expect(probe.uid).toBeGreaterThanOrEqual(40000); // its own uid, as before
    expect(probe.pid).toBeLessThan(10); // its own PID namespace
    expect(probe.hostname).toBe(record("probe").id);
    // PID 1 is bwrap, whose command line holds no host path (its options came through a descriptor)
    expect(probe.init).toStartWith("/usr/bin/bwrap --args 3 -- /bin/sh -c ");
    for (const hostPath of [dataDir, repoRoot, process.execPath]) expect(probe.init).not.toContain(hostPath);
  }, 60_000);

  test("it cannot see the checkout, /root, /etc/shadow, the platform's state or another instance; it writes its app dir and /tmp, nothing else", async () => {
    const p = cluster.paths;
    const { id: victimId, pid: victimPid } = victim();
    const victimApp = join(p.agentDir, "instances", victimId, "app");
    const hidden = [
      join(repoRoot, "package.json"),
      join(repoRoot, "agent/main.ts"),
      process.execPath, // the Bun binary where the agent has it: inside it is /opt/skiff/bin/bun only
      "/root/.bashrc",
      "/etc/shadow",
      "/etc/machine-id",
      p.adminPassword,
      p.natsCredentials,
      join(p.controllerDir, "controller.sqlite"),
      join(p.agentDir, "droplets", readdirSync(join(p.agentDir, "droplets"))[0]!), // the droplet cache: every app's code
      join(p.agentDir, "records", `${victimId}.json`),
      join(victimApp, "index.ts"),
      `/proc/${victimPid}/environ`,
    ];
    // each of them really is there on the host: a probe of a missing file proves nothing
    for (const f of hidden.filter((f) => !f.startsWith("/proc/") && f !== "/etc/machine-id" && f !== "/root/.bashrc")) expect(existsSync(f), f).toBe(true);
    const hiddenDirs = [repoRoot, dirname(process.execPath), "/root", "/home/vcap/app/../../..", p.dataDir, p.agentDir, join(p.agentDir, "instances"), victimApp, "/sys", "/run", "/var"];
    const writes = ["/home/vcap/app/written", "/tmp/written", "/dev/shm/written"];
    const refusedWrites = ["/written", "/etc/written", "/usr/written", "/opt/skiff/bin/written", "/home/vcap/written", "/home/written", "/dev/written", "/proc/written", "/var/tmp/written", join(victimApp, "written")];
    const report = (await post("probe", "/probe", { reads: [...hidden, "/home/vcap/app/index.ts", "/etc/passwd"], lists: ["/", "/etc", "/opt/skiff/bin", ...hiddenDirs], writes: [...writes, ...refusedWrites] })) as { reads: Outcome[]; lists: Outcome[]; writes: Outcome[] };
    const byPath = (list: Outcome[], path: string) => list.find((o) => o.path === path)!;
    const gone = (list: Outcome[], paths: string[]) => paths.map((path) => `${path}: ${byPath(list, path).detail}`).filter((line) => !line.endsWith(": ENOENT"));

    expect(gone(report.reads, hidden)).toEqual([]);
    expect(byPath(report.reads, "/home/vcap/app/index.ts").ok).toBe(true);
    expect(byPath(report.reads, "/etc/passwd").ok).toBe(true); // its own (agent/sandbox.ts passwdFile), not the host's
    // "/home/vcap/app/../../.." is its own root: listed below, not the host's
    expect(gone(report.lists, hiddenDirs.filter((d) => !d.includes("..")))).toEqual([]);
    const root = byPath(report.lists, "/").detail.split(",");
    expect(root.filter((n) => !["bin", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "opt", "proc", "sbin", "tmp", "usr"].includes(n))).toEqual([]);
    const etcAllowed = new Set<string>([...ETC_ESSENTIALS.map((f) => f.split("/")[2]!), ...SANDBOX_ETC_FILES]);
    expect(byPath(report.lists, "/etc").detail.split(",").filter((n) => !etcAllowed.has(n))).toEqual([]);
    expect(byPath(report.lists, "/opt/skiff/bin").detail.split(",").sort()).toEqual(["bun", "bunx"]);

    expect(report.writes.filter((o) => writes.includes(o.path) && !o.ok)).toEqual([]);
    // read-only where it exists (EROFS, EACCES), absent where it does not (ENOENT): never written
    expect(report.writes.filter((o) => refusedWrites.includes(o.path) && o.ok)).toEqual([]);
    expect(byPath(report.writes, "/written").detail).toBe("EROFS");
    expect(byPath(report.writes, join(victimApp, "written")).detail).toBe("ENOENT");
  }, 60_000);

  test("ps and /proc show its own processes only", async () => {
    const { pids, ps, psError } = (await (await answer("probe", "/ps")).json()) as { pids: number[]; ps: string[]; psError: string };
    expect(psError).toBe("");
    expect(pids).not.toContain(victim().pid);
    expect(Math.max(...pids)).toBeLessThan(100);
    const names = ps.map((l) => l.split(/\s+/)[1]);
    expect(names.filter((n) => !["bwrap", "sh", "bun", "ps"].includes(n!))).toEqual([]);
    expect(names).toContain("bun");
    expect(names).toContain("ps");
  }, 30_000);

  test("`skiff app` still reports its usage from inside the sandbox", async () => {
    const detail = await eventually(async () => {
      const j = JSON.parse(await cli("app", "probe", "--json"));
      const i = j.instances_detail[0];
      return i?.usage?.mem > 0 && i?.usage?.disk > 0 ? i : undefined;
    }, 30_000, "usage in skiff app");
    expect(detail.state).toBe("RUNNING");
    expect(detail.usage.disk).toBeLessThan(256 * 1024 * 1024);
  }, 40_000);

  test("staging runs the same way: a build command sees the app it builds, /tmp and the system, and writes nothing else", async () => {
    const p = cluster.paths;
    const app = mkdtempSync(join(tmpdir(), "skiff-build-probe-"));
    try {
      cpSync(join(import.meta.dir, "fixtures/build-probe"), app, { recursive: true });
      const hidden = [join(repoRoot, "package.json"), process.execPath, "/etc/shadow", join(p.controllerDir, "controller.sqlite"), join(p.agentDir, "instances", victim().id, "app", "index.ts")];
      const writable = ["/home/vcap/app/built-here", "/tmp/scratch"];
      const refused = ["/written", "/etc/written", "/usr/written", join(p.agentDir, "written"), join(app, "written")];
      writeFileSync(join(app, "paths.json"), JSON.stringify({ paths: { read: hidden, write: [...writable, ...refused] } }));
      await cli("push", app, "--name", "builder", "-m", "128M");
      expect(await (await answer("builder")).text()).toBe("build probe uses dep\n");
      const lines = appLogs.filter((l) => l.source === "STG" && l.line.startsWith("BUILD ")).map((l) => l.line);
      const whoami = lines.find((l) => l.startsWith("BUILD whoami"))!;
      expect(whoami).toMatch(/uid=4\d{4} cwd=\/home\/vcap\/app home=\/tmp procs=\d$/);
      for (const path of hidden) expect(lines).toContain(`BUILD read ${path} ENOENT`);
      for (const path of writable) expect(lines).toContain(`BUILD write ${path} ok`);
      for (const path of refused) expect(lines.find((l) => l.startsWith(`BUILD write ${path} `))).toMatch(/ (EROFS|ENOENT)$/);
      expect(existsSync(join(app, "written"))).toBe(false);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  }, 60_000);

  test("a fork bomb stops at the pids cap while another app keeps answering through the router", async () => {
    await cli("push", probeApp, "--name", "bomb", "-m", "256M");
    await answer("bomb", "/whoami");
    const rec = record("bomb");
    await post("bomb", "/forkbomb");
    const counter = readdirSync("/sys/fs/cgroup").includes("pids")
      ? join("/sys/fs/cgroup/pids", `skiff-${agentId()}`, rec.id, "pids.current")
      : undefined;
    // the cap is hit (the agent says so in the app's log) and holds
    await eventually(() => cellLines.find((l) => /reached its cap of 256 processes/.test(l.line)), 20_000, "the cap reported");
    if (counter && existsSync(counter)) expect(Number(readFileSync(counter, "utf8"))).toBeLessThanOrEqual(PIDS_MAX);
    expect(processesOfUid(rec.uid).length).toBeLessThanOrEqual(PIDS_MAX);
    // meanwhile: the hello app answers every time, quickly
    const slow: number[] = [];
    for (let k = 0; k < 20; k++) {
      const t0 = performance.now();
      const res = await viaRouter("hello");
      expect(res.status).toBe(200);
      await res.text();
      slow.push(performance.now() - t0);
    }
    expect(Math.max(...slow)).toBeLessThan(2000);
    // and stopping it leaves no process of it behind, however many it had
    const t0 = Date.now();
    await cli("stop", "bomb");
    await eventually(() => (processesOfUid(rec.uid).length === 0 ? true : undefined), 15_000, "no process of the bomb left");
    console.log(`fork bomb stopped, every process gone, in ${Date.now() - t0} ms`);
    await eventually(() => (mountsUnder(join(cluster.paths.agentDir, "instances", rec.id), readFileSync("/proc/self/mountinfo", "utf8")).length === 0 ? true : undefined), 10_000, "its volume unmounted");
  }, 90_000);

  test("an allocation past the memory limit ends CRASHED with out of memory", async () => {
    await cli("push", probeApp, "--name", "hog", "-m", "128M");
    await answer("hog", "/whoami");
    const droplet = record("hog").start.droplet;
    await viaRouter("hog", "/allocate", { method: "POST" });
    const exit = await eventually(() => exits.find((e) => e.droplet === droplet && e.reason === "CRASHED"), 30_000, "the hog's exit");
    expect(exit.exit_description).toBe("out of memory (over the 128 MB limit)");
    await cli("stop", "hog");
  }, 60_000);

  test("writes past the disk quota fail inside (app dir and /tmp alike), and the agent says so", async () => {
    await cli("push", probeApp, "--name", "filler", "-k", "64M");
    await answer("filler", "/whoami");
    const droplet = record("filler").start.droplet;
    for (const dir of ["/home/vcap/app", "/tmp"]) {
      // the last one keeps its file: the disk stays full until the agent's next sample sees it
      const r = (await post("filler", `/fill?dir=${dir}${dir === "/tmp" ? "&keep=1" : ""}`)) as { bytes: number; error: string; after: Outcome };
      expect(r.error, dir).toBe("ENOSPC");
      expect(r.bytes, dir).toBeLessThanOrEqual(64 << 20);
      expect(r.bytes, dir).toBeGreaterThan(32 << 20);
      expect(r.after.detail, dir).toBe("ENOSPC");
    }
    const said = await eventually(() => cellLines.find((l) => l.app === droplet && /used its whole disk quota of 64 MB/.test(l.line)), 15_000, "the full disk reported");
    expect(said.line).toContain("writes fail");
    expect(exits.filter((e) => e.droplet === droplet)).toEqual([]); // a full disk is the app's to handle, not a crash
    await cli("stop", "filler");
  }, 60_000);

  test("a stop sends SIGTERM to every process in the sandbox, then leaves none behind", async () => {
    const rec = record("probe");
    await post("probe", "/children");
    const t0 = Date.now();
    await cli("stop", "probe");
    await eventually(() => (processesOfUid(rec.uid).length === 0 ? true : undefined), 10_000, "no process of the probe left");
    expect(Date.now() - t0).toBeLessThan(3000 + 2000); // they ended on SIGTERM: no wait for the grace's SIGKILL
    const exit = await eventually(() => exits.find((e) => e.droplet === rec.start.droplet && e.reason === "STOPPED"), 5000, "droplet.exited");
    expect(exit.exit_description).toBe("stopped");
    const said = appLogs.filter((l) => l.app === rec.start.droplet && /got SIGTERM/.test(l.line)).map((l) => l.line);
    expect(said).toContain("app got SIGTERM");
    expect(said).toContain("child got SIGTERM");
    await eventually(() => (existsSync(join(cluster.paths.agentDir, "instances", rec.id)) ? undefined : true), 10_000, "its files removed");
  }, 40_000);
});
