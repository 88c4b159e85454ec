// Starts a real MariaDB (or MySQL) server on loopback in a directory of its own, with an admin user
// `skiff_admin`@`127.0.0.1` that the MysqlProvisioner connects as. Names are not resolved, so user hosts
// are addresses ('%' for tenants). No account logs in without a password (issue 24): see accountRules.

import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { assertNoPasswordlessMysql } from "./credential-check.ts";
import { freeLoopbackPort, randomSecret, readTail, runSetup, ServerStartError, startManagedProcess, tcpOpen, type ManagedProcess } from "./managed-process.ts";

export interface MysqlServerOptions {
  dir: string;
  port?: number;
  adminPassword?: string;
  durable?: boolean;
}

export interface RunningMysql {
  host: string;
  port: number;
  socket: string;
  adminUser: string;
  adminPassword: string;
  /** mysql://skiff_admin:password@127.0.0.1:port/mysql: what MysqlProvisioner takes. */
  adminUrl: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

const ADMIN = "skiff_admin";

/**
 * An account that logs in with an empty password: not a role, not locked, and the native password plugin
 * (the one an account without `plugin` gets) with an empty hash, as the account itself or as one of its
 * `OR` alternatives. Over mysql.global_priv, since the mysql.user view hides locking and alternatives.
 */
export const passwordlessAccountCondition = [
  "IFNULL(JSON_VALUE(Priv, '$.is_role'), '0') NOT IN ('1', 'true')",
  "IFNULL(JSON_VALUE(Priv, '$.account_locked'), '0') NOT IN ('1', 'true')",
  "((IFNULL(JSON_VALUE(Priv, '$.plugin'), 'mysql_native_password') IN ('mysql_native_password', 'mysql_old_password') AND IFNULL(JSON_VALUE(Priv, '$.authentication_string'), '') = '')" +
    ` OR JSON_CONTAINS(IFNULL(JSON_EXTRACT(Priv, '$.auth_or'), '[]'), '{"plugin": "mysql_native_password", "authentication_string": ""}'))`,
].join(" AND ");

/** Anonymous accounts (they match any user name) and root anywhere but the socket. */
const droppedAccountCondition = "User = '' OR (User = 'root' AND Host <> 'localhost')";

/** What MariaDB stores for mysql_native_password: '*' + hex SHA1(SHA1(password)). */
export function nativePasswordHash(password: string): string {
  const inner = createHash("sha1").update(password).digest();
  return "*" + createHash("sha1").update(inner).digest("hex").toUpperCase();
}

/**
 * The statements run as the server's --init-file at EVERY start, before it accepts a connection (checked on
 * 10.11: connections wait until the file has run), so data directories made by older code are fixed
 * before anyone can use them. mariadb-install-db's "normal" root method, which older code used, leaves
 * root@127.0.0.1, root@::1 and root@<hostname> with empty passwords; anonymous accounts and the test
 * database come from older installers. They are dropped; any other account without a password is locked.
 * root@localhost is socket-only (unix_socket): it needs no password to leak or keep in step, an app
 * instance (another uid, and the socket's directory is 0700) can never pass it, and the operator as OS
 * root keeps a way in when the admin password file is lost. skiff itself only uses skiff_admin over TCP.
 * One statement per line: that is how the server reads this file. A failing statement is only logged,
 * so startMysql checks the result afterwards.
 */
export function accountRules(adminPasswordHash: string): string {
  const forEach = (select: string, statement: string) =>
    `BEGIN NOT ATOMIC FOR a IN (${select}) DO EXECUTE IMMEDIATE CONCAT(${statement}); END FOR; END;`;
  const account = "QUOTE(a.u), '@', QUOTE(a.h)";
  return [
    "DROP DATABASE IF EXISTS test;",
    // Database grants with an empty user apply to every user (how installers opened test%).
    "DELETE FROM mysql.db WHERE User = '';",
    forEach(`SELECT User AS u, Host AS h FROM mysql.global_priv WHERE ${droppedAccountCondition}`, `'DROP USER ', ${account}`),
    "ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED VIA unix_socket;",
    `CREATE USER IF NOT EXISTS '${ADMIN}'@'127.0.0.1' IDENTIFIED BY PASSWORD '${adminPasswordHash}';`,
    `ALTER USER '${ADMIN}'@'127.0.0.1' IDENTIFIED BY PASSWORD '${adminPasswordHash}' ACCOUNT UNLOCK;`,
    `GRANT ALL PRIVILEGES ON *.* TO '${ADMIN}'@'127.0.0.1' WITH GRANT OPTION;`,
    forEach(`SELECT User AS u, Host AS h FROM mysql.global_priv WHERE ${passwordlessAccountCondition}`, `'ALTER USER ', ${account}, ' ACCOUNT LOCK'`),
    "FLUSH PRIVILEGES;",
  ].join("\n") + "\n";
}

function which(...names: string[]): string {
  for (const n of names) if (spawnSync("sh", ["-c", `command -v ${n}`]).status === 0) return n;
  throw new ServerStartError(`none of ${names.join(", ")} is installed (apt-get install mariadb-server)`);
}

export async function startMysql(opts: MysqlServerOptions): Promise<RunningMysql> {
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const dataDir = join(opts.dir, "data");
  const socket = join(opts.dir, "mysqld.sock");
  const passwordFile = join(opts.dir, "admin-password");
  const initFile = join(opts.dir, "init.sql");
  const logFile = join(opts.dir, "mysqld.log");
  const asRoot = process.getuid?.() === 0;
  const userArgs = asRoot ? ["--user=root"] : [];
  const fresh = !existsSync(join(dataDir, "mysql"));
  if (fresh) {
    // The default root method (socket) makes root@localhost only, via unix_socket; accountRules does the rest.
    runSetup(which("mariadb-install-db", "mysql_install_db"), ["--no-defaults", `--datadir=${dataDir}`, "--skip-test-db", "--skip-name-resolve", ...userArgs], {
      what: "mariadb-install-db",
    });
  }
  let adminPassword: string;
  if (fresh || !existsSync(passwordFile)) {
    // A lost password file is recovered too: the init file sets the admin's password from it.
    adminPassword = opts.adminPassword ?? randomSecret();
    writeFileSync(passwordFile, adminPassword, { mode: 0o600 });
  } else {
    adminPassword = (await Bun.file(passwordFile).text()).trim();
  }
  // Only the hash goes in the file, which is removed once the server has read it.
  writeFileSync(initFile, accountRules(nativePasswordHash(adminPassword)), { mode: 0o600 });
  const port = opts.port ?? (await freeLoopbackPort());
  const args = [
    "--no-defaults",
    `--datadir=${dataDir}`,
    `--socket=${socket}`,
    `--port=${port}`,
    "--bind-address=127.0.0.1",
    `--pid-file=${join(opts.dir, "mysqld.pid")}`,
    `--init-file=${initFile}`,
    "--skip-name-resolve",
    "--skip-log-bin",
    ...userArgs,
  ];
  if (opts.durable === false) args.push("--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0", "--innodb-buffer-pool-size=32M");
  let proc: ManagedProcess;
  try {
    proc = await startManagedProcess({ command: which("mariadbd", "mysqld"), args, logFile, what: "mariadbd", timeoutMs: 60_000, ready: () => tcpOpen(port) });
  } catch (err) {
    rmSync(initFile, { force: true });
    throw err;
  }
  const adminUrl = `mysql://${ADMIN}:${encodeURIComponent(adminPassword)}@127.0.0.1:${port}/mysql`;
  try {
    await checkAccounts(adminUrl, logFile);
    await assertNoPasswordlessMysql({ port, logFile, stop: () => proc.stop() });
  } catch (err) {
    await proc.stop();
    throw err;
  } finally {
    rmSync(initFile, { force: true });
  }
  return { host: "127.0.0.1", port, socket, adminUser: ADMIN, adminPassword, adminUrl, process: proc, stop: () => proc.stop() };
}

/**
 * As the admin (which also proves the init file ran: it set the admin's password), lists the accounts
 * accountRules should have dropped or locked. The init file's errors are only logged, so this is where a
 * failed statement shows.
 */
async function checkAccounts(adminUrl: string, logFile: string) {
  const sql = new SQL({ url: adminUrl, adapter: "mysql", max: 1, connectionTimeout: 30 });
  let open: { u: string; h: string }[];
  try {
    open = (await sql.unsafe(`SELECT User AS u, Host AS h FROM mysql.global_priv WHERE (${droppedAccountCondition}) OR (${passwordlessAccountCondition})`)) as typeof open;
  } catch (err) {
    throw new ServerStartError(`MariaDB started, but its admin ${ADMIN} cannot log in (${(err as Error).message}); its log ends:\n${readTail(logFile)}`);
  } finally {
    await sql.close({ timeout: 1 });
  }
  if (open.length > 0) {
    const names = open.map((a) => `'${a.u}'@'${a.h}'`).join(", ");
    throw new ServerStartError(
      `MariaDB keeps accounts that log in without a password after its start-up fixes: ${names}. Drop them or give them a password; the server log says why the fix failed:\n${readTail(logFile)}`,
    );
  }
}
