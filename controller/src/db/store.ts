// The controller's records and the queries over them. Every write that changes more than one row,
// or records an audit event, runs inside one transaction (`db.tx`).

import { randomUUID } from "node:crypto";
import type { Database, Queryable, SqlValue } from "./database.ts";
import { WEB_PROCESS, type HealthCheckType } from "../../../bus/index.ts";
import { MIRRORED, ProcessStore, updateColumns, webProcessOf, type ProcessPatch } from "./process-store.ts";

export const newGuid = (): string => randomUUID();

/** The first key of the PostgreSQL advisory locks that serialise claims on one host (the second is the host's hash). */
export const ROUTE_HOST_LOCK = 7_363_022;

export type AppState = "STARTED" | "STOPPED";
export type PackageState = "AWAITING_UPLOAD" | "PENDING" | "STAGING" | "STAGED" | "FAILED";

export interface AppRecord {
  guid: string;
  name: string;
  space_guid: string;
  state: AppState;
  instances: number;
  memory_mb: number;
  disk_mb: number;
  command: string | null;
  env: Record<string, string>;
  buildpack: string | null;
  stack: string | null;
  health_check_type: HealthCheckType;
  health_check_endpoint: string | null;
  health_check_timeout: number;
  package_sha: string | null;
  package_state: PackageState;
  staging_error: string | null;
  droplet_guid: string | null;
  release: number;
  created_at: number;
  updated_at: number;
}

export interface DropletRecord {
  guid: string;
  app_guid: string;
  sha256: string;
  detected_start_command: string | null;
  buildpack: string | null;
  package_sha: string | null;
  /** the droplet's process types (its Procfile's, and web) and their commands; null for droplets before issue 17 */
  process_types: Record<string, string> | null;
  created_at: number;
}

export interface UserRecord {
  guid: string;
  username: string;
  password_hash: string;
  admin: boolean;
  created_at: number;
}

export interface OrgRecord { guid: string; name: string; created_at: number }
export interface SpaceRecord { guid: string; name: string; org_guid: string; created_at: number }
export interface DomainRecord { guid: string; name: string; shared: boolean; org_guid: string | null; created_at: number }
export interface RouteRecord { guid: string; host: string; domain_guid: string; path: string; space_guid: string; created_at: number }
export interface RoleRecord { guid: string; user_guid: string; type: string; org_guid: string | null; space_guid: string | null; created_at: number }
export interface EventRecord {
  guid: string; type: string; actor_guid: string | null; actor_name: string | null; target_type: string;
  target_guid: string; target_name: string | null; space_guid: string | null; data: Record<string, unknown>; created_at: number;
}
export interface CrashRecord { app_guid: string; process_type: string; idx: number; crash_count: number; last_crash_at: number; next_restart_at: number; last_exit_description: string | null }

export interface Actor { guid: string; name: string }

const APP_COLUMNS = `guid, name, space_guid, state, instances, memory_mb, disk_mb, command, env_json, buildpack, stack,
  health_check_type, health_check_endpoint, health_check_timeout, package_sha, package_state, staging_error,
  droplet_guid, release, created_at, updated_at`;

function toApp(r: Record<string, unknown>): AppRecord {
  return {
    guid: r.guid as string,
    name: r.name as string,
    space_guid: r.space_guid as string,
    state: r.state as AppState,
    instances: Number(r.instances),
    memory_mb: Number(r.memory_mb),
    disk_mb: Number(r.disk_mb),
    command: (r.command as string | null) ?? null,
    env: JSON.parse(r.env_json as string),
    buildpack: (r.buildpack as string | null) ?? null,
    stack: (r.stack as string | null) ?? null,
    health_check_type: r.health_check_type as HealthCheckType,
    health_check_endpoint: (r.health_check_endpoint as string | null) ?? null,
    health_check_timeout: Number(r.health_check_timeout),
    package_sha: (r.package_sha as string | null) ?? null,
    package_state: r.package_state as PackageState,
    staging_error: (r.staging_error as string | null) ?? null,
    droplet_guid: (r.droplet_guid as string | null) ?? null,
    release: Number(r.release),
    created_at: Number(r.created_at),
    updated_at: Number(r.updated_at),
  };
}

