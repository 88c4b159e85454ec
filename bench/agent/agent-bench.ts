// Agent benchmark: start order → RUNNING → routable latency for a cached Bun hello droplet, staging
// time of examples/hello, agent RSS idle and with many instances, heartbeat size; each twice, with
// every instance in its sandbox (the default, issue 25) and with --no-sandbox, so the sandbox's cost
// is stated: latency, the agent's memory, and each instance's extra memory (its bwrap processes'
// PSS, and what the host's available memory loses per instance).
// Run: ./node_modules/.bin/bun bench/agent/agent-bench.ts [--quick]
// Writes bench/results/agent.json and bench/results/agent.md (agent.quick.* with --quick) through writeReport.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { pct, percentile, summarize, summaryFigures, type Summary } from "../lib/stats.ts";
import { writeReport } from "../lib/report.ts";
import { stopOnSignals } from "../lib/stop-signals.ts";
import { comm, memoryKiB, processesBySession } from "../lib/process-table.ts";
import { medianP99Chart } from "../lib/chart-data.ts";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, createLogger, deaStartSubject, encode, stagingStartSubject, Subjects, type Bus, type StagingReply } from "../../bus/index.ts";
import { startNatsServer } from "../../tests/support/nats-server.ts";
import { startProcess } from "../../tests/support/processes.ts";
import { startBlobstore } from "../../tests/agent/blobstore.ts";
import { makeDroplet } from "../../tests/agent/droplets.ts";
import { startMessage } from "../../tests/agent/harness.ts";
import { agentRuntimeEnv } from "../../agent/runtime-env.ts";

const quick = process.argv.includes("--quick");
const REPO = resolve(import.meta.dir, "../..");
const START_RUNS = quick ? 15 : 60;
const STAGING_RUNS = quick ? 2 : 5;
const MANY = quick ? 30 : 100;
/** RSS is sampled this long after the last order */
const QUIET_MS = quick ? 1_000 : 5_000;

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
/** Bytes charged to an instance's memory cgroup (its processes' pages and the kernel memory they use), or NaN. */
function cgroupMemory(agentPid: number, agentId: string, instanceId: string): number {
  try {
    const lines = readFileSync(`/proc/${agentPid}/cgroup`, "utf8").split("\n");
    const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
    const own = (v1 ?? lines.find((l) => l.startsWith("0::")) ?? "").split(":").slice(2).join(":");
    const dir = v1 ? join("/sys/fs/cgroup/memory", own, `skiff-${agentId}`, instanceId) : join("/sys/fs/cgroup", own, `skiff-${agentId}`, instanceId);
    return Number(readFileSync(join(dir, v1 ? "memory.usage_in_bytes" : "memory.current"), "utf8"));
  } catch {
    return NaN;
  }
}
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

async function until<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(1);
  }
}

const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const loadBefore = loadavg();
const nats = await startNatsServer();
const blobs = startBlobstore();
let bus: Bus | undefined;
let agent: ReturnType<typeof startProcess> | undefined;
const dataDirs: string[] = [];
const cleanUp = stopOnSignals(async () => {
  await bus?.close().catch(() => {});
  await agent?.stop("SIGINT", 20_000);
  blobs.stop();
  await nats.stop();
  for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
});

type Mode = "sandbox" | "no-sandbox";
interface PhaseResult {
  mode: Mode;
  /** what the agent said it runs instances in (its ready line) */
  sandbox: string;
  stagingMs: number[];
  toRoutable: number[];
  toRunning: number[];
  idleRss: number;
  manyRss: number;
  manyStartSeconds: number;
  heartbeatEntries: number;
  lastHeartbeat: number;
  /** PSS of each instance's processes other than its app (the sandbox's bwrap pair), KiB */
  wrapperPssKiB: number;
  /** mean of what each tiny instance's memory cgroup holds, MiB (its processes and their kernel memory) */
  cgroupMiBPerInstance: number;
}

