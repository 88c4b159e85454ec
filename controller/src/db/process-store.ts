// An app's processes (issue 17): one row per process type, each with its own command, instances,
// limits and health check, as Cloud Foundry v3 keeps them. The web process's guid is the app's, and
// its figures are mirrored on the app row (store.ts writes both), so readers of an app need no join.

import { randomUUID } from "node:crypto";
import { WEB_PROCESS, type HealthCheckType } from "../../../bus/index.ts";
import type { Queryable, SqlValue } from "./database.ts";
import type { AppRecord } from "./store.ts";

export interface ProcessRecord {
  guid: string;
  app_guid: string;
  type: string;
  /** its own command; null: the droplet's for this type */
  command: string | null;
  instances: number;
  memory_mb: number;
  disk_mb: number;
  health_check_type: HealthCheckType;
  health_check_endpoint: string | null;
  health_check_timeout: number;
  created_at: number;
  updated_at: number;
}

/** The columns a process and its app's row share (the app's are its web process's). */
export const MIRRORED = ["command", "instances", "memory_mb", "disk_mb", "health_check_type", "health_check_endpoint", "health_check_timeout"] as const;
export type ProcessPatch = Partial<Pick<ProcessRecord, (typeof MIRRORED)[number]>>;

export const PROCESS_TYPE = /^[A-Za-z0-9_-]{1,63}$/;

function toProcess(r: Record<string, unknown>): ProcessRecord {
  return {
    guid: r.guid as string,
    app_guid: r.app_guid as string,
    type: r.type as string,
    command: (r.command as string | null) ?? null,
    instances: Number(r.instances),
    memory_mb: Number(r.memory_mb),
    disk_mb: Number(r.disk_mb),
    health_check_type: r.health_check_type as HealthCheckType,
    health_check_endpoint: (r.health_check_endpoint as string | null) ?? null,
    health_check_timeout: Number(r.health_check_timeout),
    created_at: Number(r.created_at),
    updated_at: Number(r.updated_at),
  };
}

/** The web process an app row describes (its guid is the app's). */
export function webProcessOf(a: AppRecord): ProcessRecord {
  return {
    guid: a.guid, app_guid: a.guid, type: WEB_PROCESS, command: a.command, instances: a.instances, memory_mb: a.memory_mb, disk_mb: a.disk_mb,
    health_check_type: a.health_check_type, health_check_endpoint: a.health_check_endpoint, health_check_timeout: a.health_check_timeout,
    created_at: a.created_at, updated_at: a.updated_at,
  };
}

/**
 * A process type the app does not have yet, as Cloud Foundry makes one: the app's memory and disk,
 * a `process` health check (a worker listens on no port), and, for web, the app's own settings.
 */
export function newProcess(app: AppRecord, type: string, instances: number, now = Date.now()): ProcessRecord {
  if (type === WEB_PROCESS) return { ...webProcessOf(app), instances };
  return {
    guid: randomUUID(), app_guid: app.guid, type, command: null, instances, memory_mb: app.memory_mb, disk_mb: app.disk_mb,
    health_check_type: "process", health_check_endpoint: null, health_check_timeout: 60, created_at: now, updated_at: now,
  };
}

/** Sets `patch` on the rows of `table` where `where` holds: the SQL of a partial update. */
export async function updateColumns(q: Queryable, table: "apps" | "processes", patch: ProcessPatch, where: string, params: SqlValue[], now = Date.now()): Promise<number> {
  const sets: string[] = [];
  const values: SqlValue[] = [];
  for (const k of MIRRORED) {
    const v = patch[k];
    if (v === undefined) continue;
    sets.push(`${k} = ?`);
    values.push(v);
  }
  if (!sets.length) return 0;
  sets.push("updated_at = ?");
  values.push(now);
  return (await q.run(`UPDATE ${table} SET ${sets.join(", ")} WHERE ${where}`, [...values, ...params])).changes;
}

export class ProcessStore {
  constructor(private readonly db: Queryable) {}

