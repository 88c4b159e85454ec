// PostgreSQL as a service on a shared server: one database and one NOLOGIN owner role per instance; one
// LOGIN role per binding, a member of the owner role, whose sessions SET ROLE to the owner so every
// binding sees and owns the same objects. Nothing is granted to PUBLIC, so no other tenant can connect.
// A plan caps each binding's connections with the server's own per-role CONNECTION LIMIT.

import { SQL } from "bun";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import type { BindRequest, BindingRef, CatalogPlan, CatalogService, InstanceRef, Provisioner, ProvisionRequest, UpdateRequest } from "../types.ts";
import { advertised, credentials, newPassword, resourceName } from "./names.ts";
import { limitedPlan, planLimit } from "./plan-limits.ts";

/** Enforced by PostgreSQL at login: `ALTER ROLE … CONNECTION LIMIT n` on every binding's role. */
const connections = (value: number) => ({ connections_per_binding: { value, reads: "connections per binding", how: "the role's CONNECTION LIMIT" } });

export interface PostgresProvisionerOptions {
  /** A superuser (or CREATEDB CREATEROLE) connection: postgres://admin:pw@host:port/postgres */
  adminUrl: string;
  /** Host/port apps should use, when they differ from the admin URL's. */
  advertise?: { host?: string; port?: number };
  service?: Partial<CatalogService>;
}

