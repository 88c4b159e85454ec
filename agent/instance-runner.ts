// Runs one instance: unpacks its droplet (onto a disk volume of the quota's size where the host can
// make one), starts its process in its own session, as the run-as user, in its cgroup (memory, pids,
// CPU shares), in its sandbox (sandbox.ts: it sees its droplet, not the host), with its fd limit;
// health-checks it, and stops it (SIGTERM to all its processes, grace, SIGKILL; once its first process
// is gone, every process it left is killed too: process-sweep.ts). Reports state changes, log lines
// and the exit through callbacks.

import type { Subprocess } from "bun";
import { chmodSync, closeSync, lchownSync, mkdirSync, rmSync } from "node:fs";
import { cpuSharesFor, type InstanceCgroup, type InstanceCgroups } from "./instance-cgroup.ts";
import { diskUsage } from "./disk-usage.ts";
import type { DiskVolume, DiskVolumes } from "./disk-volume.ts";
import { hostnameOf, IN_SANDBOX, instanceSandbox, signalFromSandboxStatus, type SandboxHost } from "./sandbox.ts";
import { sandboxLaunch, writeSandboxEtc } from "./sandbox-host.ts";
import { traverseOnlyDir } from "../bus/private-state.ts";
import { createServer } from "node:net";
import { join } from "node:path";
import type { ExitReason } from "../bus/index.ts";
import type { Logger } from "../bus/index.ts";
import type { DropletCache } from "./droplet-cache.ts";
import { describeExit, exitStatus, signalName, type ExitCause } from "./exit-description.ts";
import { waitHealthy } from "./health-check.ts";
import { buildInstanceEnv, gatedArgv, launchScript, startScript } from "./instance-env.ts";
import type { Instance } from "./instance.ts";
import { LineSplitter, relayLines } from "./log-buffer.ts";
import { isRealDir, NotRealError, readRegularFile } from "./no-follow.ts";
import { signalSession } from "./proc-stats.ts";
import { killScope, signalScope, type ProcessScope } from "./process-sweep.ts";
import type { InstanceUsers, RunAsUser } from "./run-as.ts";
import { extractTarGzFile } from "./tarball.ts";

/** What the droplet says about itself (staging_info.json at its root). */
export interface StagingInfo {
  start_command: string;
  detected_buildpack: string;
  stack?: string;
  staged_at?: string;
  /** every process type the droplet can run (its Procfile's; web is start_command) */
  process_types?: Record<string, string>;
}

