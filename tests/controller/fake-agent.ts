// A fake agent speaking the bus protocol (our own interface), for controller tests: advertises,
// stages by fetching the package and uploading a droplet, "runs" instances and heartbeats them.

import { createHash, randomUUID } from "node:crypto";
import { deaStartSubject, logsSubject, stagingStartSubject, Subjects, taskStartSubject, type Bus, type DeaStart, type HeartbeatDroplet, type HeartbeatTask, type TaskStart } from "../../bus/index.ts";

export interface FakeInstance extends HeartbeatDroplet {
  start: DeaStart;
}

export interface FakeTask extends HeartbeatTask {
  start: TaskStart;
}

export class FakeAgent {
  readonly instances = new Map<string, FakeInstance>();
  /** tasks it was given (issue 17): RUNNING until finishTask() or a cancel */
  readonly tasks = new Map<string, FakeTask>();
  /** what staging reports as the droplet's process types (issue 17) */
  processTypes: Record<string, string> | undefined;
  readonly starts: DeaStart[] = [];
  readonly stops: unknown[] = [];
  readonly fetched: { url: string; status: number }[] = [];
  /** what staging answers: override to fail */
  stagingError: string | undefined;
  /** instances turn RUNNING at once unless this is false */
  autoRun = true;
  /** when set, start orders wait here until `releaseHeld()` (an agent slow to act) */
  holdStarts = false;
  readonly held: DeaStart[] = [];
  /** when set, every instance started crashes at once (an app that cannot start) */
  crashOnStart = false;
  /** when set, staging answers "started" and then nothing (a staging in progress) */
  holdStaging = false;
  /** what `dea.find.droplet` with include_stats reports for an instance's usage */
  usage = { cpu: 12.5, mem: 48 * 1024 * 1024, disk: 3 * 1024 * 1024 };
  private subs: { unsubscribe(): void }[] = [];

  constructor(readonly bus: Bus, readonly id: string, private readonly http: (req: Request) => Promise<Response>, readonly zone = "default") {}

  advertise(): void {
    const counts: Record<string, number> = {};
    for (const i of this.instances.values()) counts[i.droplet] = (counts[i.droplet] ?? 0) + 1;
    this.bus.publish(Subjects.deaAdvertise, "dea.advertise", { id: this.id, ip: "127.0.0.1", stacks: ["bun"], available_memory: 8192, available_disk: 65536, app_id_to_count: counts, placement_properties: { zone: this.zone } });
  }

  heartbeat(): void {
    this.bus.publish(Subjects.deaHeartbeat, "dea.heartbeat", { dea: this.id, droplets: [...this.instances.values()].map(({ start: _s, ...hb }) => hb), tasks: [...this.tasks.values()].map(({ start: _s, ...t }) => t) });
  }

