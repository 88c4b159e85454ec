// /v3/apps/:guid/processes and /v3/processes (issue 17), in Cloud Foundry v3's shape: list, get,
// update (command, health check), scale (instances, memory, disk) and stats per process type.
// Instances change at once (the health manager converges); memory, disk, command and health check
// take effect at the next (rolling) restart, as for the app's own settings.

import { Elysia, t } from "elysia";
import { HealthCheckTypes, WEB_PROCESS } from "../../../bus/index.ts";
import { newProcess, PROCESS_TYPE, type ProcessPatch, type ProcessRecord } from "../db/process-store.ts";
import type { AppRecord } from "../db/store.ts";
import { loadApp } from "./apps-routes.ts";
import { accessOf, authenticate, type Access } from "./auth.ts";
import type { ControllerContext } from "./context.ts";
import { notFound, unprocessable } from "./errors.ts";
import { instanceRows } from "./instance-rows.ts";
import { pageOf, parsePage, presentProcess } from "./present.ts";

const healthCheck = t.Object({
  type: t.Optional(t.Union(HealthCheckTypes.map((h) => t.Literal(h)))),
  data: t.Optional(t.Object({
    endpoint: t.Optional(t.Union([t.String({ maxLength: 256, pattern: "^/" }), t.Null()])),
    timeout: t.Optional(t.Union([t.Integer({ minimum: 1, maximum: 600 }), t.Null()])),
    invocation_timeout: t.Optional(t.Union([t.Integer(), t.Null()])),
  })),
});
const scaleFields = {
  instances: t.Optional(t.Integer({ minimum: 0, maximum: 1000 })),
  memory_in_mb: t.Optional(t.Integer({ minimum: 16, maximum: 65536 })),
  disk_in_mb: t.Optional(t.Integer({ minimum: 16, maximum: 262144 })),
};
const scaleBody = t.Object(scaleFields);
const updateBody = t.Object({ command: t.Optional(t.Union([t.String({ maxLength: 4096 }), t.Null()])), health_check: t.Optional(healthCheck), ...scaleFields });
type UpdateBody = typeof updateBody.static;

/** A body's changes as a process patch; an http check without an endpoint probes `/`. */
function patchOf(body: UpdateBody, current: Pick<ProcessRecord, "health_check_endpoint">): ProcessPatch {
  const hc = body.health_check;
  const patch: ProcessPatch = {
    instances: body.instances, memory_mb: body.memory_in_mb, disk_mb: body.disk_in_mb,
    command: body.command === undefined ? undefined : body.command === "" ? null : body.command,
    health_check_type: hc?.type,
    health_check_timeout: hc?.data?.timeout ?? undefined,
    health_check_endpoint: hc?.data?.endpoint !== undefined ? hc.data.endpoint : hc?.type === "http" ? current.health_check_endpoint ?? "/" : hc?.type ? null : undefined,
  };
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as ProcessPatch;
}

