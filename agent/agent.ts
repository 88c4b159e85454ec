// The agent's shell: subscribes to the bus (dea.<id>.start, dea.stop, dea.update, dea.find.droplet,
// dea.locate, router.start, dea.logs.recent, staging.<id>.start, healthmanager.start), keeps the
// instances, and publishes advertise/heartbeat/exited/register/logs on their timers and events.

import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import {
  deaStartSubject,
  isSubjectToken,
  logsSubject,
  stagingStartSubject,
  Subjects,
  taskStartSubject,
  type Bus,
  type DeaStart,
  type ExitReason,
  type HeartbeatTask,
  type LogLine,
  type Logger,
  type RouterRegister,
  type StagingStart,
  type Subscription,
  type TaskReportState,
  type TaskStart,
} from "../bus/index.ts";
import {
  buildAdvertise,
  buildExited,
  buildFindDropletReply,
  buildHeartbeat,
  buildShutdown,
  processTypeField,
  type AgentIdentity,
} from "./beacons.ts";
import type { Buildpack } from "./buildpacks/index.ts";
import { ReplacementWatch } from "./evacuation.ts";
import type { DropletCache } from "./droplet-cache.ts";
import { Instance, matchesFilter } from "./instance.ts";
import { InstanceRunner, type RunnerDeps } from "./instance-runner.ts";
import type { InstanceStore } from "./instance-store.ts";
import { AppLogBuffers, LineRateLimit } from "./log-buffer.ts";
import type { InstanceCgroups } from "./instance-cgroup.ts";
import type { DiskVolumes } from "./disk-volume.ts";
import type { SandboxHost } from "./sandbox.ts";
import { processStartTicks, sampleSessions } from "./proc-stats.ts";
import { isGone } from "./process-tree.ts";
import { killScope, signalScope, type ProcessScope } from "./process-sweep.ts";
import { sharedUser, type InstanceUsers } from "./run-as.ts";
import { buildRouteMessage, diffRoutes } from "./routes.ts";
import { stage } from "./stager.ts";

export interface AgentOptions {
  identity: AgentIdentity;
  dataDir: string;
  advertiseIntervalMs: number;
  heartbeatIntervalMs: number;
  defaultRegisterIntervalMs: number;
  stopGraceMs: number;
  /** a routed instance keeps running this long after its router.unregister before it is signalled */
  unregisterGraceMs: number;
  evacuationWaitMs: number;
  stagingTimeoutMs: number;
  maxArchiveBytes: number;
  logLinesPerApp: number;
  /** per instance; lines beyond it (after a burst of twice as many) are dropped and counted */
  logLinesPerSecond: number;
  sampleIntervalMs: number;
  /** kill an instance over its memory limit by RSS sampling when it has no cgroup */
  enforceMemoryByRss: boolean;
  /** who instances and staging builds run as (default: the agent's own user) */
  users?: InstanceUsers;
  cgroups?: InstanceCgroups;
  /** false: memory limits are left to RSS sampling even where a cgroup could hold them */
  memoryInCgroup?: boolean;
  /** each instance's (and staging task's) cap on processes and threads; 0: none */
  pidsMax?: number;
  /** undefined: instances and builds run without a sandbox */
  sandbox?: SandboxHost;
  /** undefined: disk quotas are measured, not enforced */
  volumes?: DiskVolumes;
  /** a staging task's memory and disk: at least these, more when the app has more (Cloud Foundry's minimums) */
  stagingMemoryMb?: number;
  stagingDiskMb?: number;
  buildpacks: readonly Buildpack[];
  staticServerPath: string;
  bunPath: string;
  /** directories put first on instances' and build commands' PATH (where `bun` is) */
  pathPrefix: string[];
  /** told on every start, stop, instance end and staging order and end (main.ts: the memory trim waits for quiet) */
  onActivity?: () => void;
}

interface Running {
  instance: Instance;
  runner: InstanceRunner;
  registered: boolean;
  /** droplet.exited was already published (evacuation) */
  exitAnnounced: boolean;
  logLimit: LineRateLimit;
  lastCpu?: { seconds: number; at: number };
  /** told already (a CELL log line) that its disk is full / that its process cap refused forks */
  diskFullSaid?: boolean;
  pidsRefusedSaid?: number;
}

