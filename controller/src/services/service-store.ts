// The controller's service records: brokers, their catalog (offerings and plans), service instances and
// credential bindings, each instance and binding with its `last_operation`. Secrets arrive and leave
// sealed (see CredentialBox); this file never sees them in clear.

import type { Database, Queryable, SqlValue } from "../db/database.ts";

export type OperationType = "create" | "update" | "delete";
export type OperationState = "in progress" | "succeeded" | "failed";

export interface LastOperation {
  type: OperationType;
  state: OperationState;
  description: string | null;
  updated_at: number;
}

export interface BrokerRecord { guid: string; name: string; url: string; username: string; password_sealed: string; created_at: number; updated_at: number }
export interface OfferingRecord { guid: string; broker_guid: string; broker_service_id: string; name: string; description: string; bindable: boolean; tags: string[]; created_at: number }
export interface PlanRecord { guid: string; offering_guid: string; broker_plan_id: string; name: string; description: string; free: boolean; created_at: number }
export interface InstanceRecord {
  guid: string; name: string; space_guid: string; plan_guid: string; dashboard_url: string | null;
  last_operation: LastOperation; created_at: number; updated_at: number;
}
export interface BindingRecord {
  guid: string; app_guid: string; instance_guid: string; credentials_sealed: string | null;
  last_operation: LastOperation; created_at: number; updated_at: number;
}

/**
 * A broker resource that a failed create left behind and whose cleanup (orphan mitigation) failed too:
 * the instance or binding `guid` is retried with a delete until the broker confirms it is gone.
 */
export interface OrphanRecord {
  guid: string; kind: "instance" | "binding"; message: string; attempts: number; next_attempt_at: number; last_error: string | null; created_at: number;
}

/** Everything needed to talk to the broker about one instance. */
export interface InstanceContext { instance: InstanceRecord; plan: PlanRecord; offering: OfferingRecord; broker: BrokerRecord }

const n = (v: unknown) => Number(v);
const lastOp = (r: Record<string, unknown>): LastOperation => ({
  type: r.last_op_type as OperationType, state: r.last_op_state as OperationState,
  description: (r.last_op_description as string | null) ?? null, updated_at: n(r.updated_at),
});
const toBroker = (r: Record<string, unknown>): BrokerRecord => ({ ...(r as unknown as BrokerRecord), created_at: n(r.created_at), updated_at: n(r.updated_at) });
const toOffering = (r: Record<string, unknown>): OfferingRecord => ({
  guid: r.guid as string, broker_guid: r.broker_guid as string, broker_service_id: r.broker_service_id as string, name: r.name as string,
  description: r.description as string, bindable: n(r.bindable) === 1, tags: JSON.parse(r.tags_json as string), created_at: n(r.created_at),
});
const toPlan = (r: Record<string, unknown>): PlanRecord => ({
  guid: r.guid as string, offering_guid: r.offering_guid as string, broker_plan_id: r.broker_plan_id as string, name: r.name as string,
  description: r.description as string, free: n(r.free) === 1, created_at: n(r.created_at),
});
const toInstance = (r: Record<string, unknown>): InstanceRecord => ({
  guid: r.guid as string, name: r.name as string, space_guid: r.space_guid as string, plan_guid: r.plan_guid as string,
  dashboard_url: (r.dashboard_url as string | null) ?? null, last_operation: lastOp(r), created_at: n(r.created_at), updated_at: n(r.updated_at),
});
const toBinding = (r: Record<string, unknown>): BindingRecord => ({
  guid: r.guid as string, app_guid: r.app_guid as string, instance_guid: r.instance_guid as string,
  credentials_sealed: (r.credentials_sealed as string | null) ?? null, last_operation: lastOp(r), created_at: n(r.created_at), updated_at: n(r.updated_at),
});

const inList = (col: string, values: string[]) => `${col} IN (${values.map(() => "?").join(",")})`;

const toOrphan = (r: Record<string, unknown>): OrphanRecord => ({
  guid: r.guid as string, kind: r.kind as OrphanRecord["kind"], message: r.message as string, attempts: n(r.attempts),
  next_attempt_at: n(r.next_attempt_at), last_error: (r.last_error as string | null) ?? null, created_at: n(r.created_at),
});

