// /v3/apps: create, list, get, update, delete; start/stop/restart; env; droplets and rollback;
// live instances (dea.find.droplet).

import { Elysia, t } from "elysia";
import { HealthCheckTypes, vcapServices } from "../../../bus/index.ts";
import { newGuid, type AppRecord, type Actor } from "../db/store.ts";
import { serviceBindingOf } from "../../broker/index.ts";
import { defaultHost, ensureRoute, mapRoute, publishRoutes } from "../route-mapping.ts";
import { accessOf, authenticate, spaceToChange, type Access } from "./auth.ts";
import type { ControllerContext } from "./context.ts";
import { notFound, unprocessable, uniqueness } from "./errors.ts";
import { paginated, parsePage, presentApp, presentDroplet } from "./present.ts";
import { instanceRows } from "./instance-rows.ts";
import { instancesForNewType } from "../stager.ts";

export const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const healthCheck = t.Object({
  type: t.Optional(t.Union(HealthCheckTypes.map((h) => t.Literal(h)))),
  endpoint: t.Optional(t.Union([t.String({ maxLength: 256, pattern: "^/" }), t.Null()])),
  timeout: t.Optional(t.Integer({ minimum: 1, maximum: 600 })),
});

const appFields = {
  instances: t.Optional(t.Integer({ minimum: 0, maximum: 1000 })),
  memory_in_mb: t.Optional(t.Integer({ minimum: 16, maximum: 65536 })),
  disk_in_mb: t.Optional(t.Integer({ minimum: 16, maximum: 262144 })),
  command: t.Optional(t.Union([t.String({ maxLength: 4096 }), t.Null()])),
  buildpack: t.Optional(t.Union([t.String({ maxLength: 256 }), t.Null()])),
  stack: t.Optional(t.Union([t.String({ maxLength: 64 }), t.Null()])),
  environment_variables: t.Optional(t.Record(t.String(), t.String({ maxLength: 65536 }))),
  health_check: t.Optional(healthCheck),
};

export const createAppBody = t.Object({
  name: t.String({ minLength: 1, maxLength: 63 }),
  space_guid: t.Optional(t.String({ maxLength: 64 })),
  no_route: t.Optional(t.Boolean()),
  random_route: t.Optional(t.Boolean()),
  ...appFields,
});

export const updateAppBody = t.Object({ name: t.Optional(t.String({ minLength: 1, maxLength: 63 })), ...appFields });

function checkEnv(env: Record<string, string> | undefined): void {
  if (!env) return;
  const keys = Object.keys(env);
  if (keys.length > 500) throw unprocessable("at most 500 environment variables");
  for (const k of keys) {
    if (!ENV_NAME.test(k)) throw unprocessable(`environment variable name "${k}" must be letters, digits and '_', not starting with a digit`);
    if (k === "PORT" || k.startsWith("VCAP_") || k.startsWith("CF_INSTANCE_")) throw unprocessable(`environment variable "${k}" is set by the platform and cannot be set by hand`);
  }
}

function checkName(name: string): void {
  if (!APP_NAME.test(name)) throw unprocessable(`app name "${name}" must start with a letter or digit and hold only letters, digits, '.', '_' and '-' (at most 63)`);
}

export async function loadApp(ctx: ControllerContext, access: Access, guid: string, write = false): Promise<AppRecord> {
  const app = await ctx.store.appByGuid(guid);
  if (!app || !access.canRead(app.space_guid)) throw notFound("App");
  if (write) access.requireWrite(app.space_guid);
  return app;
}

const actorOf = (a: Access): Actor => ({ guid: a.user.guid, name: a.user.username });

