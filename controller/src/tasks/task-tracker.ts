// Runs and follows tasks (issue 17): creates the record and hands the task to an agent (the launcher
// places it like an instance), applies what agents report on task.state, and every 2 s concludes
// what agents left unsaid (task-reconcile.ts): a task whose agent died or restarted is FAILED. State
// lives in the database, so a controller that restarts picks up where it was; any number of
// controllers may run this at once (every change is one conditional UPDATE).

import { randomBytes, randomUUID } from "node:crypto";
import { logsSubject, Subjects, type Bus, type HeartbeatTask, type Logger, type Subscription, type TaskStateReport } from "../../../bus/index.ts";
import type { AgentRegistry } from "../agent-registry.ts";
import type { Actor, AppRecord, Store } from "../db/store.ts";
import type { InstanceLauncher } from "../launcher.ts";
import { reconcileTasks, type AgentTasks, type TaskDecision } from "./task-reconcile.ts";
import { TaskStore, type TaskRecord } from "./task-store.ts";

export const TASK_NAME = /^[A-Za-z0-9._-]{1,63}$/;

export class TaskError extends Error {
  override name = "TaskError";
}

export interface NewTask {
  command: string;
  name?: string;
  memory_mb?: number;
  disk_mb?: number;
}

export class TaskTracker {
  readonly tasks: TaskStore;
  private readonly heartbeats = new Map<string, AgentTasks>();
  private readonly missingSince = new Map<string, number>();
  private readonly subs: Subscription[] = [];
  private timer?: ReturnType<typeof setInterval>;
  private since = Date.now();
  private sweeping?: Promise<void>;

  constructor(
    private readonly deps: { bus: Bus; store: Store; agents: AgentRegistry; launcher: InstanceLauncher; log: Logger; now?: () => number },
    private readonly opts: { sweepIntervalMs?: number } = {},
  ) {
    this.tasks = new TaskStore(deps.store.db);
  }

  private now(): number {
    return this.deps.now ? this.deps.now() : Date.now();
  }

  start(): void {
    const { bus, log } = this.deps;
    this.since = this.now();
    const guard = (what: string, p: Promise<unknown>) => void p.catch((err) => log.error(what, { error: err }));
    this.subs.push(
      bus.subscribe(Subjects.taskState, "task.state", (m) => guard("applying a task report failed", this.onReport(m))),
      bus.subscribe(Subjects.deaHeartbeat, "dea.heartbeat", (m) => {
        if (!m.tasks) return; // an agent from before issue 17 says nothing about tasks
        this.heartbeats.set(m.dea, { heardAt: this.now(), tasks: new Map(m.tasks.map((t: HeartbeatTask) => [t.guid, t])) });
      }),
    );
    this.timer = setInterval(() => guard("the task sweep failed", this.sweep()), this.opts.sweepIntervalMs ?? 2000);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
    await this.sweeping?.catch(() => undefined);
  }

  private say(app: string, line: string, stream: "out" | "err" = "out"): void {
    this.deps.bus.publish(logsSubject(app), "logs", { app, source: "API", index: -1, stream, ts: Date.now(), line });
  }

  /** Records a task and hands it to an agent. Throws TaskError when the app cannot run one. */
  async create(actor: Actor, app: AppRecord, t: NewTask): Promise<TaskRecord> {
    const { store, launcher } = this.deps;
    const droplet = app.droplet_guid ? await store.dropletByGuid(app.droplet_guid) : undefined;
    if (!droplet) throw new TaskError(`app ${app.name} has no droplet yet: push it (a task runs the app's current droplet)`);
    const name = t.name ?? randomBytes(4).toString("hex");
    if (!TASK_NAME.test(name)) throw new TaskError(`task name "${name}" must be 1-63 letters, digits, '.', '_' and '-'`);
    const now = Date.now();
    const task = await store.tx(async (q) => {
      const record: TaskRecord = {
        guid: randomUUID(), app_guid: app.guid, name, command: t.command, state: "PENDING", sequence_id: await this.tasks.nextSequence(q, app.guid),
        memory_mb: t.memory_mb ?? app.memory_mb, disk_mb: t.disk_mb ?? app.disk_mb, droplet_guid: droplet.guid, agent_id: null,
        exit_status: null, failure_reason: null, created_at: now, updated_at: now,
      };
      await this.tasks.insert(q, record);
      await store.recordEvent(q, {
        type: "audit.app.task.create", actor_guid: actor.guid, actor_name: actor.name, target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid,
        data: { task_guid: record.guid, name, sequence_id: record.sequence_id, memory_in_mb: record.memory_mb },
      });
      return record;
    });
    const placed = await launcher.startTask(app, droplet, task);
    if (placed.agent) {
      await this.tasks.setAgent(task.guid, placed.agent);
      this.say(app.guid, `Task ${task.sequence_id} (${name}) started on agent ${placed.agent}: ${t.command}`);
    } else {
      await this.finish(app.guid, task.guid, { guid: task.guid, to: "FAILED", reason: `no agent could run it: ${placed.error}` });
    }
    return (await this.tasks.byGuid(task.guid))!;
  }

