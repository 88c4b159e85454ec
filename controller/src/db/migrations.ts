// Versioned schema migrations. Portable SQL only (TEXT, INTEGER, BIGINT, plain UNIQUE/PRIMARY KEY),
// so the same list runs on SQLite and PostgreSQL. Append new versions; never edit applied ones.

import type { Database } from "./database.ts";

export const migrations: { version: number; name: string; sql: string[] }[] = [
  {
    version: 1,
    name: "core",
    sql: [
      `CREATE TABLE users (guid TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
        admin INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL)`,
      `CREATE TABLE tokens (token_hash TEXT PRIMARY KEY, user_guid TEXT NOT NULL REFERENCES users(guid) ON DELETE CASCADE,
        expires_at BIGINT NOT NULL)`,
      `CREATE TABLE orgs (guid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL)`,
      `CREATE TABLE spaces (guid TEXT PRIMARY KEY, name TEXT NOT NULL, org_guid TEXT NOT NULL REFERENCES orgs(guid),
        created_at BIGINT NOT NULL, UNIQUE (org_guid, name))`,
      `CREATE TABLE roles (guid TEXT PRIMARY KEY, user_guid TEXT NOT NULL REFERENCES users(guid) ON DELETE CASCADE,
        type TEXT NOT NULL, org_guid TEXT, space_guid TEXT, created_at BIGINT NOT NULL)`,
      `CREATE TABLE apps (guid TEXT PRIMARY KEY, name TEXT NOT NULL, space_guid TEXT NOT NULL REFERENCES spaces(guid),
        state TEXT NOT NULL, instances INTEGER NOT NULL, memory_mb INTEGER NOT NULL, disk_mb INTEGER NOT NULL,
        command TEXT, env_json TEXT NOT NULL, buildpack TEXT, stack TEXT,
        health_check_type TEXT NOT NULL, health_check_endpoint TEXT, health_check_timeout INTEGER NOT NULL,
        package_sha TEXT, package_state TEXT NOT NULL, staging_error TEXT, droplet_guid TEXT,
        release INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
        UNIQUE (space_guid, name))`,
      `CREATE TABLE droplets (guid TEXT PRIMARY KEY, app_guid TEXT NOT NULL, sha256 TEXT NOT NULL,
        detected_start_command TEXT, buildpack TEXT, package_sha TEXT, created_at BIGINT NOT NULL)`,
      `CREATE INDEX droplets_app ON droplets (app_guid, created_at)`,
      `CREATE TABLE domains (guid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, shared INTEGER NOT NULL,
        org_guid TEXT, created_at BIGINT NOT NULL)`,
      `CREATE TABLE routes (guid TEXT PRIMARY KEY, host TEXT NOT NULL, domain_guid TEXT NOT NULL REFERENCES domains(guid),
        path TEXT NOT NULL, space_guid TEXT NOT NULL REFERENCES spaces(guid), created_at BIGINT NOT NULL,
        UNIQUE (host, domain_guid, path))`,
      `CREATE TABLE route_mappings (route_guid TEXT NOT NULL REFERENCES routes(guid) ON DELETE CASCADE,
        app_guid TEXT NOT NULL REFERENCES apps(guid) ON DELETE CASCADE, PRIMARY KEY (route_guid, app_guid))`,
      `CREATE TABLE events (guid TEXT PRIMARY KEY, type TEXT NOT NULL, actor_guid TEXT, actor_name TEXT,
        target_type TEXT NOT NULL, target_guid TEXT NOT NULL, target_name TEXT, space_guid TEXT,
        data_json TEXT NOT NULL, created_at BIGINT NOT NULL)`,
      `CREATE INDEX events_target ON events (target_guid, created_at)`,
      `CREATE TABLE instance_crashes (app_guid TEXT NOT NULL, idx INTEGER NOT NULL, crash_count INTEGER NOT NULL,
        last_crash_at BIGINT NOT NULL, next_restart_at BIGINT NOT NULL, last_exit_description TEXT,
        PRIMARY KEY (app_guid, idx))`,
      `CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at BIGINT NOT NULL)`,
      `CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)`,
      `CREATE TABLE deployments (guid TEXT PRIMARY KEY, app_guid TEXT NOT NULL, state TEXT NOT NULL,
        droplet_guid TEXT, release INTEGER NOT NULL, reason TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      `CREATE INDEX deployments_app ON deployments (app_guid, state)`,
    ],
  },
  {
    version: 2,
    name: "services",
    sql: [
      // passwords and credentials are sealed with the CredentialBox (AES-GCM, key outside the database)
      `CREATE TABLE service_brokers (guid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, url TEXT NOT NULL, username TEXT NOT NULL,
        password_sealed TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      `CREATE TABLE service_offerings (guid TEXT PRIMARY KEY, broker_guid TEXT NOT NULL REFERENCES service_brokers(guid),
        broker_service_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, bindable INTEGER NOT NULL,
        tags_json TEXT NOT NULL, created_at BIGINT NOT NULL, UNIQUE (broker_guid, broker_service_id))`,
      `CREATE TABLE service_plans (guid TEXT PRIMARY KEY, offering_guid TEXT NOT NULL REFERENCES service_offerings(guid),
        broker_plan_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, free INTEGER NOT NULL,
        created_at BIGINT NOT NULL, UNIQUE (offering_guid, broker_plan_id))`,
      `CREATE TABLE service_instances (guid TEXT PRIMARY KEY, name TEXT NOT NULL, space_guid TEXT NOT NULL REFERENCES spaces(guid),
        plan_guid TEXT NOT NULL REFERENCES service_plans(guid), dashboard_url TEXT, last_op_type TEXT NOT NULL,
        last_op_state TEXT NOT NULL, last_op_description TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
        UNIQUE (space_guid, name))`,
      `CREATE TABLE service_bindings (guid TEXT PRIMARY KEY, app_guid TEXT NOT NULL REFERENCES apps(guid),
        instance_guid TEXT NOT NULL REFERENCES service_instances(guid), credentials_sealed TEXT,
        last_op_type TEXT NOT NULL, last_op_state TEXT NOT NULL, last_op_description TEXT,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (app_guid, instance_guid))`,
      `CREATE INDEX service_bindings_app ON service_bindings (app_guid)`,
    ],
  },
  {
    version: 3,
    name: "staging owner, events by space, no deployments",
    sql: [
      // who is staging the app and since when: a controller restarted mid-staging fails its own
      // leftovers at start, and anyone's older than a staging can last (issue 7)
      `ALTER TABLE apps ADD COLUMN staging_by TEXT`,
      `ALTER TABLE apps ADD COLUMN staging_since BIGINT`,
      `CREATE INDEX events_space ON events (space_guid, created_at)`,
      `CREATE INDEX events_created ON events (created_at)`,
      // never written: rolling deploys are the health manager's diff of releases
      `DROP TABLE deployments`,
    ],
  },
  {
    version: 4,
    name: "service orphans",
    sql: [
      // broker deletes that orphan mitigation could not finish, retried in the background
      // (services/orphan-cleanup.ts); IF NOT EXISTS: builds before this migration made it on first use
      `CREATE TABLE IF NOT EXISTS service_orphans (guid TEXT PRIMARY KEY, kind TEXT NOT NULL, message TEXT NOT NULL,
        attempts INTEGER NOT NULL, next_attempt_at BIGINT NOT NULL, last_error TEXT, created_at BIGINT NOT NULL)`,
    ],
  },
  {
    version: 5,
    name: "login lockout",
    sql: [
      // failed logins in a row by the name typed, known or not, so a lock never tells which names
      // exist (issue 24); a row goes on success, or once stale and unlocked
      `CREATE TABLE login_failures (username TEXT PRIMARY KEY, failures INTEGER NOT NULL, last_failure_at BIGINT NOT NULL,
        locked_until BIGINT)`,
      `CREATE INDEX login_failures_last ON login_failures (last_failure_at)`,
    ],
  },
  {
    version: 6,
    name: "process types and tasks",
    sql: [
      // an app's processes (issue 17), as Cloud Foundry v3 has them: one row per type, each with its
      // own command, instances, limits and health check. Every existing app's instances, memory,
      // disk, command and health check become its web process, whose guid is the app's (as in CF).
      // The app row keeps the web process's figures too (store.ts keeps both in step), so readers of
      // an app need not know about processes.
      `CREATE TABLE processes (guid TEXT PRIMARY KEY, app_guid TEXT NOT NULL REFERENCES apps(guid) ON DELETE CASCADE,
        type TEXT NOT NULL, command TEXT, instances INTEGER NOT NULL, memory_mb INTEGER NOT NULL, disk_mb INTEGER NOT NULL,
        health_check_type TEXT NOT NULL, health_check_endpoint TEXT, health_check_timeout INTEGER NOT NULL,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (app_guid, type))`,
      `INSERT INTO processes (guid, app_guid, type, command, instances, memory_mb, disk_mb, health_check_type,
        health_check_endpoint, health_check_timeout, created_at, updated_at)
        SELECT guid, guid, 'web', command, instances, memory_mb, disk_mb, health_check_type, health_check_endpoint,
        health_check_timeout, created_at, updated_at FROM apps`,
      // the process types a droplet knows (its Procfile's, and web), as JSON
      `ALTER TABLE droplets ADD COLUMN process_types_json TEXT`,
      // crash counts per process type and index (they were per index)
      `CREATE TABLE process_crashes (app_guid TEXT NOT NULL, process_type TEXT NOT NULL, idx INTEGER NOT NULL,
        crash_count INTEGER NOT NULL, last_crash_at BIGINT NOT NULL, next_restart_at BIGINT NOT NULL,
        last_exit_description TEXT, PRIMARY KEY (app_guid, process_type, idx))`,
      `INSERT INTO process_crashes (app_guid, process_type, idx, crash_count, last_crash_at, next_restart_at, last_exit_description)
        SELECT app_guid, 'web', idx, crash_count, last_crash_at, next_restart_at, last_exit_description FROM instance_crashes`,
      `DROP TABLE instance_crashes`,
      // one-off tasks: their state is the controller's, kept across its restarts (controller/src/tasks)
      `CREATE TABLE tasks (guid TEXT PRIMARY KEY, app_guid TEXT NOT NULL, name TEXT NOT NULL, command TEXT NOT NULL,
        state TEXT NOT NULL, sequence_id INTEGER NOT NULL, memory_mb INTEGER NOT NULL, disk_mb INTEGER NOT NULL,
        droplet_guid TEXT, agent_id TEXT, exit_status INTEGER, failure_reason TEXT,
        created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, UNIQUE (app_guid, sequence_id))`,
      `CREATE INDEX tasks_state ON tasks (state)`,
    ],
  },
];

/** Any fixed number: the PostgreSQL advisory lock every skiff process takes to migrate. */
export const MIGRATION_LOCK = 7_363_021;

/**
 * Brings the schema up to date. Several processes may start on the same database at once (two
 * controllers, a controller and its health managers), so the applied versions are read inside the
 * transaction that applies the rest, holding the write lock: BEGIN IMMEDIATE on SQLite (db.tx), a
 * transaction-scoped advisory lock on PostgreSQL. The second process waits, then finds nothing to do.
 */
export async function migrate(db: Database): Promise<number[]> {
  return db.tx(async (q) => {
    if (db.dialect === "postgres") await q.all(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`);
    await q.run(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
    const applied = new Set((await q.all<{ version: number }>(`SELECT version FROM schema_migrations`)).map((r) => Number(r.version)));
    const ran: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      for (const s of m.sql) await q.run(s);
      await q.run(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, [m.version, m.name, Date.now()]);
      ran.push(m.version);
    }
    return ran;
  });
}