  begin(): this {
    const b = this.bus;
    this.subs.push(
      b.subscribe(Subjects.deaLocate, "dea.locate", () => this.advertise()),
      b.subscribe(Subjects.healthManagerStart, "healthmanager.start", () => this.heartbeat()),
      b.subscribe(deaStartSubject(this.id), "dea.start", (m) => {
        if (this.holdStarts) this.held.push(m);
        else void this.run(m);
      }),
      b.subscribe(Subjects.deaStop, "dea.stop", (f) => {
        this.stops.push(f);
        for (const i of [...this.instances.values()]) {
          if (i.droplet !== f.droplet || (f.version && i.version !== f.version) || (f.instances && !f.instances.includes(i.instance)) || (f.indices && !f.indices.includes(i.index))) continue;
          this.instances.delete(i.instance);
          b.publish(Subjects.dropletExited, "droplet.exited", { droplet: i.droplet, version: i.version, instance: i.instance, index: i.index, reason: "STOPPED", exit_status: 0, exit_description: "stopped", crash_timestamp: Date.now() / 1000, ...(i.process_type ? { process_type: i.process_type } : {}) });
        }
      }),
      b.subscribe(Subjects.deaFindDroplet, "dea.find.droplet", (f, meta) => {
        for (const i of this.instances.values()) {
          if (i.droplet !== f.droplet || !meta.reply) continue;
          const stats = f.include_stats
            ? { name: i.start.name, uris: i.start.uris, host: "127.0.0.1", port: 61000 + i.index, uptime: 42, usage: { ...this.usage, time: Date.now() / 1000 }, quotas: i.start.limits }
            : undefined;
          b.publish(meta.reply, "dea.find.droplet.reply", { dea: this.id, droplet: i.droplet, version: i.version, instance: i.instance, index: i.index, state: i.state, state_timestamp: i.state_timestamp, ...(stats ? { stats } : {}), ...(i.process_type ? { process_type: i.process_type } : {}) });
        }
      }),
      b.subscribe(Subjects.deaLogsRecent, "dea.logs.recent", (f, meta) => {
        const mine = this.running(f.droplet);
        if (!meta.reply || mine.length === 0) return;
        const lines = mine.map((i) => ({ app: i.droplet, source: "APP" as const, index: i.index, stream: "out" as const, ts: Date.now(), line: `recent line from instance ${i.index}` }));
        b.publish(meta.reply, "dea.logs.recent.reply", { dea: this.id, lines });
      }),
      b.subscribe(stagingStartSubject(this.id), "staging.start", async (m, meta) => {
        const reply = meta.reply!;
        b.publish(reply, "staging.reply", { task_id: m.task_id, phase: "started" });
        if (this.holdStaging) return;
        const pkg = await this.http(new Request(m.download_uri));
        this.fetched.push({ url: m.download_uri, status: pkg.status });
        b.publish(logsSubject(m.app_id), "logs", { app: m.app_id, source: "STG", index: -1, stream: "out", ts: Date.now(), line: "fake buildpack: compiling" });
        if (this.stagingError) {
          b.publish(reply, "staging.reply", { task_id: m.task_id, phase: "done", error: this.stagingError });
          return;
        }
        const droplet = Bun.gzipSync(new Uint8Array(await pkg.arrayBuffer()));
        const put = await this.http(new Request(m.upload_uri, { method: "PUT", body: droplet }));
        const { sha256 } = (await put.json()) as { sha256: string };
        b.publish(reply, "staging.reply", { task_id: m.task_id, phase: "done", droplet_sha: sha256, detected_buildpack: "fake", detected_start_command: "bun index.ts", ...(this.processTypes ? { process_types: this.processTypes } : {}) });
      }),
      b.subscribe(taskStartSubject(this.id), "task.start", (m) => {
        this.tasks.set(m.guid, { guid: m.guid, state: "RUNNING", start: m });
        b.publish(Subjects.taskState, "task.state", { dea: this.id, guid: m.guid, droplet: m.droplet, state: "RUNNING", ts: Date.now() });
        this.heartbeat();
      }),
      b.subscribe(Subjects.taskCancel, "task.cancel", (m) => {
        if (this.tasks.get(m.guid)?.state === "RUNNING") this.finishTask(m.guid, 143, "cancelled");
      }),
    );
    this.advertise();
    return this;
  }

  private async run(m: DeaStart): Promise<void> {
    this.starts.push(m);
    const res = await this.http(new Request(m.droplet_uri));
    this.fetched.push({ url: m.droplet_uri, status: res.status });
    const sha = createHash("sha256").update(new Uint8Array(await res.arrayBuffer())).digest("hex");
    if (sha !== m.droplet_sha256) throw new Error("droplet sha mismatch");
    const inst: FakeInstance = { droplet: m.droplet, version: m.version, instance: randomUUID(), index: m.index, state: this.autoRun ? "RUNNING" : "STARTING", state_timestamp: Date.now() / 1000, start: m, ...(m.process_type ? { process_type: m.process_type } : {}) };
    this.instances.set(inst.instance, inst);
    if (this.crashOnStart) return this.crash(inst.instance);
    this.heartbeat();
  }

  /** Acts on the start orders held while `holdStarts` was set. */
  releaseHeld(): void {
    this.holdStarts = false;
    for (const m of this.held.splice(0)) void this.run(m);
  }

  /** Simulates SIGKILL of one instance: the agent reports it CRASHED. */
  crash(instanceId: string): void {
    const i = this.instances.get(instanceId)!;
    this.instances.delete(instanceId);
    this.bus.publish(Subjects.dropletExited, "droplet.exited", { droplet: i.droplet, version: i.version, instance: i.instance, index: i.index, reason: "CRASHED", exit_status: 137, exit_description: "killed by SIGKILL", crash_timestamp: Date.now() / 1000, ...(i.process_type ? { process_type: i.process_type } : {}) });
  }

  /** Ends a task as its process would: status 0 succeeds, anything else fails with the reason. */
  finishTask(guid: string, status: number, reason = `exited with status ${status}`, report = true): void {
    const t = this.tasks.get(guid)!;
    const state = status === 0 ? "SUCCEEDED" : "FAILED";
    Object.assign(t, { state, exit_status: status, ...(state === "FAILED" ? { failure_reason: reason } : {}) });
    if (report) this.bus.publish(Subjects.taskState, "task.state", { dea: this.id, guid, droplet: t.start.droplet, state, exit_status: status, ...(state === "FAILED" ? { failure_reason: reason } : {}), ts: Date.now() });
    this.heartbeat();
  }

  running(app: string): FakeInstance[] {
    return [...this.instances.values()].filter((i) => i.droplet === app);
  }

  end(): void {
    for (const s of this.subs) s.unsubscribe();
  }
}