/** How long an ended task stays in the heartbeat (a controller that missed its task.state reads it there). */
export const TASK_RESULT_KEEP_MS = 5 * 60_000;

/** A task (issue 17): one run of a command from the app's droplet, in an instance's sandbox, with no port. */
interface TaskRun extends Running {
  task: TaskStart;
  state: TaskReportState;
  exitStatus?: number;
  reason?: string;
  endedAt?: number;
  /** cancelled by task.cancel (vs. stopped by the agent's own shutdown) */
  cancelled?: boolean;
}

export class Agent {
  private readonly instances = new Map<string, Running>();
  /** tasks by task guid, running and ended (kept TASK_RESULT_KEEP_MS for the heartbeat) */
  private readonly tasks = new Map<string, TaskRun>();
  private readonly logs: AppLogBuffers;
  private readonly subs: Subscription[] = [];
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  private registerTimer?: ReturnType<typeof setInterval>;
  private registerIntervalMs: number;
  private heartbeatQueued = false;
  private accepting = true;
  private samples = 0;
  private readonly stagingTasks = new Set<Promise<unknown>>();
  /** instances' files being removed (their volumes unmounted): awaited before the agent exits */
  private readonly removals = new Set<Promise<void>>();
  /** aborted at shutdown: cancels staging tasks in flight */
  private readonly stopping = new AbortController();
  private readonly users: InstanceUsers;

  constructor(
    private readonly bus: Bus,
    private readonly droplets: DropletCache,
    private readonly store: InstanceStore,
    private readonly opts: AgentOptions,
    private readonly log: Logger,
  ) {
    this.logs = new AppLogBuffers(opts.logLinesPerApp);
    this.registerIntervalMs = opts.defaultRegisterIntervalMs;
    this.users = opts.users ?? sharedUser(undefined);
  }

  get id(): string {
    return this.opts.identity.id;
  }

  /** Instances by id (read-only view, for tests and benchmarks). */
  list(): Instance[] {
    return [...this.instances.values()].map((r) => r.instance);
  }

  async start(): Promise<void> {
    await this.recoverLeftovers();
    const b = this.bus;
    this.subs.push(
      b.subscribe(deaStartSubject(this.id), "dea.start", (m) => {
        this.opts.onActivity?.();
        return this.startInstance(m);
      }),
      b.subscribe(Subjects.deaStop, "dea.stop", (m) => {
        this.opts.onActivity?.();
        for (const r of this.matching(m)) void r.runner.stop("STOPPED");
      }),
      b.subscribe(Subjects.deaUpdate, "dea.update", (m) => this.updateRoutes(m.droplet, m.uris, m.version, m.process_type)),
      b.subscribe(Subjects.deaFindDroplet, "dea.find.droplet", (m, meta) => {
        if (!meta.reply) return;
        for (const r of this.matching(m))
          b.publish(meta.reply, "dea.find.droplet.reply", buildFindDropletReply(this.opts.identity, r.instance, m.include_stats ?? false));
      }),
      b.subscribe(Subjects.deaLocate, "dea.locate", () => this.advertise()),
      b.subscribe(Subjects.healthManagerStart, "healthmanager.start", () => this.heartbeat()),
      b.subscribe(Subjects.routerStart, "router.start", (m) => this.onRouterStart(m.minimumRegisterIntervalInSeconds)),
      b.subscribe(Subjects.deaLogsRecent, "dea.logs.recent", (m, meta) => {
        const lines = this.logs.recent(m.droplet, m.limit);
        if (meta.reply && lines.length > 0) b.publish(meta.reply, "dea.logs.recent.reply", { dea: this.id, lines });
      }),
      b.subscribe(stagingStartSubject(this.id), "staging.start", (m, meta) => {
        this.opts.onActivity?.();
        return this.stage(m, meta.reply);
      }),
      b.subscribe(taskStartSubject(this.id), "task.start", (m) => {
        this.opts.onActivity?.();
        return this.startTask(m);
      }),
      b.subscribe(Subjects.taskCancel, "task.cancel", (m) => this.cancelTask(m.guid)),
    );
    b.onStatus((s) => {
      if (s.type !== "reconnect") return;
      this.advertise();
      this.heartbeat();
      this.registerAll();
    });
    this.timers.push(
      setInterval(() => this.advertise(), this.opts.advertiseIntervalMs),
      setInterval(() => this.heartbeat(), this.opts.heartbeatIntervalMs),
      setInterval(() => this.sample(), this.opts.sampleIntervalMs),
    );
    this.scheduleRegistration();
    await b.flush();
    this.advertise();
    this.heartbeat();
    // learn the routers' register interval; routers that boot later announce it with router.start
    b.request(Subjects.routerGreet, "router.greet", {}, "router.start", { timeoutMs: 1000 })
      .then((m) => this.onRouterStart(m.minimumRegisterIntervalInSeconds))
      .catch(() => this.log.debug("no router answered router.greet; registering every default interval"));
  }