const num = (r: Record<string, unknown>, k: string) => Number(r[k]);

function toDroplet(r: Record<string, unknown>): DropletRecord {
  const { process_types_json, ...rest } = r;
  let types: Record<string, string> | null = null;
  try {
    types = typeof process_types_json === "string" ? (JSON.parse(process_types_json) as Record<string, string>) : null;
  } catch {
    types = null;
  }
  return { ...(rest as unknown as DropletRecord), process_types: types, created_at: Number(r.created_at) };
}

/** The typed queries the API, the stager and the health manager use. */
export class Store {
  /** the apps' process types (issue 17) */
  readonly processes: ProcessStore;

  constructor(readonly db: Database) {
    this.processes = new ProcessStore(db);
  }

  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.db.tx(fn);
  }

  // ---- settings ----
  async setting(name: string, q: Queryable = this.db): Promise<string | undefined> {
    return (await q.get<{ value: string }>(`SELECT value FROM settings WHERE name = ?`, [name]))?.value;
  }
  /** Returns the stored value, storing `make()` first if there is none (first writer wins). */
  async settingOrInit(name: string, make: () => string): Promise<string> {
    return this.db.tx(async (q) => {
      const existing = await this.setting(name, q);
      if (existing !== undefined) return existing;
      const value = make();
      await q.run(`INSERT INTO settings (name, value) VALUES (?, ?)`, [name, value]);
      return value;
    });
  }

  // ---- users and tokens ----
  async userByName(username: string): Promise<UserRecord | undefined> {
    const r = await this.db.get<Record<string, unknown>>(`SELECT * FROM users WHERE username = ?`, [username]);
    return r && { ...(r as unknown as UserRecord), admin: Number(r.admin) === 1, created_at: num(r, "created_at") };
  }
  async userByGuid(guid: string): Promise<UserRecord | undefined> {
    const r = await this.db.get<Record<string, unknown>>(`SELECT * FROM users WHERE guid = ?`, [guid]);
    return r && { ...(r as unknown as UserRecord), admin: Number(r.admin) === 1, created_at: num(r, "created_at") };
  }
  async listUsers(): Promise<UserRecord[]> {
    const rows = await this.db.all<Record<string, unknown>>(`SELECT * FROM users ORDER BY created_at, guid`);
    return rows.map((r) => ({ ...(r as unknown as UserRecord), admin: Number(r.admin) === 1, created_at: num(r, "created_at") }));
  }
  async countUsers(): Promise<number> {
    return Number((await this.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM users`))!.n);
  }
  async insertUser(q: Queryable, u: UserRecord): Promise<void> {
    await q.run(`INSERT INTO users (guid, username, password_hash, admin, created_at) VALUES (?, ?, ?, ?, ?)`, [
      u.guid, u.username, u.password_hash, u.admin ? 1 : 0, u.created_at,
    ]);
  }
  async insertToken(tokenHash: string, userGuid: string, expiresAt: number): Promise<void> {
    await this.db.tx(async (q) => {
      await q.run(`DELETE FROM tokens WHERE expires_at < ?`, [Date.now()]);
      await q.run(`INSERT INTO tokens (token_hash, user_guid, expires_at) VALUES (?, ?, ?)`, [tokenHash, userGuid, expiresAt]);
    });
  }
  async tokenUser(tokenHash: string, now: number): Promise<UserRecord | undefined> {
    const r = await this.db.get<{ user_guid: string; expires_at: number }>(`SELECT user_guid, expires_at FROM tokens WHERE token_hash = ?`, [tokenHash]);
    if (!r || Number(r.expires_at) < now) return undefined;
    return this.userByGuid(r.user_guid);
  }
  async deleteToken(tokenHash: string): Promise<void> {
    await this.db.run(`DELETE FROM tokens WHERE token_hash = ?`, [tokenHash]);
  }

  // ---- failed logins (lockout), by the name typed: unknown names count alike ----
  /**
   * Counts a login attempt before its password is checked (a success clears it), in one
   * statement, so parallel guesses cannot all slip under the limit. The count starts again after
   * a lock has ended or when the last attempt is older than `windowMs`. Old rows are pruned.
   */
  async countLoginAttempt(username: string, now: number, windowMs: number): Promise<{ failures: number; lockedUntil: number | null }> {
    return this.db.tx(async (q) => {
      await q.run(`DELETE FROM login_failures WHERE last_failure_at < ? AND (locked_until IS NULL OR locked_until < ?)`, [now - windowMs, now]);
      const r = (await q.get<{ failures: number; locked_until: number | null }>(
        `INSERT INTO login_failures (username, failures, last_failure_at, locked_until) VALUES (?, 1, ?, NULL)
         ON CONFLICT (username) DO UPDATE SET
           failures = CASE WHEN login_failures.last_failure_at < ? OR login_failures.locked_until <= ? THEN 1 ELSE login_failures.failures + 1 END,
           locked_until = CASE WHEN login_failures.locked_until <= ? THEN NULL ELSE login_failures.locked_until END,
           last_failure_at = excluded.last_failure_at
         RETURNING failures, locked_until`,
        [username, now, now - windowMs, now, now],
      ))!;
      return { failures: Number(r.failures), lockedUntil: r.locked_until === null ? null : Number(r.locked_until) };
    });
  }
  /** Locks the name until `until` unless a lock is already running; true when this call locked it. */
  async lockLogin(username: string, until: number, now: number): Promise<{ locked: boolean; lockedUntil: number }> {
    return this.db.tx(async (q) => {
      const r = await q.run(`UPDATE login_failures SET locked_until = ? WHERE username = ? AND (locked_until IS NULL OR locked_until <= ?)`, [until, username, now]);
      const row = await q.get<{ locked_until: number | null }>(`SELECT locked_until FROM login_failures WHERE username = ?`, [username]);
      return { locked: r.changes > 0, lockedUntil: Number(row?.locked_until ?? until) };
    });
  }
  async clearLoginFailures(username: string, q: Queryable = this.db): Promise<void> {
    await q.run(`DELETE FROM login_failures WHERE username = ?`, [username]);
  }

  // ---- orgs, spaces, roles ----
  async listOrgs(): Promise<OrgRecord[]> {
    return (await this.db.all<OrgRecord>(`SELECT * FROM orgs ORDER BY name`)).map((o) => ({ ...o, created_at: Number(o.created_at) }));
  }
  async orgByGuidOrName(key: string): Promise<OrgRecord | undefined> {
    return this.db.get<OrgRecord>(`SELECT * FROM orgs WHERE guid = ? OR name = ?`, [key, key]);
  }
  async listSpaces(orgGuid?: string): Promise<SpaceRecord[]> {
    return orgGuid
      ? this.db.all<SpaceRecord>(`SELECT * FROM spaces WHERE org_guid = ? ORDER BY name`, [orgGuid])
      : this.db.all<SpaceRecord>(`SELECT * FROM spaces ORDER BY name`);
  }
  async spaceByGuid(guid: string, q: Queryable = this.db): Promise<SpaceRecord | undefined> {
    return q.get<SpaceRecord>(`SELECT * FROM spaces WHERE guid = ?`, [guid]);
  }
  async spaceByName(orgGuid: string, name: string): Promise<SpaceRecord | undefined> {
    return this.db.get<SpaceRecord>(`SELECT * FROM spaces WHERE org_guid = ? AND name = ?`, [orgGuid, name]);
  }
  async rolesOf(userGuid: string): Promise<RoleRecord[]> {
    return this.db.all<RoleRecord>(`SELECT * FROM roles WHERE user_guid = ?`, [userGuid]);
  }
  async listRoles(): Promise<RoleRecord[]> {
    return this.db.all<RoleRecord>(`SELECT * FROM roles ORDER BY created_at`);
  }

  // ---- apps ----
  async appByGuid(guid: string, q: Queryable = this.db): Promise<AppRecord | undefined> {
    const r = await q.get<Record<string, unknown>>(`SELECT ${APP_COLUMNS} FROM apps WHERE guid = ?`, [guid]);
    return r && toApp(r);
  }
  async appByName(spaceGuid: string, name: string): Promise<AppRecord | undefined> {
    const r = await this.db.get<Record<string, unknown>>(`SELECT ${APP_COLUMNS} FROM apps WHERE space_guid = ? AND name = ?`, [spaceGuid, name]);
    return r && toApp(r);
  }
  async listApps(filter: { spaceGuids?: string[]; names?: string[]; limit: number; offset: number }): Promise<{ total: number; apps: AppRecord[] }> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (filter.spaceGuids) {
      if (filter.spaceGuids.length === 0) return { total: 0, apps: [] };
      where.push(`space_guid IN (${filter.spaceGuids.map(() => "?").join(",")})`);
      params.push(...filter.spaceGuids);
    }
    if (filter.names && filter.names.length > 0) {
      where.push(`name IN (${filter.names.map(() => "?").join(",")})`);
      params.push(...filter.names);
    }
    const w = where.length ? `WHERE ${where.join(" AND ")}` : "";
    const total = Number((await this.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM apps ${w}`, params))!.n);
    const rows = await this.db.all<Record<string, unknown>>(
      `SELECT ${APP_COLUMNS} FROM apps ${w} ORDER BY name, guid LIMIT ? OFFSET ?`,
      [...params, filter.limit, filter.offset],
    );
    return { total, apps: rows.map(toApp) };
  }
  /** Apps the health manager must keep running: started and with a droplet. */
  async startedApps(): Promise<(AppRecord & { droplet_sha: string })[]> {
    const rows = await this.db.all<Record<string, unknown>>(
      `SELECT a.guid, a.name, a.space_guid, a.state, a.instances, a.memory_mb, a.disk_mb, a.command, a.env_json, a.buildpack,
        a.stack, a.health_check_type, a.health_check_endpoint, a.health_check_timeout, a.package_sha, a.package_state,
        a.staging_error, a.droplet_guid, a.release, a.created_at, a.updated_at, d.sha256 AS droplet_sha
       FROM apps a JOIN droplets d ON d.guid = a.droplet_guid WHERE a.state = 'STARTED'`,
    );
    return rows.map((r) => ({ ...toApp(r), droplet_sha: r.droplet_sha as string }));
  }
  async insertApp(q: Queryable, a: AppRecord): Promise<void> {
    await q.run(
      `INSERT INTO apps (${APP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [a.guid, a.name, a.space_guid, a.state, a.instances, a.memory_mb, a.disk_mb, a.command, JSON.stringify(a.env), a.buildpack,
        a.stack, a.health_check_type, a.health_check_endpoint, a.health_check_timeout, a.package_sha, a.package_state,
        a.staging_error, a.droplet_guid, a.release, a.created_at, a.updated_at],
    );
    // its web process, whose figures the app row mirrors (process-store.ts)
    await this.processes.insert(q, webProcessOf(a));
  }
  async updateApp(q: Queryable, guid: string, patch: Partial<Omit<AppRecord, "guid" | "created_at">>): Promise<void> {
    const sets: string[] = [];
    const params: SqlValue[] = [];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      if (k === "env") {
        sets.push(`env_json = ?`);
        params.push(JSON.stringify(v));
      } else {
        sets.push(`${k} = ?`);
        params.push(v as SqlValue);
      }
    }
    sets.push(`updated_at = ?`);
    params.push(Date.now(), guid);
    await q.run(`UPDATE apps SET ${sets.join(", ")} WHERE guid = ?`, params);
    // the app's instances, limits, command and health check are its web process's
    const web: ProcessPatch = {};
    for (const k of MIRRORED) if (patch[k] !== undefined) (web as Record<string, unknown>)[k] = patch[k];
    await updateColumns(q, "processes", web, "app_guid = ? AND type = ?", [guid, WEB_PROCESS]);
  }
  async deleteApp(q: Queryable, guid: string): Promise<void> {
    await q.run(`DELETE FROM route_mappings WHERE app_guid = ?`, [guid]);
    await q.run(`DELETE FROM service_bindings WHERE app_guid = ?`, [guid]);
    await q.run(`DELETE FROM process_crashes WHERE app_guid = ?`, [guid]);
    await q.run(`DELETE FROM processes WHERE app_guid = ?`, [guid]);
    await q.run(`DELETE FROM tasks WHERE app_guid = ?`, [guid]);
    await q.run(`DELETE FROM droplets WHERE app_guid = ?`, [guid]);
    await q.run(`DELETE FROM apps WHERE guid = ?`, [guid]);
  }

  // ---- staging ----
  /** Marks the app STAGING by `by` (a stager's stable id). */
  async markStaging(q: Queryable, guid: string, by: string, now = Date.now()): Promise<void> {
    await q.run(`UPDATE apps SET package_state = 'STAGING', staging_error = NULL, staging_by = ?, staging_since = ?, updated_at = ? WHERE guid = ?`, [by, now, now, guid]);
  }
  /**
   * Apps left STAGING by a stager that is gone: this one before its restart (`by`), one unknown
   * (staged before owners were recorded), or any one whose staging began before `since` (longer
   * than a staging may last). They become FAILED, with an event, so a start restages them.
   */
  async failInterruptedStaging(by: string, since: number, error: string): Promise<string[]> {
    return this.db.tx(async (q) => {
      const rows = await q.all<{ guid: string; name: string; space_guid: string; staging_by: string | null }>(
        `SELECT guid, name, space_guid, staging_by FROM apps WHERE package_state = 'STAGING' AND (staging_by IS NULL OR staging_by = ? OR staging_since IS NULL OR staging_since < ?)`,
        [by, since],
      );
      for (const r of rows) {
        await q.run(`UPDATE apps SET package_state = 'FAILED', staging_error = ?, staging_by = NULL, staging_since = NULL, updated_at = ? WHERE guid = ? AND package_state = 'STAGING'`, [error, Date.now(), r.guid]);
        await this.recordEvent(q, { type: "audit.app.staging.failed", actor_guid: null, actor_name: "system", target_type: "app", target_guid: r.guid, target_name: r.name, space_guid: r.space_guid, data: { error, staged_by: r.staging_by } });
      }
      return rows.map((r) => r.guid);
    });
  }

  // ---- droplets ----
  async dropletByGuid(guid: string, q: Queryable = this.db): Promise<DropletRecord | undefined> {
    const r = await q.get<Record<string, unknown>>(`SELECT * FROM droplets WHERE guid = ?`, [guid]);
    return r && toDroplet(r);
  }
  async dropletsOf(appGuid: string): Promise<DropletRecord[]> {
    return (await this.db.all<Record<string, unknown>>(`SELECT * FROM droplets WHERE app_guid = ? ORDER BY created_at DESC, guid`, [appGuid])).map(toDroplet);
  }
  async insertDroplet(q: Queryable, d: Omit<DropletRecord, "process_types"> & { process_types?: Record<string, string> | null }, keep: number): Promise<void> {
    await q.run(`INSERT INTO droplets (guid, app_guid, sha256, detected_start_command, buildpack, package_sha, process_types_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
      d.guid, d.app_guid, d.sha256, d.detected_start_command, d.buildpack, d.package_sha, d.process_types ? JSON.stringify(d.process_types) : null, d.created_at,
    ]);
    // keep the newest `keep` droplets (the current one is always among them)
    const old = await q.all<{ guid: string }>(`SELECT guid FROM droplets WHERE app_guid = ? ORDER BY created_at DESC, guid LIMIT 1000000 OFFSET ?`, [d.app_guid, keep]);
    for (const o of old) await q.run(`DELETE FROM droplets WHERE guid = ?`, [o.guid]);
  }
  /** Every blob a row points at: droplets by their rows, packages by apps and by the droplets made from them. */
  async referencedBlobs(): Promise<{ droplets: Set<string>; packages: Set<string> }> {
    const droplets = new Set<string>();
    const packages = new Set<string>();
    for (const r of await this.db.all<{ sha256: string; package_sha: string | null }>(`SELECT sha256, package_sha FROM droplets`)) {
      droplets.add(r.sha256);
      if (r.package_sha) packages.add(r.package_sha);
    }
    for (const r of await this.db.all<{ package_sha: string | null }>(`SELECT package_sha FROM apps WHERE package_sha IS NOT NULL`)) packages.add(r.package_sha!);
    return { droplets, packages };
  }

  // ---- domains and routes ----
  async listDomains(q: Queryable = this.db): Promise<DomainRecord[]> {
    return (await q.all<Record<string, unknown>>(`SELECT * FROM domains ORDER BY name`)).map((d) => ({ ...(d as unknown as DomainRecord), shared: Number(d.shared) === 1, created_at: num(d, "created_at") }));
  }
  async domainByName(name: string): Promise<DomainRecord | undefined> {
    const d = await this.db.get<Record<string, unknown>>(`SELECT * FROM domains WHERE name = ?`, [name]);
    return d && { ...(d as unknown as DomainRecord), shared: Number(d.shared) === 1 };
  }
  async domainByGuid(guid: string, q: Queryable = this.db): Promise<DomainRecord | undefined> {
    const d = await q.get<Record<string, unknown>>(`SELECT * FROM domains WHERE guid = ?`, [guid]);
    return d && { ...(d as unknown as DomainRecord), shared: Number(d.shared) === 1 };
  }
  async defaultDomain(): Promise<DomainRecord | undefined> {
    const name = await this.setting("default_domain");
    return name ? this.domainByName(name) : undefined;
  }
  async routeByGuid(guid: string): Promise<RouteRecord | undefined> {
    return this.db.get<RouteRecord>(`SELECT * FROM routes WHERE guid = ?`, [guid]);
  }
  /** Every route on one host of one domain, whatever its path or space. */
  async routesOnHost(host: string, domainGuid: string, q: Queryable = this.db): Promise<RouteRecord[]> {
    return (await q.all<RouteRecord>(`SELECT * FROM routes WHERE host = ? AND domain_guid = ? ORDER BY created_at, guid`, [host, domainGuid]))
      .map((r) => ({ ...r, created_at: Number(r.created_at) }));
  }
  /**
   * Makes the rest of the transaction the only claim on this host: two spaces racing for one host
   * must not both find it free. SQLite's transactions already are (BEGIN IMMEDIATE takes the write
   * lock); PostgreSQL's read committed ones take a transaction-scoped advisory lock on the host.
   */
  async lockHost(q: Queryable, domainGuid: string, host: string): Promise<void> {
    if (this.db.dialect === "postgres") await q.all(`SELECT pg_advisory_xact_lock(${ROUTE_HOST_LOCK}, hashtext(?))`, [`${domainGuid} ${host}`]);
  }
  async listRoutes(spaceGuids?: string[]): Promise<RouteRecord[]> {
    if (!spaceGuids) return this.db.all<RouteRecord>(`SELECT * FROM routes ORDER BY host, path`);
    if (spaceGuids.length === 0) return [];
    return this.db.all<RouteRecord>(`SELECT * FROM routes WHERE space_guid IN (${spaceGuids.map(() => "?").join(",")}) ORDER BY host, path`, spaceGuids);
  }
  async routesOfApp(appGuid: string, q: Queryable = this.db): Promise<(RouteRecord & { domain: string })[]> {
    return q.all(`SELECT r.*, d.name AS domain FROM routes r JOIN route_mappings m ON m.route_guid = r.guid
      JOIN domains d ON d.guid = r.domain_guid WHERE m.app_guid = ? ORDER BY r.host, r.path`, [appGuid]);
  }
  async appsOfRoute(routeGuid: string): Promise<string[]> {
    return (await this.db.all<{ app_guid: string }>(`SELECT app_guid FROM route_mappings WHERE route_guid = ?`, [routeGuid])).map((r) => r.app_guid);
  }
  /** `host.domain/path` for every route mapped to the app: what agents register with routers. */
  async urisOf(appGuid: string, q: Queryable = this.db): Promise<string[]> {
    return (await this.routesOfApp(appGuid, q)).map((r) => routeUri(r.host, r.domain, r.path));
  }

  // ---- events ----
  async recordEvent(q: Queryable, e: Omit<EventRecord, "guid" | "created_at">): Promise<void> {
    await q.run(`INSERT INTO events (guid, type, actor_guid, actor_name, target_type, target_guid, target_name, space_guid, data_json, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      newGuid(), e.type, e.actor_guid, e.actor_name, e.target_type, e.target_guid, e.target_name, e.space_guid, JSON.stringify(e.data), Date.now(),
    ]);
  }
  /** The audit log, newest first, one page of it, with the total that matches the filter. */
  async listEvents(filter: { targetGuids?: string[]; types?: string[]; spaceGuids?: string[]; limit: number; offset: number }): Promise<{ total: number; events: EventRecord[] }> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    const within = (column: string, values: string[] | undefined) => {
      if (!values) return;
      where.push(values.length ? `${column} IN (${values.map(() => "?").join(",")})` : "1 = 0");
      params.push(...values);
    };
    within("target_guid", filter.targetGuids);
    within("type", filter.types);
    within("space_guid", filter.spaceGuids);
    const w = where.length ? `WHERE ${where.join(" AND ")}` : "";
    const total = Number((await this.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM events ${w}`, params))!.n);
    const rows = await this.db.all<Record<string, unknown>>(`SELECT * FROM events ${w} ORDER BY created_at DESC, guid LIMIT ? OFFSET ?`, [...params, filter.limit, filter.offset]);
    return { total, events: rows.map((r) => ({ ...(r as unknown as EventRecord), data: JSON.parse(r.data_json as string), created_at: Number(r.created_at) })) };
  }

  // ---- health manager state: crash counts per process type and index ----
  private static toCrash(c: Record<string, unknown>): CrashRecord {
    return {
      app_guid: c.app_guid as string, process_type: c.process_type as string, idx: Number(c.idx), crash_count: Number(c.crash_count),
      last_crash_at: Number(c.last_crash_at), next_restart_at: Number(c.next_restart_at), last_exit_description: (c.last_exit_description as string | null) ?? null,
    };
  }
  async crashesOf(appGuid: string): Promise<CrashRecord[]> {
    return (await this.db.all<Record<string, unknown>>(`SELECT * FROM process_crashes WHERE app_guid = ? ORDER BY process_type, idx`, [appGuid])).map(Store.toCrash);
  }
  async allCrashes(): Promise<CrashRecord[]> {
    return (await this.db.all<Record<string, unknown>>(`SELECT * FROM process_crashes`)).map(Store.toCrash);
  }
  /**
   * Counts a crash of one index of one process type and writes its audit event in the same
   * transaction, so the crash count and the log never disagree. `backoff` gives the restart delay
   * for the new count. Returns undefined (and records nothing) when the app is gone.
   */
  async recordCrash(e: { app_guid: string; process_type?: string; idx: number; exit_status: number; exit_description: string; at: number }, backoff: (count: number) => number): Promise<CrashRecord | undefined> {
    const type = e.process_type ?? WEB_PROCESS;
    return this.db.tx(async (q) => {
      const app = await this.appByGuid(e.app_guid, q);
      if (!app) return undefined;
      const prev = await q.get<{ crash_count: number }>(`SELECT crash_count FROM process_crashes WHERE app_guid = ? AND process_type = ? AND idx = ?`, [e.app_guid, type, e.idx]);
      const count = (prev ? Number(prev.crash_count) : 0) + 1;
      const c: CrashRecord = { app_guid: e.app_guid, process_type: type, idx: e.idx, crash_count: count, last_crash_at: e.at, next_restart_at: e.at + backoff(count), last_exit_description: e.exit_description };
      await q.run(`DELETE FROM process_crashes WHERE app_guid = ? AND process_type = ? AND idx = ?`, [c.app_guid, type, c.idx]);
      await q.run(`INSERT INTO process_crashes (app_guid, process_type, idx, crash_count, last_crash_at, next_restart_at, last_exit_description) VALUES (?, ?, ?, ?, ?, ?, ?)`, [
        c.app_guid, type, c.idx, c.crash_count, c.last_crash_at, c.next_restart_at, c.last_exit_description,
      ]);
      await this.recordEvent(q, {
        type: "audit.app.process.crash", actor_guid: null, actor_name: "system", target_type: "app", target_guid: app.guid, target_name: app.name, space_guid: app.space_guid,
        data: { index: e.idx, exit_status: e.exit_status, exit_description: e.exit_description, crash_count: count, ...(type !== WEB_PROCESS ? { process_type: type } : {}) },
      });
      return c;
    });
  }
  /** Forgets crash counts: the app's, one process type's, or one index of one type. */
  async clearCrash(appGuid: string, which: { type?: string; idx?: number } = {}, q: Queryable = this.db): Promise<void> {
    if (which.type === undefined) await q.run(`DELETE FROM process_crashes WHERE app_guid = ?`, [appGuid]);
    else if (which.idx === undefined) await q.run(`DELETE FROM process_crashes WHERE app_guid = ? AND process_type = ?`, [appGuid, which.type]);
    else await q.run(`DELETE FROM process_crashes WHERE app_guid = ? AND process_type = ? AND idx = ?`, [appGuid, which.type, which.idx]);
  }

  /**
   * Takes or renews a named lease for `holder` until now+ttl. Returns true when `holder` holds it.
   * The read-check-write runs in one transaction, so two health managers cannot both win.
   */
  async acquireLease(name: string, holder: string, ttlMs: number, now = Date.now()): Promise<boolean> {
    return this.db.tx(async (q) => {
      const row = await q.get<{ holder: string; expires_at: number }>(`SELECT holder, expires_at FROM leases WHERE name = ?`, [name]);
      if (!row) {
        await q.run(`INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)`, [name, holder, now + ttlMs]);
        return true;
      }
      if (row.holder !== holder && Number(row.expires_at) > now) return false;
      const r = await q.run(`UPDATE leases SET holder = ?, expires_at = ? WHERE name = ? AND holder = ? AND expires_at = ?`, [
        holder, now + ttlMs, name, row.holder, row.expires_at,
      ]);
      return r.changes === 1;
    });
  }
  async releaseLease(name: string, holder: string): Promise<void> {
    await this.db.run(`DELETE FROM leases WHERE name = ? AND holder = ?`, [name, holder]);
  }
}

export function routeUri(host: string, domain: string, path: string): string {
  return `${host ? host + "." : ""}${domain}${path}`;
}
