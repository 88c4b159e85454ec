// Staging: picks an agent, sends `staging.<id>.start` with a reply inbox, relays progress to the
// app's log stream, and on `done` records the droplet the agent uploaded and makes it current.

import { logsSubject, stagingStartSubject, type Bus, type Logger, type StagingReply } from "../../bus/index.ts";
import type { AgentRegistry } from "./agent-registry.ts";
import type { Blobstore, UrlSigner } from "./blobstore.ts";
import { newGuid, type Actor, type AppRecord, type Store } from "./db/store.ts";
import { placeInstance } from "./placement.ts";

export const KEEP_DROPLETS = 5;

/**
 * Instances of a process type the Procfile brings: one each, as piku does (Cloud Foundry and Heroku
 * start non-web types at 0 and wait for a scale; a team pushing a web + worker Procfile expects both
 * to run). `release` is Heroku's run-once type: 0 (run it as a task).
 */
export const instancesForNewType = (type: string): number => (type === "release" ? 0 : 1);
export const STAGING_TIMEOUT_MS = 15 * 60_000;

export interface StagingOutcome {
  ok: boolean;
  dropletGuid?: string;
  error?: string;
}

export class Stager {
  /** task id → sha of the droplet uploaded for it */
  private readonly uploads = new Map<string, string>();
  private readonly tasks = new Map<string, { app: string; expires: number; packageSha: string }>();
  private readonly inFlight = new Map<string, Promise<StagingOutcome>>();

  constructor(
    private readonly deps: {
      bus: Bus; store: Store; agents: AgentRegistry; signer: UrlSigner; blobs: Blobstore; log: Logger;
      onStaged: (appGuid: string) => void;
      /** this stager's id, the same across restarts of one controller (host and port) */
      id: string;
      startedTimeoutMs?: number; totalTimeoutMs?: number;
    },
  ) {}

  /** The longest a staging may run: one marked STAGING for longer was cut short. */
  get totalTimeoutMs(): number {
    return this.deps.totalTimeoutMs ?? STAGING_TIMEOUT_MS;
  }

  /**
   * At start: fails the stagings a restart of this controller cut short, and any stager's that
   * has run longer than a staging may, so that a start restages them instead of waiting forever.
   */
  async failInterrupted(now = Date.now()): Promise<string[]> {
    const apps = await this.deps.store.failInterruptedStaging(this.deps.id, now - this.totalTimeoutMs - 60_000, "staging was cut short (the controller restarted); start the app again to restage it");
    if (apps.length) this.deps.log.warn("stagings cut short marked failed", { apps: apps.length });
    return apps;
  }

  /** Is this a live staging task? (Checked by the droplet upload endpoint.) */
  taskApp(taskId: string): string | undefined {
    const t = this.tasks.get(taskId);
    return t && t.expires > Date.now() ? t.app : undefined;
  }

  recordUpload(taskId: string, sha: string): void {
    this.uploads.set(taskId, sha);
  }

  /** Blobs staging is using before any row points at them (the blob sweep spares them). */
  blobsInUse(): { droplets: string[]; packages: string[] } {
    return { droplets: [...this.uploads.values()], packages: [...this.tasks.values()].map((t) => t.packageSha) };
  }

  staging(appGuid: string): Promise<StagingOutcome> | undefined {
    return this.inFlight.get(appGuid);
  }

  /** Starts staging the app's current package; resolves when staging ends either way. */
  stage(app: AppRecord, actor: Actor | undefined): Promise<StagingOutcome> {
    const running = this.inFlight.get(app.guid);
    if (running) return running;
    const p = this.run(app, actor).finally(() => this.inFlight.delete(app.guid));
    this.inFlight.set(app.guid, p);
    return p;
  }

  private say(app: string, line: string, stream: "out" | "err" = "out"): void {
    this.deps.bus.publish(logsSubject(app), "logs", { app, source: "API", index: -1, stream, ts: Date.now(), line });
  }

  private async fail(app: AppRecord, error: string): Promise<StagingOutcome> {
    const { store } = this.deps;
    this.say(app.guid, `Staging failed: ${error}`, "err");
    await store.tx(async (q) => {
      await store.updateApp(q, app.guid, { package_state: "FAILED", staging_error: error });
      await store.recordEvent(q, { type: "audit.app.staging.failed", actor_guid: null, actor_name: "system", target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid, data: { error } });
    });
    return { ok: false, error };
  }