export class ServiceStore {

  constructor(readonly db: Database) {}

  // ---- brokers and catalog ----
  async brokers(): Promise<BrokerRecord[]> {
    return (await this.db.all<Record<string, unknown>>(`SELECT * FROM service_brokers ORDER BY name`)).map(toBroker);
  }
  async broker(guidOrName: string): Promise<BrokerRecord | undefined> {
    const r = await this.db.get<Record<string, unknown>>(`SELECT * FROM service_brokers WHERE guid = ? OR name = ?`, [guidOrName, guidOrName]);
    return r && toBroker(r);
  }
  async insertBroker(q: Queryable, b: BrokerRecord): Promise<void> {
    await q.run(`INSERT INTO service_brokers (guid, name, url, username, password_sealed, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, [
      b.guid, b.name, b.url, b.username, b.password_sealed, b.created_at, b.updated_at,
    ]);
  }
  async updateBroker(q: Queryable, guid: string, patch: { url: string; username: string; password_sealed: string }): Promise<void> {
    await q.run(`UPDATE service_brokers SET url = ?, username = ?, password_sealed = ?, updated_at = ? WHERE guid = ?`, [patch.url, patch.username, patch.password_sealed, Date.now(), guid]);
  }
  async deleteBroker(q: Queryable, guid: string): Promise<void> {
    await q.run(`DELETE FROM service_plans WHERE offering_guid IN (SELECT guid FROM service_offerings WHERE broker_guid = ?)`, [guid]);
    await q.run(`DELETE FROM service_offerings WHERE broker_guid = ?`, [guid]);
    await q.run(`DELETE FROM service_brokers WHERE guid = ?`, [guid]);
  }
  async offerings(brokerGuid?: string, q: Queryable = this.db): Promise<OfferingRecord[]> {
    const rows = brokerGuid
      ? await q.all<Record<string, unknown>>(`SELECT * FROM service_offerings WHERE broker_guid = ? ORDER BY name`, [brokerGuid])
      : await q.all<Record<string, unknown>>(`SELECT * FROM service_offerings ORDER BY name`);
    return rows.map(toOffering);
  }
  async offering(guid: string): Promise<OfferingRecord | undefined> {
    const r = await this.db.get<Record<string, unknown>>(`SELECT * FROM service_offerings WHERE guid = ?`, [guid]);
    return r && toOffering(r);
  }
  async upsertOffering(q: Queryable, o: OfferingRecord): Promise<void> {
    const r = await q.run(`UPDATE service_offerings SET name = ?, description = ?, bindable = ?, tags_json = ? WHERE guid = ?`, [o.name, o.description, o.bindable ? 1 : 0, JSON.stringify(o.tags), o.guid]);
    if (r.changes === 0)
      await q.run(`INSERT INTO service_offerings (guid, broker_guid, broker_service_id, name, description, bindable, tags_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
        o.guid, o.broker_guid, o.broker_service_id, o.name, o.description, o.bindable ? 1 : 0, JSON.stringify(o.tags), o.created_at,
      ]);
  }
  async plans(offeringGuids?: string[], q: Queryable = this.db): Promise<PlanRecord[]> {
    if (offeringGuids && offeringGuids.length === 0) return [];
    const rows = offeringGuids
      ? await q.all<Record<string, unknown>>(`SELECT * FROM service_plans WHERE ${inList("offering_guid", offeringGuids)} ORDER BY name`, offeringGuids)
      : await q.all<Record<string, unknown>>(`SELECT * FROM service_plans ORDER BY name`);
    return rows.map(toPlan);
  }
  async plan(guid: string): Promise<PlanRecord | undefined> {
    const r = await this.db.get<Record<string, unknown>>(`SELECT * FROM service_plans WHERE guid = ?`, [guid]);
    return r && toPlan(r);
  }
  async upsertPlan(q: Queryable, p: PlanRecord): Promise<void> {
    const r = await q.run(`UPDATE service_plans SET name = ?, description = ?, free = ? WHERE guid = ?`, [p.name, p.description, p.free ? 1 : 0, p.guid]);
    if (r.changes === 0)
      await q.run(`INSERT INTO service_plans (guid, offering_guid, broker_plan_id, name, description, free, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, [
        p.guid, p.offering_guid, p.broker_plan_id, p.name, p.description, p.free ? 1 : 0, p.created_at,
      ]);
  }
  async deletePlan(q: Queryable, guid: string): Promise<void> {
    await q.run(`DELETE FROM service_plans WHERE guid = ?`, [guid]);
  }
  async deleteOffering(q: Queryable, guid: string): Promise<void> {
    await q.run(`DELETE FROM service_plans WHERE offering_guid = ?`, [guid]);
    await q.run(`DELETE FROM service_offerings WHERE guid = ?`, [guid]);
  }
  async countInstancesOfPlans(planGuids: string[], q: Queryable = this.db): Promise<number> {
    if (!planGuids.length) return 0;
    return n((await q.get<{ c: number }>(`SELECT COUNT(*) AS c FROM service_instances WHERE ${inList("plan_guid", planGuids)}`, planGuids))!.c);
  }

  // ---- instances ----
  async instances(spaceGuids?: string[]): Promise<InstanceRecord[]> {
    if (spaceGuids && spaceGuids.length === 0) return [];
    const rows = spaceGuids
      ? await this.db.all<Record<string, unknown>>(`SELECT * FROM service_instances WHERE ${inList("space_guid", spaceGuids)} ORDER BY name`, spaceGuids)
      : await this.db.all<Record<string, unknown>>(`SELECT * FROM service_instances ORDER BY name`);
    return rows.map(toInstance);
  }
  async instance(guid: string, q: Queryable = this.db): Promise<InstanceRecord | undefined> {
    const r = await q.get<Record<string, unknown>>(`SELECT * FROM service_instances WHERE guid = ?`, [guid]);
    return r && toInstance(r);
  }
  async instanceByName(spaceGuid: string, name: string, q: Queryable = this.db): Promise<InstanceRecord | undefined> {
    const r = await q.get<Record<string, unknown>>(`SELECT * FROM service_instances WHERE space_guid = ? AND name = ?`, [spaceGuid, name]);
    return r && toInstance(r);
  }
  async instanceContext(guid: string): Promise<InstanceContext | undefined> {
    const instance = await this.instance(guid);
    const plan = instance && (await this.plan(instance.plan_guid));
    const offering = plan && (await this.offering(plan.offering_guid));
    const broker = offering && (await this.broker(offering.broker_guid));
    return instance && plan && offering && broker ? { instance, plan, offering, broker } : undefined;
  }
  async insertInstance(q: Queryable, i: InstanceRecord): Promise<void> {
    await q.run(`INSERT INTO service_instances (guid, name, space_guid, plan_guid, dashboard_url, last_op_type, last_op_state, last_op_description, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      i.guid, i.name, i.space_guid, i.plan_guid, i.dashboard_url, i.last_operation.type, i.last_operation.state, i.last_operation.description, i.created_at, i.updated_at,
    ]);
  }
  /** Records an operation's state; `extra` also sets the dashboard URL, or the plan once a plan change succeeded. */
  async setInstanceOperation(guid: string, op: Omit<LastOperation, "updated_at">, extra: { dashboard_url?: string | null; plan_guid?: string } = {}, q: Queryable = this.db): Promise<void> {
    const sets: string[] = [];
    const values: SqlValue[] = [];
    if (extra.dashboard_url !== undefined) (sets.push(", dashboard_url = ?"), values.push(extra.dashboard_url));
    if (extra.plan_guid !== undefined) (sets.push(", plan_guid = ?"), values.push(extra.plan_guid));
    await q.run(`UPDATE service_instances SET last_op_type = ?, last_op_state = ?, last_op_description = ?, updated_at = ?${sets.join("")} WHERE guid = ?`, [
      op.type, op.state, op.description, Date.now(), ...values, guid,
    ]);
  }
  async deleteInstance(q: Queryable, guid: string): Promise<void> {
    await q.run(`DELETE FROM service_bindings WHERE instance_guid = ?`, [guid]);
    await q.run(`DELETE FROM service_instances WHERE guid = ?`, [guid]);
  }