  /** Asks the agent running it to stop it: CANCELING until it says the task ended. */
  async cancel(actor: Actor, app: AppRecord, task: TaskRecord): Promise<TaskRecord> {
    const { store } = this.deps;
    if (task.state === "SUCCEEDED" || task.state === "FAILED") throw new TaskError(`task ${task.sequence_id} (${task.name}) has already ${task.state === "SUCCEEDED" ? "succeeded" : "failed"}`);
    await store.tx(async (q) => {
      await this.tasks.transition(task.guid, "CANCELING", {}, q);
      await store.recordEvent(q, {
        type: "audit.app.task.cancel", actor_guid: actor.guid, actor_name: actor.name, target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid,
        data: { task_guid: task.guid, name: task.name, sequence_id: task.sequence_id },
      });
    });
    this.deps.launcher.cancelTask(task.guid);
    return (await this.tasks.byGuid(task.guid))!;
  }

  /** Stops every unfinished task of an app (it is being deleted). */
  async cancelAll(appGuid: string): Promise<void> {
    for (const t of await this.tasks.activeOfApp(appGuid)) this.deps.launcher.cancelTask(t.guid);
  }

  private async onReport(m: TaskStateReport): Promise<void> {
    const task = await this.tasks.byGuid(m.guid);
    if (!task || task.app_guid !== m.droplet) return;
    // only the agent it was given to speaks for it (one that has not been recorded yet may: the race with setAgent)
    if (task.agent_id && task.agent_id !== m.dea) return this.deps.log.warn("a task report from an agent that does not run it", { task: m.guid, from: m.dea, agent: task.agent_id });
    await this.finish(task.app_guid, task.guid, { guid: m.guid, to: m.state, exitStatus: m.exit_status, reason: m.failure_reason });
  }

  /** Applies one decision; says in the app's log how a task ended. */
  private async finish(appGuid: string, guid: string, d: TaskDecision): Promise<void> {
    const changed = await this.tasks.transition(guid, d.to, { exitStatus: d.exitStatus ?? null, reason: d.to === "FAILED" ? d.reason ?? "failed" : null });
    if (!changed || d.to === "RUNNING") return;
    const t = await this.tasks.byGuid(guid);
    if (!t) return;
    this.missingSince.delete(guid);
    if (d.to === "SUCCEEDED") this.say(appGuid, `Task ${t.sequence_id} (${t.name}) succeeded`);
    else this.say(appGuid, `Task ${t.sequence_id} (${t.name}) failed: ${t.failure_reason}`, "err");
    this.deps.log.info("task ended", { app: appGuid, task: t.name, guid, state: t.state, exit_status: t.exit_status, reason: t.failure_reason });
  }

  /** One pass of the rules in task-reconcile.ts. */
  sweep(): Promise<void> {
    if (this.sweeping) return this.sweeping;
    this.sweeping = (async () => {
      const active = await this.tasks.active();
      if (!active.length) return;
      const live = new Set(this.deps.agents.live().map((a) => a.id));
      const decisions = reconcileTasks({ active, isLive: (a) => live.has(a), heartbeats: this.heartbeats, missingSince: this.missingSince, now: this.now(), since: this.since });
      const appOf = new Map(active.map((t) => [t.guid, t.app_guid]));
      for (const d of decisions) await this.finish(appOf.get(d.guid)!, d.guid, d);
    })().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }
}
