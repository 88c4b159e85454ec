// MySQL/MariaDB as a service on a shared server: a database per instance, and a user per binding with
// privileges on that database only. Unbind kills the user's connections and drops it.

import { SQL } from "bun";
import type { BindRequest, BindingRef, CatalogService, InstanceRef, Provisioner, ProvisionRequest } from "../types.ts";
import { advertised, credentials, newPassword, resourceName } from "./names.ts";

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
  plan_updateable: false,
  bindings_retrievable: true,
  metadata: { displayName: "MySQL" },
  plans: [{ id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f22", name: "shared", description: "A database on a shared MariaDB server", free: true }],
};

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

  async deprovision(ref: InstanceRef) {
    const db = MysqlProvisioner.databaseName(ref.instanceId);
    // Users still granted on the database (the broker unbinds first; this is the net).
    const users = (await this.admin.unsafe(`SELECT DISTINCT User AS user FROM mysql.db WHERE Db = ?`, [db])) as { user: string }[];
    for (const u of users) if (/^skiffu[0-9a-f]+$/.test(u.user)) await this.dropUser(u.user);
    await this.admin.unsafe(`DROP DATABASE IF EXISTS ${ident(db)}`);
  }

  async bind(req: BindRequest) {
    const db = MysqlProvisioner.databaseName(req.instanceId);
    const user = MysqlProvisioner.userName(req.bindingId);
    const password = newPassword();
    const exists = await this.admin.unsafe(`SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, [db]);
    if (exists.length === 0) throw new Error(`database for instance ${req.instanceId} does not exist`);
    await this.admin.unsafe(`CREATE USER IF NOT EXISTS '${user}'@'%' IDENTIFIED BY ${literal(password)}`);
    await this.admin.unsafe(`ALTER USER '${user}'@'%' IDENTIFIED BY ${literal(password)}`);
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