  // ---- instances -------------------------------------------------------------------------------

  /** What every instance's and task's runner shares; the callbacks are its own. */
  private runnerDeps(callbacks: Pick<RunnerDeps, "onState" | "onSpawned" | "onLog" | "onExit">, task = false): RunnerDeps {
    return {
      instancesDir: join(this.opts.dataDir, "instances"),
      droplets: this.droplets,
      host: this.opts.identity.ip,
      users: this.users,
      cgroups: this.opts.cgroups,
      memoryInCgroup: this.opts.memoryInCgroup ?? true,
      pidsMax: this.opts.pidsMax ?? 0,
      sandbox: this.opts.sandbox,
      volumes: this.opts.volumes,
      stopGraceMs: this.opts.stopGraceMs,
      unregisterGraceMs: this.opts.unregisterGraceMs,
      pathPrefix: this.opts.pathPrefix,
      maxArchiveBytes: this.opts.maxArchiveBytes,
      task,
      log: this.log,
      ...callbacks,
    };
  }

  private startInstance(m: DeaStart): void {
    if (!this.accepting) return this.log.warn("refusing a start while shutting down", { app: m.droplet, index: m.index });
    if (!isSubjectToken(m.droplet)) return this.log.warn("refusing a start with an invalid app id", { app: m.droplet });
    const instance = new Instance(randomUUID().replaceAll("-", ""), m);
    const runner = new InstanceRunner(instance, this.runnerDeps({
      onState: (i) => this.onState(i),
      onSpawned: (i) => this.persist(i),
      onLog: (i, stream, line) => this.instanceLog(i, stream, line),
      onExit: (i, reason, status, description) => this.onExit(i, reason, status, description),
    }));
    this.instances.set(instance.id, {
      instance,
      runner,
      registered: false,
      exitAnnounced: false,
      logLimit: new LineRateLimit(this.opts.logLinesPerSecond, this.opts.logLinesPerSecond * 2),
    });
    this.log.info("starting instance", { app: m.droplet, name: m.name, index: m.index, instance: instance.id, ...processTypeField(instance) });
    this.queueHeartbeat();
    void runner.run();
  }

  // ---- tasks (issue 17) ------------------------------------------------------------------------

  /** A task runs as an instance does (droplet, sandbox, uid, cgroup, disk) but once, with no port or route. */
  private startTask(m: TaskStart): void {
    const refuse = (reason: string) => this.bus.publish(Subjects.taskState, "task.state", { dea: this.id, guid: m.guid, droplet: m.droplet, state: "FAILED", exit_status: -1, failure_reason: reason, ts: Date.now() });
    if (!this.accepting) return refuse("the agent is shutting down");
    if (!isSubjectToken(m.droplet)) return refuse("invalid app id");
    if (this.tasks.has(m.guid)) return; // a duplicate order
    const start: DeaStart = {
      droplet: m.droplet, version: `task-${m.sequence_id}`, index: 0, name: m.app_name, uris: [], droplet_uri: m.droplet_uri, droplet_sha256: m.droplet_sha256,
      limits: m.limits, env: m.env, services: m.services, start_command: m.command, health_check: { type: "process", timeout: 60 },
      vcap_application: m.vcap_application, ...(m.stack ? { stack: m.stack } : {}),
    };
    const instance = new Instance(randomUUID().replaceAll("-", ""), start);
    const runner = new InstanceRunner(instance, this.runnerDeps({
      onState: (i) => {
        if (i.state === "RUNNING") this.reportTask(run, "RUNNING");
        this.persist(i);
      },
      onSpawned: (i) => this.persist(i),
      onLog: (_i, stream, line) => this.taskLog(run, stream, line),
      onExit: (_i, reason, status, description) => this.onTaskExit(run, reason, status, description),
    }, true));
    const run: TaskRun = {
      task: m, state: "RUNNING", instance, runner, registered: false, exitAnnounced: false,
      logLimit: new LineRateLimit(this.opts.logLinesPerSecond, this.opts.logLinesPerSecond * 2),
    };
    this.tasks.set(m.guid, run);
    this.log.info("starting task", { app: m.droplet, task: m.name, guid: m.guid, instance: instance.id });
    this.publishLog({ app: m.droplet, source: "CELL", index: -1, stream: "out", ts: Date.now(), line: `task ${m.name} starting: ${m.command}`, task: m.name });
    this.queueHeartbeat();
    void runner.run();
  }

