// Issue 24, hole 1: no server skiff starts lets anyone in without credentials. App instances run on the
// same host as other uids, so each server is tried on loopback as root, anonymous, postgres, default and
// guest with no and with an empty password, through real clients (the mariadb, psql and redis-cli
// commands, a raw AMQP handshake, the nats client). A data directory made the old way is fixed at the
// next start, and the start-up check refuses (and stops) a server left open on purpose.

import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { connect as natsConnect } from "nats";
import { RedisProvisioner, refusePasswordlessRules } from "../../controller/broker/provisioners/redis.ts";
import {
  assertNoPasswordlessMysql,
  assertNoPasswordlessNats,
  assertNoPasswordlessPostgres,
  assertNoPasswordlessRabbitmq,
  assertNoPasswordlessRedis,
  PasswordlessLoginError,
  tryMysqlLogin,
} from "../../controller/broker/servers/credential-check.ts";
import { freeLoopbackPort, tcpOpen } from "../../controller/broker/servers/managed-process.ts";
import { startMysql, type RunningMysql } from "../../controller/broker/servers/mysql-server.ts";
import { postgresBinDir, startPostgres, type RunningPostgres } from "../../controller/broker/servers/postgres-server.ts";
import { rabbitmqServerScript, startRabbitmq, type RunningRabbitmq } from "../../controller/broker/servers/rabbitmq-server.ts";
import { startRedis, type RunningRedis } from "../../controller/broker/servers/redis-server.ts";
import { amqpOpen } from "./amqp-handshake.ts";
import { installed, rejection, tempDir } from "./harness.ts";

installed("mariadbd", "mysqld");
installed("redis-server");
installed("nats-server");
const dirs: ReturnType<typeof tempDir>[] = [];
const stops: (() => Promise<void>)[] = [];

afterAll(async () => {
  await Promise.allSettled(stops.map((s) => s()));
  for (const d of dirs) d.remove();
}, 30_000);

function dir(name: string): string {
  const d = tempDir(name);
  dirs.push(d);
  return d.path;
}

function run(cmd: string[]): { code: number; output: string } {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, output: (r.stdout.toString() + r.stderr.toString()).trim() };
}

/** The mariadb client over TCP; `password` undefined sends none. */
function mariadb(port: number, user: string, password?: string) {
  const pw = password === undefined ? [] : [`--password=${password}`];
  return run(["mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P", String(port), `--user=${user}`, ...pw, "-N", "-e", "SELECT CURRENT_USER()"]);
}

/** Refused at login: access denied (1045), the account locked (4151) or the host not allowed (1130). */
const loginRefused = /ERROR (1045|4151|1130)/;

