// Domains and routes: create, list, delete, and map/unmap routes to apps (which tells agents).

import { Elysia, t } from "elysia";
import { newGuid, routeUri } from "../db/store.ts";
import { confirmRouteHolder, ensureRoute, mapRoute, publishRoutes, splitUrl, unmapRoute } from "../route-mapping.ts";
import { accessOf, authenticate, spaceToChange, visibleDomains } from "./auth.ts";
import { loadApp } from "./apps-routes.ts";
import type { ControllerContext } from "./context.ts";
import { notFound, unprocessable, uniqueness } from "./errors.ts";
import { pageOf, parsePage, presentDomain, presentRoute } from "./present.ts";

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const pageQuery = { page: t.Optional(t.String()), per_page: t.Optional(t.String()) };

export function routeRoutes(ctx: ControllerContext) {
  const { store, bus } = ctx;
  const auth = async (request: Request) => accessOf(store, await authenticate(store, request));

  const present = async (routeGuid: string) => {
    const r = (await store.routeByGuid(routeGuid))!;
    const d = (await store.domainByGuid(r.domain_guid))!;
    return presentRoute(r, d.name, await store.appsOfRoute(r.guid));
  };

  return new Elysia({ name: "routes" })
    .get("/v3/domains", async ({ request, query }) => {
      const access = await auth(request);
      return pageOf("/v3/domains", parsePage(query), (await visibleDomains(store, access)).map(presentDomain));
    }, { query: t.Object(pageQuery), detail: { summary: "List domains: the shared ones and the private ones of orgs you can see" } })

    .post("/v3/domains", async ({ request, body, set }) => {
      const access = await auth(request);
      access.requireAdmin();
      const name = body.name.toLowerCase();
      if (!DOMAIN.test(name)) throw unprocessable(`"${body.name}" is not a valid domain name`);
      if (await store.domainByName(name)) throw uniqueness(`the domain ${name} already exists`);
      const org = body.organization_guid ? await store.orgByGuidOrName(body.organization_guid) : undefined;
      if (body.organization_guid && !org) throw unprocessable("organization not found (see `skiff orgs`)");
      // a route that already is this name (host `x` on `example.com` for `x.example.com`) would be its rival
      const dot = name.indexOf(".");
      const parent = dot > 0 ? await store.domainByName(name.slice(dot + 1)) : undefined;
      if (parent && (await store.routesOnHost(name.slice(0, dot), parent.guid)).length > 0) throw unprocessable(`routes on ${name} already exist on the domain ${parent.name}: delete them before making ${name} a domain`);
      const d = { guid: newGuid(), name, shared: !org, org_guid: org?.guid ?? null, created_at: Date.now() };
      await store.tx(async (q) => {
        await q.run(`INSERT INTO domains (guid, name, shared, org_guid, created_at) VALUES (?, ?, ?, ?, ?)`, [d.guid, d.name, d.shared ? 1 : 0, d.org_guid, d.created_at]);
        await store.recordEvent(q, { type: "audit.domain.create", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "domain", target_guid: d.guid, target_name: d.name, space_guid: null, data: { organization_guid: d.org_guid } });
      });
      set.status = 201;
      return presentDomain(d);
    }, {
      body: t.Object({ name: t.String({ minLength: 1, maxLength: 253 }), organization_guid: t.Optional(t.String({ minLength: 1, maxLength: 255 })) }),
      detail: { summary: "Create a domain (admin): shared, or private to one org with organization_guid (only that org's spaces may route on it)" },
    })

    .get("/v3/routes", async ({ request, query }) => {
      const access = await auth(request);
      const domains = new Map((await store.listDomains()).map((d) => [d.guid, d.name]));
      let routes = await store.listRoutes(access.readable);
      if (query.space_guids) {
        const s = query.space_guids.split(",");
        routes = routes.filter((r) => s.includes(r.space_guid));
      }
      const list = await Promise.all(routes.map(async (r) => presentRoute(r, domains.get(r.domain_guid) ?? "?", await store.appsOfRoute(r.guid))));
      return pageOf("/v3/routes", parsePage(query), list);
    }, { query: t.Object({ ...pageQuery, space_guids: t.Optional(t.String()) }), detail: { summary: "List routes" } })

    .post("/v3/routes", async ({ request, body, set }) => {
      const access = await auth(request);
      const space = await spaceToChange(store, access, body.space_guid);
      // another org's private domain is not found, like one that does not exist
      const domains = await visibleDomains(store, access);
      let host = (body.host ?? "").toLowerCase();
      let path = body.path ?? "";
      let domain = body.domain === undefined ? await store.defaultDomain() : domains.find((d) => d.name === body.domain!.toLowerCase());
      if (body.url) {
        const parts = splitUrl(body.url, domains.map((d) => d.name));
        if (!parts) throw unprocessable(`no known domain in ${body.url} (see \`skiff domains\`)`);
        ({ host, path } = parts);
        domain = domains.find((d) => d.name === parts.domain);
      }
      if (!domain) throw unprocessable("domain not found (see `skiff domains`)");
      const d = domain;
      const { route, created } = await store.tx(async (q) => {
        const res = await ensureRoute(store, q, { host, domain: d, path, space, admin: access.user.admin });
        if (res.created) await store.recordEvent(q, { type: "audit.route.create", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "route", target_guid: res.route.guid, target_name: routeUri(host, d.name, path), space_guid: space.guid, data: {} });
        return res;
      });
      set.status = created ? 201 : 200;
      return present(route.guid);
    }, { body: t.Object({ space_guid: t.String({ maxLength: 64 }), url: t.Optional(t.String({ maxLength: 512 })), host: t.Optional(t.String({ maxLength: 253 })), domain: t.Optional(t.String({ maxLength: 253 })), path: t.Optional(t.String({ maxLength: 128 })) }), detail: { summary: "Create a route (host + domain + path, or url); returns the existing one if it is already this space's" } })

    .delete("/v3/routes/:guid", async ({ request, params, set }) => {
      const access = await auth(request);
      const r = await store.routeByGuid(params.guid);
      if (!r || !access.canRead(r.space_guid)) throw notFound("Route");
      access.requireWrite(r.space_guid);
      const apps = await store.appsOfRoute(r.guid);
      await store.tx(async (q) => {
        await q.run(`DELETE FROM route_mappings WHERE route_guid = ?`, [r.guid]);
        await q.run(`DELETE FROM routes WHERE guid = ?`, [r.guid]);
        await store.recordEvent(q, { type: "audit.route.delete", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "route", target_guid: r.guid, target_name: r.host, space_guid: r.space_guid, data: {} });
      });
      for (const a of apps) await publishRoutes(store, bus, a);
      set.status = 204;
      return "";
    }, { detail: { summary: "Delete a route (unmaps it from its apps)" } })

    .post("/v3/routes/:guid/destinations", async ({ request, params, body }) => {
      const access = await auth(request);
      const r = await store.routeByGuid(params.guid);
      if (!r || !access.canRead(r.space_guid)) throw notFound("Route");
      const app = await loadApp(ctx, access, body.app_guid, true);
      if (app.space_guid !== r.space_guid) throw unprocessable("the route and the app are in different spaces");
      const mapped = await store.tx(async (q) => {
        await confirmRouteHolder(store, q, r, access.user.admin);
        const m = await mapRoute(q, r.guid, app.guid);
        if (m) await store.recordEvent(q, { type: "audit.app.map-route", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid, data: { route_guid: r.guid } });
        return m;
      });
      if (mapped) await publishRoutes(store, bus, app.guid);
      return present(r.guid);
    }, { body: t.Object({ app_guid: t.String({ maxLength: 64 }) }), detail: { summary: "Map a route to an app" } })

    .delete("/v3/routes/:guid/destinations/:app", async ({ request, params, set }) => {
      const access = await auth(request);
      const r = await store.routeByGuid(params.guid);
      if (!r || !access.canRead(r.space_guid)) throw notFound("Route");
      const app = await loadApp(ctx, access, params.app, true);
      const unmapped = await store.tx(async (q) => {
        const u = await unmapRoute(q, r.guid, app.guid);
        if (u) await store.recordEvent(q, { type: "audit.app.unmap-route", actor_guid: access.user.guid, actor_name: access.user.username, target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid, data: { route_guid: r.guid } });
        return u;
      });
      if (!unmapped) throw notFound("Route mapping");
      await publishRoutes(store, bus, app.guid);
      set.status = 204;
      return "";
    }, { detail: { summary: "Unmap a route from an app" } });
}