  private cancelTask(guid: string): void {
    const run = this.tasks.get(guid);
    if (!run || run.endedAt !== undefined) return;
    run.cancelled = true;
    this.opts.onActivity?.();
    void run.runner.stop("STOPPED");
  }

  private reportTask(run: TaskRun, state: TaskReportState): void {
    run.state = state;
    const t = run.task;
    this.bus.publish(Subjects.taskState, "task.state", {
      dea: this.id, guid: t.guid, droplet: t.droplet, state, ts: Date.now(),
      ...(run.exitStatus !== undefined ? { exit_status: run.exitStatus } : {}), ...(run.reason ? { failure_reason: run.reason } : {}),
    });
    this.queueHeartbeat();
  }

  private onTaskExit(run: TaskRun, reason: ExitReason, status: number, description: string): void {
    const cause = run.runner.exitCause;
    const succeeded = reason === "CRASHED" && cause?.type === "exited" && cause.code === 0;
    run.endedAt = Date.now();
    run.exitStatus = status;
    if (!succeeded)
      run.reason = reason === "CRASHED" ? description : run.cancelled ? "cancelled" : reason === "DEA_EVACUATION" ? "the agent running it was evacuated" : "the agent running it shut down";
    this.opts.onActivity?.();
    this.reportTask(run, succeeded ? "SUCCEEDED" : "FAILED");
    const t = run.task;
    this.log.info("task ended", { app: t.droplet, task: t.name, guid: t.guid, state: run.state, status, reason: run.reason });
    this.publishLog({ app: t.droplet, source: "CELL", index: -1, stream: succeeded ? "out" : "err", ts: Date.now(), line: `task ${t.name} ${succeeded ? "succeeded" : `failed: ${run.reason}`} (exit status ${status})`, task: t.name });
    this.store.remove(run.instance.id);
    const removal = run.runner.removeFiles();
    this.removals.add(removal);
    void removal.finally(() => this.removals.delete(removal));
    this.advertise();
  }

  /** A task's output line, within its rate limit, tagged APP/TASK/<name>. */
  private taskLog(run: TaskRun, stream: "out" | "err", line: string): void {
    if (!run.logLimit.take()) return;
    this.publishLog({ app: run.task.droplet, source: "APP", index: -1, stream, ts: Date.now(), line, task: run.task.name });
  }

  /** The tasks running here, and those ended within TASK_RESULT_KEEP_MS (older ones are forgotten). */
  private heartbeatTasks(now = Date.now()): HeartbeatTask[] {
    const out: HeartbeatTask[] = [];
    for (const [guid, r] of this.tasks) {
      if (r.endedAt !== undefined && now - r.endedAt > TASK_RESULT_KEEP_MS) {
        this.tasks.delete(guid);
        continue;
      }
      out.push({ guid, state: r.state, ...(r.exitStatus !== undefined && r.endedAt !== undefined ? { exit_status: r.exitStatus } : {}), ...(r.reason ? { failure_reason: r.reason } : {}) });
    }
    return out;
  }

  private get runningTasks(): TaskRun[] {
    return [...this.tasks.values()].filter((r) => r.endedAt === undefined);
  }

  private onState(i: Instance): void {
    const r = this.instances.get(i.id);
    if (!r) return;
    if (i.state === "RUNNING") {
      this.register(r);
      void r.runner.diskUsage().then((d) => (i.usage.disk = d.usedBytes));
      this.log.info("instance running", { app: i.appId, index: i.index, instance: i.id, port: i.port });
    }
    if (i.state === "STOPPING") this.unregister(r);
    this.persist(i);
    this.queueHeartbeat();
  }