describe("MariaDB", () => {
  let server: RunningMysql;
  let mysqlDir: string;

  test("a fresh server lets nobody in over TCP without a password; root is socket-only", async () => {
    mysqlDir = dir("nopw-mysql");
    server = await startMysql({ dir: mysqlDir, durable: false });
    stops.push(() => server.stop());
    // An anonymous account would match any name, so a made-up user is tried as well.
    for (const user of ["root", "", "nobody-here"]) {
      for (const password of [undefined, ""]) {
        const r = mariadb(server.port, user, password);
        expect(r.code, `${user || "anonymous"} got in: ${r.output}`).not.toBe(0);
        expect(r.output).toMatch(loginRefused);
      }
    }
    expect((await tryMysqlLogin("127.0.0.1", server.port, "")).outcome).toBe("refused");
    const admin = new SQL({ url: server.adminUrl, adapter: "mysql", max: 1 });
    try {
      const accounts = (await admin.unsafe("SELECT User AS u, Host AS h, JSON_VALUE(Priv, '$.plugin') AS plugin FROM mysql.global_priv")) as { u: string; h: string; plugin: string }[];
      expect(accounts.filter((a) => a.u === "" || (a.u === "root" && a.h !== "localhost"))).toEqual([]);
      expect(accounts.find((a) => a.u === "root")).toEqual({ u: "root", h: "localhost", plugin: "unix_socket" });
    } finally {
      await admin.close({ timeout: 1 });
    }
    // OS root, and only OS root, still gets in through the socket (its directory is 0700).
    if (process.getuid?.() === 0) expect(run(["mariadb", "--no-defaults", "-S", server.socket, "-uroot", "-N", "-e", "SELECT CURRENT_USER()"]).output).toBe("root@localhost");
  }, 60_000);

  test("a data directory made the old way (root@127.0.0.1 without a password, anonymous, test) is fixed at the next start", async () => {
    const admin = new SQL({ url: server.adminUrl, adapter: "mysql", max: 1 });
    try {
      // What mariadb-install-db --auth-root-authentication-method=normal and older installers left behind.
      for (const account of ["'root'@'127.0.0.1'", "'root'@'%'", "''@'%'", "''@'localhost'", "'leftover'@'%'"]) {
        await admin.unsafe(`CREATE USER IF NOT EXISTS ${account}`);
        await admin.unsafe(`GRANT ALL PRIVILEGES ON *.* TO ${account}`);
      }
      await admin.unsafe("CREATE DATABASE test");
      await admin.unsafe("CREATE USER 'tenant'@'%' IDENTIFIED BY 'tenant-pw'");
    } finally {
      await admin.close({ timeout: 1 });
    }
    // The client does see an open server: root is in.
    expect(mariadb(server.port, "root").output).toBe("root@127.0.0.1");
    const adminPassword = server.adminPassword;
    await server.stop();

    server = await startMysql({ dir: mysqlDir, durable: false });
    for (const user of ["root", "", "leftover"]) {
      for (const password of [undefined, ""]) expect(mariadb(server.port, user, password).output).toMatch(loginRefused);
    }
    expect(server.adminPassword).toBe(adminPassword);
    expect(mariadb(server.port, "tenant", "tenant-pw").output).toBe("tenant@%");
    const admin2 = new SQL({ url: server.adminUrl, adapter: "mysql", max: 1 });
    try {
      const left = await admin2.unsafe("SELECT User, Host FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost')");
      expect([...left]).toEqual([]);
      expect(await admin2.unsafe("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'test'")).toHaveLength(0);
    } finally {
      await admin2.close({ timeout: 1 });
    }
  }, 60_000);

  test("the start-up check refuses a server that lets root in, and stops it", async () => {
    const admin = new SQL({ url: server.adminUrl, adapter: "mysql", max: 1 });
    await admin.unsafe("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'");
    await admin.close({ timeout: 1 });
    const err = await rejection(assertNoPasswordlessMysql({ port: server.port, stop: () => server.stop() }));
    expect(err).toBeInstanceOf(PasswordlessLoginError);
    expect(err?.message).toContain("'root' with an empty password");
    expect(err?.message).toContain("DROP USER");
    expect(await tcpOpen(server.port)).toBe(false);
  }, 30_000);
});

