// JSON shapes the API returns (Cloud Foundry v3 style), and list pagination.

import type { AppRecord, DomainRecord, DropletRecord, EventRecord, OrgRecord, RoleRecord, RouteRecord, SpaceRecord, UserRecord } from "../db/store.ts";
import { routeUri } from "../db/store.ts";
import type { ProcessRecord } from "../db/process-store.ts";
import { badRequest } from "./errors.ts";

const iso = (ms: number) => new Date(Number(ms)).toISOString();

/** A process in Cloud Foundry v3's shape (`GET /v3/processes/:guid`). */
export function presentProcess(p: ProcessRecord, spaceGuid: string) {
  return {
    guid: p.guid,
    type: p.type,
    command: p.command,
    instances: p.instances,
    memory_in_mb: p.memory_mb,
    disk_in_mb: p.disk_mb,
    health_check: { type: p.health_check_type, data: { timeout: p.health_check_timeout, endpoint: p.health_check_endpoint, invocation_timeout: null } },
    relationships: { app: { data: { guid: p.app_guid } }, revision: { data: null } },
    created_at: iso(p.created_at),
    updated_at: iso(p.updated_at),
    links: {
      self: { href: `/v3/processes/${p.guid}` },
      scale: { href: `/v3/processes/${p.guid}/actions/scale`, method: "POST" },
      app: { href: `/v3/apps/${p.app_guid}` },
      space: { href: `/v3/spaces/${spaceGuid}` },
      stats: { href: `/v3/processes/${p.guid}/stats` },
    },
  };
}

export interface Page {
  page: number;
  perPage: number;
  /** the list's other query parameters (filters), carried into the first/last/next/previous links */
  filters?: Record<string, string>;
}

export function parsePage(query: Record<string, string | undefined>): Page {
  const page = query.page === undefined ? 1 : Number(query.page);
  const perPage = query.per_page === undefined ? 50 : Number(query.per_page);
  if (!Number.isInteger(page) || page < 1) throw badRequest("page must be a positive integer");
  if (!Number.isInteger(perPage) || perPage < 1 || perPage > 5000) throw badRequest("per_page must be an integer from 1 to 5000");
  const filters: Record<string, string> = {};
  for (const [k, v] of Object.entries(query)) if (v !== undefined && k !== "page" && k !== "per_page") filters[k] = v;
  return { page, perPage, filters };
}

export function paginated<T>(path: string, page: Page, total: number, resources: T[]) {
  const pages = Math.max(1, Math.ceil(total / page.perPage));
  // a next link without the filters would page through everything (the CLI follows them)
  const rest = Object.entries(page.filters ?? {}).map(([k, v]) => `&${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("");
  const href = (p: number) => ({ href: `${path}?page=${p}&per_page=${page.perPage}${rest}` });
  return {
    pagination: {
      total_results: total,
      total_pages: pages,
      first: href(1),
      last: href(pages),
      next: page.page < pages ? href(page.page + 1) : null,
      previous: page.page > 1 ? href(page.page - 1) : null,
    },
    resources,
  };
}

/** Paginates a list already in memory. */
export function pageOf<T>(path: string, page: Page, all: T[]) {
  return paginated(path, page, all.length, all.slice((page.page - 1) * page.perPage, page.page * page.perPage));
}

export function presentApp(a: AppRecord, extra: { routes?: string[] } = {}) {
  return {
    guid: a.guid,
    name: a.name,
    state: a.state,
    instances: a.instances,
    memory_in_mb: a.memory_mb,
    disk_in_mb: a.disk_mb,
    command: a.command,
    buildpack: a.buildpack,
    stack: a.stack,
    health_check: { type: a.health_check_type, data: { endpoint: a.health_check_endpoint, timeout: a.health_check_timeout } },
    package_state: a.package_state,
    package_sha256: a.package_sha,
    staging_error: a.staging_error,
    droplet_guid: a.droplet_guid,
    release: a.release,
    ...(extra.routes ? { routes: extra.routes } : {}),
    created_at: iso(a.created_at),
    updated_at: iso(a.updated_at),
    relationships: { space: { data: { guid: a.space_guid } } },
    links: { self: { href: `/v3/apps/${a.guid}` } },
  };
}

export function presentDroplet(d: DropletRecord, current: boolean) {
  return {
    guid: d.guid,
    state: "STAGED",
    current,
    sha256: d.sha256,
    buildpack: d.buildpack,
    process_types: d.process_types ?? { web: d.detected_start_command },
    package_sha256: d.package_sha,
    created_at: iso(d.created_at),
    relationships: { app: { data: { guid: d.app_guid } } },
  };
}

export const presentUser = (u: UserRecord) => ({ guid: u.guid, username: u.username, admin: u.admin, created_at: iso(u.created_at) });
export const presentOrg = (o: OrgRecord) => ({ guid: o.guid, name: o.name, created_at: iso(o.created_at) });
export const presentSpace = (s: SpaceRecord) => ({ guid: s.guid, name: s.name, created_at: iso(s.created_at), relationships: { organization: { data: { guid: s.org_guid } } } });
export const presentDomain = (d: DomainRecord) => ({
  guid: d.guid, name: d.name, shared: d.shared, created_at: iso(d.created_at),
  relationships: { organization: { data: d.org_guid ? { guid: d.org_guid } : null } },
});
export const presentRole = (r: RoleRecord) => ({
  guid: r.guid, type: r.type, created_at: iso(r.created_at),
  relationships: { user: { data: { guid: r.user_guid } }, organization: { data: r.org_guid ? { guid: r.org_guid } : null }, space: { data: r.space_guid ? { guid: r.space_guid } : null } },
});
export const presentRoute = (r: RouteRecord, domain: string, apps: string[]) => ({
  guid: r.guid, host: r.host, path: r.path, url: routeUri(r.host, domain, r.path), created_at: iso(r.created_at),
  destinations: apps.map((a) => ({ app: { guid: a } })),
  relationships: { space: { data: { guid: r.space_guid } }, domain: { data: { guid: r.domain_guid } } },
});
export const presentEvent = (e: EventRecord) => ({
  guid: e.guid, type: e.type, created_at: iso(e.created_at), actor: { guid: e.actor_guid, type: e.actor_guid ? "user" : "system", name: e.actor_name },
  target: { guid: e.target_guid, type: e.target_type, name: e.target_name }, data: e.data, space: e.space_guid ? { guid: e.space_guid } : null,
});