async function phase(mode: Mode): Promise<PhaseResult> {
  const dataDir = mkdtempSync(join(tmpdir(), "skiff-agent-bench-"));
  dataDirs.push(dataDir);
  const agentId = `bench-${mode}`;
  agent = startProcess(`agent-${mode}`, process.execPath, [join(REPO, "agent/main.ts"), ...(mode === "no-sandbox" ? ["--no-sandbox"] : [])], {
    cwd: REPO,
    // started as every launcher starts it (agent/runtime-env.ts: the JIT tiers the agent ships with)
    env: { ...agentRuntimeEnv(), SKIFF_NATS_URL: nats.url, SKIFF_DATA_DIR: dataDir, SKIFF_AGENT_ID: agentId, SKIFF_AGENT_MEMORY_MB: "65536", SKIFF_AGENT_DISK_MB: "1000000", SKIFF_AGENT_STOP_GRACE_MS: "3000" },
  });
  await agent.waitForLine(/agent: ready/);
  const sandbox = /sandbox="([^"]*)"/.exec(agent.output())?.[1] ?? "?";
  bus ??= await connectBus({ servers: [nats.url], name: "agent-bench" }, createLogger("bench", "warn"));
  const b = bus;
  const subs: { unsubscribe(): void }[] = [];

  // staging time of examples/hello (download, detect, compile, pack, upload)
  const stagingMs: number[] = [];
  let helloSha = "";
  for (let k = 0; k < STAGING_RUNS; k++) {
    const replies: StagingReply[] = [];
    const inbox = b.inbox();
    const sub = b.subscribe(inbox, "staging.reply", (m) => void replies.push(m));
    await b.flush();
    const t0 = performance.now();
    b.publish(stagingStartSubject(agentId), "staging.start", {
      app_id: "hello",
      task_id: `bench-${mode}-${k}`,
      properties: {},
      download_uri: blobs.addPackage("hello", join(REPO, "examples/hello")),
      upload_uri: blobs.uploadUri("hello"),
    }, { reply: inbox });
    const done = await until(() => replies.find((r) => r.phase === "done"), 60_000, "staging");
    stagingMs.push(performance.now() - t0);
    sub.unsubscribe();
    if (done.error) throw new Error(`staging failed: ${done.error}`);
    helloSha = done.droplet_sha!;
  }

  // start order → RUNNING (heartbeat) → routable (router.register), one at a time, droplet cached
  const registered = new Map<string, number>();
  const running = new Map<string, number>();
  const exited = new Set<string>();
  let tinyExited = 0;
  subs.push(
    b.subscribe(Subjects.routerRegister, "router.register", (m) => void (m.app && !registered.has(m.app) && registered.set(m.app, performance.now()))),
    b.subscribe(Subjects.deaHeartbeat, "dea.heartbeat", (m) => {
      for (const d of m.droplets) if (d.state === "RUNNING" && !running.has(d.droplet)) running.set(d.droplet, performance.now());
    }),
    b.subscribe(Subjects.dropletExited, "droplet.exited", (m) => {
      exited.add(m.droplet);
      if (m.droplet === "tiny" && m.reason === "CRASHED") tinyExited++;
    }),
  );
  await b.flush();
  const toRunning: number[] = [];
  const toRoutable: number[] = [];
  for (let k = 0; k < START_RUNS + 1; k++) {
    const app = `lat-${mode}-${k}`;
    const t0 = performance.now();
    b.publish(deaStartSubject(agentId), "dea.start", startMessage({ droplet: app, droplet_uri: blobs.dropletUri(helloSha), droplet_sha256: helloSha, uris: [`${app}.skiff.localhost`] }));
    await until(() => registered.get(app), 30_000, `${app} routable`);
    if (k > 0) {
      // the first start warms the cache and the page cache; it is not counted
      toRoutable.push(registered.get(app)! - t0);
      toRunning.push((running.get(app) ?? registered.get(app)!) - t0);
    }
    b.publish(Subjects.deaStop, "dea.stop", { droplet: app });
    await until(() => (exited.has(app) ? true : undefined), 30_000, `${app} stopped`);
  }

  // idle = 5 s without orders: the agent trims its heap once quiet (agent/memory-trim.ts)
  await Bun.sleep(QUIET_MS);
  const idleRss = rssMiB(agent.pid);

  // many tiny instances: agent RSS, heartbeat size, and what each instance costs besides its app
  const tiny = blobs.addDroplet(makeDroplet({}, "exec sleep 600"));
  let lastHeartbeat = 0;
  let heartbeatEntries = 0;
  let tinyRunning = 0;
  let tinyCrashed = 0;
  subs.push(
    b.subscribe(Subjects.deaHeartbeat, "dea.heartbeat", (m) => {
      tinyRunning = m.droplets.filter((d) => d.droplet === "tiny" && d.state === "RUNNING").length;
      tinyCrashed += m.droplets.filter((d) => d.droplet === "tiny" && d.state === "CRASHED").length;
      if (m.droplets.length >= heartbeatEntries) {
        heartbeatEntries = m.droplets.length;
        lastHeartbeat = encode("dea.heartbeat", m).length;
      }
    }),
  );
  const t0 = performance.now();
  for (let k = 0; k < MANY; k++)
    b.publish(deaStartSubject(agentId), "dea.start", startMessage({
      droplet: "tiny",
      index: k,
      droplet_uri: blobs.dropletUri(tiny),
      droplet_sha256: tiny,
      uris: [],
      limits: { mem: 32, disk: 16, fds: 64 },
      health_check: { type: "process", timeout: 10 },
    }));
  await until(() => (heartbeatEntries >= MANY ? true : undefined), 60_000, "all tiny instances in a heartbeat");
  await until(() => (tinyRunning >= MANY ? true : undefined), 60_000, `all ${MANY} tiny instances RUNNING (crashed: ${tinyCrashed})`);
  // a process health check passes at once: give the instances time to fail after it, and count it
  await Bun.sleep(500);
  if (tinyExited > 0) throw new Error(`${tinyExited} of ${MANY} tiny instances crashed after starting: the footprint would be measured without them`);
  const manyStartSeconds = (performance.now() - t0) / 1000;
  const found = await b.requestMany(Subjects.deaFindDroplet, "dea.find.droplet", { droplet: "tiny", include_stats: true }, "dea.find.droplet.reply", { timeoutMs: 1000 });
  if (found.length !== MANY) console.warn(`dea.find.droplet answered for ${found.length} of ${MANY} instances`);
  await Bun.sleep(QUIET_MS); // a few samples and heartbeats with everything running, then quiet
  const manyRss = rssMiB(agent.pid);
  // each instance's session: its app (`sleep`) and, sandboxed, the bwrap pair around it
  const records = join(dataDir, "records");
  const recs = readdirSync(records).map((f) => JSON.parse(readFileSync(join(records, f), "utf8")) as { id: string; pid: number });
  const leaders = recs.map((r) => r.pid);
  const charged = recs.map((r) => cgroupMemory(agent!.pid, agentId, r.id)).filter(Number.isFinite);
  const bySession = processesBySession();
  let wrapperKiB = 0;
  for (const leader of leaders) for (const pid of bySession.get(leader) ?? []) if (comm(pid) !== "sleep") wrapperKiB += memoryKiB(pid).pss;
  b.publish(Subjects.deaStop, "dea.stop", { droplet: "tiny" });
  await until(() => (tinyRunning === 0 ? true : undefined), 30_000, "tiny instances stopped");
  for (const s of subs) s.unsubscribe();
  await agent.stop("SIGINT", 30_000);
  agent = undefined;
  return {
    mode,
    sandbox,
    stagingMs,
    toRoutable,
    toRunning,
    idleRss,
    manyRss,
    manyStartSeconds,
    heartbeatEntries,
    lastHeartbeat,
    wrapperPssKiB: wrapperKiB / Math.max(1, leaders.length),
    cgroupMiBPerInstance: charged.reduce((a, b) => a + b, 0) / Math.max(1, charged.length) / 1048576,
  };
}

