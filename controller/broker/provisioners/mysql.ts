// MySQL/MariaDB as a service on a shared server: a database per instance, and a user per binding with
// privileges on that database only. Unbind kills the user's connections and drops it. A plan caps each
// binding's connections with the server's own per-account MAX_USER_CONNECTIONS.

import { SQL } from "bun";
import type { BindRequest, BindingRef, CatalogPlan, CatalogService, InstanceRef, Provisioner, ProvisionRequest, UpdateRequest } from "../types.ts";
import { advertised, credentials, newPassword, resourceName } from "./names.ts";
import { limitedPlan, planLimit } from "./plan-limits.ts";

/** Enforced by MariaDB at login: `ALTER USER … WITH MAX_USER_CONNECTIONS n` on every binding's account. */
const connections = (value: number) => ({ connections_per_binding: { value, reads: "connections per binding", how: "the account's MAX_USER_CONNECTIONS" } });

export interface MysqlProvisionerOptions {
  /** An admin with GRANT OPTION: mysql://admin:pw@host:port/mysql */
  adminUrl: string;
  advertise?: { host?: string; port?: number };
  service?: Partial<CatalogService>;
}

export const mysqlService: CatalogService = {
  id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f21",
  name: "mysql",
  description: "A MySQL (MariaDB) database on a shared server",
  bindable: true,
  tags: ["mysql", "mariadb", "relational", "sql"],
  plan_updateable: true,
  instances_retrievable: true,
  bindings_retrievable: true,
  metadata: { displayName: "MySQL" },
  plans: [
    limitedPlan({ id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f22", name: "shared", summary: "A database on a shared MariaDB server", limits: connections(10) }),
    limitedPlan({ id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f23", name: "shared-large", summary: "A database on a shared MariaDB server", limits: connections(40) }),
  ],
};

/** MAX_USER_CONNECTIONS of a plan's binding accounts; 0 (the server's default) for a plan without the figure. */
function connectionLimit(plan: CatalogPlan): number {
  return planLimit(plan, "connections_per_binding") ?? 0;
}

// Names are [a-z0-9] only (names.ts), so backticks need no escaping and no `_` acts as a GRANT wildcard.
const ident = (name: string) => `\`${name}\``;
const literal = (value: string) => `'${value.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;

export class MysqlProvisioner implements Provisioner {
  readonly service: CatalogService;
  private readonly admin: SQL;

  constructor(private readonly opts: MysqlProvisionerOptions) {
    this.service = { ...mysqlService, ...opts.service };
    this.admin = new SQL({ url: opts.adminUrl, adapter: "mysql", max: 2, idleTimeout: 30 });
  }

  static databaseName(instanceId: string) {
    return resourceName("skiffdb", instanceId);
  }

  static userName(bindingId: string) {
    return resourceName("skiffu", bindingId);
  }

  async provision(req: ProvisionRequest) {
    await this.admin.unsafe(`CREATE DATABASE IF NOT EXISTS ${ident(MysqlProvisioner.databaseName(req.instanceId))} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  }

  /**
   * A plan change: every binding's account gets the new plan's MAX_USER_CONNECTIONS at once. MariaDB checks
   * it at login, so connections already open stay (a smaller plan refuses new ones until fewer are open).
   */
  async update(req: UpdateRequest) {
    const limit = connectionLimit(req.plan);
    for (const user of await this.bindingUsers(req.instanceId)) await this.admin.unsafe(`ALTER USER '${user}'@'%' WITH MAX_USER_CONNECTIONS ${limit}`);
  }

  async deprovision(ref: InstanceRef) {
    // Users still granted on the database (the broker unbinds first; this is the net).
    for (const user of await this.bindingUsers(ref.instanceId)) await this.dropUser(user);
    await this.admin.unsafe(`DROP DATABASE IF EXISTS ${ident(MysqlProvisioner.databaseName(ref.instanceId))}`);
  }

  /** Our binding accounts granted on the instance's database. */
  private async bindingUsers(instanceId: string): Promise<string[]> {
    const users = (await this.admin.unsafe(`SELECT DISTINCT User AS user FROM mysql.db WHERE Db = ?`, [MysqlProvisioner.databaseName(instanceId)])) as { user: string }[];
    return users.map((u) => u.user).filter((u) => /^skiffu[0-9a-f]+$/.test(u));
  }

  async bind(req: BindRequest) {
    const db = MysqlProvisioner.databaseName(req.instanceId);
    const user = MysqlProvisioner.userName(req.bindingId);
    const password = newPassword();
    const exists = await this.admin.unsafe(`SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, [db]);
    if (exists.length === 0) throw new Error(`database for instance ${req.instanceId} does not exist`);
    const limit = connectionLimit(req.plan);
    await this.admin.unsafe(`CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY ${literal(password)} WITH MAX_USER_CONNECTIONS ${limit}`);
    await this.admin.unsafe(`ALTER USER '${user}'@'%' IDENTIFIED BY ${literal(password)} WITH MAX_USER_CONNECTIONS ${limit}`);
    await this.admin.unsafe(`GRANT ALL PRIVILEGES ON ${ident(db)}.* TO '${user}'@'%'`);
    const { hostname, port } = advertised(this.opts.adminUrl, this.opts.advertise, 3306);
    const creds = credentials("mysql", { hostname, port, name: db, username: user, password }, `/${db}`);
    creds.jdbcUrl = `jdbc:mysql://${hostname}:${port}/${db}?user=${user}&password=${password}`;
    return { credentials: creds };
  }

  async unbind(ref: BindingRef) {
    await this.dropUser(MysqlProvisioner.userName(ref.bindingId));
  }

  async close() {
    await this.admin.close({ timeout: 1 });
  }

  /** Lock first so the app cannot reconnect between the kill and the drop. */
  private async dropUser(user: string) {
    const exists = await this.admin.unsafe(`SELECT 1 FROM mysql.user WHERE User = ? AND Host = '%'`, [user]);
    if (exists.length === 0) return;
    await this.admin.unsafe(`ALTER USER '${user}'@'%' ACCOUNT LOCK`);
    const sessions = (await this.admin.unsafe(`SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ?`, [user])) as { id: number | bigint }[];
    for (const s of sessions) await this.admin.unsafe(`KILL CONNECTION ${Number(s.id)}`).catch(() => {});
    await this.admin.unsafe(`DROP USER IF EXISTS '${user}'@'%'`);
  }
}
