// Starts a real MariaDB (or MySQL) server on loopback in a directory of its own, with an admin user
// `skiff_admin`@`127.0.0.1` that the MysqlProvisioner connects as. Names are not resolved, so user hosts
// are addresses ('%' for tenants).

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freeLoopbackPort, randomSecret, runSetup, ServerStartError, startManagedProcess, tcpOpen, type ManagedProcess } from "./managed-process.ts";

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

function which(...names: string[]): string {
  for (const n of names) if (spawnSync("sh", ["-c", `command -v ${n}`]).status === 0) return n;
  throw new ServerStartError(`none of ${names.join(", ")} is installed (apt-get install mariadb-server)`);
}

export async function startMysql(opts: MysqlServerOptions): Promise<RunningMysql> {
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const dataDir = join(opts.dir, "data");
  const socket = join(opts.dir, "mysqld.sock");
  const passwordFile = join(opts.dir, "admin-password");
  const asRoot = process.getuid?.() === 0;
  const userArgs = asRoot ? ["--user=root"] : [];
  const fresh = !existsSync(join(dataDir, "mysql"));
  if (fresh) {
    runSetup(
      which("mariadb-install-db", "mysql_install_db"),
      ["--no-defaults", `--datadir=${dataDir}`, "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve", ...userArgs],
      { what: "mariadb-install-db" },
    );
  }
  const port = opts.port ?? (await freeLoopbackPort());
  const args = [
    "--no-defaults",
    `--datadir=${dataDir}`,
    `--socket=${socket}`,
    `--port=${port}`,
    "--bind-address=127.0.0.1",
    `--pid-file=${join(opts.dir, "mysqld.pid")}`,
    "--skip-name-resolve",
    "--skip-log-bin",
    ...userArgs,
  ];
  if (opts.durable === false) args.push("--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0", "--innodb-buffer-pool-size=32M");
  const proc = await startManagedProcess({
    command: which("mariadbd", "mysqld"),
    args,
    logFile: join(opts.dir, "mysqld.log"),
    what: "mariadbd",
    timeoutMs: 60_000,
    ready: () => tcpOpen(port),
  });
  try {
    let adminPassword: string;
    if (fresh || !existsSync(passwordFile)) {
      adminPassword = opts.adminPassword ?? randomSecret();
      // root@localhost has no password yet and is reachable only through the socket: make our admin,
      // then lock root to the same password.
      const sql = [
        `CREATE USER IF NOT EXISTS '${ADMIN}'@'127.0.0.1' IDENTIFIED BY '${adminPassword}'`,
        `GRANT ALL PRIVILEGES ON *.* TO '${ADMIN}'@'127.0.0.1' WITH GRANT OPTION`,
        `ALTER USER 'root'@'localhost' IDENTIFIED BY '${adminPassword}'`,
        "FLUSH PRIVILEGES",
      ].join("; ");
      const r = spawnSync(which("mariadb", "mysql"), ["--no-defaults", "-S", socket, "-uroot", "-e", sql], { encoding: "utf8" });
      if (r.status !== 0) throw new ServerStartError(`could not create the MariaDB admin user: ${r.stderr}`);
      writeFileSync(passwordFile, adminPassword, { mode: 0o600 });
    } else {
      adminPassword = (await Bun.file(passwordFile).text()).trim();
    }
    const adminUrl = `mysql://${ADMIN}:${encodeURIComponent(adminPassword)}@127.0.0.1:${port}/mysql`;
    return { host: "127.0.0.1", port, socket, adminUser: ADMIN, adminPassword, adminUrl, process: proc, stop: () => proc.stop() };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}
