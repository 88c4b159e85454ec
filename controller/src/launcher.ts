// Starts and stops instances on agents: builds the `dea.<id>.start` order (signed droplet URI,
// limits, env, routes, health check, VCAP_APPLICATION) for a placement. Shared by the API, the
// stager, rolling deploys and the health manager, in-process or in its own process.

import { randomUUID } from "node:crypto";
import { deaStartSubject, Subjects, type Bus, type DeaStart, type Logger } from "../../bus/index.ts";
import type { AgentRegistry } from "./agent-registry.ts";
import type { UrlSigner } from "./blobstore.ts";
import type { AppRecord, DropletRecord, Store } from "./db/store.ts";
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

export class InstanceLauncher {
  constructor(
    private readonly deps: {
      bus: Bus; store: Store; agents: AgentRegistry; signer: UrlSigner; log: Logger;
      /** the app's service bindings, read at every start: a restart picks up bind/unbind */
      services?: Pick<ServiceGateway, "boundServices">;
    },
  ) {}

  async start(app: AppRecord, droplet: DropletRecord, indices: number[]): Promise<StartResult[]> {
    const { bus, store, agents, signer } = this.deps;
    const uris = await store.urisOf(app.guid);
    const version = appVersion(droplet.sha256, app.release);
    // VCAP_SERVICES and DATABASE_URL are built by the agent from `services`; REDIS_URL/AMQP_URL travel in
    // env, under the user's own variables (which win)
    let bound: Awaited<ReturnType<typeof servicesForStart>> = { services: [], env: {} };
    try {
      if (this.deps.services) bound = await servicesForStart(this.deps.services, app.guid);
    } catch (err) {
      // never start an app without the credentials it was bound to (e.g. a health manager with another key)
      const error = `cannot read the app's service bindings: ${(err as Error).message}`;
      return indices.map((index) => ({ index, error }));
    }
    const results: StartResult[] = [];
    for (const index of indices) {
      const req = { app: app.guid, memory: app.memory_mb, disk: app.disk_mb, stack: app.stack };
      const p = placeInstance(agents.live(), req);
      if (!p.ok) {
        results.push({ index, error: p.reason });
        continue;
      }
      agents.charge(p.agent.id, req);
      const msg: DeaStart = {
        droplet: app.guid,
        version,
        index,
        name: app.name,
        uris,
        droplet_uri: signer.sign("GET", `/internal/v1/droplets/${droplet.sha256}`),
        droplet_sha256: droplet.sha256,
        limits: { mem: app.memory_mb, disk: app.disk_mb, fds: 16384 },
        env: { ...bound.env, ...app.env },
        services: bound.services,
        start_command: app.command || droplet.detected_start_command || "",
        health_check: {
          type: app.health_check_type,
          timeout: app.health_check_timeout,
          ...(app.health_check_endpoint ? { endpoint: app.health_check_endpoint } : {}),
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
          limits: { mem: app.memory_mb, disk: app.disk_mb, fds: 16384 },
          instance_index: index,
          started_at: new Date().toISOString(),
          start_id: randomUUID(),
        },
        ...(app.stack ? { stack: app.stack } : {}),
      };
      bus.publish(deaStartSubject(p.agent.id), "dea.start", msg);
      this.deps.log.info("instance placed", { app: app.name, index, agent: p.agent.id, version });
      results.push({ index, agent: p.agent.id });
    }
    return results;
  }

  stopInstances(appGuid: string, instances: string[]): void {
    if (instances.length) this.deps.bus.publish(Subjects.deaStop, "dea.stop", { droplet: appGuid, instances });
  }

  stopApp(appGuid: string): void {
    this.deps.bus.publish(Subjects.deaStop, "dea.stop", { droplet: appGuid });
  }
}
