import { describe, expect, test } from "bun:test";
import { AGENT_LOST_MS, CANCEL_TIMEOUT_MS, MISSING_CONFIRM_MS, reconcileTasks, UNPLACED_MS, type AgentTasks } from "./task-reconcile.ts";
import type { TaskRecord } from "./task-store.ts";

const NOW = 1_000_000;
const task = (o: Partial<TaskRecord> = {}): TaskRecord => ({
  guid: "t1", app_guid: "a", name: "migrate", command: "x", state: "RUNNING", sequence_id: 1, memory_mb: 64, disk_mb: 64, droplet_guid: "d",
  agent_id: "agent-1", exit_status: null, failure_reason: null, created_at: NOW - 60_000, updated_at: NOW - 60_000, ...o,
});
const hb = (heardAt: number, tasks: AgentTasks["tasks"] extends ReadonlyMap<string, infer T> ? T[] : never): AgentTasks => ({ heardAt, tasks: new Map(tasks.map((t) => [t.guid, t])) });

function run(active: TaskRecord[], o: { live?: boolean; heartbeats?: [string, AgentTasks][]; missing?: Map<string, number>; now?: number; since?: number } = {}) {
  return reconcileTasks({ active, isLive: () => o.live ?? true, heartbeats: new Map(o.heartbeats ?? []), missingSince: o.missing ?? new Map(), now: o.now ?? NOW, since: o.since ?? 0 });
}

describe("what the controller concludes about tasks it has not heard end (issue 17)", () => {
  test("a task its agent's heartbeat lists as running is left alone; a PENDING one it lists becomes RUNNING", () => {
    expect(run([task()], { heartbeats: [["agent-1", hb(NOW, [{ guid: "t1", state: "RUNNING" }])]] })).toEqual([]);
    expect(run([task({ state: "PENDING" })], { heartbeats: [["agent-1", hb(NOW, [{ guid: "t1", state: "RUNNING" }])]] })).toEqual([{ guid: "t1", to: "RUNNING" }]);
  });
  test("an end the controller missed (it was restarting) is read from the heartbeat", () => {
    const ended = hb(NOW, [{ guid: "t1", state: "FAILED", exit_status: 3, failure_reason: "exited with status 3" }]);
    expect(run([task()], { heartbeats: [["agent-1", ended]] })).toEqual([{ guid: "t1", to: "FAILED", exitStatus: 3, reason: "exited with status 3" }]);
  });
  test("a task its agent no longer lists (the agent restarted) fails, once confirmed by a later pass", () => {
    const missing = new Map<string, number>();
    const silent = hb(NOW, []);
    expect(run([task()], { heartbeats: [["agent-1", silent]], missing })).toEqual([]);
    expect(missing.get("t1")).toBe(NOW);
    const later = run([task()], { heartbeats: [["agent-1", silent]], missing, now: NOW + MISSING_CONFIRM_MS });
    expect(later).toEqual([{ guid: "t1", to: "FAILED", reason: "agent agent-1 no longer runs the task (it restarted, or never received it)" }]);
  });
  test("a heartbeat from before the task was handed over says nothing about it", () => {
    expect(run([task({ updated_at: NOW })], { heartbeats: [["agent-1", hb(NOW, [])]], now: NOW + 60_000 })).toEqual([]);
  });
  test("a task whose agent stopped responding fails; a controller that just started gives agents time to be heard", () => {
    expect(run([task()], { live: false })).toEqual([{ guid: "t1", to: "FAILED", reason: "agent agent-1 stopped responding while the task ran" }]);
    expect(run([task()], { live: false, since: NOW - AGENT_LOST_MS + 1000 })).toEqual([]);
    expect(run([task({ updated_at: NOW - 500 })], { live: false })).toEqual([]);
  });
  test("a cancel never confirmed ends the task; one never placed fails", () => {
    expect(run([task({ state: "CANCELING", updated_at: NOW - CANCEL_TIMEOUT_MS - 1 })])).toEqual([{ guid: "t1", to: "FAILED", reason: "cancelled (agent agent-1 did not confirm that it stopped)" }]);
    expect(run([task({ agent_id: null, created_at: NOW - UNPLACED_MS - 1 })])[0]!.to).toBe("FAILED");
    expect(run([task({ agent_id: null, created_at: NOW - 1000 })])).toEqual([]);
  });
});
