// The health manager's shell: feeds heartbeats and exits into ActualState, reads desired state
// from the database, runs the pure diff and carries out its actions through the launcher.
// Only the holder of the `health-manager` lease acts, so any number may run.

import { Subjects, type Bus, type DropletExited, type Logger, type Subscription, logsSubject } from "../../../bus/index.ts";
import type { AppRecord, Store } from "../db/store.ts";
import { webProcessOf, type ProcessRecord } from "../db/process-store.ts";
import { appVersion, type InstanceLauncher } from "../launcher.ts";
import type { ActualState } from "./actual-state.ts";
import { crashBackoffMs, crashKey, diff, pendingKey, processOf, settledPending, type Action, type CrashInfo, type DesiredApp } from "./diff.ts";

export const LEASE_NAME = "health-manager";
/** A crash count is forgotten once the index has run this long. */
export const CRASH_RESET_AFTER_MS = 5 * 60_000;

export interface HealthManagerOptions {
  holder: string;
  intervalMs?: number;
  leaseTtlMs?: number;
  /** after start, wait this long for heartbeats (healthmanager.start) before acting */
  startGraceMs?: number;
  maxStartsPerPass?: number;
  /** how long a start stays pending before the index counts as missing again */
  pendingMs?: number;
}

export interface PassResult {
  leader: boolean;
  actions: Action[];
  durationMs: number;
}

