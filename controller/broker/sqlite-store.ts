// The broker's default store: one SQLite file in the data dir (bun:sqlite). Records are JSON documents;
// the file holds binding credentials, so it is created readable by its owner only.

import { Database } from "bun:sqlite";
import { chmodSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { BindingRecord, BrokerStore, InstanceRecord } from "./store.ts";

export class SqliteBrokerStore implements BrokerStore {
  private readonly db: Database;

  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { create: true });
    if (path !== ":memory:") chmodSync(path, 0o600);
    this.db.exec("PRAGMA journal_mode = WAL");
    this.db.exec("PRAGMA busy_timeout = 5000");
    this.db.exec(`CREATE TABLE IF NOT EXISTS broker_instances (id TEXT PRIMARY KEY, open INTEGER NOT NULL, doc TEXT NOT NULL)`);
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS broker_bindings (id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, open INTEGER NOT NULL, doc TEXT NOT NULL)`,
    );
    this.db.exec(`CREATE INDEX IF NOT EXISTS broker_bindings_instance ON broker_bindings (instance_id)`);
  }

  async getInstance(id: string) {
    const row = this.db.query<{ doc: string }, [string]>("SELECT doc FROM broker_instances WHERE id = ?").get(id);
    return row ? (JSON.parse(row.doc) as InstanceRecord) : undefined;
  }
  async instances() {
    return this.db
      .query<{ doc: string }, []>("SELECT doc FROM broker_instances")
      .all()
      .map((row) => JSON.parse(row.doc) as InstanceRecord);
  }
  async putInstance(r: InstanceRecord) {
    this.db
      .query("INSERT OR REPLACE INTO broker_instances (id, open, doc) VALUES (?, ?, ?)")
      .run(r.id, r.operation?.state === "in progress" ? 1 : 0, JSON.stringify(r));
  }
  async deleteInstance(id: string) {
    this.db.query("DELETE FROM broker_instances WHERE id = ?").run(id);
  }
  async getBinding(id: string) {
    const row = this.db.query<{ doc: string }, [string]>("SELECT doc FROM broker_bindings WHERE id = ?").get(id);
    return row ? (JSON.parse(row.doc) as BindingRecord) : undefined;
  }
  async putBinding(r: BindingRecord) {
    this.db
      .query("INSERT OR REPLACE INTO broker_bindings (id, instance_id, open, doc) VALUES (?, ?, ?, ?)")
      .run(r.id, r.instanceId, r.operation?.state === "in progress" ? 1 : 0, JSON.stringify(r));
  }
  async deleteBinding(id: string) {
    this.db.query("DELETE FROM broker_bindings WHERE id = ?").run(id);
  }
  async bindingsOf(instanceId: string) {
    return this.db
      .query<{ doc: string }, [string]>("SELECT doc FROM broker_bindings WHERE instance_id = ?")
      .all(instanceId)
      .map((row) => JSON.parse(row.doc) as BindingRecord);
  }
  async unfinished() {
    const instances = this.db
      .query<{ doc: string }, []>("SELECT doc FROM broker_instances WHERE open = 1")
      .all()
      .map((row) => JSON.parse(row.doc) as InstanceRecord);
    const bindings = this.db
      .query<{ doc: string }, []>("SELECT doc FROM broker_bindings WHERE open = 1")
      .all()
      .map((row) => JSON.parse(row.doc) as BindingRecord);
    return { instances, bindings };
  }
  async close() {
    this.db.close();
  }
}
