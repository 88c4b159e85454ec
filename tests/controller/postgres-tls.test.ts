// The controller's link to PostgreSQL over TLS (issue 27): a real PostgreSQL with a certificate from a
// CA made here, answering only TLS (hostssl); the controller's own openDatabase with the URL its config
// makes. verify-full is checked by breaking each half of it: another CA, another host name, and a server
// that stops offering TLS (which must be refused, not read in plaintext).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configFromEnv } from "../../controller/main.ts";
import { openDatabase } from "../../controller/src/db/open.ts";
import { DatabaseUrlError, postgresUrlWithTls } from "../../controller/src/db/postgres-tls.ts";
import { createCa, issueCertificate } from "../../ops/cluster-ca.ts";
import { asPostgres, canRunPostgres, startPostgresServer, type PostgresServer } from "../support/postgres-server.ts";

describe("postgresUrlWithTls", () => {
  const ca = "/etc/skiff/ca.pem";
  test("with the cluster's CA, a URL naming no sslmode gets verify-full against it", () => {
    const url = new URL(postgresUrlWithTls("postgres://skiff:pw@db.internal:5432/skiff", ca)!);
    expect([url.searchParams.get("sslmode"), url.searchParams.get("sslrootcert"), url.password, url.host]).toEqual(["verify-full", ca, "pw", "db.internal:5432"]);
    expect(new URL(configFromEnv({ SKIFF_DATABASE_URL: "postgresql://db.internal/skiff", SKIFF_TLS_CA: ca }).databaseUrl!).searchParams.get("sslmode")).toBe("verify-full");
  });
  test("an operator's sslmode and sslrootcert are kept; without the cluster's CA nothing is added; SQLite is left alone", () => {
    expect(postgresUrlWithTls("postgres://db/skiff?sslmode=disable", ca)).toBe("postgres://db/skiff?sslmode=disable");
    expect(new URL(postgresUrlWithTls("postgres://db/skiff?sslmode=verify-full&sslrootcert=/opt/db-ca.pem", ca)!).searchParams.get("sslrootcert")).toBe("/opt/db-ca.pem");
    expect(new URL(postgresUrlWithTls("postgres://db/skiff?sslmode=verify-ca", ca)!).searchParams.get("sslrootcert")).toBe(ca);
    expect(postgresUrlWithTls("postgres://db/skiff", undefined)).toBe("postgres://db/skiff");
    expect(postgresUrlWithTls("sqlite:///var/skiff/c.sqlite", ca)).toBe("sqlite:///var/skiff/c.sqlite");
  });
  test("an sslmode libpq does not know is a configuration error, not a silent plaintext link", () => {
    expect(() => postgresUrlWithTls("postgres://db/skiff?sslmode=verify", ca)).toThrow(DatabaseUrlError);
    expect(() => configFromEnv({ SKIFF_DATABASE_URL: "postgres://db/skiff?sslmode=on" })).toThrow("sslmode=on is not one of");
  });
});

let pg: PostgresServer | undefined;
let dir = "";
let dataDir = "";
const files = { ca: "", otherCa: "" };
const psql = (sql: string) => asPostgres(["psql", "-h", "127.0.0.1", "-p", String(pg!.port), "-U", "postgres", "-Atc", sql]);

beforeAll(async () => {
  if (!canRunPostgres) return;
  pg = await startPostgresServer("skiff-pgtls-");
  dir = mkdtempSync(join(tmpdir(), "skiff-pgtls-ca-"));
  dataDir = psql("SHOW data_directory").out.trim();
  const ca = createCa("skiff test cluster CA");
  // the server's certificate names the host "localhost" only: 127.0.0.1 is not in it
  const server = issueCertificate(ca, "localhost", [], ["localhost"]);
  const pgUid = Number(Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString());
  for (const [name, pem] of [["server.crt", server.certPem], ["server.key", server.keyPem]] as const) {
    writeFileSync(join(dataDir, name), pem, { mode: 0o600 });
    chownSync(join(dataDir, name), pgUid, pgUid);
  }
  files.ca = join(dir, "ca.pem");
  files.otherCa = join(dir, "other-ca.pem");
  writeFileSync(files.ca, ca.certPem, { mode: 0o600 });
  writeFileSync(files.otherCa, createCa("someone else's CA").certPem, { mode: 0o600 });
  // TCP connections only over TLS; the socket in the test's folder stays for psql's set-up
  writeFileSync(join(dataDir, "pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n");
  const on = psql("ALTER SYSTEM SET ssl = on");
  expect(on.code, on.out).toBe(0);
  expect(psql("SELECT pg_reload_conf()").out.trim()).toBe("t");
}, 60_000);

afterAll(() => {
  pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!canRunPostgres)("the controller's PostgreSQL link over TLS (issue 27)", () => {
  const urlTo = (host: string, db = "postgres") => `postgres://postgres@${host}:${pg!.port}/${db}`;

  test("with the cluster's CA the controller's connection is TLS, verified, and the schema is made through it", async () => {
    const created = pg!.createDatabase("tls_ok");
    expect(created.code, created.out).toBe(0);
    const db = await openDatabase({ dataDir: "/nonexistent", databaseUrl: postgresUrlWithTls(urlTo("localhost", "tls_ok"), files.ca) });
    try {
      const row = await db.get<{ ssl: boolean; version: string }>("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
      expect(row?.ssl).toBe(true);
      expect(row?.version).toMatch(/^TLSv1\.[23]$/);
      expect(Number((await db.get<{ n: number }>("SELECT count(*) AS n FROM schema_migrations"))?.n)).toBeGreaterThan(0);
    } finally {
      await db.close();
    }
  });

  test("a server certificate from another CA is refused before any statement: the database stays empty", async () => {
    const created = pg!.createDatabase("tls_other_ca");
    expect(created.code, created.out).toBe(0);
    const url = postgresUrlWithTls(urlTo("localhost", "tls_other_ca"), files.otherCa);
    await expect(openDatabase({ dataDir: "/nonexistent", databaseUrl: url })).rejects.toThrow(/verify|certificate/i);
    const tables = asPostgres(["psql", "-h", "localhost", "-p", String(pg!.port), "-U", "postgres", "-d", "tls_other_ca", "-Atc", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"]);
    expect(tables.out.trim()).toBe("0");
  });

  test("a host name the certificate does not name is refused (127.0.0.1 against a certificate for localhost)", async () => {
    await expect(openDatabase({ dataDir: "/nonexistent", databaseUrl: postgresUrlWithTls(urlTo("127.0.0.1"), files.ca) })).rejects.toThrow(/altnames|host ?name|does not match/i);
  });

  test("a server that stops offering TLS is refused, never read in plaintext", async () => {
    writeFileSync(join(dataDir, "pg_hba.conf"), "local all all trust\nhost all all 127.0.0.1/32 trust\n");
    expect(psql("ALTER SYSTEM SET ssl = off").code).toBe(0);
    expect(psql("SELECT pg_reload_conf()").out.trim()).toBe("t");
    expect(psql("SHOW ssl").out.trim()).toBe("off");
    // the server answers in plaintext now (sslmode=disable reaches it), so a refusal is the client's own
    const plain = await openDatabase({ dataDir: "/nonexistent", databaseUrl: `${urlTo("localhost")}?sslmode=disable` });
    await plain.close();
    await expect(openDatabase({ dataDir: "/nonexistent", databaseUrl: postgresUrlWithTls(urlTo("localhost"), files.ca) })).rejects.toThrow("Server does not support SSL");
  });
});
