// Everything an API handler may use, built once by main.ts and passed to each route group.

import type { Bus, Logger } from "../../../bus/index.ts";
import type { AgentRegistry } from "../agent-registry.ts";
import type { Blobstore, UrlSigner } from "../blobstore.ts";
import type { Store } from "../db/store.ts";
import type { ActualState } from "../health/actual-state.ts";
import type { InstanceLauncher } from "../launcher.ts";
import type { ServiceGateway } from "../services/service-gateway.ts";
import type { Stager } from "../stager.ts";
import type { TaskTracker } from "../tasks/task-tracker.ts";

export interface Limits {
  /** the uploaded package (compressed) */
  packageBytes: number;
  /** the package once gunzipped (or unzipped): checked while streaming, never held whole */
  unpackedBytes: number;
  /** entries in a package */
  maxEntries: number;
  dropletBytes: number;
  /** failed logins in a row that lock an account (UAA's lockoutAfterFailures: 5) */
  loginFailuresBeforeLock: number;
  /** how long a locked account stays locked (UAA's lockoutPeriodSeconds: 300) */
  loginLockMs: number;
  /** failures further apart than this start the count again (UAA's countFailuresWithin: 1200 s) */
  loginFailureWindowMs: number;
  /** POST /v3/tokens from one client address per window, answered or not, before 429 */
  loginAttemptsPerAddress: number;
  loginAttemptWindowMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  packageBytes: 1024 * 1024 * 1024, unpackedBytes: 2048 * 1024 * 1024, maxEntries: 100_000, dropletBytes: 2048 * 1024 * 1024,
  loginFailuresBeforeLock: 5, loginLockMs: 300_000, loginFailureWindowMs: 1_200_000, loginAttemptsPerAddress: 20, loginAttemptWindowMs: 60_000,
};

/** SKIFF_LOGIN_LOCKOUT_FAILURES, SKIFF_LOGIN_LOCKOUT_SECONDS and SKIFF_LOGIN_ATTEMPTS_PER_MINUTE, where set. */
export function loginLimitsFromEnv(env: Record<string, string | undefined>): Partial<Limits> {
  const n = (name: string) => {
    const v = env[name];
    if (v === undefined || v === "") return undefined;
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name}="${v}" must be a whole number of at least 1`);
    return Number(v);
  };
  const out: Partial<Limits> = {};
  const failures = n("SKIFF_LOGIN_LOCKOUT_FAILURES"), lockSec = n("SKIFF_LOGIN_LOCKOUT_SECONDS"), perMinute = n("SKIFF_LOGIN_ATTEMPTS_PER_MINUTE");
  if (failures !== undefined) out.loginFailuresBeforeLock = failures;
  if (lockSec !== undefined) out.loginLockMs = lockSec * 1000;
  if (perMinute !== undefined) out.loginAttemptsPerAddress = perMinute;
  return out;
}

export interface ControllerContext {
  store: Store;
  bus: Bus;
  blobs: Blobstore;
  signer: UrlSigner;
  agents: AgentRegistry;
  actual: ActualState;
  launcher: InstanceLauncher;
  stager: Stager;
  /** service brokers, instances and bindings */
  services: ServiceGateway;
  /** one-off tasks: their records, placement and state (issue 17) */
  tasks: TaskTracker;
  log: Logger;
  domain: string;
  limits: Limits;
  /** asks the health manager to converge now (a no-op when it runs in its own process) */
  pokeHealth: () => void;
  /** how long the API waits for agents' replies (dea.find.droplet, dea.logs.recent) */
  findTimeoutMs: number;
  version: string;
}