  private onExit(i: Instance, reason: ExitReason, status: number, description: string): void {
    const r = this.instances.get(i.id);
    if (!r) return;
    this.opts.onActivity?.();
    this.unregister(r);
    if (!r.exitAnnounced) this.bus.publish(Subjects.dropletExited, "droplet.exited", buildExited(i, reason, status, description));
    this.log.info("instance ended", { app: i.appId, index: i.index, instance: i.id, state: i.state, reason, description });
    const what = i.processType === "web" ? `instance ${i.index}` : `${i.processType} instance ${i.index}`;
    this.publishLog({ app: i.appId, source: "CELL", index: i.index, stream: "out", ts: Date.now(), line: `${what} ${i.state.toLowerCase()}: ${description}`, ...processTypeField(i) });
    // the final state goes out in a heartbeat before the instance is forgotten
    this.heartbeat();
    this.instances.delete(i.id);
    this.store.remove(i.id);
    const removal = r.runner.removeFiles();
    this.removals.add(removal);
    void removal.finally(() => this.removals.delete(removal));
    this.droplets.prune(new Set(this.list().map((x) => x.start.droplet_sha256)));
    this.advertise();
  }

  private persist(i: Instance): void {
    const task = this.runningTasks.find((r) => r.instance === i);
    const uid = (this.instances.get(i.id) ?? task)?.runner.exclusiveUid;
    this.store.save({ id: i.id, pid: i.pid, startTicks: i.pid ? processStartTicks(i.pid) : undefined, state: i.state, port: i.port, uid, start: i.start, ...(task ? { task: task.task } : {}) });
  }

  private *matching(filter: Parameters<typeof matchesFilter>[1]): Iterable<Running> {
    for (const r of this.instances.values()) if (matchesFilter(r.instance, filter)) yield r;
  }

  // ---- routes ----------------------------------------------------------------------------------

  private routeMessage(i: Instance, uris: string[]): RouterRegister {
    return buildRouteMessage(this.opts.identity.ip, i, uris);
  }

  private register(r: Running): void {
    r.registered = true;
    if (r.instance.uris.length > 0) this.bus.publish(Subjects.routerRegister, "router.register", this.routeMessage(r.instance, r.instance.uris));
  }

  private unregister(r: Running): void {
    if (!r.registered) return;
    r.registered = false;
    if (r.instance.uris.length > 0) this.bus.publish(Subjects.routerUnregister, "router.unregister", this.routeMessage(r.instance, r.instance.uris));
  }

  private registerAll(): void {
    for (const r of this.instances.values()) if (r.registered && r.instance.state === "RUNNING") this.register(r);
  }

  private updateRoutes(appId: string, uris: string[], version?: string, processType = "web"): void {
    for (const r of this.instances.values()) {
      const i = r.instance;
      // an app's routes belong to one process type (web): a worker never gets them
      if (i.appId !== appId || (version && i.version !== version) || i.processType !== processType) continue;
      const { added, removed } = diffRoutes(i.uris, uris);
      i.uris = [...uris];
      if (!r.registered) continue;
      if (removed.length > 0) this.bus.publish(Subjects.routerUnregister, "router.unregister", this.routeMessage(i, removed));
      if (added.length > 0) this.bus.publish(Subjects.routerRegister, "router.register", this.routeMessage(i, added));
    }
  }

  private onRouterStart(intervalSeconds: number): void {
    const ms = Math.max(1000, intervalSeconds * 1000);
    if (ms !== this.registerIntervalMs) {
      this.registerIntervalMs = ms;
      this.scheduleRegistration();
    }
    this.registerAll();
  }

  private scheduleRegistration(): void {
    if (this.registerTimer) clearInterval(this.registerTimer);
    this.registerTimer = setInterval(() => this.registerAll(), this.registerIntervalMs);
  }

  // ---- beacons ---------------------------------------------------------------------------------

  advertise(): void {
    if (!this.accepting) return;
    this.bus.publish(Subjects.deaAdvertise, "dea.advertise", buildAdvertise(this.opts.identity, this.list(), this.runningTasks.map((r) => r.instance)));
  }

  heartbeat(): void {
    this.heartbeatQueued = false;
    this.bus.publish(Subjects.deaHeartbeat, "dea.heartbeat", buildHeartbeat(this.id, this.list(), this.heartbeatTasks()));
  }

