// Task records (issue 17): one row per one-off command run from an app's droplet, with its state as
// Cloud Foundry names it. PENDING (placed, not yet heard from its agent) → RUNNING → SUCCEEDED or
// FAILED; a cancel makes it CANCELING until the agent says it ended (FAILED, "cancelled").
// SUCCEEDED and FAILED are final: every change is one conditional UPDATE, so two controllers, or a
// late message, can never move a finished task again.

import type { TaskState } from "../../../bus/index.ts";
import type { Queryable, SqlValue } from "../db/database.ts";

export interface TaskRecord {
  guid: string;
  app_guid: string;
  name: string;
  command: string;
  state: TaskState;
  /** 1, 2, 3… per app, as CF numbers them (`skiff tasks` shows it as the id) */
  sequence_id: number;
  memory_mb: number;
  disk_mb: number;
  droplet_guid: string | null;
  agent_id: string | null;
  exit_status: number | null;
  failure_reason: string | null;
  created_at: number;
  updated_at: number;
}

export const ACTIVE_TASK_STATES = ["PENDING", "RUNNING", "CANCELING"] as const satisfies readonly TaskState[];
const ACTIVE = `state IN ('PENDING', 'RUNNING', 'CANCELING')`;

function toTask(r: Record<string, unknown>): TaskRecord {
  return {
    guid: r.guid as string,
    app_guid: r.app_guid as string,
    name: r.name as string,
    command: r.command as string,
    state: r.state as TaskState,
    sequence_id: Number(r.sequence_id),
    memory_mb: Number(r.memory_mb),
    disk_mb: Number(r.disk_mb),
    droplet_guid: (r.droplet_guid as string | null) ?? null,
    agent_id: (r.agent_id as string | null) ?? null,
    exit_status: r.exit_status === null || r.exit_status === undefined ? null : Number(r.exit_status),
    failure_reason: (r.failure_reason as string | null) ?? null,
    created_at: Number(r.created_at),
    updated_at: Number(r.updated_at),
  };
}

export class TaskStore {
  constructor(private readonly db: Queryable) {}

  async byGuid(guid: string, q: Queryable = this.db): Promise<TaskRecord | undefined> {
    const r = await q.get<Record<string, unknown>>(`SELECT * FROM tasks WHERE guid = ?`, [guid]);
    return r && toTask(r);
  }

  async bySequence(appGuid: string, sequenceId: number): Promise<TaskRecord | undefined> {
    const r = await this.db.get<Record<string, unknown>>(`SELECT * FROM tasks WHERE app_guid = ? AND sequence_id = ?`, [appGuid, sequenceId]);
    return r && toTask(r);
  }

  /** An app's tasks, oldest first (CF's order), optionally only some states; with the total. */
  async ofApp(appGuid: string, o: { states?: string[]; limit: number; offset: number }): Promise<{ total: number; tasks: TaskRecord[] }> {
    const where = ["app_guid = ?"];
    const params: SqlValue[] = [appGuid];
    if (o.states?.length) {
      where.push(`state IN (${o.states.map(() => "?").join(",")})`);
      params.push(...o.states);
    }
    const w = where.join(" AND ");
    const total = Number((await this.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM tasks WHERE ${w}`, params))!.n);
    const rows = await this.db.all<Record<string, unknown>>(`SELECT * FROM tasks WHERE ${w} ORDER BY sequence_id LIMIT ? OFFSET ?`, [...params, o.limit, o.offset]);
    return { total, tasks: rows.map(toTask) };
  }

  /** Every task not finished yet: the tracker watches these. */
  async active(): Promise<TaskRecord[]> {
    return (await this.db.all<Record<string, unknown>>(`SELECT * FROM tasks WHERE ${ACTIVE}`)).map(toTask);
  }

  async activeOfApp(appGuid: string, q: Queryable = this.db): Promise<TaskRecord[]> {
    return (await q.all<Record<string, unknown>>(`SELECT * FROM tasks WHERE app_guid = ? AND ${ACTIVE}`, [appGuid])).map(toTask);
  }

  async nextSequence(q: Queryable, appGuid: string): Promise<number> {
    const r = await q.get<{ n: number | null }>(`SELECT MAX(sequence_id) AS n FROM tasks WHERE app_guid = ?`, [appGuid]);
    return Number(r?.n ?? 0) + 1;
  }

  async insert(q: Queryable, t: TaskRecord): Promise<void> {
    await q.run(
      `INSERT INTO tasks (guid, app_guid, name, command, state, sequence_id, memory_mb, disk_mb, droplet_guid, agent_id, exit_status, failure_reason, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [t.guid, t.app_guid, t.name, t.command, t.state, t.sequence_id, t.memory_mb, t.disk_mb, t.droplet_guid, t.agent_id, t.exit_status, t.failure_reason, t.created_at, t.updated_at],
    );
  }

  async setAgent(guid: string, agent: string): Promise<void> {
    await this.db.run(`UPDATE tasks SET agent_id = ?, updated_at = ? WHERE guid = ? AND ${ACTIVE}`, [agent, Date.now(), guid]);
  }

  /**
   * Moves an unfinished task to `to` (with how it ended); a finished one is never touched. RUNNING
   * does not undo a CANCELING (the cancel is still on its way). True when the row changed.
   */
  async transition(guid: string, to: TaskState, o: { exitStatus?: number | null; reason?: string | null } = {}, q: Queryable = this.db): Promise<boolean> {
    const from = to === "RUNNING" ? `state = 'PENDING'` : to === "CANCELING" ? `state IN ('PENDING', 'RUNNING')` : ACTIVE;
    const r = await q.run(`UPDATE tasks SET state = ?, exit_status = COALESCE(?, exit_status), failure_reason = COALESCE(?, failure_reason), updated_at = ? WHERE guid = ? AND ${from}`, [
      to, o.exitStatus ?? null, o.reason ?? null, Date.now(), guid,
    ]);
    return r.changes > 0;
  }
}
