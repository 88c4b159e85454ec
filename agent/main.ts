// The agent's entry point, and the only place that wires it: reads the environment (and
// `--no-sandbox`), finds what the host can enforce (sandbox, cgroups, disk volumes) and says what it
// cannot, connects the bus, builds the agent, starts it, logs `ready`; SIGTERM evacuates, SIGINT
// stops; then exits 0.

import { existsSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import { connectBus, createLogger, isSubjectToken } from "../bus/index.ts";
import { InsecureStateError, privateDir, restrictUmask, tightenTree, traverseOnlyDir, writePrivateFile } from "../bus/private-state.ts";
import { Agent } from "./agent.ts";
import { BUILDPACKS } from "./buildpacks/index.ts";
import { readAgentConfig } from "./config.ts";
import { DropletCache } from "./droplet-cache.ts";
import { InstanceStore } from "./instance-store.ts";
import { describeLimits, openInstanceCgroups } from "./instance-cgroup.ts";
import { openDiskVolumes } from "./disk-volume.ts";
import { findBwrap, probeSandbox, readHostLayout } from "./sandbox-host.ts";
import { becomeSubreaper, reapAllSandboxInits, reapSandboxInits } from "./sandbox-reaper.ts";
import type { SandboxHost } from "./sandbox.ts";
import { isRoot, resolveRunAs, sharedUser, uidPoolUsers, unreachableAncestor, type InstanceUsers } from "./run-as.ts";
import { parseUidRange, UidPool } from "./uid-pool.ts";
import { linkBun } from "./bun-path.ts";
import { MemoryTrim } from "./memory-trim.ts";
import { jitInEffect } from "./runtime-env.ts";

const log = createLogger("agent");
const config = readAgentConfig(process.env, process.argv.slice(2));
const dataDir = resolve(config.dataDir);
restrictUmask();
/** Runs a state-folder step; an insecure folder it cannot fix ends the agent with the reason and the fix. */
function orRefuse<T>(step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (!(err instanceof InsecureStateError)) throw err;
    log.error(err.message);
    process.exit(2);
  }
}
orRefuse(() => privateDir(dataDir, "the agent's data directory (SKIFF_AGENT_DIR)", { tighten: false }));

/** SKIFF_AGENT_ID, else the id saved in the data dir on the first start. */
function agentId(): string {
  if (config.id) return config.id;
  const file = join(dataDir, "agent-id");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const id = `agent-${randomBytes(6).toString("hex")}`;
  writePrivateFile(file, id + "\n");
  return id;
}

const id = agentId();
if (!isSubjectToken(id)) {
  log.error("SKIFF_AGENT_ID may hold only letters, digits, - and _", { id });
  process.exit(2);
}

/** Who instances and staging builds run as (run-as.ts); exits with the reason on a bad setting. */
function instanceUsers(): InstanceUsers {
  if (!isRoot()) return sharedUser(undefined);
  if (config.runAs === "") {
    log.warn("running instances as root (SKIFF_AGENT_RUN_AS is empty): apps are not isolated from the host or each other");
    return sharedUser(undefined);
  }
  if (config.runAs !== undefined) {
    const user = resolveRunAs(config.runAs);
    if (!user) {
      log.error(`SKIFF_AGENT_RUN_AS names "${config.runAs}", which is not in /etc/passwd: name an existing user, or unset it for a uid per instance`);
      process.exit(2);
    }
    log.warn("every instance runs as one user: apps can read each other's environment; unset SKIFF_AGENT_RUN_AS for a uid per instance", { run_as: user.name });
    return sharedUser(user);
  }
  try {
    const pool = new UidPool(parseUidRange(config.uidRange), config.uidLockDir);
    const swept = pool.sweepStale();
    if (swept > 0) log.info("removed uid locks of agents that died", { count: swept });
    return uidPoolUsers(pool);
  } catch (err) {
    log.error((err as Error).message);
    process.exit(2);
  }
}

const users = instanceUsers();
// Instances and builds run as other users must pass through to the one directory each owns below the
// data dir (instances/<id>, staging/<task>), never list or read the rest: droplets, records, the id.
const sample = users.sample;
const tightened = orRefuse(() => ["droplets", "records"].reduce((n, d) => n + privateDir(join(dataDir, d), `the agent's ${d} directory`), 0) + tightenTree(dataDir, ["instances", "staging", "bin"]));
if (tightened > 0) log.warn("tightened files that other users could read", { dir: dataDir, count: tightened });
if (sample) {
  orRefuse(() => traverseOnlyDir(dataDir, "the agent's data directory (SKIFF_AGENT_DIR)"));
  for (const need of [dataDir, dirname(process.execPath)]) {
    const blocked = unreachableAncestor(need, sample);
    if (blocked) {
      log.error(`instances run as ${sample.name} but ${sample.name} cannot enter ${blocked} on the way to ${need}: chmod o+x ${blocked}, choose another SKIFF_AGENT_DIR, or set SKIFF_AGENT_RUN_AS=""`);
      process.exit(2);
    }
  }
}
const binDir = linkBun(dataDir);
const instancesDir = join(dataDir, "instances");
orRefuse(() => traverseOnlyDir(instancesDir, "the agent's instances directory"));

// The limits the kernel can hold here, and loudly the ones it cannot.
const cgroups = openInstanceCgroups(id);
const limits = describeLimits(cgroups);
const memoryLimits = config.memoryEnforcement === "off" ? "off" : config.memoryEnforcement === "rss" || !cgroups?.controllers.includes("memory") ? "rss sampling" : `cgroup v${cgroups.version}`;
if (limits.missing.length > 0)
  log.warn(`${cgroups ? `cgroup v${cgroups.version} lacks` : "no writable cgroup (v1 or v2) on this host:"} ${limits.missing.join("; ")}: run the agent as root on a host with the memory, pids and cpu controllers writable`);