export function appRoutes(ctx: ControllerContext) {
  const { store } = ctx;
  const auth = async (request: Request) => accessOf(store, await authenticate(store, request));
  const event = (a: Access, app: AppRecord, type: string, data: Record<string, unknown> = {}) => ({
    type, actor_guid: a.user.guid, actor_name: a.user.username, target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid, data,
  });

  /** Makes the app run its current droplet (staging first when the package is newer). */
  async function start(access: Access, app: AppRecord, restart: boolean): Promise<AppRecord> {
    if (!app.package_sha) throw unprocessable(`app ${app.name} has no package yet: upload its bits (skiff push) before starting it`);
    const droplet = app.droplet_guid ? await store.dropletByGuid(app.droplet_guid) : undefined;
    const needsStaging = !droplet || droplet.package_sha !== app.package_sha;
    await store.tx(async (q) => {
      await store.updateApp(q, app.guid, {
        state: "STARTED",
        ...(needsStaging ? { package_state: "PENDING" as const } : {}),
        // a restart is a new release: the health manager rolls instances over to it one by one
        ...(!needsStaging && (restart || app.state === "STOPPED") ? { release: app.release + 1 } : {}),
      });
      await store.recordEvent(q, event(access, app, restart ? "audit.app.restart" : "audit.app.start", { staging: needsStaging }));
      if (app.state === "STOPPED") await store.clearCrash(app.guid, {}, q);
    });
    if (needsStaging) {
      const fresh = (await store.appByGuid(app.guid))!;
      void ctx.stager.stage(fresh, actorOf(access));
    } else ctx.pokeHealth();
    return (await store.appByGuid(app.guid))!;
  }

  return new Elysia({ name: "apps" })
    .get("/v3/apps", async ({ request, query }) => {
      const access = await auth(request);
      const page = parsePage(query);
      const spaceFilter = query.space_guids ? query.space_guids.split(",") : undefined;
      let spaces = access.readable;
      if (spaceFilter) spaces = spaces ? spaceFilter.filter((s) => spaces!.includes(s)) : spaceFilter;
      const names = query.names ? query.names.split(",") : undefined;
      const { total, apps } = await store.listApps({ spaceGuids: spaces, names, limit: page.perPage, offset: (page.page - 1) * page.perPage });
      const withRoutes = query.include === "routes";
      const resources = await Promise.all(apps.map(async (a) => presentApp(a, withRoutes ? { routes: await store.urisOf(a.guid) } : {})));
      return paginated("/v3/apps", page, total, resources);
    }, { query: t.Object({ page: t.Optional(t.String()), per_page: t.Optional(t.String()), names: t.Optional(t.String()), space_guids: t.Optional(t.String()), include: t.Optional(t.String()) }), detail: { summary: "List apps" } })

    .post("/v3/apps", async ({ request, body, set }) => {
      const access = await auth(request);
      checkName(body.name);
      checkEnv(body.environment_variables);
      // without space_guid: the user's first space (any space for an admin)
      const space = await spaceToChange(store, access, body.space_guid ?? (access.readable ? access.readable[0] : (await store.listSpaces())[0]?.guid));
      const spaceGuid = space.guid;
      if (await store.appByName(spaceGuid, body.name)) throw uniqueness(`an app named ${body.name} already exists in this space`);
      const now = Date.now();
      const app: AppRecord = {
        guid: newGuid(), name: body.name, space_guid: spaceGuid, state: "STOPPED",
        instances: body.instances ?? 1, memory_mb: body.memory_in_mb ?? 256, disk_mb: body.disk_in_mb ?? 1024,
        command: body.command ?? null, env: body.environment_variables ?? {}, buildpack: body.buildpack ?? null, stack: body.stack ?? null,
        health_check_type: body.health_check?.type ?? "port", health_check_endpoint: body.health_check?.endpoint ?? null,
        health_check_timeout: body.health_check?.timeout ?? 60,
        package_sha: null, package_state: "AWAITING_UPLOAD", staging_error: null, droplet_guid: null, release: 0, created_at: now, updated_at: now,
      };
      if (app.health_check_type === "http" && !app.health_check_endpoint) app.health_check_endpoint = "/";
      const domain = await store.defaultDomain();
      await store.tx(async (q) => {
        await store.insertApp(q, app);
        await store.recordEvent(q, event(access, app, "audit.app.create", { instances: app.instances, memory: app.memory_mb }));
        if (!body.no_route && domain) {
          const host = defaultHost(app.name, body.random_route ? `-${Math.random().toString(36).slice(2, 8).padEnd(6, "0")}` : "");
          const { route } = await ensureRoute(store, q, { host, domain, path: "", space, admin: access.user.admin });
          const other = await q.get(`SELECT app_guid FROM route_mappings WHERE route_guid = ?`, [route.guid]);
          if (other) throw uniqueness(`the route ${host}.${domain.name} is already mapped to another app; use --random-route or a manifest route`);
          await mapRoute(q, route.guid, app.guid);
        }
      });
      set.status = 201;
      return presentApp(app, { routes: await store.urisOf(app.guid) });
    }, { body: createAppBody, detail: { summary: "Create an app" } })

    .get("/v3/apps/:guid", async ({ request, params }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid);
      return presentApp(app, { routes: await store.urisOf(app.guid) });
    }, { detail: { summary: "Get an app" } })

    .patch("/v3/apps/:guid", async ({ request, params, body }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid, true);
      if (body.name !== undefined) {
        checkName(body.name);
        const other = await store.appByName(app.space_guid, body.name);
        if (other && other.guid !== app.guid) throw uniqueness(`an app named ${body.name} already exists in this space`);
      }
      checkEnv(body.environment_variables);
      const hc = body.health_check;
      const patch = {
        name: body.name, instances: body.instances, memory_mb: body.memory_in_mb, disk_mb: body.disk_in_mb,
        command: body.command, buildpack: body.buildpack, stack: body.stack, env: body.environment_variables,
        health_check_type: hc?.type, health_check_endpoint: hc?.endpoint ?? (hc?.type === "http" ? app.health_check_endpoint ?? "/" : hc?.type ? null : undefined),
        health_check_timeout: hc?.timeout,
      };
      const changed = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
      await store.tx(async (q) => {
        await store.updateApp(q, app.guid, changed);
        const data = { ...changed } as Record<string, unknown>;
        if (data.env) data.env = "[PRIVATE DATA HIDDEN]";
        await store.recordEvent(q, event(access, app, body.instances !== undefined && Object.keys(changed).length === 1 ? "audit.app.scale" : "audit.app.update", data));
      });
      if (body.instances !== undefined) ctx.pokeHealth();
      return presentApp((await store.appByGuid(app.guid))!, { routes: await store.urisOf(app.guid) });
    }, { body: updateAppBody, detail: { summary: "Update an app (scale, command, env, health check)" } })

    .delete("/v3/apps/:guid", async ({ request, params, set }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid, true);
      // the broker removes the app's credentials first (CF does the same); a failure keeps the app
      await ctx.services.unbindAll(actorOf(access), app.guid);
      // its tasks end with it (their records go with the app)
      await ctx.tasks.cancelAll(app.guid);
      await store.tx(async (q) => {
        await store.deleteApp(q, app.guid);
        await store.recordEvent(q, event(access, app, "audit.app.delete"));
      });
      ctx.launcher.stopApp(app.guid);
      ctx.pokeHealth();
      set.status = 204;
      return "";
    }, { detail: { summary: "Delete an app and stop its instances" } })

    .post("/v3/apps/:guid/actions/start", async ({ request, params }) => {
      const access = await auth(request);
      return presentApp(await start(access, await loadApp(ctx, access, params.guid, true), false));
    }, { detail: { summary: "Start an app (stages first when its package is new)" } })

    .post("/v3/apps/:guid/actions/restart", async ({ request, params }) => {
      const access = await auth(request);
      return presentApp(await start(access, await loadApp(ctx, access, params.guid, true), true));
    }, { detail: { summary: "Restart an app: a rolling restart onto a new release" } })

    .post("/v3/apps/:guid/actions/stop", async ({ request, params }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid, true);
      await store.tx(async (q) => {
        await store.updateApp(q, app.guid, { state: "STOPPED" });
        await store.recordEvent(q, event(access, app, "audit.app.stop"));
      });
      ctx.launcher.stopApp(app.guid);
      ctx.pokeHealth();
      return presentApp((await store.appByGuid(app.guid))!);
    }, { detail: { summary: "Stop an app" } })

    .post("/v3/apps/:guid/actions/stage", async ({ request, params }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid, true);
      if (!app.package_sha) throw unprocessable("upload the app's bits before staging it");
      const outcome = await ctx.stager.stage(app, actorOf(access));
      if (!outcome.ok) throw unprocessable(`staging failed: ${outcome.error}`);
      return presentApp((await store.appByGuid(app.guid))!);
    }, { detail: { summary: "Stage the current package and wait for the droplet" } })

    .get("/v3/apps/:guid/env", async ({ request, params }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid, true);
      // as CF: what its instances get from bindings (credentials included: developers only)
      const vcap = vcapServices((await ctx.services.boundServices(app.guid)).map(serviceBindingOf));
      return { environment_variables: app.env, system_env_json: { VCAP_SERVICES: vcap } };
    }, { detail: { summary: "An app's environment variables and VCAP_SERVICES from its bindings (space developers only)" } })

    .patch("/v3/apps/:guid/env", async ({ request, params, body }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid, true);
      const env = { ...app.env };
      for (const [k, v] of Object.entries(body.var)) {
        if (v === null) delete env[k];
        else env[k] = v;
      }
      checkEnv(env);
      await store.tx(async (q) => {
        await store.updateApp(q, app.guid, { env });
        await store.recordEvent(q, event(access, app, "audit.app.update", { environment_variables: Object.keys(body.var) }));
      });
      return { environment_variables: env };
    }, { body: t.Object({ var: t.Record(t.String(), t.Union([t.String({ maxLength: 65536 }), t.Null()])) }), detail: { summary: "Set (string) or unset (null) environment variables; restart to apply" } })

    .get("/v3/apps/:guid/droplets", async ({ request, params, query }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid);
      const list = (await store.dropletsOf(app.guid)).map((d) => presentDroplet(d, d.guid === app.droplet_guid));
      const page = parsePage(query);
      return paginated(`/v3/apps/${app.guid}/droplets`, page, list.length, list.slice((page.page - 1) * page.perPage, page.page * page.perPage));
    }, { query: t.Object({ page: t.Optional(t.String()), per_page: t.Optional(t.String()) }), detail: { summary: "The app's current and recent droplets" } })

    .post("/v3/apps/:guid/actions/rollback", async ({ request, params, body }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid, true);
      const droplets = await store.dropletsOf(app.guid);
      const target = body.droplet_guid ? droplets.find((d) => d.guid === body.droplet_guid) : droplets.find((d) => d.guid !== app.droplet_guid);
      if (!target) throw unprocessable(body.droplet_guid ? "that droplet is not one of this app's recent droplets (see `skiff droplets`)" : "there is no earlier droplet to roll back to");
      await store.tx(async (q) => {
        await store.updateApp(q, app.guid, { droplet_guid: target.guid, package_sha: target.package_sha, package_state: "STAGED", release: app.release + 1 });
        // every process type rolls back with it: the droplet's Procfile decides which types there are
        if (target.process_types) await store.processes.syncWithDroplet(q, app, Object.keys(target.process_types), instancesForNewType);
        await store.recordEvent(q, event(access, app, "audit.app.rollback", { from: app.droplet_guid, to: target.guid }));
      });
      ctx.pokeHealth();
      return presentApp((await store.appByGuid(app.guid))!);
    }, { body: t.Object({ droplet_guid: t.Optional(t.String({ maxLength: 64 })) }), detail: { summary: "Run an earlier droplet (rolling)" } })

    .get("/v3/apps/:guid/instances", async ({ request, params }) => {
      const access = await auth(request);
      const app = await loadApp(ctx, access, params.guid);
      const rows = await instanceRows(ctx, app);
      return { state: app.state, package_state: app.package_state, staging_error: app.staging_error, resources: rows };
    }, { detail: { summary: "Live instances of an app, every process type (asks every agent: dea.find.droplet), with crash state" } });
}
