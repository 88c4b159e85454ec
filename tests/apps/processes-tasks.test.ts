// Issue 17, with real processes (nats-server, router, controller, health manager, agent, the CLI):
// a Procfile app with web and worker pushed as cf users type it (push NAME -p DIR) runs both, only
// web is routed, a killed worker is restarted by the health manager, scale --process changes only
// workers; tasks succeed, fail with their exit status, are terminated, write APP/TASK/<name> log
// lines, and are FAILED when their agent stops answering. A worker gets a PORT as every CF process
// does, but no route and no port check.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { repoRoot } from "../../scripts/local-cluster.ts";
import { Subjects, type RouterRegister } from "../../bus/index.ts";
import { eventually } from "../support/ports.ts";
import { agentRecords, appGuid, instancesOf, startAppsCluster, type AppsCluster } from "./support.ts";

let c: AppsCluster;
let guid: string;
const registered: RouterRegister[] = [];

beforeAll(async () => {
  c = await startAppsCluster("apps-proc");
  c.bus.subscribe(Subjects.routerRegister, "router.register", (m) => void registered.push(m));
}, 90_000);

afterAll(async () => {
  await c?.stop();
}, 60_000);

const running = (type: string) => instancesOf(c, guid, type).filter((r) => r.state === "RUNNING");
const tasks = async () => JSON.parse(await c.must("tasks", "workers", "--json")) as { sequence_id: number; name: string; state: string; exit_status: number | null; result: { failure_reason: string | null } }[];
const taskNamed = async (name: string) => (await tasks()).find((t) => t.name === name);

describe("process types (issue 17)", () => {
  test("push NAME -p DIR runs the Procfile's web and worker; only web is routed", async () => {
    const out = await c.must("push", "workers", "-p", join(repoRoot, "examples/workers"));
    expect(out).toContain("App workers is running at http://workers.");
    expect(out).toMatch(/worker: +1 instance\(s\)/);
    guid = await appGuid(c, "workers");
    const res = await eventually(async () => {
      const r = await c.viaRouter("workers");
      return r.status === 200 ? r : undefined;
    }, 30_000, "web through the router");
    expect(await res.text()).toMatch(/^web instance 0 /);
    const worker = await eventually(() => running("worker")[0], 30_000, "the worker RUNNING");
    expect(worker.start).toMatchObject({ uris: [], start_command: "bun worker.ts", health_check: { type: "process" } });
    const detail = JSON.parse(await c.must("app", "workers", "--json"));
    expect(detail.processes.map((p: any) => [p.type, p.instances])).toEqual([["web", 1], ["worker", 1]]);
    expect(detail.instances_detail.map((r: any) => [r.process_type, r.index, r.state])).toEqual([["web", 0, "RUNNING"], ["worker", 0, "RUNNING"]]);
    // the router only ever heard of the web instance
    await Bun.sleep(300);
    expect(registered.some((m) => m.private_instance_id === running("web")[0]!.id)).toBe(true);
    expect(registered.some((m) => m.private_instance_id === worker.id)).toBe(false);
    // the worker's lines are its own, and it was given no port
    const logs = await eventually(async () => {
      const l = await c.must("logs", "workers", "--recent");
      return /\[APP\/PROC\/WORKER\/0\] OUT worker 0 tick/.test(l) ? l : undefined;
    }, 10_000, "the worker's log lines");
    // (it has a PORT, as every Cloud Foundry process does; nothing checks it listens there)
    expect(logs).toMatch(/\[APP\/PROC\/WORKER\/0\] OUT worker 0 started \(pid \d+, uid \d+\)/);
    const shown = await c.must("app", "workers");
    expect(shown).toMatch(/type: +web\ninstances: +1\/1/);
    expect(shown).toMatch(/type: +worker\ninstances: +1\/1/);
  }, 120_000);

  test("a killed worker is restarted by the health manager", async () => {
    const before = running("worker")[0]!;
    process.kill(before.pid, "SIGKILL");
    const after = await eventually(() => running("worker").find((r) => r.id !== before.id), 45_000, "a new worker RUNNING");
    await eventually(() => (isGone(before.pid) ? true : undefined), 10_000, "the killed worker gone");
    expect(after.start.process_type).toBe("worker");
    expect(running("web").length).toBe(1);
    const events = JSON.parse(await c.must("events", "workers", "--json"));
    expect(events.some((e: any) => e.type === "audit.app.process.crash" && e.data.process_type === "worker")).toBe(true);
  }, 60_000);

  test("scale --process worker changes only workers", async () => {
    const web = running("web")[0]!;
    expect(await c.must("scale", "workers", "--process", "worker", "-i", "2")).toContain("Scaled workers's worker process to 2 instance(s).");
    await eventually(() => (running("worker").length === 2 ? true : undefined), 30_000, "2 workers");
    expect(running("web").map((r) => r.id)).toEqual([web.id]);
    expect((await c.viaRouter("workers")).status).toBe(200);
    expect(await c.must("scale", "workers", "--process", "worker")).toMatch(/type: +worker\ninstances: 2/);
  }, 60_000);
});