const disk = config.diskEnforcement === "auto" ? await openDiskVolumes(instancesDir) : { volumes: undefined, reason: "SKIFF_AGENT_DISK_ENFORCEMENT=off" };
if (!disk.volumes) log.warn(`disk quotas are measured, not enforced (${disk.reason}): an instance can fill the host's disk`);

/** The sandbox every instance and build runs in, or undefined (said loudly) when there is none. */
async function openSandbox(): Promise<SandboxHost | undefined> {
  const notIsolated = "instances are NOT isolated: each sees the host's whole file system (every file some mistake left readable), every process, the host's /tmp and /dev/shm";
  if (config.sandbox === "off") {
    log.warn(`sandbox off (--no-sandbox or SKIFF_AGENT_SANDBOX=off): ${notIsolated}`);
    return undefined;
  }
  const bwrap = findBwrap();
  if (!bwrap) {
    log.error(`no bubblewrap on this host: ${notIsolated}; install it (apt-get install bubblewrap) and restart the agent`);
    return undefined;
  }
  const host: SandboxHost = { bwrap, ...readHostLayout(), extraReadOnly: config.sandboxBind, bunPath: process.execPath };
  let user;
  let why: string | undefined;
  try {
    user = users.acquire();
    why = await probeSandbox(host, instancesDir, user);
  } catch (err) {
    why = (err as Error).message;
  } finally {
    if (user) users.release(user);
  }
  if (why) {
    log.error(`a sandbox does not start on this host (${why}): ${notIsolated}; allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, or the distribution's AppArmor rule for bwrap) and restart the agent`);
    return undefined;
  }
  return host;
}
// every sandbox's init is reaped here, not left a zombie for the host's PID 1 (sandbox-reaper.ts)
if (config.sandbox !== "off") {
  const notSubreaper = becomeSubreaper();
  if (notSubreaper) log.warn(`the agent is no child subreaper (${notSubreaper}): each stopped sandbox's init is left to the host's PID 1 to reap`);
  else setInterval(reapSandboxInits, 1000).unref();
}
const sandbox = await openSandbox();

const memoryTrim = new MemoryTrim();
const bus = await connectBus({ servers: config.natsServers, name: `agent-${id}`, ...config.nats }, log);
const agent = new Agent(
  bus,
  new DropletCache(join(dataDir, "droplets"), config.maxArchiveBytes, config.dropletCacheCount),
  new InstanceStore(join(dataDir, "records")),
  {
    identity: { id, ip: config.ip, zone: config.zone, stacks: config.stacks, memoryMb: config.memoryMb, diskMb: config.diskMb },
    dataDir,
    advertiseIntervalMs: config.advertiseIntervalMs,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    defaultRegisterIntervalMs: config.defaultRegisterIntervalMs,
    stopGraceMs: config.stopGraceMs,
    unregisterGraceMs: config.unregisterGraceMs,
    evacuationWaitMs: config.evacuationWaitMs,
    stagingTimeoutMs: config.stagingTimeoutMs,
    maxArchiveBytes: config.maxArchiveBytes,
    logLinesPerApp: config.logLinesPerApp,
    logLinesPerSecond: config.logLinesPerSecond,
    sampleIntervalMs: config.sampleIntervalMs,
    enforceMemoryByRss: config.memoryEnforcement !== "off",
    users,
    cgroups,
    memoryInCgroup: config.memoryEnforcement === "auto",
    pidsMax: config.pidsMax,
    sandbox,
    volumes: disk.volumes,
    stagingMemoryMb: config.stagingMemoryMb,
    stagingDiskMb: config.stagingDiskMb,
    buildpacks: BUILDPACKS,
    staticServerPath: join(import.meta.dir, "static-server.ts"),
    bunPath: process.execPath,
    pathPrefix: [binDir, dirname(process.execPath)],
    onActivity: () => memoryTrim.touch(),
  },
  log,
);

await agent.start();
memoryTrim.start();
// the JIT is chosen when Bun starts (agent/runtime-env.ts): say so when the launcher did not apply it
if (process.env.SKIFF_AGENT_JIT !== "full" && jitInEffect().startsWith("full"))
  log.warn("JavaScriptCore's JIT runs in full: the agent holds ~13 MiB more; start it with BUN_JSC_useJIT=0 (agent/runtime-env.ts), or set SKIFF_AGENT_JIT=full to keep it");
log.info("ready", {
  id,
  ip: config.ip,
  zone: config.zone,
  data_dir: dataDir,
  run_as: users.description,
  sandbox: sandbox ? `bubblewrap (${sandbox.bwrap})` : "off: instances are NOT isolated",
  memory_limits: memoryLimits,
  cgroups: limits.summary,
  pids_max: cgroups?.controllers.includes("pids") ? config.pidsMax : "not enforced",
  disk_quotas: disk.volumes ? "a volume per instance (ext4 on a loop device)" : "measured only",
  jit: jitInEffect(),
});

let stopping = false;
async function shutdown(signal: "SIGTERM" | "SIGINT"): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info("stopping", { signal });
  try {
    if (signal === "SIGTERM") await agent.evacuate();
    else await agent.stopEverything("DEA_SHUTDOWN");
    await reapAllSandboxInits();
    await bus.close();
  } catch (err) {
    log.error("error while stopping", { error: (err as Error).message });
  }
  log.info("stopped");
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
