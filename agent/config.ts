// The agent's configuration, read once from the environment by main.ts (see docs in agent/README.md).

import { natsCredentialsFromEnv, type NatsCredentials } from "../bus/nats-transport.ts";

export interface AgentConfig {
  natsServers: string[];
  /** its NATS user (a password or a .creds file) and TLS with this host's certificate (issue 27) */
  nats?: NatsCredentials;
  dataDir: string;
  /** undefined: use the stable id saved in the data dir */
  id?: string;
  zone: string;
  ip: string;
  memoryMb: number;
  diskMb: number;
  stacks: string[];
  /**
   * when the agent runs as root: undefined = each instance and staging task its own uid from
   * `uidRange`; a user name = all as that one user; "" = as the agent's own user
   */
  runAs?: string;
  /** "first-last", parsed by main.ts (uid-pool.ts) */
  uidRange: string;
  /** host-wide directory of uid lock files, shared by every agent on the host */
  uidLockDir: string;
  advertiseIntervalMs: number;
  heartbeatIntervalMs: number;
  /** used until a router answers router.greet */
  defaultRegisterIntervalMs: number;
  stopGraceMs: number;
  unregisterGraceMs: number;
  evacuationWaitMs: number;
  stagingTimeoutMs: number;
  /** cap on a downloaded package or droplet, unpacked */
  maxArchiveBytes: number;
  logLinesPerApp: number;
  logLinesPerSecond: number;
  /** droplets kept in the disk cache (least recently used unused ones are removed beyond this) */
  dropletCacheCount: number;
  /** how often process-tree RSS and CPU are sampled (and the RSS memory limit enforced) */
  sampleIntervalMs: number;
  /** "auto" uses cgroups where writable, "rss" always samples, "off" enforces nothing */
  memoryEnforcement: "auto" | "rss" | "off";
  /** "auto": every instance and build in a bubblewrap sandbox where the host can make one; "off": none (--no-sandbox) */
  sandbox: "auto" | "off";
  /** more host paths every sandbox gets read-only (a runtime outside /usr) */
  sandboxBind: string[];
  /** each instance's (and staging task's) cap on processes and threads; 0: none */
  pidsMax: number;
  /** "auto": each instance's disk quota is a volume of its own where the host can make one; "off": measured only */
  diskEnforcement: "auto" | "off";
  /** a staging task's memory and disk, at least (Cloud Foundry's minimum staging limits) */
  stagingMemoryMb: number;
  stagingDiskMb: number;
}

const num = (v: string | undefined, fallback: number): number => {
  const n = v === undefined || v === "" ? NaN : Number(v);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
};

export function readAgentConfig(env: Record<string, string | undefined>, argv: readonly string[] = []): AgentConfig {
  const enforcement = env.SKIFF_AGENT_MEMORY_ENFORCEMENT;
  const noSandbox = argv.includes("--no-sandbox") || env.SKIFF_AGENT_SANDBOX === "off";
  return {
    natsServers: (env.SKIFF_NATS_URL || "nats://127.0.0.1:4222").split(",").map((s) => s.trim()).filter(Boolean),
    nats: natsCredentialsFromEnv(env),
    dataDir: env.SKIFF_AGENT_DIR || env.SKIFF_DATA_DIR || "./.skiff/agent",
    id: env.SKIFF_AGENT_ID || undefined,
    zone: env.SKIFF_AGENT_ZONE || "default",
    ip: env.SKIFF_AGENT_IP || "127.0.0.1",
    memoryMb: num(env.SKIFF_AGENT_MEMORY_MB, 4096),
    diskMb: num(env.SKIFF_AGENT_DISK_MB, 16384),
    stacks: (env.SKIFF_AGENT_STACKS || "bun,cflinuxfs-skiff").split(",").map((s) => s.trim()).filter(Boolean),
    runAs: env.SKIFF_AGENT_RUN_AS,
    uidRange: env.SKIFF_AGENT_UID_RANGE || "40000-49999",
    uidLockDir: env.SKIFF_AGENT_UID_LOCK_DIR || "/run/skiff-agent/uids",
    advertiseIntervalMs: num(env.SKIFF_AGENT_ADVERTISE_MS, 5000),
    heartbeatIntervalMs: num(env.SKIFF_AGENT_HEARTBEAT_MS, 10_000),
    defaultRegisterIntervalMs: num(env.SKIFF_AGENT_REGISTER_MS, 20_000),
    stopGraceMs: num(env.SKIFF_AGENT_STOP_GRACE_MS, 10_000),
    unregisterGraceMs: num(env.SKIFF_AGENT_UNREGISTER_GRACE_MS, 250),
    evacuationWaitMs: num(env.SKIFF_AGENT_EVACUATION_MS, 5000),
    stagingTimeoutMs: num(env.SKIFF_AGENT_STAGING_TIMEOUT_S, 900) * 1000,
    maxArchiveBytes: num(env.SKIFF_AGENT_MAX_ARCHIVE_MB, 1024) * 1024 * 1024,
    logLinesPerApp: num(env.SKIFF_AGENT_LOG_LINES, 1000) || 1000,
    logLinesPerSecond: num(env.SKIFF_AGENT_LOG_RATE, 1000) || 1000,
    dropletCacheCount: num(env.SKIFF_AGENT_DROPLET_CACHE, 64) || 64,
    sampleIntervalMs: num(env.SKIFF_AGENT_SAMPLE_MS, 2000) || 2000,
    memoryEnforcement: enforcement === "rss" || enforcement === "off" ? enforcement : "auto",
    sandbox: noSandbox ? "off" : "auto",
    sandboxBind: (env.SKIFF_AGENT_SANDBOX_BIND || "").split(":").map((s) => s.trim()).filter((s) => s.startsWith("/")),
    pidsMax: num(env.SKIFF_AGENT_PIDS_MAX, 1024),
    diskEnforcement: env.SKIFF_AGENT_DISK_ENFORCEMENT === "off" ? "off" : "auto",
    stagingMemoryMb: num(env.SKIFF_AGENT_STAGING_MEMORY_MB, 1024),
    stagingDiskMb: num(env.SKIFF_AGENT_STAGING_DISK_MB, 4096),
  };
}