describe("tasks (issue 17)", () => {
  test("a task runs once from the droplet with the app's env; its output is APP/TASK/<name>", async () => {
    await c.must("set-env", "workers", "GREETING", "hola");
    const out = await c.must("run-task", "workers", "--command", "bun task.ts", "--name", "migrate", "--wait");
    expect(out).toContain("Task 1 (migrate) succeeded.");
    const logs = await eventually(async () => {
      const l = await c.must("logs", "workers", "--recent");
      return l.includes("[APP/TASK/migrate] OUT task migrate: running with GREETING=hola") ? l : undefined;
    }, 10_000, "the task's output");
    expect(logs).toMatch(/\[CELL\/TASK\/migrate\] OUT task migrate succeeded \(exit status 0\)/);
    expect(await taskNamed("migrate")).toMatchObject({ sequence_id: 1, state: "SUCCEEDED", exit_status: 0 });
  }, 60_000);

  test("a failing task reports its exit status", async () => {
    const r = await c.cli("run-task", "workers", "--command", "bun task.ts 3", "--name", "boom", "--wait");
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain("Task 2 (boom) failed: exited with status 3.");
    expect(await taskNamed("boom")).toMatchObject({ state: "FAILED", exit_status: 3, result: { failure_reason: "exited with status 3" } });
    expect(await c.must("tasks", "workers")).toMatch(/2 +boom +failed +\S+ \S+ +bun task\.ts 3 +exited with status 3/);
  }, 60_000);

  test("terminate-task stops a running task", async () => {
    await c.must("run-task", "workers", "--command", "sleep 600", "--name", "long");
    await eventually(async () => ((await taskNamed("long"))?.state === "RUNNING" ? true : undefined), 30_000, "the task RUNNING");
    const pid = await eventually(() => agentTaskPid("long"), 10_000, "the task's process");
    expect(await c.must("terminate-task", "workers", "3")).toContain("Terminating task 3 (long) of workers.");
    expect(await eventually(async () => {
      const t = await taskNamed("long");
      return t?.state === "FAILED" ? t : undefined;
    }, 30_000, "the task FAILED")).toMatchObject({ result: { failure_reason: "cancelled" } });
    await eventually(() => (isGone(pid) ? true : undefined), 10_000, "its process gone");
    expect((await c.cli("terminate-task", "workers", "3")).output).toContain("has already failed");
  }, 90_000);

  test("a task whose agent stops answering is FAILED", async () => {
    await c.must("run-task", "workers", "--command", "sleep 600", "--name", "stuck");
    await eventually(async () => ((await taskNamed("stuck"))?.state === "RUNNING" ? true : undefined), 30_000, "the task RUNNING");
    const agent = c.cluster.processes.find((p) => p.name === "agent")!.child;
    // frozen, the agent is what a dead one looks like from the controller (no advertise, no heartbeat),
    // and it can be thawed so the cluster still stops cleanly (its instances' volumes unmounted)
    process.kill(agent.pid!, "SIGSTOP");
    try {
      const failed = await eventually(async () => {
        const t = await taskNamed("stuck");
        return t?.state === "FAILED" ? t : undefined;
      }, 45_000, "the task FAILED");
      expect(failed.result.failure_reason).toMatch(/^agent agent-[0-9a-f]+ stopped responding while the task ran$/);
    } finally {
      process.kill(agent.pid!, "SIGCONT");
    }
    // the thawed agent's late word changes nothing: a finished task stays finished
    expect((await c.cli("terminate-task", "workers", "4")).output).toContain("has already failed");
    await Bun.sleep(1000);
    expect((await taskNamed("stuck"))!.result.failure_reason).toMatch(/stopped responding/);
  }, 90_000);
});

function agentTaskPid(name: string): number | undefined {
  return agentRecords(c).find((r) => r.task?.name === name && r.pid > 0)?.pid;
}

function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}