  async of(appGuid: string, q: Queryable = this.db): Promise<ProcessRecord[]> {
    const rows = await q.all<Record<string, unknown>>(`SELECT * FROM processes WHERE app_guid = ? ORDER BY type`, [appGuid]);
    // web first, then the others by name: the order `skiff app` shows them in
    return rows.map(toProcess).sort((a, b) => (a.type === WEB_PROCESS ? -1 : b.type === WEB_PROCESS ? 1 : a.type.localeCompare(b.type)));
  }

  async byGuid(guid: string, q: Queryable = this.db): Promise<ProcessRecord | undefined> {
    const r = await q.get<Record<string, unknown>>(`SELECT * FROM processes WHERE guid = ?`, [guid]);
    return r && toProcess(r);
  }

  async byType(appGuid: string, type: string, q: Queryable = this.db): Promise<ProcessRecord | undefined> {
    const r = await q.get<Record<string, unknown>>(`SELECT * FROM processes WHERE app_guid = ? AND type = ?`, [appGuid, type]);
    return r && toProcess(r);
  }

  /** Every process of every started app, by app guid: the health manager's desired state. */
  async ofStartedApps(): Promise<Map<string, ProcessRecord[]>> {
    const rows = await this.db.all<Record<string, unknown>>(`SELECT p.* FROM processes p JOIN apps a ON a.guid = p.app_guid WHERE a.state = 'STARTED'`);
    const out = new Map<string, ProcessRecord[]>();
    for (const r of rows) {
      const p = toProcess(r);
      const list = out.get(p.app_guid);
      if (list) list.push(p);
      else out.set(p.app_guid, [p]);
    }
    return out;
  }

  async insert(q: Queryable, p: ProcessRecord): Promise<void> {
    await q.run(
      `INSERT INTO processes (guid, app_guid, type, command, instances, memory_mb, disk_mb, health_check_type, health_check_endpoint, health_check_timeout, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [p.guid, p.app_guid, p.type, p.command, p.instances, p.memory_mb, p.disk_mb, p.health_check_type, p.health_check_endpoint, p.health_check_timeout, p.created_at, p.updated_at],
    );
  }

  /** Changes a process; the web process's figures are written on its app's row too. */
  async update(q: Queryable, p: ProcessRecord, patch: ProcessPatch): Promise<void> {
    const now = Date.now();
    await updateColumns(q, "processes", patch, "guid = ?", [p.guid], now);
    if (p.type === WEB_PROCESS) await updateColumns(q, "apps", patch, "guid = ?", [p.app_guid], now);
  }

  async remove(q: Queryable, p: ProcessRecord): Promise<void> {
    if (p.type === WEB_PROCESS) throw new Error("the web process is the app's own and cannot be removed");
    await q.run(`DELETE FROM processes WHERE guid = ?`, [p.guid]);
    await q.run(`DELETE FROM process_crashes WHERE app_guid = ? AND process_type = ?`, [p.app_guid, p.type]);
  }

  /**
   * After staging: the droplet's process types (its Procfile's) that the app lacks are made, with
   * `instancesFor(type)` instances; a type that left the Procfile goes unless it has a command of
   * its own (the manifest's or the API's). Web is never removed. Returns what changed.
   */
  async syncWithDroplet(q: Queryable, app: AppRecord, types: readonly string[], instancesFor: (type: string) => number): Promise<{ added: string[]; removed: string[] }> {
    const have = await this.of(app.guid, q);
    const added: string[] = [];
    const removed: string[] = [];
    for (const type of types) {
      if (!PROCESS_TYPE.test(type) || have.some((p) => p.type === type)) continue;
      await this.insert(q, newProcess(app, type, instancesFor(type)));
      added.push(type);
    }
    for (const p of have)
      if (p.type !== WEB_PROCESS && !p.command && !types.includes(p.type)) {
        await this.remove(q, p);
        removed.push(p.type);
      }
    return { added, removed };
  }
}
