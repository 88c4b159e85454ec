// Issue 24, from inside an instance: a one-machine cluster with every service server, a victim app in one
// org bound to a PostgreSQL database, and a probe app in another org. The probe (its own uid, as the agent
// runs it) tries every way into the victim's data the issue lists: each service server's accounts without
// a password, each file the platform writes, the victim's files and environment. Every attempt must fail,
// and every positive control (the same client with the right password, the probe's own files) must pass,
// so a refusal is the door being shut and not the probe being broken. Then a signed URL forged with the
// real secret and an expiry in 2100 is refused by the running controller.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalCluster, type Cluster } from "../../scripts/local-cluster.ts";
import { eventually } from "../support/ports.ts";
import { hostPidOf } from "../support/instance-pid.ts";
import { installed } from "../services/harness.ts";

installed("postgres", "/usr/lib/postgresql/15/bin/postgres", "initdb");
installed("mariadbd", "mysqld");
installed("redis-server");
installed("/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server");

type Outcome = { attempt: string; ok: boolean; detail: string };
type ProbeReport = { uid: number; files: Outcome[]; lists: Outcome[]; logins: Outcome[]; urls: Outcome[] };

const fixture = join(import.meta.dir, "fixtures/probe-app");
const isRoot = process.getuid?.() === 0;
let cluster: Cluster;
let dataDir: string;

async function cli(...args: string[]) {
  const r = await cluster.cli(args);
  if (r.code !== 0) throw new Error(`skiff ${args.join(" ")} failed:\n${r.output}`);
  return r.output;
}

const app = (name: string, path: string, init?: RequestInit) =>
  fetch(`http://127.0.0.1:${cluster.routerPort}${path}`, { ...init, headers: { ...init?.headers, host: `${name}.${cluster.domain}` } });

type Who = { pid: number; uid: number; cwd: string; hostPid: number; hostDir: string };

/**
 * What an instance says of itself (its pid and cwd as its sandbox shows them: pid 2, /home/vcap/app),
 * with the host's names for them: its process found by uid and NSpid, its directory as the one below the
 * agent's instances/ that its uid owns.
 */
async function whoami(name: string): Promise<Who> {
  const inside = await eventually(async () => {
    const res = await app(name, "/whoami").catch(() => undefined);
    return res?.status === 200 ? ((await res.json()) as { pid: number; uid: number; cwd: string }) : undefined;
  }, 30_000, `${name} through the router`);
  const instances = join(cluster.paths.agentDir, "instances");
  const own = readdirSync(instances).map((d) => join(instances, d)).find((d) => statSync(d).uid === inside.uid);
  if (!own) throw new Error(`no directory of uid ${inside.uid} in ${instances}`);
  return { ...inside, hostPid: hostPidOf(inside.pid, inside.uid), hostDir: join(own, "app") };
}