  /** Heartbeats at once on a state change, coalescing the changes of one tick into one message. */
  private queueHeartbeat(): void {
    if (this.heartbeatQueued) return;
    this.heartbeatQueued = true;
    queueMicrotask(() => this.heartbeatQueued && this.heartbeat());
  }

  /** An instance's output line, within its rate limit; a summary says how many were held back. */
  private instanceLog(i: Instance, stream: "out" | "err", line: string): void {
    const limit = this.instances.get(i.id)?.logLimit;
    if (limit && !limit.take()) return;
    const dropped = limit?.dropped() ?? 0;
    const ts = Date.now();
    if (dropped > 0)
      this.publishLog({ app: i.appId, source: "CELL", index: i.index, stream: "err", ts, line: `${dropped} log lines dropped: over ${this.opts.logLinesPerSecond} lines/s`, ...processTypeField(i) });
    this.publishLog({ app: i.appId, source: "APP", index: i.index, stream, ts, line, ...processTypeField(i) });
  }

  private publishLog(line: LogLine): void {
    this.logs.push(line);
    this.bus.publish(logsSubject(line.app), "logs", line);
  }

  // ---- resource sampling ---------------------------------------------------------------------------

  private sample(): void {
    const now = Date.now();
    const sessions = new Set<number>();
    const all: Running[] = [...this.instances.values(), ...this.runningTasks];
    for (const r of all) if (r.instance.pid && r.instance.alive) sessions.add(r.instance.pid);
    const usage = sampleSessions(sessions);
    const measureDisk = this.samples++ % 15 === 0;
    for (const r of all) {
      const i = r.instance;
      const u = usage.get(i.pid);
      if (!u) continue;
      i.usage.mem = u.rssBytes;
      if (r.lastCpu) i.usage.cpu = Math.max(0, ((u.cpuSeconds - r.lastCpu.seconds) / ((now - r.lastCpu.at) / 1000)) * 100);
      r.lastCpu = { seconds: u.cpuSeconds, at: now };
      const limit = i.start.limits.mem * 1024 * 1024;
      if (this.opts.enforceMemoryByRss && !r.runner.memoryEnforced && limit > 0 && u.rssBytes > limit) {
        this.log.warn("instance over its memory limit; killing it", { app: i.appId, index: i.index, rss: u.rssBytes, limit });
        r.runner.killForMemory();
      }
      this.reportLimits(r, measureDisk);
    }
    if (measureDisk) this.logs.prune((app) => this.list().some((i) => i.appId === app) || this.runningTasks.some((r) => r.task.droplet === app), now - 3600_000);
  }

  /**
   * Tells the app's log when the kernel holds it at a limit it would otherwise not see the cause of:
   * its disk is full (writes fail with ENOSPC), or its process cap refused a fork (EAGAIN).
   */
  private reportLimits(r: Running, measureDisk: boolean): void {
    const i = r.instance;
    const refused = r.runner.pidsRefused();
    if (refused > (r.pidsRefusedSaid ?? 0)) {
      r.pidsRefusedSaid = refused;
      this.publishLog({ app: i.appId, source: "CELL", index: i.index, stream: "err", ts: Date.now(), line: `instance ${i.index} reached its cap of ${this.opts.pidsMax} processes and threads: ${refused} forks refused so far` });
    }
    // with a volume, usage is one statfs: every sample; else a directory walk, every 15th
    if (!r.runner.hasVolume && !measureDisk) return;
    void r.runner.diskUsage().then((d) => {
      i.usage.disk = d.usedBytes;
      if (d.freeBytes === undefined) return;
      // "full": less left than a write of any size could use (ext4 hands back its preallocations when
      // a file is closed, so a volume that refused a write may show a few blocks free a moment later)
      const full = d.freeBytes < Math.max(2 << 20, (i.start.limits.disk << 20) / 50);
      if (full && !r.diskFullSaid)
        this.publishLog({ app: i.appId, source: "CELL", index: i.index, stream: "err", ts: Date.now(), line: `instance ${i.index} has used its whole disk quota of ${i.start.limits.disk} MB (${(d.freeBytes / 1048576).toFixed(1)} MB left): writes fail (no space left on device)` });
      r.diskFullSaid = full;
    });
  }

