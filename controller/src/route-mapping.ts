// Creating routes and mapping them to apps, and telling agents when an app's routes change
// (`dea.update`), so running instances re-register only what changed.

import { Subjects, type Bus } from "../../bus/index.ts";
import type { Queryable } from "./db/database.ts";
import { newGuid, type DomainRecord, type Store, type RouteRecord, type SpaceRecord } from "./db/store.ts";
import { notFound, unprocessable } from "./api/errors.ts";
import { judgeClaim, type ClaimKind } from "./route-claims.ts";

/** The host a new app gets by default: its name, made a DNS label (`suffix` for a random route). */
export function defaultHost(appName: string, suffix = ""): string {
  const h = appName.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63 - suffix.length).replace(/-+$/, "");
  return (h || "app") + suffix;
}

/** Splits `host.domain/path` against the known domains (the longest matching domain wins). */
export function splitUrl(url: string, domains: string[]): { host: string; domain: string; path: string } | undefined {
  const u = url.replace(/^https?:\/\//, "").toLowerCase();
  const slash = u.indexOf("/");
  const fqdn = slash >= 0 ? u.slice(0, slash) : u;
  const path = slash >= 0 ? u.slice(slash).replace(/\/+$/, "") : "";
  let best: string | undefined;
  for (const d of domains) if ((fqdn === d || fqdn.endsWith("." + d)) && (!best || d.length > best.length)) best = d;
  if (!best) return undefined;
  return { host: fqdn === best ? "" : fqdn.slice(0, -(best.length + 1)), domain: best, path };
}

/** What a route claim needs: the route, the space that would hold it, and whether an admin asks. */
export interface RouteClaimRequest { host: string; domain: DomainRecord; path: string; space: SpaceRecord; admin: boolean }

/**
 * Takes the host's lock, gathers what route-claims.ts judges by and refuses with its message.
 * Runs inside the caller's transaction, which then inserts or maps the route: the check and the
 * write commit together.
 */
async function judge(store: Store, q: Queryable, r: RouteClaimRequest): Promise<{ held?: RouteRecord }> {
  await store.lockHost(q, r.domain.guid, r.host);
  const onHost = await store.routesOnHost(r.host, r.domain.guid, q);
  const held = onHost.find((x) => x.path === r.path && x.space_guid === r.space.guid);
  const kind: ClaimKind = held ? "map" : "create";
  const verdict = judgeClaim({ host: r.host, path: r.path, domain: r.domain, space: r.space, onHost, domains: await store.listDomains(q), admin: r.admin }, kind);
  if (!verdict.ok) throw unprocessable(verdict.message);
  return { held };
}

/** The route host.domain/path for the space: the one it holds already, or a new one if the claim rules allow it. */
export async function ensureRoute(store: Store, q: Queryable, r: RouteClaimRequest): Promise<{ route: RouteRecord; created: boolean }> {
  const { held } = await judge(store, q, r);
  if (held) return { route: held, created: false };
  const route: RouteRecord = { guid: newGuid(), host: r.host, domain_guid: r.domain.guid, path: r.path, space_guid: r.space.guid, created_at: Date.now() };
  await q.run(`INSERT INTO routes (guid, host, domain_guid, path, space_guid, created_at) VALUES (?, ?, ?, ?, ?, ?)`, [
    route.guid, route.host, route.domain_guid, route.path, route.space_guid, route.created_at,
  ]);
  return { route, created: true };
}

/** Refuses to map a route its space no longer may hold (a host squatted before issue 24, a private domain of another org). */
export async function confirmRouteHolder(store: Store, q: Queryable, route: RouteRecord, admin: boolean): Promise<void> {
  const domain = await store.domainByGuid(route.domain_guid, q);
  const space = await store.spaceByGuid(route.space_guid, q);
  if (!domain || !space) throw unprocessable("the route's domain or space is gone");
  const { held } = await judge(store, q, { host: route.host, domain, path: route.path, space, admin });
  if (!held) throw notFound("Route");
}

export async function mapRoute(q: Queryable, routeGuid: string, appGuid: string): Promise<boolean> {
  const exists = await q.get(`SELECT route_guid FROM route_mappings WHERE route_guid = ? AND app_guid = ?`, [routeGuid, appGuid]);
  if (exists) return false;
  await q.run(`INSERT INTO route_mappings (route_guid, app_guid) VALUES (?, ?)`, [routeGuid, appGuid]);
  return true;
}

export async function unmapRoute(q: Queryable, routeGuid: string, appGuid: string): Promise<boolean> {
  return (await q.run(`DELETE FROM route_mappings WHERE route_guid = ? AND app_guid = ?`, [routeGuid, appGuid])).changes > 0;
}

/** Tells agents running the app its current routes. */
export async function publishRoutes(store: Store, bus: Bus, appGuid: string): Promise<void> {
  bus.publish(Subjects.deaUpdate, "dea.update", { droplet: appGuid, uris: await store.urisOf(appGuid) });
}