describe("PostgreSQL", () => {
  let server: RunningPostgres;
  let pgDir: string;
  const psqlOverSocket = () =>
    run([join(postgresBinDir(), "psql"), "-h", pgDir, "-p", String(server.port), "-U", "postgres", "-d", "postgres", "-w", "-tAc", "SELECT current_user"]);
  const refusedOverTcp = async () => {
    for (const url of [`postgres://postgres@127.0.0.1:${server.port}/postgres`, `postgres://postgres:@127.0.0.1:${server.port}/postgres`]) {
      const sql = new SQL({ url, max: 1, connectionTimeout: 5 });
      const err = await rejection(sql.unsafe("SELECT 1"));
      await sql.close({ timeout: 0 }).catch(() => {});
      expect(err?.message ?? "postgres got in over TCP without a password").toMatch(/password/i);
    }
  };

  test("postgres without a password is refused over TCP and over the socket", async () => {
    pgDir = dir("nopw-pg");
    server = await startPostgres({ dir: pgDir, durable: false });
    stops.push(() => server.stop());
    await refusedOverTcp();
    const r = psqlOverSocket();
    expect(r.code, `in over the socket: ${r.output}`).not.toBe(0);
    expect(r.output).toMatch(/password/i);
    expect(readFileSync(join(pgDir, "data", "pg_hba.conf"), "utf8")).not.toMatch(/^[^#\n]*\btrust\b/m);
  }, 60_000);

  test("a data directory made with --auth-local=trust (or a trust host line) is fixed at the next start", async () => {
    await server.stop();
    const hbaFile = join(pgDir, "data", "pg_hba.conf");
    // What initdb --auth-local=trust wrote, plus the worst case: trust over TCP.
    writeFileSync(hbaFile, "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 scram-sha-256\n");
    server = await startPostgres({ dir: pgDir, durable: false });
    await refusedOverTcp();
    expect(psqlOverSocket().output).toMatch(/password/i);
    expect(readFileSync(hbaFile, "utf8")).toBe("local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n");
    const admin = new SQL({ url: server.adminUrl, max: 1 });
    expect((await admin`SELECT current_user AS u`)[0].u).toBe("postgres");
    await admin.close({ timeout: 1 });
  }, 60_000);

  test("the start-up check refuses a server that trusts the socket, and stops it", async () => {
    const hbaFile = join(pgDir, "data", "pg_hba.conf");
    writeFileSync(hbaFile, "local all all trust\n" + readFileSync(hbaFile, "utf8"));
    const admin = new SQL({ url: server.adminUrl, max: 1 });
    await admin`SELECT pg_reload_conf()`;
    await admin.close({ timeout: 1 });
    const err = await rejection(assertNoPasswordlessPostgres({ port: server.port, socketDir: pgDir, hbaFile, stop: () => server.stop() }));
    expect(err).toBeInstanceOf(PasswordlessLoginError);
    expect(err?.message).toContain("over the socket");
    expect(await tcpOpen(server.port)).toBe(false);
  }, 30_000);
});

describe("Redis", () => {
  const cli = (port: number, ...args: string[]) => run(["redis-cli", "-h", "127.0.0.1", "-p", String(port), "--no-auth-warning", ...args]).output;

  let server: RunningRedis;

  test("a client without AUTH, or AUTH default with an empty password, is refused", async () => {
    server = await startRedis({ dir: dir("nopw-redis") });
    stops.push(() => server.stop());
    expect(cli(server.port, "PING")).toMatch(/NOAUTH/);
    expect(cli(server.port, "AUTH", "default", "")).toMatch(/WRONGPASS/);
    expect(cli(server.port, "GET", "anything")).toMatch(/NOAUTH/);
  }, 30_000);

  test("the provisioner disables a tenant user without a password (a hand-edited ACL), and never makes one", async () => {
    const planted = RedisProvisioner.userName("planted", "planted-b");
    const admin = ["--user", "default", "--pass", server.adminPassword];
    expect(cli(server.port, ...admin, "ACL", "SETUSER", planted, "on", "nopass", "~planted:*", "+@all")).toBe("OK");
    expect(cli(server.port, "AUTH", planted, "anything")).toBe("OK");
    const provisioner = new RedisProvisioner({ adminUrl: server.adminUrl });
    try {
      await provisioner.provision({ instanceId: "someone", plan: provisioner.service.plans[0]!, params: {}, context: {} });
      expect(cli(server.port, "AUTH", planted, "anything")).toMatch(/WRONGPASS/);
      const { credentials } = await provisioner.bind({ instanceId: "someone", bindingId: "b", plan: provisioner.service.plans[0]!, params: {} });
      expect(cli(server.port, "AUTH", credentials.username as string, "")).toMatch(/WRONGPASS/);
      expect(cli(server.port, "AUTH", credentials.username as string, credentials.password as string)).toBe("OK");
    } finally {
      await provisioner.close();
    }
    expect(() => refusePasswordlessRules(["on", "nopass"])).toThrow(/never log in without a password/);
    expect(() => refusePasswordlessRules(["on", ">"])).toThrow(/never log in without a password/);
  }, 30_000);

  test("a data directory whose ACL file lets a user in without a password is refused at start, and stopped", async () => {
    for (const acl of ["user default on nopass ~* &* +@all\n", "user default on >pw ~* &* +@all\nuser sneaky on nopass ~* +@all\n"]) {
      const d = dir("nopw-redis-acl");
      writeFileSync(join(d, "users.acl"), acl, { mode: 0o600 });
      writeFileSync(join(d, "admin-password"), "pw", { mode: 0o600 });
      const port = await freeLoopbackPort();
      const err = await rejection(startRedis({ dir: d, port }));
      expect(err).toBeInstanceOf(PasswordlessLoginError);
      expect(err?.message).toContain(acl.includes("sneaky") ? "'sneaky'" : "without AUTH");
      expect(await tcpOpen(port)).toBe(false);
    }
  }, 30_000);

  test("the check refuses a redis-server started without a password, and stops it", async () => {
    const port = await freeLoopbackPort();
    const open = Bun.spawn(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdout: "ignore", stderr: "ignore" });
    stops.push(async () => void open.kill());
    while (!(await tcpOpen(port))) await Bun.sleep(20);
    expect(cli(port, "PING")).toBe("PONG");
    const err = await rejection(assertNoPasswordlessRedis({ port, stop: async () => void (open.kill(), await open.exited) }));
    expect(err).toBeInstanceOf(PasswordlessLoginError);
    expect(err?.message).toContain("without AUTH");
    expect(open.exitCode ?? open.signalCode).not.toBeNull();
  }, 30_000);
});

describe("NATS", () => {
  async function natsServer(args: string[]) {
    const port = await freeLoopbackPort();
    const proc = Bun.spawn(["nats-server", "-a", "127.0.0.1", "-p", String(port), ...args], { stdout: "ignore", stderr: "ignore" });
    stops.push(async () => void proc.kill());
    while (!(await tcpOpen(port))) await Bun.sleep(20);
    return { url: `nats://127.0.0.1:${port}`, proc, stop: async () => void (proc.kill(), await proc.exited) };
  }

  test("the check refuses a nats-server without authorization, and stops it", async () => {
    const open = await natsServer([]);
    const nc = await natsConnect({ servers: open.url, reconnect: false });
    await nc.close();
    const err = await rejection(assertNoPasswordlessNats({ url: open.url, stop: open.stop }));
    expect(err).toBeInstanceOf(PasswordlessLoginError);
    expect(err?.message).toContain("authorization");
    expect(open.proc.exitCode ?? open.proc.signalCode).not.toBeNull();
  }, 30_000);

  test("the check passes a nats-server with a user and password (the one-machine cluster's)", async () => {
    const closed = await natsServer(["--user", "skiff", "--pass", "secret"]);
    expect((await rejection(natsConnect({ servers: closed.url, reconnect: false })))?.message).toMatch(/Authorization/i);
    expect(await assertNoPasswordlessNats({ url: closed.url })).toBeUndefined();
    await closed.stop();
  }, 30_000);
});

describe("RabbitMQ", () => {
  if (!rabbitmqServerScript()) throw new Error("rabbitmq-server is not installed: run `node scripts/setup.mjs`");

  test("guest/guest and an empty login are refused on AMQP and the management API; a guest made by hand goes at the next start", async () => {
    const rmqDir = dir("nopw-rabbitmq");
    // Fixed ports and password: the node name (so its database) and the admin stay across the restart.
    const opts = { dir: rmqDir, port: await freeLoopbackPort(), managementPort: await freeLoopbackPort(), adminPassword: "admin-pw", durable: false };
    let server: RunningRabbitmq = await startRabbitmq(opts);
    stops.push(() => server.stop());
    const api = (path: string, auth?: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${server.managementPort}/api/${path}`, { ...init, headers: { "content-type": "application/json", ...(auth ? { authorization: `Basic ${btoa(auth)}` } : {}) } });
    const amqp = async (userinfo: string) => {
      const s = await amqpOpen(`amqp://${userinfo}@127.0.0.1:${server.port}/`);
      s.socket.destroy();
      return s.outcome;
    };
    const refusedEverywhere = async () => {
      expect((await api("whoami")).status).toBe(401);
      expect((await api("whoami", "guest:guest")).status).toBe(401);
      expect(await amqp("guest:guest")).toBe("refused");
      expect(await amqp(":")).toBe("refused");
    };
    await refusedEverywhere();

    // A guest as a node made without default_user has it.
    const admin = `${server.adminUser}:admin-pw`;
    expect((await api("users/guest", admin, { method: "PUT", body: JSON.stringify({ password: "guest", tags: "administrator" }) })).status).toBe(201);
    expect((await api("permissions/%2F/guest", admin, { method: "PUT", body: JSON.stringify({ configure: ".*", write: ".*", read: ".*" }) })).status).toBe(201);
    expect(await amqp("guest:guest")).toBe("open");
    const err = await rejection(assertNoPasswordlessRabbitmq({ port: server.port, managementPort: server.managementPort }));
    expect(err).toBeInstanceOf(PasswordlessLoginError);
    expect(err?.message).toContain("'guest'/'guest' over AMQP");
    // Made after guest: if it is still there after the restart, so was guest until the start removed it.
    expect((await api("vhosts/kept", admin, { method: "PUT", body: "{}" })).status).toBe(201);

    await server.stop();
    server = await startRabbitmq(opts);
    expect((await api("vhosts/kept", admin)).status).toBe(200);
    expect((await api("users/guest", admin)).status).toBe(404);
    await refusedEverywhere();
  }, 120_000);
});
