// The router's configuration, read from the environment once by main.ts. A pure function of the
// environment so it can be tested without a process.

import { availableParallelism } from "node:os";
import { CidrList, CidrListError } from "./cidr-list.ts";
import { natsCredentialsFromEnv, type NatsCredentials } from "../../../bus/nats-transport.ts";

export interface RouterConfig {
  natsServers: string[];
  /** its NATS user (a password or a .creds file) and TLS with this host's certificate (issue 27) */
  nats: NatsCredentials;
  port: number;
  statusPort: number;
  statusUser: string;
  /** SKIFF_ROUTER_STATUS_PASS; when unset, the password is read from (or generated into) statusPassFile */
  statusPass: string | undefined;
  /** where a generated status password is kept (0600), for the operator and the scrapers to read */
  statusPassFile: string;
  /** peers that may read /metrics without the status credentials (Prometheus scrapers) */
  metricsAllow: CidrList;
  /** front ends (the users' load balancers) whose X-Forwarded-Proto, Forwarded, X-Forwarded-Host/-Port
   * and X-Real-IP are passed on; from any other peer they are dropped (X-Forwarded-Proto set from the connection) */
  trustedProxies: CidrList;
  drainSeconds: number;
  pruneIntervalSeconds: number;
  staleThresholdSeconds: number;
  minimumRegisterIntervalSeconds: number;
  maxHeaderBytes: number;
  maxBodyBytes: number;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  upstreamIdleTimeoutMs: number;
  maxIdlePerEndpoint: number;
  maxConnsPerEndpoint: number;
  accessLog: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** the address other components see this router at (router.start hosts) */
  host: string;
  /** proxy worker threads on the port (issue 16): default, the cores the process may run on (its CPU affinity) */
  workers: number;
  /** tests only: the status port takes POST /workers/<n>/crash */
  faultInjection: boolean;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function readRouterConfig(env: Record<string, string | undefined>): RouterConfig {
  const num = (name: string, def: number, min = 0): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new ConfigError(`${name}=${raw} is not a number >= ${min}`);
    return n;
  };
  const port = (name: string, def: number): number => {
    const n = num(name, def, 0);
    if (!Number.isInteger(n) || n > 65535) throw new ConfigError(`${name}=${env[name]} is not a port (0-65535; 0 lets the OS pick one)`);
    return n;
  };
  const cidrs = (name: string): CidrList => {
    try {
      return CidrList.parse(env[name], name);
    } catch (err) {
      throw err instanceof CidrListError ? new ConfigError(err.message) : err;
    }
  };
  const tlsCert = env.SKIFF_ROUTER_TLS_CERT || undefined;
  const tlsKey = env.SKIFF_ROUTER_TLS_KEY || undefined;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new ConfigError("set both SKIFF_ROUTER_TLS_CERT and SKIFF_ROUTER_TLS_KEY, or neither");
  return {
    natsServers: (env.SKIFF_NATS_URL || "nats://127.0.0.1:4222").split(",").map((s) => s.trim()).filter(Boolean),
    nats: natsCredentialsFromEnv(env),
    port: port("SKIFF_ROUTER_PORT", 8080), // 0: the OS picks; the ready line reports the port bound
    statusPort: port("SKIFF_ROUTER_STATUS_PORT", 8081),
    statusUser: env.SKIFF_ROUTER_STATUS_USER || "router-status",
    statusPass: env.SKIFF_ROUTER_STATUS_PASS || undefined,
    // beside the other components' state (./.skiff/<component>, docs/conventions.md)
    statusPassFile: env.SKIFF_ROUTER_STATUS_PASS_FILE || ".skiff/router/status-password",
    metricsAllow: cidrs("SKIFF_ROUTER_METRICS_ALLOW"),
    trustedProxies: cidrs("SKIFF_ROUTER_TRUSTED_PROXIES"),
    drainSeconds: num("SKIFF_ROUTER_DRAIN_SECONDS", 20),
    pruneIntervalSeconds: num("SKIFF_ROUTER_PRUNE_INTERVAL_SECONDS", 30, 0.05),
    staleThresholdSeconds: num("SKIFF_ROUTER_STALE_THRESHOLD_SECONDS", 120, 1),
    minimumRegisterIntervalSeconds: num("SKIFF_ROUTER_REGISTER_INTERVAL_SECONDS", 20, 1),
    maxHeaderBytes: num("SKIFF_ROUTER_MAX_HEADER_BYTES", 32 * 1024, 256),
    maxBodyBytes: num("SKIFF_ROUTER_MAX_BODY_BYTES", 1024 * 1024 * 1024, 0),
    connectTimeoutMs: num("SKIFF_ROUTER_CONNECT_TIMEOUT_MS", 5_000, 1),
    // gorouter's endpoint_timeout: a request written into a dead link must not hang for long.
    responseTimeoutMs: num("SKIFF_ROUTER_RESPONSE_TIMEOUT_MS", 60_000, 1),
    upstreamIdleTimeoutMs: num("SKIFF_ROUTER_UPSTREAM_IDLE_MS", 30_000, 1),
    maxIdlePerEndpoint: num("SKIFF_ROUTER_MAX_IDLE_PER_ENDPOINT", 1024, 0),
    maxConnsPerEndpoint: num("SKIFF_ROUTER_MAX_CONNS_PER_ENDPOINT", 0, 0),
    accessLog: env.SKIFF_ROUTER_ACCESS_LOG || undefined,
    tlsCert,
    tlsKey,
    host: env.SKIFF_ROUTER_HOST || "127.0.0.1",
    workers: workerCount(env.SKIFF_ROUTER_WORKERS),
    faultInjection: env.SKIFF_ROUTER_FAULT_INJECTION === "1",
  };
}

/** at most this many workers: each costs a thread, an isolate and a column of in-flight counts */
const MAX_WORKERS = 256;

function workerCount(raw: string | undefined): number {
  if (raw === undefined || raw === "") return Math.max(1, Math.min(MAX_WORKERS, availableParallelism()));
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) throw new ConfigError(`SKIFF_ROUTER_WORKERS=${raw} is not a number of worker threads (1-${MAX_WORKERS}; unset: one per core the router may use)`);
  return n;
}