  private async run(app: AppRecord, actor: Actor | undefined): Promise<StagingOutcome> {
    const { bus, store, agents, signer, log } = this.deps;
    if (!app.package_sha) return { ok: false, error: "the app has no package; upload its bits first" };
    const placement = placeInstance(agents.live(), { app: app.guid, memory: Math.min(app.memory_mb, 1024), disk: app.disk_mb, stack: app.stack });
    if (!placement.ok) return this.fail(app, placement.reason);
    const agent = placement.agent.id;
    const taskId = newGuid().replace(/-/g, "");
    const totalMs = this.totalTimeoutMs;
    this.tasks.set(taskId, { app: app.guid, expires: Date.now() + totalMs, packageSha: app.package_sha });
    await store.tx(async (q) => {
      await store.markStaging(q, app.guid, this.deps.id);
      await store.recordEvent(q, { type: "audit.app.staging.start", actor_guid: actor?.guid ?? null, actor_name: actor?.name ?? "system", target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid, data: { agent, task_id: taskId, package_sha: app.package_sha } });
    });
    this.say(app.guid, `Staging ${app.name} on agent ${agent}…`);
    log.info("staging", { app: app.name, agent, task: taskId });

    const reply = await new Promise<StagingReply | { timeout: string }>((resolve) => {
      const inbox = bus.inbox();
      let started = false;
      const finish = (r: StagingReply | { timeout: string }) => {
        clearTimeout(startTimer);
        clearTimeout(totalTimer);
        sub.unsubscribe();
        resolve(r);
      };
      const sub = bus.subscribe(inbox, "staging.reply", (m) => {
        if (m.task_id !== taskId) return;
        if (m.phase === "started") started = true;
        else finish(m);
      });
      const startTimer = setTimeout(() => {
        if (!started) finish({ timeout: `agent ${agent} did not answer the staging request within ${(this.deps.startedTimeoutMs ?? 15_000) / 1000} s` });
      }, this.deps.startedTimeoutMs ?? 15_000);
      const totalTimer = setTimeout(() => finish({ timeout: `staging took longer than ${totalMs / 1000} s` }), totalMs);
      bus.publish(stagingStartSubject(agent), "staging.start", {
        app_id: app.guid,
        task_id: taskId,
        properties: {
          ...(app.buildpack ? { buildpack: app.buildpack } : {}),
          ...(app.command ? { start_command: app.command } : {}),
          env: app.env,
          resources: { memory: app.memory_mb, disk: app.disk_mb },
        },
        download_uri: signer.sign("GET", `/internal/v1/packages/${app.package_sha}`),
        upload_uri: signer.sign("PUT", `/internal/v1/droplets/upload/${taskId}`),
      }, { reply: inbox });
    });
    this.tasks.delete(taskId);
    const uploaded = this.uploads.get(taskId);
    this.uploads.delete(taskId);

    if ("timeout" in reply) return this.fail(app, reply.timeout);
    if (reply.error) return this.fail(app, reply.error);
    const sha = reply.droplet_sha ?? uploaded;
    if (!sha || !this.deps.blobs.has("droplets", sha)) return this.fail(app, "the agent reported success but no droplet was uploaded");
    if (uploaded && uploaded !== sha) return this.fail(app, `droplet sha mismatch: agent said ${sha}, upload was ${uploaded}`);

    // The app may have changed while it staged (a newer upload restarts staging; a delete ends it).
    const dropletGuid = newGuid();
    const current = await store.tx(async (q) => {
      const now = await store.appByGuid(app.guid, q);
      if (!now) return undefined;
      await store.insertDroplet(q, { guid: dropletGuid, app_guid: app.guid, sha256: sha, detected_start_command: reply.detected_start_command ?? null, buildpack: reply.detected_buildpack ?? app.buildpack, package_sha: app.package_sha, process_types: reply.process_types ?? null, created_at: Date.now() }, KEEP_DROPLETS);
      // the Procfile's types become processes (a manifest's settings for them, made earlier, win)
      if (reply.process_types) {
        const { added, removed } = await store.processes.syncWithDroplet(q, now, Object.keys(reply.process_types), instancesForNewType);
        if (added.length || removed.length) this.say(app.guid, `Process types from the droplet: ${[...added.map((t) => `+${t}`), ...removed.map((t) => `-${t}`)].join(" ")}`);
      }
      await store.updateApp(q, app.guid, { package_state: "STAGED", staging_error: null, droplet_guid: dropletGuid, release: now.release + 1 });
      await store.recordEvent(q, { type: "audit.app.droplet.create", actor_guid: actor?.guid ?? null, actor_name: actor?.name ?? "system", target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid, data: { droplet_guid: dropletGuid, sha256: sha, buildpack: reply.detected_buildpack ?? null } });
      return now;
    });
    if (!current) return { ok: false, error: "the app was deleted while staging" };
    this.say(app.guid, `Staging complete: ${reply.detected_buildpack ?? "droplet"} ${sha.slice(0, 12)}`);
    this.deps.onStaged(app.guid);
    return { ok: true, dropletGuid };
  }
}
