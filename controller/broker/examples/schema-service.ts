// A whole service in one Provisioner class: each instance is a schema in a shared PostgreSQL database,
// owned by a NOLOGIN role; each binding is a LOGIN role that acts as that owner. README.md shows this file
// verbatim; tests/services/readme-example.test.ts checks that and runs it against startPostgres.
// Run it: ADMIN_URL=postgres://postgres:pw@127.0.0.1:5432/postgres bun controller/broker/examples/schema-service.ts

import { SQL } from "bun";
import { createBroker } from "../broker.ts";
import { BrokerClient } from "../broker-client.ts";
import { ServiceError } from "../errors.ts";
import { newPassword, resourceName } from "../provisioners/names.ts";
import { scramVerifier } from "../provisioners/postgres.ts";
import type { BindRequest, BindingRef, InstanceRef, Provisioner, ProvisionRequest } from "../types.ts";

export class SchemaProvisioner implements Provisioner {
  readonly service = {
    id: "0d6f5a5e-schema", name: "pg-schema", description: "A schema in a shared database", bindable: true,
    tags: ["postgresql"], plans: [{ id: "0d6f5a5e-small", name: "small", description: "A schema" }],
  };
  private readonly admin: SQL;
  constructor(private readonly adminUrl: string) { this.admin = new SQL({ url: adminUrl, max: 2 }); }

  // Names derive from the GUIDs, so a retry finds what the first try made; they are [a-z0-9] only, safe in SQL.
  private names(instanceId: string, bindingId = "") {
    return { schema: resourceName("sch", instanceId), owner: resourceName("own", instanceId), user: resourceName("usr", bindingId) };
  }
  private async roleExists(name: string) {
    return (await this.admin`SELECT 1 FROM pg_roles WHERE rolname = ${name}`).length > 0;
  }

  async provision({ instanceId, params }: ProvisionRequest) {
    if (params.collation) throw new ServiceError(400, "collation is not configurable; leave it out");
    const { schema, owner } = this.names(instanceId);
    const database = new URL(this.adminUrl).pathname.slice(1);
    if (!(await this.roleExists(owner))) await this.admin.unsafe(`CREATE ROLE ${owner} NOLOGIN`);
    // PUBLIC may not connect (startPostgres revokes it; do the same on your server): the owner may.
    await this.admin.unsafe(`GRANT CONNECT ON DATABASE "${database}" TO ${owner}`);
    await this.admin.unsafe(`CREATE SCHEMA IF NOT EXISTS ${schema} AUTHORIZATION ${owner}`);
  }
  async deprovision({ instanceId }: InstanceRef) {
    const { owner } = this.names(instanceId);
    // The broker unbinds first. DROP OWNED drops the schema and its tables and revokes the CONNECT.
    if (await this.roleExists(owner)) await this.admin.unsafe(`DROP OWNED BY ${owner} CASCADE; DROP ROLE ${owner}`);
  }
  async bind({ instanceId, bindingId }: BindRequest) {
    const { schema, owner, user } = this.names(instanceId, bindingId);
    const password = newPassword();
    // Only a SCRAM verifier travels in SQL: a plain password would land in the server's logs.
    const verifier = scramVerifier(password);
    if (await this.roleExists(user)) await this.admin.unsafe(`ALTER ROLE ${user} LOGIN PASSWORD '${verifier}'`);
    else await this.admin.unsafe(`CREATE ROLE ${user} LOGIN PASSWORD '${verifier}' IN ROLE ${owner}`);
    // Sessions act as the owner, so what the app creates belongs to the instance, not to this login.
    await this.admin.unsafe(`ALTER ROLE ${user} SET role = ${owner}; ALTER ROLE ${user} SET search_path = ${schema}`);
    const u = new URL(this.adminUrl);
    return { credentials: { uri: `postgres://${user}:${password}@${u.host}${u.pathname}`, hostname: u.hostname,
                            port: Number(u.port), name: schema, username: user, password } };
  }
  async unbind({ instanceId, bindingId }: BindingRef) {
    const { owner, user } = this.names(instanceId, bindingId);
    if (!(await this.roleExists(user))) return;
    // No new sessions, end the open ones, hand anything it made (after a RESET ROLE) to the owner, drop it.
    await this.admin.unsafe(`ALTER ROLE ${user} NOLOGIN`);
    await this.admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${user}`;
    await this.admin.unsafe(`REASSIGN OWNED BY ${user} TO ${owner}; DROP OWNED BY ${user}; DROP ROLE ${user}`);
  }
  async close() { await this.admin.close(); }
}

// Serve it (or mount the app in the controller) and use it as the platform does.
if (import.meta.main) {
  const port = Number(process.env.BROKER_PORT ?? 9023);
  const provisioner = new SchemaProvisioner(process.env.ADMIN_URL!);
  const app = createBroker({ provisioners: [provisioner], credentials: { username: "platform", password: "s3cret" } });
  app.listen({ port, hostname: "127.0.0.1" });

  const client = new BrokerClient({ url: `http://127.0.0.1:${port}`, username: "platform", password: "s3cret" });
  const { services } = await client.catalog();
  const offering = services[0]!;
  const ids = { instanceId: crypto.randomUUID(), serviceId: offering.id, planId: offering.plans[0]!.id };
  // The platform says where the instance lives (OSB: organization_guid and space_guid are required).
  await client.provision({ ...ids, organizationGuid: "org-1", spaceGuid: "space-1" });
  const binding = { ...ids, bindingId: crypto.randomUUID(), appGuid: "app-1" };
  const { credentials } = await client.bind(binding);

  // What the app does with DATABASE_URL (= credentials.uri):
  const db = new SQL({ url: credentials.uri, max: 1 });
  await db`CREATE TABLE notes (body text)`;
  await db`INSERT INTO notes VALUES ('hello')`;
  console.log("the app reads:", (await db`SELECT body FROM notes`)[0].body);
  await db.close();

  await client.unbind(binding);
  await client.deprovision(ids);
  console.log("unbound and deprovisioned");
  await app.stop();
}
