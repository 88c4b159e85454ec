// Starts and stops instances on agents: builds the `dea.<id>.start` order (signed droplet URI,
// limits, env, routes, health check, VCAP_APPLICATION) for a placement. Shared by the API, the
// stager, rolling deploys and the health manager, in-process or in its own process.

import { randomUUID } from "node:crypto";
import { deaStartSubject, Subjects, taskStartSubject, WEB_PROCESS, type Bus, type DeaStart, type Logger, type ServiceBinding, type TaskStart } from "../../bus/index.ts";
import type { AgentRegistry } from "./agent-registry.ts";
import type { UrlSigner } from "./blobstore.ts";
import type { AppRecord, DropletRecord, Store } from "./db/store.ts";
import { webProcessOf, type ProcessRecord } from "./db/process-store.ts";
import { placeInstance } from "./placement.ts";
import { servicesForStart, type ServiceGateway } from "./services/service-gateway.ts";

export const DEFAULT_STACK = "skiff";

/** The version string instances of one release of an app carry: droplet hash + release number. */
export const appVersion = (dropletSha: string, release: number): string => `${dropletSha.slice(0, 16)}-${release}`;

export interface StartResult {
  index: number;
  agent?: string;
  error?: string;
}

/**
 * What a process type runs: its own command (manifest, API), else the droplet's for its type
 * (the Procfile's), else, for web, the droplet's detected start command.
 */
export function commandFor(process: ProcessRecord, droplet: DropletRecord): string {
  return process.command || droplet.process_types?.[process.type] || (process.type === WEB_PROCESS ? droplet.detected_start_command || "" : "");
}

/** A task as the launcher needs it (controller/src/tasks). */
export interface TaskOrder {
  guid: string;
  name: string;
  command: string;
  sequence_id: number;
  memory_mb: number;
  disk_mb: number;
}

export class InstanceLauncher {
  constructor(
    private readonly deps: {
      bus: Bus; store: Store; agents: AgentRegistry; signer: UrlSigner; log: Logger;
      /** the app's service bindings, read at every start: a restart picks up bind/unbind */
      services?: Pick<ServiceGateway, "boundServices">;
    },
  ) {}

  /** The app's bindings for a start: VCAP_SERVICES is built by the agent from `services`; URL variables travel in env too. */
  private async bound(appGuid: string): Promise<{ services: ServiceBinding[]; env: Record<string, string> } | { error: string }> {
    try {
      return this.deps.services ? await servicesForStart(this.deps.services, appGuid) : { services: [], env: {} };
    } catch (err) {
      // never start an app without the credentials it was bound to (e.g. a health manager with another key)
      return { error: `cannot read the app's service bindings: ${(err as Error).message}` };
    }
  }

  /** Starts instances `indices` of one process type of the app (web when none is given). */
  async start(app: AppRecord, droplet: DropletRecord, indices: number[], process: ProcessRecord = webProcessOf(app)): Promise<StartResult[]> {
    const { bus, store, agents, signer } = this.deps;
    const web = process.type === WEB_PROCESS;
    // only web gets the app's routes; another type runs with none (and no port check unless asked)
    const uris = web ? await store.urisOf(app.guid) : [];
    const version = appVersion(droplet.sha256, app.release);
    const command = commandFor(process, droplet);
    if (!command) {
      const error = `process type ${process.type} has no command: add a "${process.type}:" line to the Procfile, or a command to its entry in the manifest's processes:`;
      return indices.map((index) => ({ index, error }));
    }
    const bound = await this.bound(app.guid);
    if ("error" in bound) return indices.map((index) => ({ index, error: bound.error }));
    const results: StartResult[] = [];
    for (const index of indices) {
      const req = { app: app.guid, memory: process.memory_mb, disk: process.disk_mb, stack: app.stack };
      const p = placeInstance(agents.live(), req);
      if (!p.ok) {
        results.push({ index, error: p.reason });
        continue;
      }
      agents.charge(p.agent.id, req);
      const limits = { mem: process.memory_mb, disk: process.disk_mb, fds: 16384 };
      const msg: DeaStart = {
        droplet: app.guid,
        version,
        index,
        name: app.name,
        uris,
        droplet_uri: signer.sign("GET", `/internal/v1/droplets/${droplet.sha256}`),
        droplet_sha256: droplet.sha256,
        limits,
        env: { ...bound.env, ...app.env },
        services: bound.services,
        start_command: command,
        health_check: {
          type: process.health_check_type,
          timeout: process.health_check_timeout,
          ...(process.health_check_endpoint ? { endpoint: process.health_check_endpoint } : {}),
        },
        vcap_application: {
          application_id: app.guid,
          application_name: app.name,
          application_uris: uris,
          application_version: version,
          name: app.name,
          uris,
          version,
          space_id: app.space_guid,
          limits,
          instance_index: index,
          process_id: process.guid,
          process_type: process.type,
          started_at: new Date().toISOString(),
          start_id: randomUUID(),
        },
        ...(app.stack ? { stack: app.stack } : {}),
        ...(web ? {} : { process_type: process.type }),
      };
      bus.publish(deaStartSubject(p.agent.id), "dea.start", msg);
      this.deps.log.info("instance placed", { app: app.name, process: process.type, index, agent: p.agent.id, version });
      results.push({ index, agent: p.agent.id });
    }
    return results;
  }

  /** Places a task and sends it to its agent: `{agent}`, or `{error}` when no agent can take it. */
  async startTask(app: AppRecord, droplet: DropletRecord, task: TaskOrder): Promise<{ agent?: string; error?: string }> {
    const { bus, agents, signer } = this.deps;
    const bound = await this.bound(app.guid);
    if ("error" in bound) return { error: bound.error };
    const req = { app: app.guid, memory: task.memory_mb, disk: task.disk_mb, stack: app.stack };
    const p = placeInstance(agents.live(), req);
    if (!p.ok) return { error: p.reason };
    agents.charge(p.agent.id, req);
    const limits = { mem: task.memory_mb, disk: task.disk_mb, fds: 16384 };
    const msg: TaskStart = {
      guid: task.guid,
      name: task.name,
      droplet: app.guid,
      app_name: app.name,
      sequence_id: task.sequence_id,
      droplet_uri: signer.sign("GET", `/internal/v1/droplets/${droplet.sha256}`),
      droplet_sha256: droplet.sha256,
      command: task.command,
      limits,
      env: { ...bound.env, ...app.env },
      services: bound.services,
      vcap_application: {
        application_id: app.guid, application_name: app.name, name: app.name, space_id: app.space_guid,
        application_version: appVersion(droplet.sha256, app.release), limits, task_id: task.guid, task_name: task.name,
      },
      ...(app.stack ? { stack: app.stack } : {}),
    };
    bus.publish(taskStartSubject(p.agent.id), "task.start", msg);
    this.deps.log.info("task placed", { app: app.name, task: task.name, guid: task.guid, agent: p.agent.id });
    return { agent: p.agent.id };
  }

  cancelTask(guid: string): void {
    this.deps.bus.publish(Subjects.taskCancel, "task.cancel", { guid });
  }

  stopInstances(appGuid: string, instances: string[]): void {
    if (instances.length) this.deps.bus.publish(Subjects.deaStop, "dea.stop", { droplet: appGuid, instances });
  }

  stopApp(appGuid: string): void {
    this.deps.bus.publish(Subjects.deaStop, "dea.stop", { droplet: appGuid });
  }
}
