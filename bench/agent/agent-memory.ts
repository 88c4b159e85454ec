// Where the agent's memory goes (issue 17): starts an agent (sandboxed, as it runs by default) on a
// real nats-server, has it run N tiny instances (`exec sleep 600`), waits until it has been quiet, and
// reads its RSS split by what holds it (/proc/<pid>/smaps): Bun's executable (clean code pages, shared
// with every Bun process), the JS and malloc heaps (anonymous), and the rest. Each variant runs as its
// own agent, so their figures compare within one run.
// Run: ./node_modules/.bin/bun bench/agent/agent-memory.ts [--instances 100] [--quiet-ms 5000] [--warmup 60] [--variant NAME=ENV:VALUE,ENV:VALUE]…
// With no --variant: the agent with each SKIFF_AGENT_JIT mode (agent/runtime-env.ts).

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, createLogger, deaStartSubject, Subjects, type Bus } from "../../bus/index.ts";
import { startNatsServer } from "../../tests/support/nats-server.ts";
import { startProcess, type TestProcess } from "../../tests/support/processes.ts";
import { startBlobstore } from "../../tests/agent/blobstore.ts";
import { makeDroplet } from "../../tests/agent/droplets.ts";
import { startMessage } from "../../tests/agent/harness.ts";
import { stopOnSignals } from "../lib/stop-signals.ts";
import { AGENT_JIT_MODES, jitOptions } from "../../agent/runtime-env.ts";

const REPO = resolve(import.meta.dir, "../..");
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const MANY = Number(arg("instances", "100"));
const QUIET_MS = Number(arg("quiet-ms", "5000"));
/** instances started and stopped one at a time before the measurement (the agent bench's work before its footprint) */
const WARMUP = Number(arg("warmup", "0"));
const variants: { name: string; env: Record<string, string> }[] = [];
for (let i = 0; i < process.argv.length; i++)
  if (process.argv[i] === "--variant") {
    const [name, ...pairs] = process.argv[i + 1]!.split("=");
    const env: Record<string, string> = {};
    for (const kv of pairs.join("=").split(",").filter(Boolean)) {
      const at = kv.indexOf(":");
      env[kv.slice(0, at)] = kv.slice(at + 1);
    }
    variants.push({ name: name!, env });
  }
if (!variants.length)
  for (const mode of AGENT_JIT_MODES) variants.push({ name: `SKIFF_AGENT_JIT=${mode}${mode === "off" ? " (the default)" : mode === "full" ? " (before issue 17)" : ""}`, env: jitOptions(mode) });

/** RSS by what backs it, MiB: the Bun binary's pages, anonymous memory, and everything else. */
export function rssBreakdown(pid: number): { rss: number; bunBinary: number; anonymous: number; other: number; pss: number } {
  const smaps = readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n");
  let name = "";
  let rss = 0, bunBinary = 0, anonymous = 0, pss = 0;
  for (const line of smaps) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      name = head[1] ?? "";
      continue;
    }
    const m = /^(Rss|Pss|Anonymous):\s+(\d+) kB/.exec(line);
    if (!m) continue;
    const kb = Number(m[2]);
    if (m[1] === "Rss") {
      rss += kb;
      if (/\/bun(\.exe)?$|bun-linux/.test(name)) bunBinary += kb;
    } else if (m[1] === "Pss") pss += kb;
    else anonymous += kb;
  }
  const mib = (kb: number) => Math.round((kb / 1024) * 10) / 10;
  return { rss: mib(rss), bunBinary: mib(bunBinary), anonymous: mib(anonymous), other: mib(rss - bunBinary - anonymous), pss: mib(pss) };
}

const nats = await startNatsServer();
const blobs = startBlobstore();
let bus: Bus | undefined;
let agent: TestProcess | undefined;
const dirs: string[] = [];
const cleanUp = stopOnSignals(async () => {
  await bus?.close().catch(() => {});
  await agent?.stop("SIGINT", 30_000);
  blobs.stop();
  await nats.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

try {
  bus = await connectBus({ servers: [nats.url], name: "agent-memory" }, createLogger("bench", "warn"));
  const tiny = blobs.addDroplet(makeDroplet({}, "exec sleep 600"));
  const rows: string[] = [];
  for (const v of variants) {
    const dataDir = mkdtempSync(join(tmpdir(), "skiff-agent-mem-"));
    dirs.push(dataDir);
    const agentId = `mem-${variants.indexOf(v)}`;
    agent = startProcess(`agent-${agentId}`, process.execPath, [join(REPO, "agent/main.ts")], {
      cwd: REPO,
      env: { SKIFF_NATS_URL: nats.url, SKIFF_DATA_DIR: dataDir, SKIFF_AGENT_ID: agentId, SKIFF_AGENT_MEMORY_MB: "65536", SKIFF_AGENT_DISK_MB: "1000000", SKIFF_AGENT_STOP_GRACE_MS: "3000", ...v.env },
    });
    await agent.waitForLine(/agent: ready/, 30_000);
    let running = 0;
    let warm = 0;
    const sub = bus.subscribe(Subjects.deaHeartbeat, "dea.heartbeat", (m) => {
      if (m.dea !== agentId) return;
      running = m.droplets.filter((d) => d.droplet === "tiny" && d.state === "RUNNING").length;
      warm = m.droplets.filter((d) => d.droplet === "warm" && d.state === "RUNNING").length;
    });
    for (let k = 0; k < WARMUP; k++) {
      bus.publish(deaStartSubject(agentId), "dea.start", startMessage({
        droplet: "warm", index: 0, droplet_uri: blobs.dropletUri(tiny), droplet_sha256: tiny, uris: [],
        limits: { mem: 32, disk: 16, fds: 64 }, health_check: { type: "process", timeout: 10 },
      }));
      for (let t = 0; warm === 0 && t < 300; t++) await Bun.sleep(20);
      bus.publish(Subjects.deaStop, "dea.stop", { droplet: "warm" });
      for (let t = 0; warm > 0 && t < 300; t++) await Bun.sleep(20);
    }
    await Bun.sleep(QUIET_MS);
    const idle = rssBreakdown(agent.pid);
    for (let k = 0; k < MANY; k++)
      bus.publish(deaStartSubject(agentId), "dea.start", startMessage({
        droplet: "tiny", index: k, droplet_uri: blobs.dropletUri(tiny), droplet_sha256: tiny, uris: [],
        limits: { mem: 32, disk: 16, fds: 64 }, health_check: { type: "process", timeout: 10 },
      }));
    const deadline = Date.now() + 120_000;
    while (running < MANY && Date.now() < deadline) await Bun.sleep(100);
    if (running < MANY) throw new Error(`only ${running} of ${MANY} instances RUNNING`);
    await Bun.sleep(QUIET_MS);
    const many = rssBreakdown(agent.pid);
    sub.unsubscribe();
    bus.publish(Subjects.deaStop, "dea.stop", { droplet: "tiny" });
    await agent.stop("SIGINT", 60_000);
    agent = undefined;
    const row = `| ${v.name} | ${idle.rss} | ${many.rss} | ${many.bunBinary} | ${many.anonymous} | ${many.other} | ${many.pss} |`;
    rows.push(row);
    console.log(row);
  }
  console.log(`\n| agent (${MANY} instances, ${QUIET_MS / 1000} s quiet${WARMUP ? `, after ${WARMUP} starts and stops` : ""}) | RSS idle | RSS with ${MANY} | of which Bun's code | anonymous | other | PSS with ${MANY} |\n| --- | --- | --- | --- | --- | --- | --- |\n${rows.join("\n")}`);
} finally {
  await cleanUp();
}