  // ---- staging ---------------------------------------------------------------------------------

  private stage(m: StagingStart, reply: string | undefined): void {
    const publishReply = (msg: Parameters<Bus["publish"]>[2] & object) => reply && this.bus.publish(reply, "staging.reply", msg as never);
    if (!this.accepting || !isSubjectToken(m.app_id)) {
      publishReply({ task_id: m.task_id, phase: "done", error: this.accepting ? "invalid app id" : "the agent is shutting down" });
      return;
    }
    publishReply({ task_id: m.task_id, phase: "started" });
    this.log.info("staging", { app: m.app_id, task: m.task_id });
    const task = stage(m, {
      workDir: join(this.opts.dataDir, "staging"),
      droplets: this.droplets,
      buildpacks: this.opts.buildpacks,
      staticServerPath: this.opts.staticServerPath,
      bunPath: this.opts.bunPath,
      pathPrefix: this.opts.pathPrefix,
      maxArchiveBytes: this.opts.maxArchiveBytes,
      timeoutMs: this.opts.stagingTimeoutMs,
      users: this.users,
      cgroups: this.opts.cgroups,
      memoryInCgroup: this.opts.memoryInCgroup ?? true,
      pidsMax: this.opts.pidsMax ?? 0,
      sandbox: this.opts.sandbox,
      volumes: this.opts.volumes,
      memoryMb: Math.max(this.opts.stagingMemoryMb ?? 1024, m.properties.resources?.memory ?? 0),
      diskMb: Math.max(this.opts.stagingDiskMb ?? 4096, m.properties.resources?.disk ?? 0),
      stack: this.opts.identity.stacks[0] ?? "bun",
      log: this.log,
      cancel: this.stopping.signal,
      onLog: (app, stream, line) => this.publishLog({ app, source: "STG", index: -1, stream, ts: Date.now(), line }),
    }).then((done) => {
      this.opts.onActivity?.();
      this.log.info(done.error ? "staging failed" : "staged", { app: m.app_id, task: m.task_id, error: done.error, sha: done.droplet_sha });
      publishReply(done);
    });
    this.stagingTasks.add(task);
    void task.finally(() => this.stagingTasks.delete(task));
  }

  // ---- restarts and shutdown -----------------------------------------------------------------------

  /**
   * Instances recorded by an earlier run of this agent: their output pipes are gone, so they cannot be
   * re-adopted. Any still alive is stopped; each is reported with droplet.exited so that the health
   * manager starts a replacement at once, and its files are removed.
   */
  private async recoverLeftovers(): Promise<void> {
    const records = this.store.list();
    for (const rec of records) {
      // a zombie is not alive: with its agent gone, a sandbox's bwrap that ended waits on an init that may never reap it
      const alive = rec.pid > 0 && !isGone(rec.pid) && (rec.startTicks === undefined || processStartTicks(rec.pid) === rec.startTicks);
      // its uid, if it had one of its own and no live agent took it since: everything running as it is its
      const user = rec.uid !== undefined ? this.users.reclaim(rec.uid) : undefined;
      const scope: ProcessScope = { leader: alive ? rec.pid : 0, tag: { key: "CF_INSTANCE_GUID", value: rec.id }, exclusiveUser: user };
      if (alive) {
        signalScope(scope, "SIGTERM");
        const deadline = Date.now() + Math.min(this.opts.stopGraceMs, 5000);
        while (!isGone(rec.pid) && Date.now() < deadline) await Bun.sleep(50);
      }
      // dead or not, what it left behind (a daemon that double-forked away) is found by its tag or uid
      const left = await killScope(scope);
      if (user && left.length === 0) this.users.release(user);
      const inst = new Instance(rec.id, rec.start);
      if (rec.task) {
        // a task cannot be re-adopted either: it failed, and the controller is told so at once
        const reason = alive ? "the agent restarted while the task ran (it was stopped)" : "the task's process ended while the agent was down";
        this.bus.publish(Subjects.taskState, "task.state", { dea: this.id, guid: rec.task.guid, droplet: rec.task.droplet, state: "FAILED", exit_status: -1, failure_reason: reason, ts: Date.now() });
      } else {
        const description = alive
          ? "stopped when the agent restarted (a running instance cannot be re-adopted)"
          : "the instance ended while the agent was down";
        // DEA_SHUTDOWN either way: the app did nothing wrong, and CRASHED would count against an index
        // the health manager has likely restarted elsewhere already.
        this.bus.publish(Subjects.dropletExited, "droplet.exited", buildExited(inst, "DEA_SHUTDOWN", -1, description));
      }
      this.log.info("cleaned up an instance from an earlier run", { app: rec.start.droplet, index: rec.start.index, instance: rec.id, was_alive: alive });
      this.store.remove(rec.id);
      const dir = join(this.opts.dataDir, "instances", rec.id);
      // its disk volume first: removing the mount point's contents would not remove the mount
      await this.opts.volumes?.sweep(dir);
      for (const d of [dir, `${dir}.img`, `${dir}.etc`]) rmSync(d, { recursive: true, force: true });
    }
    // whatever else an earlier run left mounted (an instance it never recorded, a staging task)
    for (const d of ["instances", "staging"]) await this.opts.volumes?.sweep(join(this.opts.dataDir, d));
    rmSync(join(this.opts.dataDir, "staging"), { recursive: true, force: true });
    this.opts.cgroups?.sweep(false);
  }