export function processRoutes(ctx: ControllerContext) {
  const { store } = ctx;
  const auth = async (request: Request) => accessOf(store, await authenticate(store, request));

  async function loadProcess(access: Access, guid: string, write = false): Promise<{ app: AppRecord; process: ProcessRecord }> {
    const process = await store.processes.byGuid(guid);
    if (!process) throw notFound("Process");
    const app = await loadApp(ctx, access, process.app_guid, write).catch(() => {
      throw notFound("Process");
    });
    return { app, process };
  }

  async function byType(access: Access, appGuid: string, type: string, write = false): Promise<{ app: AppRecord; process: ProcessRecord }> {
    const app = await loadApp(ctx, access, appGuid, write);
    const process = await store.processes.byType(app.guid, type);
    if (!process) throw notFound(`Process type ${type} of app ${app.name}`);
    return { app, process };
  }

  /** Applies a change with its audit event; pokes the health manager when instances changed. */
  async function change(access: Access, app: AppRecord, process: ProcessRecord | undefined, type: string, patch: ProcessPatch, event: "audit.app.process.update" | "audit.app.process.scale"): Promise<ProcessRecord> {
    const saved = await store.tx(async (q) => {
      let p = process ?? (await store.processes.byType(app.guid, type, q));
      if (!p) {
        // a type the app has not got yet (a manifest's processes: before the first staging)
        p = newProcess(app, type, patch.instances ?? 0);
        await store.processes.insert(q, p);
      }
      await store.processes.update(q, p, patch);
      await store.recordEvent(q, {
        type: event, actor_guid: access.user.guid, actor_name: access.user.username, target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid,
        data: { process_guid: p.guid, process_type: p.type, ...patch },
      });
      return (await store.processes.byGuid(p.guid, q))!;
    });
    if (patch.instances !== undefined) ctx.pokeHealth();
    return saved;
  }

  const stats = async (app: AppRecord, process: ProcessRecord) => {
    const rows = (await instanceRows(ctx, app, [process])).filter((r) => r.process_type === process.type);
    return {
      resources: rows.map((r) => ({
        type: process.type, index: r.index, state: r.state === "FLAPPING" ? "CRASHED" : r.state, instance_guid: r.instance_id, host: r.host, uptime: r.uptime,
        usage: r.usage, mem_quota: (r.quotas as { mem: number }).mem, disk_quota: (r.quotas as { disk: number }).disk, details: r.details ?? null, crash_count: r.crash_count,
      })),
    };
  };

  return new Elysia({ name: "processes" })
    .get("/v3/apps/:guid/processes", async ({ request, params, query }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid);
      const list = (await store.processes.of(app.guid)).map((p) => presentProcess(p, app.space_guid));
      return pageOf(`/v3/apps/${app.guid}/processes`, parsePage(query), list);
    }, { query: t.Object({ page: t.Optional(t.String()), per_page: t.Optional(t.String()) }), detail: { summary: "An app's processes, one per type (web first)" } })

    .get("/v3/apps/:guid/processes/:type", async ({ request, params }) => {
      const { app, process } = await byType(await auth(request), params.guid, params.type);
      return presentProcess(process, app.space_guid);
    }, { detail: { summary: "One process type of an app" } })

    .patch("/v3/apps/:guid/processes/:type", async ({ request, params, body }) => {
      const access = await auth(request);
      if (!PROCESS_TYPE.test(params.type)) throw unprocessable(`process type "${params.type}" must be 1-63 letters, digits, '-' and '_'`);
      const app = await loadApp(ctx, access, params.guid, true);
      const process = await store.processes.byType(app.guid, params.type);
      const saved = await change(access, app, process, params.type, patchOf(body, process ?? { health_check_endpoint: null }), "audit.app.process.update");
      return presentProcess(saved, app.space_guid);
    }, { body: updateBody, detail: { summary: "Update one process type of an app, making it when the app has not got it yet (as a manifest's processes: do)" } })

    .post("/v3/apps/:guid/processes/:type/actions/scale", async ({ request, params, body }) => {
      const access = await auth(request);
      const { app, process } = await byType(access, params.guid, params.type, true);
      return presentProcess(await change(access, app, process, process.type, patchOf(body, process), "audit.app.process.scale"), app.space_guid);
    }, { body: scaleBody, detail: { summary: "Scale one process type of an app (instances at once; memory and disk at the next restart)" } })

    .get("/v3/processes/:guid", async ({ request, params }) => {
      const { app, process } = await loadProcess(await auth(request), params.guid);
      return presentProcess(process, app.space_guid);
    }, { detail: { summary: "Get a process" } })

    .patch("/v3/processes/:guid", async ({ request, params, body }) => {
      const access = await auth(request);
      const { app, process } = await loadProcess(access, params.guid, true);
      return presentProcess(await change(access, app, process, process.type, patchOf(body, process), "audit.app.process.update"), app.space_guid);
    }, { body: updateBody, detail: { summary: "Update a process (command, health check; instances, memory, disk)" } })

    .post("/v3/processes/:guid/actions/scale", async ({ request, params, body }) => {
      const access = await auth(request);
      const { app, process } = await loadProcess(access, params.guid, true);
      return presentProcess(await change(access, app, process, process.type, patchOf(body, process), "audit.app.process.scale"), app.space_guid);
    }, { body: scaleBody, detail: { summary: "Scale a process (instances at once; memory and disk at the next restart)" } })

    .get("/v3/processes/:guid/stats", async ({ request, params }) => {
      const { app, process } = await loadProcess(await auth(request), params.guid);
      return stats(app, process);
    }, { detail: { summary: "A process's instances with their state and usage (asks every agent)" } })

    .delete("/v3/apps/:guid/processes/:type", async ({ request, params, set }) => {
      const access = await auth(request);
      const { app, process } = await byType(access, params.guid, params.type, true);
      if (process.type === WEB_PROCESS) throw unprocessable("the web process is the app's own: scale it to 0 instances instead");
      await store.tx(async (q) => {
        await store.processes.remove(q, process);
        await store.recordEvent(q, { type: "audit.app.process.delete", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid, data: { process_type: process.type } });
      });
      ctx.pokeHealth();
      set.status = 204;
      return "";
    }, { detail: { summary: "Remove a process type from an app (its instances stop); a Procfile type comes back at the next staging" } });
}