export interface RunnerDeps {
  instancesDir: string;
  droplets: DropletCache;
  host: string;
  users: InstanceUsers;
  cgroups?: InstanceCgroups;
  /** false: the memory limit is left to RSS sampling (SKIFF_AGENT_MEMORY_ENFORCEMENT) */
  memoryInCgroup: boolean;
  /** each instance's cap on processes and threads */
  pidsMax: number;
  /** undefined: no sandbox (--no-sandbox, or no bwrap on the host) */
  sandbox?: SandboxHost;
  /** undefined: the disk quota is measured, not enforced */
  volumes?: DiskVolumes;
  stopGraceMs: number;
  /** how long a routed instance keeps running after its router.unregister, before SIGTERM */
  unregisterGraceMs: number;
  pathPrefix: string[];
  maxArchiveBytes: number;
  /** a task (issue 17): run once, no port, no health check beyond being alive */
  task?: boolean;
  log: Logger;
  onState(instance: Instance): void;
  onSpawned(instance: Instance): void;
  onLog(instance: Instance, stream: "out" | "err", line: string): void;
  onExit(instance: Instance, reason: ExitReason, status: number, description: string): void;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "0.0.0.0", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export class InstanceRunner {
  readonly dir: string;
  private child?: Subprocess<"pipe", "pipe", "pipe">;
  private exited = false;
  private exitPromise?: Promise<void>;
  private stopReason?: ExitReason;
  /** why we killed it, when we did (memory, health check) */
  private killCause?: ExitCause;
  private cgroup?: InstanceCgroup;
  private volume?: DiskVolume;
  /** who it runs as (undefined: the agent's user), held until nothing runs as it any more */
  private user?: RunAsUser;
  private finished = false;
  /** how it ended, once it has (a task's outcome is read from it) */
  exitCause?: ExitCause;

  constructor(
    readonly instance: Instance,
    private readonly deps: RunnerDeps,
  ) {
    this.dir = join(deps.instancesDir, instance.id);
  }

  /** the kernel holds its memory limit (else the agent samples its RSS) */
  get memoryEnforced(): boolean {
    return this.cgroup?.controllers.includes("memory") ?? false;
  }

  get hasVolume(): boolean {
    return this.volume !== undefined;
  }

  get sandboxed(): boolean {
    return this.deps.sandbox !== undefined;
  }

  /** forks its pids cap refused so far */
  pidsRefused(): number {
    return this.cgroup?.pidsRefused() ?? 0;
  }

  /** Bytes its files take: one statfs on its volume, else a walk of its directory. */
  async diskUsage(): Promise<{ usedBytes: number; freeBytes?: number }> {
    const u = this.volume?.usage();
    return u ? { usedBytes: u.usedBytes, freeBytes: u.freeBytes } : { usedBytes: await diskUsage(this.dir) };
  }

  get sessionId(): number {
    return this.instance.pid;
  }

  /** The uid only this instance runs as, if it has one (recorded so a restarted agent can sweep it). */
  get exclusiveUid(): number | undefined {
    return this.user?.exclusive ? this.user.uid : undefined;
  }

  /** Prepares and starts the instance; resolves once it is RUNNING or has ended. Never throws. */
  async run(): Promise<void> {
    try {
      await this.launch();
    } catch (err) {
      this.deps.log.warn("instance failed to start", { instance: this.instance.id, error: (err as Error).message });
      if (this.child && !this.exited) {
        this.killCause ??= { type: "start_failed", message: (err as Error).message };
        signalSession(this.instance.pid, "SIGKILL");
        return;
      }
      this.finish(this.stopReason ?? "CRASHED", this.stopReason ? { type: "stopped" } : { type: "start_failed", message: (err as Error).message });
    }
  }

  private async launch(): Promise<void> {
    const { instance: i, deps } = this;
    const start = i.start;
    const droplet = await deps.droplets.get(start.droplet_sha256, start.droplet_uri);
    if (this.stopReason) return this.finish(this.stopReason, { type: "stopped" });

    const appDir = join(this.dir, "app");
    const tmpDir = join(this.dir, "tmp");
    rmSync(this.dir, { recursive: true, force: true });
    this.user = deps.users.acquire();
    const owner = this.user ? { uid: this.user.uid, gid: this.user.gid } : undefined;
    // the instance's uid passes through instances/ to its own directory, and lists nothing there
    if (owner) traverseOnlyDir(deps.instancesDir, "the agent's instances directory");
    const diskBytes = start.limits.disk > 0 ? start.limits.disk * 1024 * 1024 : 0;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (deps.volumes && diskBytes > 0) this.volume = await deps.volumes.create(this.dir, `${this.dir}.img`, diskBytes, owner);
    if (this.stopReason) return this.finish(this.stopReason, { type: "stopped" });
    mkdirSync(tmpDir, { recursive: true, mode: 0o700 });
    const diskCap = diskBytes > 0 ? Math.min(deps.maxArchiveBytes, diskBytes) : deps.maxArchiveBytes;
    await extractTarGzFile(droplet, this.dir, { maxBytes: diskCap, owner });
    if (this.stopReason) return this.finish(this.stopReason, { type: "stopped" });
    // From here on the tree is the droplet's: root touches only what it checked is real, and never
    // follows a link (a droplet whose app/ is a link could otherwise send the chown, and the
    // instance's cwd, anywhere on the host).
    if (!isRealDir(appDir, "the droplet's app/")) throw new NotRealError("the droplet has no app/ directory");
    const info = readStagingInfo(this.dir);
    if (owner) for (const d of [this.dir, appDir, tmpDir]) lchownSync(d, owner.uid, owner.gid);
    // its files are its own: no other instance may read them (its code, its config)
    if (this.user?.exclusive) chmodSync(this.dir, 0o700);
    const types = info.process_types && typeof info.process_types === "object" ? info.process_types : {};
    const own = typeof types[i.processType] === "string" ? types[i.processType] : undefined;
    const command = start.start_command.trim() || own || (i.processType === "web" ? info.start_command : undefined);
    if (!command) throw new Error(`no start command: the start order has none and the droplet names none for the ${i.processType} process`);
    // a buildpack's environment for the app (the python venv on PATH), sourced before the command
    const profile = isRealDir(join(appDir, ".profile.d"), "the droplet's .profile.d");

    if (!deps.task) i.port = await freePort();
    if (this.stopReason) return this.finish(this.stopReason, { type: "stopped" });
    i.startedAt = Date.now();
    const sandbox = deps.sandbox;
    const env = buildInstanceEnv(start, {
      instanceId: i.id,
      port: i.port,
      host: deps.host,
      // inside the sandbox the app sees Cloud Foundry's paths, not the host's
      homeDir: sandbox ? IN_SANDBOX.app : appDir,
      tmpDir: sandbox ? IN_SANDBOX.tmp : tmpDir,
      pathPrefix: sandbox ? [] : deps.pathPrefix,
      basePath: sandbox ? IN_SANDBOX.path : process.env.PATH || "/usr/local/bin:/usr/bin:/bin",
      startedAt: i.startedAt,
    });
    if (deps.cgroups) {
      const mem = start.limits.mem > 0 ? start.limits.mem * 1024 * 1024 : undefined;
      try {
        this.cgroup = deps.cgroups.create(i.id, {
          memoryBytes: deps.memoryInCgroup ? mem : undefined,
          pids: deps.pidsMax || undefined,
          cpuShares: start.limits.mem > 0 ? cpuSharesFor(start.limits.mem) : undefined,
        });
      } catch (err) {
        deps.log.warn("no cgroup for the instance; its memory is enforced by RSS sampling, its processes and CPU not at all", { instance: i.id, error: (err as Error).message });
      }
    }
    let argv: string[];
    let argsFd: number | undefined;
    if (sandbox) {
      // its /etc/passwd and /etc/group: root's, beside its directory (never inside the droplet's tree,
      // where a planted link could send root's writes elsewhere)
      const etcDir = writeSandboxEtc(`${this.dir}.etc`, owner?.uid ?? process.getuid?.() ?? 0, owner?.gid ?? process.getgid?.() ?? 0, hostnameOf(i.id));
      const shmBytes = Math.min(diskBytes || Infinity, start.limits.mem > 0 ? start.limits.mem * 1024 * 1024 : Infinity);
      const box = instanceSandbox(sandbox, {
        id: i.id,
        appDir,
        // on its volume, /tmp shares its disk quota; without one, a tmpfs of the quota's size
        tmp: this.volume || !diskBytes ? { dir: tmpDir } : { sizeBytes: diskBytes },
        shmBytes: Number.isFinite(shmBytes) ? shmBytes : 64 * 1024 * 1024,
        etcDir,
        argv: ["/bin/sh", "-c", startScript(command, start.limits.fds, profile)],
      });
      const launch = sandboxLaunch(sandbox.bwrap, box, join(etcDir, "bwrap-args"));
      argv = gatedArgv(launch.argv);
      argsFd = launch.fd;
    } else {
      argv = ["/bin/sh", "-c", launchScript(command, start.limits.fds, profile)];
    }
    // Bun.spawn rather than node:child_process: Bun's Node layer keeps several MiB more of the agent's
    // RSS once it has started a few dozen children (measured). It throws at once when the spawn itself
    // fails (bad uid, cwd): run() reports that as start_failed.
    let child: Subprocess<"pipe", "pipe", "pipe">;
    try {
      child = Bun.spawn(argv, {
        cwd: appDir,
        env,
        detached: true, // its own session and process group
        // stdin: the gate, then /dev/null; the sandbox's options on the fourth (sandboxLaunch)
        stdio: argsFd === undefined ? ["pipe", "pipe", "pipe"] : ["pipe", "pipe", "pipe", argsFd],
        uid: this.user?.uid,
        gid: this.user?.gid,
      }) as Subprocess<"pipe", "pipe", "pipe">;
    } finally {
      if (argsFd !== undefined) closeSync(argsFd);
    }
    this.child = child;
    this.exitPromise = child.exited.then(() => {
      this.exited = true;
      return this.onExit(child.exitCode, signalName(child.signalCode));
    });
    i.pid = child.pid;
    try {
      await this.cgroup?.addProcess(child.pid);
    } catch (err) {
      deps.log.warn("could not move the instance into its cgroup", { instance: i.id, error: (err as Error).message });
      this.cgroup = undefined;
    }
    // open the gate: the start command runs only now, inside its cgroup
    try {
      child.stdin.write("\n");
      void child.stdin.end();
    } catch {
      // it died already: its exit is reported
    }
    for (const [stream, pipe] of [["out", child.stdout], ["err", child.stderr]] as const)
      void relayLines(pipe, new LineSplitter((line) => deps.onLog(i, stream, line)));
    deps.onSpawned(i);

    const result = await waitHealthy(start.health_check, { host: "127.0.0.1", port: i.port }, () => this.exited || this.stopReason !== undefined);
    if (result === "healthy" && i.state === "STARTING") {
      i.moveTo("RUNNING");
      deps.onState(i);
    } else if (result === "timeout" && !this.exited && !this.stopReason) {
      this.killCause = { type: "health_check_timeout", timeoutSeconds: start.health_check.timeout, check: start.health_check.type };
      signalSession(i.pid, "SIGKILL");
    }
  }

  /** Kills the instance because it went over its memory limit (RSS enforcement). */
  killForMemory(): void {
    if (this.exited || this.stopReason || !this.instance.pid) return;
    this.killCause = { type: "out_of_memory", limitMb: this.instance.start.limits.mem };
    signalSession(this.instance.pid, "SIGKILL");
  }

  private unregisterGrace: Promise<unknown> | undefined = undefined;

  /** STOPPING → (router.unregister, unregister grace) → SIGTERM → grace → SIGKILL → STOPPED. Resolves when the process is gone. */
  async stop(reason: ExitReason): Promise<void> {
    const i = this.instance;
    if (this.finished) return;
    if (!this.stopReason) {
      this.stopReason = reason;
      const routed = i.state === "RUNNING" && i.uris.length > 0;
      if (i.canMoveTo("STOPPING")) {
        i.moveTo("STOPPING");
        this.deps.onState(i); // publishes router.unregister
        // The routers apply the unregister a few ms later: until then they still send requests here,
        // which a process already signalled would drop (a 502 for requests already sent to it).
        if (routed && this.deps.unregisterGraceMs > 0) this.unregisterGrace = Promise.race([this.exitPromise, Bun.sleep(this.deps.unregisterGraceMs)]);
      }
    }
    await this.unregisterGrace; // a second stop() waits for it too
    if (!this.child || this.exited) {
      await this.exitPromise;
      return;
    }
    signalScope(this.scope(), "SIGTERM");
    const gone = await Promise.race([this.exitPromise!.then(() => true), Bun.sleep(this.deps.stopGraceMs).then(() => false)]);
    if (!gone) {
      signalSession(i.pid, "SIGKILL");
      await this.exitPromise;
    }
  }

  /** Everything this instance's processes are found by. */
  private scope(): ProcessScope {
    return {
      leader: this.instance.pid,
      tag: { key: "CF_INSTANCE_GUID", value: this.instance.id },
      cgroup: this.cgroup,
      exclusiveUser: this.user?.exclusive ? this.user : undefined,
      monitor: this.sandboxed ? this.instance.pid : undefined,
    };
  }

  private async onExit(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    // whatever the first process left behind dies with it, wherever it went (setsid, double fork): no orphans
    const survivors = await killScope(this.scope());
    const clean = survivors.length === 0;
    if (!clean)
      this.deps.log.error("processes of an ended instance survived SIGKILL; its uid stays taken", { instance: this.instance.id, pids: survivors.join(",") });
    if (this.stopReason) return this.finish(this.stopReason, { type: "stopped" }, clean);
    if (this.cgroup?.oomKilled()) this.killCause = { type: "out_of_memory", limitMb: this.instance.start.limits.mem };
    // bwrap reports the app's death by signal N as status 128 + N
    const inner = this.sandboxed && !signal ? signalName(signalFromSandboxStatus(code) ?? null) : null;
    const cause: ExitCause = this.killCause ?? (signal ? { type: "signal", signal } : inner ? { type: "signal", signal: inner } : { type: "exited", code: code ?? -1 });
    this.finish("CRASHED", cause, clean);
  }

  /** `clean`: nothing of it runs any more, so its uid may go to another instance. */
  private finish(reason: ExitReason, cause: ExitCause, clean = true): void {
    if (this.finished) return;
    this.finished = true;
    this.exitCause = cause;
    if (this.user && clean) this.deps.users.release(this.user);
    const i = this.instance;
    const to = reason === "CRASHED" ? "CRASHED" : "STOPPED";
    if (i.canMoveTo(to)) i.moveTo(to);
    else if (i.state === "STARTING" || i.state === "RUNNING") i.moveTo("CRASHED");
    this.cgroup?.remove();
    const description = reason === "CRASHED" ? describeExit(cause) : describeStop(reason);
    const status = reason === "CRASHED" ? exitStatus(cause) : this.stopExitStatus();
    this.deps.onExit(i, reason, status, description);
    if (this.cgroup) setTimeout(() => this.cgroup?.remove(), 1000).unref();
  }

  private stopExitStatus(): number {
    const c = this.child;
    if (!c) return -1;
    const signal = signalName(c.signalCode);
    if (signal) return exitStatus({ type: "signal", signal });
    return c.exitCode ?? -1;
  }

  /** Deletes the instance's files (after it ended): unmounts its volume and deletes its image. */
  async removeFiles(): Promise<void> {
    try {
      await this.volume?.remove();
    } catch (err) {
      this.deps.log.warn("could not unmount the instance's disk volume", { instance: this.instance.id, error: (err as Error).message });
    }
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(`${this.dir}.etc`, { recursive: true, force: true });
  }
}

function describeStop(reason: ExitReason): string {
  switch (reason) {
    case "DEA_EVACUATION":
      return "stopped: the agent is evacuating";
    case "DEA_SHUTDOWN":
      return "stopped: the agent is shutting down";
    default:
      return "stopped";
  }
}

/** The droplet's staging_info.json: a regular file (never followed through a link) holding a JSON object. */
export function readStagingInfo(dir: string): Partial<StagingInfo> {
  const text = readRegularFile(join(dir, "staging_info.json"), "the droplet's staging_info.json");
  if (text === undefined) throw new NotRealError("the droplet has no staging_info.json");
  let info: unknown;
  try {
    info = JSON.parse(text);
  } catch (err) {
    throw new NotRealError(`the droplet's staging_info.json is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof info !== "object" || info === null) throw new NotRealError("the droplet's staging_info.json is not a JSON object");
  const cmd = (info as Partial<StagingInfo>).start_command;
  return { ...(info as Partial<StagingInfo>), start_command: typeof cmd === "string" ? cmd.trim() : undefined };
}
