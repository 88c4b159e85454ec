// The environment an instance runs with (Cloud Foundry's names, see BRIEF "Apps get"). Pure.

import { serviceEnvironment, type DeaStart } from "../bus/index.ts";

export interface InstancePlacement {
  instanceId: string;
  port: number;
  /** the agent's address, where routers reach the instance */
  host: string;
  homeDir: string;
  tmpDir: string;
  /** extra directories put first on PATH (the agent's own Bun) */
  pathPrefix: string[];
  basePath: string;
  startedAt: number;
}

export function buildInstanceEnv(start: DeaStart, at: InstancePlacement): Record<string, string> {
  const startedAtSec = Math.floor(at.startedAt / 1000);
  const vcapApplication = {
    ...start.vcap_application,
    application_id: start.droplet,
    application_name: start.name,
    name: start.name,
    application_uris: start.uris,
    uris: start.uris,
    application_version: start.version,
    version: start.version,
    instance_id: at.instanceId,
    instance_index: start.index,
    host: "0.0.0.0",
    port: at.port,
    limits: start.limits,
    started_at: new Date(at.startedAt).toISOString(),
    started_at_timestamp: startedAtSec,
    state_timestamp: startedAtSec,
  };
  // a task (issue 17) listens on nothing: it gets no port, as in Cloud Foundry
  const port = at.port > 0 ? String(at.port) : undefined;
  if (!port) delete (vcapApplication as Partial<typeof vcapApplication>).port;
  const env: Record<string, string> = {
    ...start.env,
    PATH: [...at.pathPrefix, at.basePath].filter(Boolean).join(":"),
    HOME: at.homeDir,
    TMPDIR: at.tmpDir,
    LANG: start.env.LANG ?? "en_US.UTF-8",
    ...(port ? { PORT: port, VCAP_APP_PORT: port } : {}),
    VCAP_APP_HOST: "0.0.0.0",
    VCAP_APPLICATION: JSON.stringify(vcapApplication),
    MEMORY_LIMIT: `${start.limits.mem}m`,
    CF_INSTANCE_INDEX: String(start.index),
    CF_INSTANCE_GUID: at.instanceId,
    CF_INSTANCE_IP: at.host,
    ...(port ? { CF_INSTANCE_PORT: port, CF_INSTANCE_ADDR: `${at.host}:${port}` } : {}),
    // VCAP_SERVICES, and DATABASE_URL/REDIS_URL/AMQP_URL unless the start's env sets them (by hand: they win)
    ...serviceEnvironment(start.services, start.env),
  };
  // a task's environment carries no port the app's own env set either (PORT is the platform's)
  if (!port) for (const k of ["PORT", "VCAP_APP_PORT"]) delete env[k];
  return env;
}

/**
 * The gate: a shell waits for one line on its stdin, which the agent writes once the process is in its
 * cgroup. Without it the start command could fork (a daemon, a memory hog) before the move, and that
 * fork would stay outside the limits and outside the cgroup that finds every process at stop. It costs
 * the start the migration's wait for an RCU grace period (6-15 ms here, see instance-cgroup.ts).
 * Fail closed: if the agent died before opening it, nothing runs outside its cgroup.
 */
export const GATE = "read -r _ || exit 111\nexec </dev/null\n";

/** `argv` behind the gate (the sandbox: bwrap and everything it starts inherit the cgroup). */
export function gatedArgv(argv: readonly string[]): string[] {
  return ["/bin/sh", "-c", `${GATE}exec "$@"\n`, "skiff-gate", ...argv];
}

/** Sources the droplet's .profile.d scripts (a buildpack's environment: a venv on PATH), as Cloud Foundry does. */
export const PROFILE_D = 'for f in "$HOME"/.profile.d/*.sh; do if [ -f "$f" ]; then . "$f"; fi; done\n';

/**
 * The shell script that starts the app: the file-descriptor limit, the droplet's .profile.d (when it
 * has one), then the start command. A plain command is exec'd so signals reach the app itself; one
 * using shell syntax runs in the shell.
 */
export function startScript(startCommand: string, fds: number, profile = false): string {
  // over the hard limit, settle for the hard limit rather than the (often 1024) soft default
  const limit = fds > 0 ? `ulimit -n ${Math.floor(fds)} 2>/dev/null || ulimit -n "$(ulimit -H -n)" 2>/dev/null || true\n` : "";
  // a plain command is exec'd so the app is the process the agent signals; one that says `exec`
  // itself is left alone (`exec exec sleep` would look for a program named "exec" and fail with 126)
  const plain = /^[\w@%+=:,./ -]+$/.test(startCommand) && !/^exec\s/.test(startCommand);
  return `${limit}${profile ? PROFILE_D : ""}${plain ? "exec " : ""}${startCommand}\n`;
}

/** The gate, then the start script: an instance run without a sandbox. */
export function launchScript(startCommand: string, fds: number, profile = false): string {
  return GATE + startScript(startCommand, fds, profile);
}