  // ---- bindings ----
  async bindings(filter: { appGuid?: string; instanceGuid?: string; spaceGuids?: string[] } = {}, q: Queryable = this.db): Promise<BindingRecord[]> {
    const where: string[] = [];
    const params: string[] = [];
    if (filter.appGuid) (where.push(`b.app_guid = ?`), params.push(filter.appGuid));
    if (filter.instanceGuid) (where.push(`b.instance_guid = ?`), params.push(filter.instanceGuid));
    if (filter.spaceGuids) {
      if (!filter.spaceGuids.length) return [];
      where.push(inList("i.space_guid", filter.spaceGuids));
      params.push(...filter.spaceGuids);
    }
    const rows = await q.all<Record<string, unknown>>(
      `SELECT b.* FROM service_bindings b JOIN service_instances i ON i.guid = b.instance_guid ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY b.created_at, b.guid`,
      params,
    );
    return rows.map(toBinding);
  }
  async binding(guid: string, q: Queryable = this.db): Promise<BindingRecord | undefined> {
    const r = await q.get<Record<string, unknown>>(`SELECT * FROM service_bindings WHERE guid = ?`, [guid]);
    return r && toBinding(r);
  }
  async insertBinding(q: Queryable, b: BindingRecord): Promise<void> {
    await q.run(`INSERT INTO service_bindings (guid, app_guid, instance_guid, credentials_sealed, last_op_type, last_op_state, last_op_description, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      b.guid, b.app_guid, b.instance_guid, b.credentials_sealed, b.last_operation.type, b.last_operation.state, b.last_operation.description, b.created_at, b.updated_at,
    ]);
  }
  async setBindingOperation(guid: string, op: Omit<LastOperation, "updated_at">, credentialsSealed?: string | null): Promise<void> {
    await this.db.run(`UPDATE service_bindings SET last_op_type = ?, last_op_state = ?, last_op_description = ?, updated_at = ?${credentialsSealed !== undefined ? ", credentials_sealed = ?" : ""} WHERE guid = ?`, [
      op.type, op.state, op.description, Date.now(), ...(credentialsSealed !== undefined ? [credentialsSealed] : []), guid,
    ]);
  }
  async deleteBinding(q: Queryable, guid: string): Promise<void> {
    await q.run(`DELETE FROM service_bindings WHERE guid = ?`, [guid]);
  }

  // ---- orphans left at brokers (see orphan-cleanup.ts; the table is migration 4's) ----
  async insertOrphan(o: OrphanRecord): Promise<void> {
    await this.db.run(`DELETE FROM service_orphans WHERE guid = ?`, [o.guid]);
    await this.db.run(`INSERT INTO service_orphans (guid, kind, message, attempts, next_attempt_at, last_error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, [
      o.guid, o.kind, o.message, o.attempts, o.next_attempt_at, o.last_error, o.created_at,
    ]);
  }
  async orphansDue(now: number): Promise<OrphanRecord[]> {
    return (await this.db.all<Record<string, unknown>>(`SELECT * FROM service_orphans WHERE next_attempt_at <= ? ORDER BY next_attempt_at`, [now])).map(toOrphan);
  }
  async orphan(guid: string): Promise<OrphanRecord | undefined> {
    const r = await this.db.get<Record<string, unknown>>(`SELECT * FROM service_orphans WHERE guid = ?`, [guid]);
    return r && toOrphan(r);
  }
  /** When the next retry is due; undefined when no orphan is left. */
  async nextOrphanAt(): Promise<number | undefined> {
    const r = await this.db.get<{ next_at: unknown }>(`SELECT MIN(next_attempt_at) AS next_at FROM service_orphans`);
    return r?.next_at === null || r?.next_at === undefined ? undefined : n(r.next_at);
  }
  async rescheduleOrphan(guid: string, attempts: number, nextAttemptAt: number, lastError: string | null): Promise<void> {
    await this.db.run(`UPDATE service_orphans SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE guid = ?`, [attempts, nextAttemptAt, lastError, guid]);
  }
  async deleteOrphan(guid: string): Promise<void> {
    await this.db.run(`DELETE FROM service_orphans WHERE guid = ?`, [guid]);
  }
}