  /**
   * SIGTERM: tell the world every instance is leaving (DEA_EVACUATION), wait until a replacement of each
   * is heard elsewhere (router.register or a RUNNING heartbeat for its app and index), at most
   * SKIFF_AGENT_EVACUATION_MS, then stop them.
   */
  async evacuate(): Promise<void> {
    const leaving = [...this.instances.values()].filter((r) => r.instance.alive);
    const watch = new ReplacementWatch(
      leaving.map((r) => ({ appId: r.instance.appId, index: r.instance.index, instanceId: r.instance.id, processType: r.instance.processType })),
      this.id,
    );
    // listening before anything is announced: a fast replacement is not missed
    const subs = [
      this.bus.subscribe(Subjects.routerRegister, "router.register", (m) => watch.onRegister(m)),
      this.bus.subscribe(Subjects.deaHeartbeat, "dea.heartbeat", (m) => watch.onHeartbeat(m)),
    ];
    await this.bus.flush().catch(() => {});
    this.log.info("evacuating", { instances: leaving.length, max_wait_ms: this.opts.evacuationWaitMs });
    this.bus.publish(Subjects.deaShutdown, "dea.shutdown", buildShutdown(this.id, this.list()));
    this.accepting = false;
    for (const r of leaving) {
      this.bus.publish(
        Subjects.dropletExited,
        "droplet.exited",
        buildExited(r.instance, "DEA_EVACUATION", -1, "the agent is evacuating; start this instance elsewhere"),
      );
      r.exitAnnounced = true;
    }
    await this.bus.flush().catch(() => {});
    const t0 = Date.now();
    const replaced = await Promise.race([watch.done.then(() => true), Bun.sleep(this.opts.evacuationWaitMs).then(() => false)]);
    for (const s of subs) s.unsubscribe();
    if (leaving.length > 0)
      this.log.info(replaced ? "every evacuated instance has a replacement" : "stopped waiting for replacements", {
        waited_ms: Date.now() - t0,
        without_replacement: watch.pending,
      });
    await this.stopEverything("DEA_EVACUATION");
  }

  /** SIGINT (or after evacuation): stop every instance and leave the bus. */
  async stopEverything(reason: ExitReason = "DEA_SHUTDOWN"): Promise<void> {
    if (this.accepting) this.bus.publish(Subjects.deaShutdown, "dea.shutdown", buildShutdown(this.id, this.list()));
    this.accepting = false;
    for (const t of this.timers) clearInterval(t);
    if (this.registerTimer) clearInterval(this.registerTimer);
    for (const s of this.subs) s.unsubscribe();
    this.stopping.abort();
    await Promise.all([...this.instances.values(), ...this.runningTasks].map((r) => r.runner.stop(reason)));
    await Promise.race([Promise.allSettled([...this.stagingTasks]), Bun.sleep(2000)]);
    await Promise.race([Promise.allSettled([...this.removals]), Bun.sleep(5000)]);
    // a killed process leaves its cgroup a moment later
    for (let k = 0; k < 60 && this.opts.cgroups && !this.opts.cgroups.sweep(true); k++) await Bun.sleep(50);
    this.heartbeat();
    await this.bus.flush().catch(() => {});
  }
}