/** Every file below `dir` (for picking a real blob, record or droplet to aim at). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk(join(d, e.name)) : e.isFile() && out.push(join(d, e.name)));
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

const secret = (path: string) => readFileSync(path, "utf8").trim();

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "skiff-security-"));
  cluster = await startLocalCluster({ dataDir, services: true, servicesDurable: false, echo: !!process.env.SKIFF_TEST_ECHO });
  await cli("login", "-a", cluster.controllerUrl, "-u", "admin", "-p", cluster.adminPassword);
  // the victim: its own org and space, a database bound, its credentials in its environment
  await cli("create-org", "victim-org");
  await cli("target", "-o", "victim-org");
  await cli("create-space", "prod");
  await cli("target", "-o", "victim-org", "-s", "prod");
  await cli("create-service", "postgresql", "shared", "victim-db");
  await cli("push", fixture, "--name", "victim");
  await cli("bind-service", "victim", "victim-db");
  await cli("restart", "victim");
  // the attacker: another org
  await cli("create-org", "attacker-org");
  await cli("target", "-o", "attacker-org");
  await cli("create-space", "dev");
  await cli("target", "-o", "attacker-org", "-s", "dev");
  await cli("push", fixture, "--name", "probe");
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe.if(isRoot)("an instance cannot reach another tenant's data (issue 24)", () => {
  let victim: Who;
  let probe: Who;
  let platformFiles: string[] = [];
  let report: ProbeReport;
  const p = () => cluster.paths;

  test("the probe and the victim run as different unprivileged uids", async () => {
    victim = await whoami("victim");
    probe = await whoami("probe");
    expect(probe.uid).toBeGreaterThan(0);
    expect(victim.uid).toBeGreaterThan(0);
    expect(probe.uid).not.toBe(victim.uid);
    // the victim really holds a secret worth stealing: its bound database's password
    expect(readFileSync(`/proc/${victim.hostPid}/environ`, "utf8")).toContain("VCAP_SERVICES=");
  });

  test("from inside the probe, every door is shut and every control opens", async () => {
    const controller = p().controllerDir;
    const services = p().servicesDir;
    const targets = [
      join(controller, "controller.sqlite"),
      join(controller, "controller.sqlite-wal"),
      join(controller, "controller.sqlite-shm"),
      join(controller, "credentials.key"),
      filesUnder(join(controller, "blobs", "packages"))[0]!,
      filesUnder(join(controller, "blobs", "droplets"))[0]!,
      p().adminPassword,
      p().natsCredentials,
      p().natsConfig,
      p().routerStatusPassword,
      join(p().cliHome, "config.json"),
      join(p().brokerDir, "broker", "broker.sqlite"), // the broker takes SKIFF_DATA_DIR/broker
      p().brokerPassword,
      join(services, "postgres", "admin-password"),
      join(services, "mysql", "admin-password"),
      join(services, "redis", "admin-password"),
      join(services, "redis", "users.acl"),
      join(services, "redis", "redis.conf"),
      join(services, "rabbitmq", "rabbitmq.conf"),
      filesUnder(join(p().agentDir, "records"))[0]!,
      filesUnder(join(p().agentDir, "droplets"))[0]!,
      join(victim.hostDir, "index.ts"),
      `/proc/${victim.hostPid}/environ`,
    ];
    for (const t of targets) expect(t && existsSync(t), `${t} exists (a probe of a missing file proves nothing)`).toBe(true);
    platformFiles = targets;
    const controls = ["/etc/hostname", join(probe.cwd, "index.ts"), `/proc/${probe.pid}/environ`];
    const lists = [p().dataDir, controller, p().agentDir, join(p().agentDir, "instances"), services, victim.hostDir];
    const s = cluster.services!;
    const creds = JSON.parse(readFileSync(p().natsCredentials, "utf8")) as { user: string; pass: string };
    const plan = {
      files: [...targets, ...controls],
      lists,
      mysql: { port: s.mysql!.port, users: ["root", "", "mysql", "mariadb.sys", s.mysql!.adminUser], control: { user: s.mysql!.adminUser, password: s.mysql!.adminPassword } },
      postgres: { port: s.postgres!.port, socketDir: join(services, "postgres"), users: ["postgres"], control: { user: "postgres", password: s.postgres!.adminPassword } },
      redis: { port: s.redis!.port, control: { password: s.redis!.adminPassword } },
      rabbitmq: { managementPort: s.rabbitmq!.managementPort, users: ["guest", "admin", s.rabbitmq!.adminUser], control: { user: s.rabbitmq!.adminUser, password: s.rabbitmq!.adminPassword } },
      nats: { port: Number(new URL(cluster.natsUrl).port), control: { user: creds.user, password: creds.pass } },
      urls: [
        `http://127.0.0.1:${cluster.routerStatusPort}/metrics`,
        `http://127.0.0.1:${cluster.routerStatusPort}/routes`,
        `${cluster.controllerUrl}/internal/v1/packages/${filesUnder(join(controller, "blobs", "packages"))[0]!.split("/").pop()}`,
        `${cluster.controllerUrl}/v3/apps`,
      ],
    };
    const res = await app("probe", "/probe", { method: "POST", body: JSON.stringify(plan), headers: { "content-type": "application/json" } });
    expect(res.status).toBe(200);
    report = (await res.json()) as ProbeReport;
    expect(report.uid).toBe(probe.uid);

    const opened = (list: Outcome[]) => list.filter((o) => o.ok).map((o) => `${o.attempt}: ${o.detail}`);
    const shut = (list: Outcome[]) => list.filter((o) => !o.ok).map((o) => `${o.attempt}: ${o.detail}`);
    const isControl = (o: Outcome) => o.attempt.includes("with its password") || controls.some((c) => o.attempt === `read ${c}`);
    expect(opened(report.files.filter((o) => !isControl(o)))).toEqual([]);
    expect(shut(report.files.filter(isControl))).toEqual([]);
    expect(opened(report.lists)).toEqual([]);
    // the router's status port and the controller's API want credentials (the status port was open: issue 24)
    expect(report.urls.map((o) => o.detail)).toEqual(["401", "401", "403", "401"]);
    expect(opened(report.logins.filter((o) => !isControl(o)))).toEqual([]);
    const loginControls = report.logins.filter(isControl);
    expect(loginControls.map((o) => o.attempt.split(" ")[0])).toEqual(["mysql", "postgres", "redis", "rabbitmq", "nats"]);
    expect(shut(loginControls)).toEqual([]);
    // each service was really asked (the plan's every user, with no and with an empty password)
    expect(report.logins.length).toBe(5 * 2 + 1 + 3 + 1 + 3 + 3 * 2 + 1 + 3);
  }, 60_000);

  test("beneath the sandbox, file permissions hold alone: the probe's uid on the host reads none of it", () => {
    // The sandbox hides these paths (ENOENT inside); this is the layer under it, as an agent with
    // --no-sandbox or a sandbox escape would leave it.
    expect(platformFiles.length).toBeGreaterThan(15);
    const asProbe = (path: string) => Bun.spawnSync(["head", "-c", "1", path], { uid: probe.uid, gid: probe.uid, stdout: "pipe", stderr: "pipe" });
    const opened = platformFiles.filter((f) => asProbe(f).exitCode === 0);
    expect(opened).toEqual([]);
    expect(asProbe("/etc/hostname").exitCode).toBe(0); // the control: the uid can read what anyone may
  });

  test("the platform's state on disk is 0600 files in 0700 folders, but for the ways through", () => {
    const loose: string[] = [];
    const walk = (d: string, skip: string[]) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const path = join(d, e.name);
        if (skip.includes(path) || e.isSymbolicLink()) continue;
        const mode = statSync(path).mode & 0o777;
        if (e.isDirectory() ? mode & 0o077 : mode & 0o077) loose.push(`${path} ${mode.toString(8)}`);
        if (e.isDirectory()) walk(path, skip);
      }
    };
    // the ways through: the data dir, agent dir, its instances/ and bin/, the services dir (0711);
    // an instance's own directory and PostgreSQL's (owned by their uids, 0700) are not the platform's files
    walk(p().controllerDir, []);
    walk(p().brokerDir, []);
    walk(p().natsDir, []);
    walk(p().cliHome, []);
    walk(join(p().agentDir, "records"), []);
    walk(join(p().agentDir, "droplets"), []);
    for (const name of ["mysql", "redis", "rabbitmq"]) walk(join(p().servicesDir, name), []);
    expect(loose).toEqual([]);
    for (const through of [p().dataDir, p().agentDir, join(p().agentDir, "instances"), p().servicesDir])
      expect((statSync(through).mode & 0o777).toString(8), through).toBe("711");
  });

  test("a signed URL forged with the real secret and an expiry in 2100 is refused; an honest one is served", async () => {
    const db = new Database(join(p().controllerDir, "controller.sqlite"), { readonly: true });
    const key = db.query<{ value: string }, []>("SELECT value FROM settings WHERE name = 'url_signing_secret'").get()!.value;
    db.close();
    const sha = filesUnder(join(p().controllerDir, "blobs", "packages"))[0]!.split("/").pop()!;
    const path = `/internal/v1/packages/${sha}`;
    const url = (expires: number) => `${cluster.controllerUrl}${path}?expires=${expires}&signature=${createHmac("sha256", key).update(`GET ${path} ${expires}`).digest("hex")}`;
    const forged = await fetch(url(Date.UTC(2100, 0, 1)));
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain("invalid or has expired");
    const honest = await fetch(url(Date.now() + 60_000));
    expect(honest.status).toBe(200);
    await honest.arrayBuffer();
  });

  test("secrets the cluster generated never reach the cluster's log", () => {
    const log = cluster.processes.map((x) => x.output()).join("\n");
    for (const file of [p().adminPassword, p().brokerPassword, p().routerStatusPassword, join(p().servicesDir, "mysql", "admin-password"), join(p().servicesDir, "redis", "admin-password")])
      expect(log.includes(secret(file)), `${file}'s secret in the log`).toBe(false);
  });
});