export const postgresService: CatalogService = {
  id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f11",
  name: "postgresql",
  description: "A PostgreSQL database on a shared server",
  bindable: true,
  tags: ["postgresql", "relational", "sql"],
  plan_updateable: true,
  instances_retrievable: true,
  bindings_retrievable: true,
  metadata: { displayName: "PostgreSQL" },
  plans: [
    limitedPlan({ id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f12", name: "shared", summary: "A database on a shared PostgreSQL server", limits: connections(10) }),
    limitedPlan({ id: "3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f13", name: "shared-large", summary: "A database on a shared PostgreSQL server", limits: connections(40) }),
  ],
};

/** `CONNECTION LIMIT` of a plan's binding roles; -1 (none) for a plan without the figure. */
function connectionLimit(plan: CatalogPlan): number {
  return planLimit(plan, "connections_per_binding") ?? -1;
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password, computed here so the plain password never
 * travels in a statement (and never lands in a server log with log_statement on). Our passwords are
 * ASCII, for which SASLprep changes nothing.
 */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;

export class PostgresProvisioner implements Provisioner {
  readonly service: CatalogService;
  private readonly admin: SQL;

  constructor(private readonly opts: PostgresProvisionerOptions) {
    this.service = { ...postgresService, ...opts.service };
    this.admin = new SQL({ url: opts.adminUrl, max: 2, idleTimeout: 30 });
  }

  static databaseName(instanceId: string) {
    return resourceName("skiffdb", instanceId);
  }

  static ownerName(instanceId: string) {
    return resourceName("skiffown", instanceId);
  }

  async provision(req: ProvisionRequest) {
    const db = PostgresProvisioner.databaseName(req.instanceId);
    const owner = PostgresProvisioner.ownerName(req.instanceId);
    if (!(await this.exists("SELECT 1 FROM pg_roles WHERE rolname = $1", owner))) {
      await this.admin.unsafe(`CREATE ROLE ${ident(owner)} NOLOGIN`);
    }
    if (!(await this.exists("SELECT 1 FROM pg_database WHERE datname = $1", db))) {
      await this.admin.unsafe(`CREATE DATABASE ${ident(db)} OWNER ${ident(owner)} ENCODING 'UTF8' TEMPLATE template0`);
    }
    await this.admin.unsafe(`REVOKE ALL ON DATABASE ${ident(db)} FROM PUBLIC`);
    await this.inDatabase(db, async (sql) => {
      await sql.unsafe(`REVOKE ALL ON SCHEMA public FROM PUBLIC`);
      await sql.unsafe(`ALTER SCHEMA public OWNER TO ${ident(owner)}`);
    });
  }

  async deprovision(ref: InstanceRef) {
    const db = PostgresProvisioner.databaseName(ref.instanceId);
    const owner = PostgresProvisioner.ownerName(ref.instanceId);
    // Any binding role still a member of the owner goes too (the broker unbinds first; this is the net).
    for (const role of await this.bindingRoles(ref.instanceId)) await this.dropLoginRole(role);
    await this.admin.unsafe(`DROP DATABASE IF EXISTS ${ident(db)} WITH (FORCE)`);
    await this.admin.unsafe(`DROP ROLE IF EXISTS ${ident(owner)}`);
  }

  /**
   * A plan change: every binding's role gets the new plan's CONNECTION LIMIT at once. PostgreSQL checks it
   * at login, so sessions already open stay (a smaller plan refuses new ones until fewer are open); the
   * database is untouched.
   */
  async update(req: UpdateRequest) {
    const limit = connectionLimit(req.plan);
    for (const role of await this.bindingRoles(req.instanceId)) await this.admin.unsafe(`ALTER ROLE ${ident(role)} CONNECTION LIMIT ${limit}`);
  }

  async bind(req: BindRequest) {
    const db = PostgresProvisioner.databaseName(req.instanceId);
    const owner = PostgresProvisioner.ownerName(req.instanceId);
    const user = resourceName("skiffusr", req.bindingId);
    const password = newPassword();
    if (!(await this.exists("SELECT 1 FROM pg_database WHERE datname = $1", db))) throw new Error(`database for instance ${req.instanceId} does not exist`);
    const limit = connectionLimit(req.plan);
    if (await this.exists("SELECT 1 FROM pg_roles WHERE rolname = $1", user)) {
      await this.admin.unsafe(`ALTER ROLE ${ident(user)} LOGIN CONNECTION LIMIT ${limit} PASSWORD ${literal(scramVerifier(password))}`);
    } else {
      await this.admin.unsafe(`CREATE ROLE ${ident(user)} LOGIN CONNECTION LIMIT ${limit} PASSWORD ${literal(scramVerifier(password))} INHERIT IN ROLE ${ident(owner)}`);
    }
    // Objects the app creates belong to the owner, so a later binding (or a rebind) can use them.
    await this.admin.unsafe(`ALTER ROLE ${ident(user)} IN DATABASE ${ident(db)} SET role TO ${ident(owner)}`);
    const { hostname, port } = advertised(this.opts.adminUrl, this.opts.advertise, 5432);
    const creds = credentials("postgres", { hostname, port, name: db, username: user, password }, `/${db}`);
    creds.jdbcUrl = `jdbc:postgresql://${hostname}:${port}/${db}?user=${user}&password=${password}`;
    return { credentials: creds };
  }

  async unbind(ref: BindingRef) {
    await this.dropLoginRole(resourceName("skiffusr", ref.bindingId), PostgresProvisioner.databaseName(ref.instanceId));
  }

  async close() {
    await this.admin.close({ timeout: 1 });
  }

  /** NOLOGIN first so the app cannot reconnect between the kill and the drop. */
  private async dropLoginRole(user: string, db?: string) {
    if (!(await this.exists("SELECT 1 FROM pg_roles WHERE rolname = $1", user))) return;
    await this.admin.unsafe(`ALTER ROLE ${ident(user)} NOLOGIN`);
    await this.admin.unsafe(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [user]);
    if (db && (await this.exists("SELECT 1 FROM pg_database WHERE datname = $1", db))) {
      const owner = (await this.admin.unsafe(`SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1`, [db]))[0].owner as string;
      await this.inDatabase(db, async (sql) => {
        await sql.unsafe(`REASSIGN OWNED BY ${ident(user)} TO ${ident(owner)}`);
        await sql.unsafe(`DROP OWNED BY ${ident(user)}`);
      });
    }
    await this.admin.unsafe(`DROP ROLE IF EXISTS ${ident(user)}`);
  }

  /** The LOGIN roles of an instance's bindings: the members of its owner role. */
  private async bindingRoles(instanceId: string): Promise<string[]> {
    const members = await this.admin.unsafe(
      `SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles o ON o.oid = m.roleid WHERE o.rolname = $1`,
      [PostgresProvisioner.ownerName(instanceId)],
    );
    return (members as { rolname: string }[]).map((m) => m.rolname);
  }

  private async exists(query: string, value: string): Promise<boolean> {
    return (await this.admin.unsafe(query, [value])).length > 0;
  }

  private async inDatabase(db: string, fn: (sql: SQL) => Promise<void>) {
    const url = new URL(this.opts.adminUrl);
    url.pathname = `/${db}`;
    const sql = new SQL({ url: url.toString(), max: 1 });
    try {
      await fn(sql);
    } finally {
      await sql.close({ timeout: 1 });
    }
  }
}