try {
  const phases: PhaseResult[] = [];
  // without the sandbox first: the page cache is as warm for the sandbox as for the plain run's first start
  for (const mode of ["no-sandbox", "sandbox"] as const) phases.push(await phase(mode));
  const [plain, boxed] = phases as [PhaseResult, PhaseResult];
  if (!boxed.sandbox.startsWith("bubblewrap")) console.warn(`the agent could not sandbox instances here (${boxed.sandbox}): both runs are unsandboxed`);

  const row = (name: string, xs: number[]) => {
    const s = summarize(xs);
    return [name, round(s.median), pct(s), round(s.min), round(s.max), round(percentile(xs, 99)), String(s.runs)];
  };
  const figures: Record<string, number> = {};
  for (const p of phases) {
    const key = p.mode === "sandbox" ? "" : "no_sandbox.";
    Object.assign(
      figures,
      summaryFigures(`${key}start_to_routable_ms`, p.toRoutable),
      summaryFigures(`${key}start_to_running_heartbeat_ms`, p.toRunning),
      summaryFigures(`${key}staging_examples_hello_ms`, p.stagingMs),
      {
        [`${key}agent_rss_mib.idle`]: p.idleRss,
        [`${key}agent_rss_mib.with_${MANY}_instances`]: p.manyRss,
        [`${key}many_instances.seconds_to_all_running`]: p.manyStartSeconds,
        [`${key}instance_wrapper_pss_kib`]: p.wrapperPssKiB,
        [`${key}instance_cgroup_memory_mib`]: p.cgroupMiBPerInstance,
      },
    );
  }
  Object.assign(figures, {
    "many_instances.count": MANY,
    "heartbeat.instances": boxed.heartbeatEntries,
    "heartbeat.cbor_bytes": boxed.lastHeartbeat,
    "heartbeat.bytes_per_instance": round(boxed.lastHeartbeat / Math.max(1, boxed.heartbeatEntries)),
    "sandbox.start_to_routable_p50_extra_ms": percentile(boxed.toRoutable, 50) - percentile(plain.toRoutable, 50),
    "sandbox.start_to_routable_p99_extra_ms": percentile(boxed.toRoutable, 99) - percentile(plain.toRoutable, 99),
  });
  const label = (p: PhaseResult) => (p.mode === "sandbox" ? `sandbox (${p.sandbox.split(" ")[0]})` : "--no-sandbox");
  const { md } = writeReport({
    bench: "agent",
    command: `./node_modules/.bin/bun bench/agent/agent-bench.ts${quick ? " --quick" : ""}`,
    quick,
    figures,
    tables: [
      {
        title: "Repeated latencies (ms): median and spread over sequential runs, with and without the sandbox",
        columns: ["measure (ms)", "median", "spread", "min", "max", "p99", "runs"],
        rows: phases.flatMap((p) => [
          row(`start order → routable (router.register), cached Bun hello droplet, ${label(p)}`, p.toRoutable),
          row(`start order → RUNNING heartbeat, ${label(p)}`, p.toRunning),
          row(`staging examples/hello (download, detect, compile, pack, upload), ${label(p)}`, p.stagingMs),
        ]),
        notes: "spread: ± half the min–max range as a percentage of the median.",
        charts: [medianP99Chart("measure (ms)")],
      },
      {
        title: `Footprint (single measurements after the runs above)`,
        columns: ["figure", "--no-sandbox", "sandbox"],
        rows: [
          ["agent RSS idle (MiB)", round(plain.idleRss), round(boxed.idleRss)],
          [`agent RSS with ${MANY} running instances (MiB)`, round(plain.manyRss), round(boxed.manyRss)],
          [`time for ${MANY} instances to all be RUNNING (s)`, round(plain.manyStartSeconds, 2), round(boxed.manyStartSeconds, 2)],
          ["each instance's processes besides its app: PSS (KiB)", round(plain.wrapperPssKiB), round(boxed.wrapperPssKiB)],
          ["each instance's memory cgroup, mean (MiB)", round(plain.cgroupMiBPerInstance, 2), round(boxed.cgroupMiBPerInstance, 2)],
          [`heartbeat with ${boxed.heartbeatEntries} instances (bytes CBOR)`, plain.lastHeartbeat, boxed.lastHeartbeat],
        ],
        charts: [], // rows of different units
      },
    ],
    notes: [
      `Load average ${loadBefore} before, ${loadavg()} after: p99 and max move with the load of other work on the host's 2 shared cores, the median barely does. nats-server, agent and instances run on one host.`,
      '"Routable" is the moment a bus subscriber sees the instance\'s router.register, published right after its port health check passed (polled from 3 ms, backing off to 100 ms).',
      "Starts are sequential; the first (cache-warming) start of each run is not counted. The run without the sandbox goes first.",
      `Both runs have the same cgroup (memory, pids, CPU shares) and disk volume per instance: the sandbox's cost is the bwrap pair (a monitor outside, PID 1 inside), its namespaces and mounts, and the gate's extra exec.`,
      `"Each instance's processes besides its app" sums the PSS of every process in an instance's session but its \`sleep\`: the two bwrap processes when sandboxed (their pages are mostly shared between instances, so RSS would count them ${MANY} times); nothing without.`,
      `"Each instance's memory cgroup" is the mean of what the kernel charges the ${MANY} \`exec sleep 600\` instances' cgroups (memory.usage_in_bytes, v2 memory.current): their processes' pages, page tables and kernel objects (a sandbox's namespaces, mounts and tmpfs); not the page cache of its ext4 volume's files, which the agent wrote when it unpacked the droplet.`,
      `Both RSS figures are sampled ${QUIET_MS / 1000} s after the last order: the agent gives garbage back with a full collection and Bun.shrink() once it has been quiet for 1.5 s (agent/memory-trim.ts).`,
    ],
  });
  console.log(await Bun.file(md).text());
} finally {
  await cleanUp();
}
