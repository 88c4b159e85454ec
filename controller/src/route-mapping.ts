// Creating routes and mapping them to apps, and telling agents when an app's routes change
// (`dea.update`), so running instances re-register only what changed.

import { Subjects, type Bus } from "../../bus/index.ts";
import type { Queryable } from "./db/database.ts";
import { newGuid, type Store, type RouteRecord } from "./db/store.ts";
import { unprocessable } from "./api/errors.ts";

const HOST_LABEL = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?|\*)$/;

/** The host a new app gets by default: its name, made a DNS label. */
export function defaultHost(appName: string): string {
  const h = appName.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63);
  return h || "app";
}

export function validateHostAndPath(host: string, path: string): void {
  if (host !== "" && !host.split(".").every((l) => HOST_LABEL.test(l)))
    throw unprocessable(`host "${host}" is not a valid DNS name: use letters, digits and '-' (at most 63 per label)`);
  if (path !== "" && (!path.startsWith("/") || path.endsWith("/") || /[?#\s]/.test(path) || path.length > 128))
    throw unprocessable(`path "${path}" must start with '/', not end with '/', and hold no '?', '#' or spaces`);
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

export async function ensureRoute(store: Store, q: Queryable, r: { host: string; domainGuid: string; path: string; spaceGuid: string }): Promise<{ route: RouteRecord; created: boolean }> {
  validateHostAndPath(r.host, r.path);
  const existing = await store.findRoute(r.host, r.domainGuid, r.path, q);
  if (existing) {
    if (existing.space_guid !== r.spaceGuid) throw unprocessable(`the route ${r.host || "(no host)"}${r.path} is taken by another space; pick another host (or use random-route)`);
    return { route: existing, created: false };
  }
  const route: RouteRecord = { guid: newGuid(), host: r.host, domain_guid: r.domainGuid, path: r.path, space_guid: r.spaceGuid, created_at: Date.now() };
  await q.run(`INSERT INTO routes (guid, host, domain_guid, path, space_guid, created_at) VALUES (?, ?, ?, ?, ?, ?)`, [
    route.guid, route.host, route.domain_guid, route.path, route.space_guid, route.created_at,
  ]);
  return { route, created: true };
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
