// What the apps suites (issue 17) share: a one-machine cluster of real processes (nats-server,
// router, controller, health manager, agent) started once per file, the CLI logged in, requests
// through the router by Host header, and the agent's records of what it runs (pids, process types).

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "bun:test";
import { startLocalCluster, type Cluster } from "../../scripts/local-cluster.ts";
import { connectBus, memoryLogger, type Bus, type DeaStart, type TaskStart } from "../../bus/index.ts";

export interface AppsCluster {
  cluster: Cluster;
  dataDir: string;
  /** the operator's bus (every subject), to watch what components say */
  bus: Bus;
  /** runs the CLI; fails the test with its output unless it exits 0 */
  must(...args: string[]): Promise<string>;
  /** runs the CLI, whatever its exit code */
  cli(...args: string[]): Promise<{ code: number; output: string }>;
  /** GET through the router with the app's host */
  viaRouter(app: string, path?: string): Promise<Response>;
  stop(): Promise<void>;
}

export async function startAppsCluster(prefix: string): Promise<AppsCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), `skiff-${prefix}-`));
  const cluster = await startLocalCluster({ dataDir, echo: !!process.env.SKIFF_TEST_ECHO });
  const creds = await Bun.file(cluster.paths.natsCredentials).json();
  const bus = await connectBus({ servers: [cluster.natsUrl], name: `${prefix}-test`, user: creds.user, pass: creds.pass }, memoryLogger());
  const cli = (...args: string[]) => cluster.cli(args);
  const must = async (...args: string[]) => {
    const r = await cli(...args);
    expect(r.code, `skiff ${args.join(" ")}\n${r.output}`).toBe(0);
    return r.output;
  };
  await must("login", "-a", cluster.controllerUrl, "-u", "admin", "-p", cluster.adminPassword);
  return {
    cluster, dataDir, bus, must, cli,
    viaRouter: (app, path = "/") => fetch(`http://127.0.0.1:${cluster.routerPort}${path}`, { headers: { host: `${app}.${cluster.domain}` } }),
    async stop() {
      await bus.close().catch(() => undefined);
      await cluster.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface AgentRecord {
  id: string;
  pid: number;
  state: string;
  start: DeaStart;
  task?: TaskStart;
}

/** What the agent runs now, from its records (one JSON file per instance or task, root's). */
export function agentRecords(c: AppsCluster): AgentRecord[] {
  const dir = join(c.cluster.paths.agentDir, "records");
  const out: AgentRecord[] = [];
  for (const f of readdirSync(dir))
    if (f.endsWith(".json"))
      try {
        out.push(JSON.parse(readFileSync(join(dir, f), "utf8")) as AgentRecord);
      } catch {
        // written as we read: the next look sees it
      }
  return out;
}

/** The records of one app's instances of one process type (web when a record names none). */
export function instancesOf(c: AppsCluster, appGuid: string, type: string): AgentRecord[] {
  return agentRecords(c).filter((r) => !r.task && r.start.droplet === appGuid && (r.start.process_type ?? "web") === type && r.pid > 0);
}

/** The app's guid, from `skiff app NAME --json`. */
export async function appGuid(c: AppsCluster, name: string): Promise<string> {
  return JSON.parse(await c.must("app", name, "--json")).guid;
}