export class HealthManager {
  private readonly opts: Required<HealthManagerOptions>;
  private readonly pending = new Map<string, number>();
  private readonly subs: Subscription[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private startedAt = 0;
  private running: Promise<PassResult> | undefined;
  private again = false;
  private leader = false;

  constructor(
    private readonly deps: { bus: Bus; store: Store; actual: ActualState; launcher: InstanceLauncher; log: Logger; now?: () => number },
    opts: HealthManagerOptions,
  ) {
    this.opts = { intervalMs: 1000, leaseTtlMs: 10_000, startGraceMs: 2000, maxStartsPerPass: 200, pendingMs: 90_000, ...opts };
  }

  private now(): number {
    return this.deps.now ? this.deps.now() : Date.now();
  }

  isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    const { bus } = this.deps;
    this.startedAt = this.now();
    this.subs.push(bus.subscribe(Subjects.dropletExited, "droplet.exited", (m) => void this.onExited(m).catch((err) => this.deps.log.error("recording a crash failed", { app: m.droplet, index: m.index, error: err }))));
    bus.publish(Subjects.healthManagerStart, "healthmanager.start", {});
    this.timer = setInterval(() => void this.poke(), this.opts.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
    await this.running?.catch(() => undefined);
    if (this.leader) await this.deps.store.releaseLease(LEASE_NAME, this.opts.holder).catch(() => undefined);
    this.leader = false;
  }

  /** Runs a pass now (or right after the one in progress). */
  poke(): Promise<PassResult> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.pass()
      .catch((err) => {
        this.deps.log.error("health pass failed", { error: err });
        return { leader: this.leader, actions: [], durationMs: 0 };
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          void this.poke();
        }
      });
    return this.running;
  }

  private async onExited(e: DropletExited): Promise<void> {
    const process = e.process_type ?? "web";
    this.pending.delete(pendingKey(e.droplet, e.index, e.version, process));
    if (e.reason !== "CRASHED") {
      if (e.reason !== "STOPPED") void this.poke();
      return;
    }
    if (!this.leader) return;
    const now = this.now();
    // the count and its audit event (audit.app.process.crash) are written in one transaction
    const crash = await this.deps.store.recordCrash({ app_guid: e.droplet, process_type: process, idx: e.index, exit_status: e.exit_status, exit_description: e.exit_description, at: now }, crashBackoffMs);
    if (!crash) return;
    const { crash_count: count, next_restart_at: next } = crash;
    const when = next > now ? `in ${Math.round((next - now) / 1000)} s` : "now";
    const what = process === "web" ? `instance ${e.index}` : `${process} instance ${e.index}`;
    this.logTo(e.droplet, e.index, `${what} crashed (${e.exit_description || "exit " + e.exit_status}); crash ${count}, restarting ${when}`);
    this.deps.log.info("instance crashed", { app: e.droplet, process, index: e.index, count, restart: when });
    void this.poke();
  }

  private logTo(app: string, index: number, line: string): void {
    this.deps.bus.publish(logsSubject(app), "logs", { app, source: "HEALTH", index, stream: "err", ts: Date.now(), line });
  }

  async pass(): Promise<PassResult> {
    const t0 = performance.now();
    const { store, actual, launcher, log } = this.deps;
    const now = this.now();
    this.leader = await store.acquireLease(LEASE_NAME, this.opts.holder, this.opts.leaseTtlMs, now);
    if (!this.leader || now - this.startedAt < this.opts.startGraceMs) return { leader: this.leader, actions: [], durationMs: performance.now() - t0 };

    for (const k of settledPending(this.pending, (app) => actual.liveOf(app, now), now)) this.pending.delete(k);
    const processes = await store.processes.ofStartedApps();
    const apps = await store.startedApps();
    // every process type of every started app (an app whose processes are not written yet: its web one)
    const desired: DesiredApp[] = apps.flatMap((a) =>
      (processes.get(a.guid) ?? [webProcessOf(a)]).map((p) => ({ guid: a.guid, version: appVersion(a.droplet_sha, a.release), instances: p.instances, process: p.type })),
    );
    const crashes = new Map<string, CrashInfo>();
    for (const c of await store.allCrashes()) crashes.set(crashKey(c.app_guid, c.idx, c.process_type), { count: c.crash_count, nextRestartAt: c.next_restart_at });

    const actions = this.decide(desired, crashes, now);
    await this.resetCrashCounts(crashes, desired, now);
    await this.apply(actions);
    const durationMs = performance.now() - t0;
    if (actions.length) log.info("health pass", { actions: actions.length, ms: Math.round(durationMs) });
    return { leader: true, actions, durationMs };
  }

  /**
   * The pure part of a pass, exposed for the benchmark. The old 4-argument form (an always-empty
   * skip set before `now`) is still accepted until bench/controller/controller-bench.ts drops it.
   */
  decide(desired: DesiredApp[], crashes: Map<string, CrashInfo>, now: number): Action[] {
    const { actual } = this.deps;
    return diff({ desired, actual: (app) => actual.liveOf(app, now), actualApps: actual.apps(), pending: this.pending, crashes, now });
  }

  private async resetCrashCounts(crashes: Map<string, CrashInfo>, desired: DesiredApp[], now: number): Promise<void> {
    if (crashes.size === 0) return;
    const byKey = new Map(desired.map((d) => [`${d.guid}/${processOf(d)}`, d]));
    for (const key of crashes.keys()) {
      const [app, process, idx] = key.split("/") as [string, string, string];
      const d = byKey.get(`${app}/${process}`);
      const steady = d && this.deps.actual.liveOf(app, now).some((i) => processOf(i) === process && i.index === Number(idx) && i.version === d.version && i.runningSince !== undefined && now - i.runningSince >= CRASH_RESET_AFTER_MS);
      if (steady || !d || Number(idx) >= d.instances) await this.deps.store.clearCrash(app, { type: process, idx: Number(idx) });
    }
  }

  private async apply(actions: Action[]): Promise<void> {
    const { store, launcher, log } = this.deps;
    const byApp = new Map<string, Action[]>();
    for (const a of actions) {
      const l = byApp.get(a.app);
      if (l) l.push(a);
      else byApp.set(a.app, [a]);
    }
    let startBudget = this.opts.maxStartsPerPass;
    for (const [guid, list] of byApp) {
      // Re-check desired state right before acting: the app may have changed since the pass began.
      const app = await store.appByGuid(guid);
      const droplet = app?.droplet_guid ? await store.dropletByGuid(app.droplet_guid) : undefined;
      const version = droplet && app ? appVersion(droplet.sha256, app.release) : undefined;
      const started = app?.state === "STARTED" && !!droplet;
      const processes = new Map<string, ProcessRecord>();
      if (app) for (const p of await store.processes.of(guid)) processes.set(p.type, p);
      if (app && !processes.size) processes.set("web", webProcessOf(app));
      const stops: string[] = [];
      const starts = new Map<string, number[]>();
      for (const a of list) {
        const proc = processes.get(a.process);
        if (a.type === "stop") {
          const still =
            a.reason === "not-desired" ? !started || !proc : a.reason === "extra" ? !started || !proc || a.index >= proc.instances : started;
          if (still) stops.push(a.instance);
        } else if (started && proc && a.version === version && a.index < proc.instances && startBudget > 0) {
          const l = starts.get(a.process);
          if (l) l.push(a.index);
          else starts.set(a.process, [a.index]);
          startBudget--;
        }
      }
      if (stops.length) {
        launcher.stopInstances(guid, stops);
        for (const s of stops) this.deps.actual.remove(s);
        log.info("stopping instances", { app: guid, instances: stops.length, reasons: [...new Set(list.filter((a) => a.type === "stop").map((a) => (a as { reason: string }).reason))] });
      }
      if (!app || !droplet || !version) continue;
      for (const [type, indices] of starts) await this.startProcess(app, droplet, processes.get(type)!, indices, version);
    }
  }

  private async startProcess(app: AppRecord, droplet: NonNullable<Awaited<ReturnType<Store["dropletByGuid"]>>>, proc: ProcessRecord, indices: number[], version: string): Promise<void> {
    const results = await this.deps.launcher.start(app, droplet, indices, proc);
    const until = this.now() + Math.max(this.opts.pendingMs, (proc.health_check_timeout + 30) * 1000);
    for (const r of results) {
      const key = pendingKey(app.guid, r.index, version, proc.type);
      if (r.agent) this.pending.set(key, until);
      else {
        // no agent can take it now: try again in a few seconds, not on every pass
        this.pending.set(key, this.now() + 5000);
        const what = proc.type === "web" ? `instance ${r.index}` : `${proc.type} instance ${r.index}`;
        this.logTo(app.guid, r.index, `cannot start ${what}: ${r.error}`);
        this.deps.log.warn("cannot place instance", { app: app.guid, process: proc.type, index: r.index, reason: r.error });
      }
    }
  }
}
