// OrphanCleanup against a store in memory and a fake broker client: the delay schedule, resuming after a
// restart, and what it leaves alone (issue 8: an orphan whose cleanup failed was never retried).

import { describe, expect, test } from "bun:test";
import { memoryLogger } from "../../../bus/index.ts";
import type { BrokerClient } from "../../broker/index.ts";
import { eventually } from "../../../tests/support/ports.ts";
import { OrphanCleanup, orphanRetryDelay } from "./orphan-cleanup.ts";
import type { InstanceContext, LastOperation, OrphanRecord, ServiceStore } from "./service-store.ts";

const op = (type: LastOperation["type"], state: LastOperation["state"], description: string | null = null): LastOperation => ({ type, state, description, updated_at: 0 });

function fixture(instanceOp: LastOperation = op("create", "failed", "boom")) {
  const orphans = new Map<string, OrphanRecord>();
  const ctx: InstanceContext = {
    instance: { guid: "inst-1", name: "db", space_guid: "s", plan_guid: "p", dashboard_url: null, last_operation: instanceOp, created_at: 0, updated_at: 0 },
    plan: { guid: "p", offering_guid: "o", broker_plan_id: "bp", name: "small", description: "", free: true, created_at: 0 },
    offering: { guid: "o", broker_guid: "b", broker_service_id: "bs", name: "memory", description: "", bindable: true, tags: [], created_at: 0 },
    broker: { guid: "b", name: "b", url: "http://b", username: "u", password_sealed: "x", created_at: 0, updated_at: 0 },
  };
  let exists = true;
  const store = {
    insertOrphan: async (o: OrphanRecord) => void orphans.set(o.guid, { ...o }),
    orphansDue: async (now: number) => [...orphans.values()].filter((o) => o.next_attempt_at <= now).map((o) => ({ ...o })),
    nextOrphanAt: async () => (orphans.size ? Math.min(...[...orphans.values()].map((o) => o.next_attempt_at)) : undefined),
    rescheduleOrphan: async (guid: string, attempts: number, next: number, err: string | null) => {
      const o = orphans.get(guid);
      if (o) Object.assign(o, { attempts, next_attempt_at: next, last_error: err });
    },
    deleteOrphan: async (guid: string) => void orphans.delete(guid),
    binding: async () => undefined,
    instanceContext: async (guid: string) => (exists && guid === "inst-1" ? ctx : undefined),
    setInstanceOperation: async (_guid: string, o: Omit<LastOperation, "updated_at">) => void (ctx.instance.last_operation = { ...o, updated_at: 1 }),
  };
  const calls: number[] = [];
  let failures = 0;
  const client = {
    deprovision: async () => {
      calls.push(performance.now());
      if (failures > 0) {
        failures--;
        throw new Error("broker still down");
      }
    },
  } as unknown as BrokerClient;
  const running = new Set<Promise<void>>();
  const make = (initialMs: number) =>
    new OrphanCleanup(
      {
        services: store as unknown as ServiceStore,
        client: async () => client,
        log: memoryLogger(),
        run: (_what, work) => {
          const p = work();
          running.add(p);
          void p.finally(() => running.delete(p));
        },
      },
      { initialMs, maxMs: 10 * initialMs },
    );
  return { orphans, ctx, calls, make, failWith: (n: number) => (failures = n), gone: () => (exists = false) };
}

describe("orphan retries (issue 8)", () => {
  test("the delay doubles from initialMs and stops growing at maxMs", () => {
    expect([0, 1, 2, 3, 10, 500].map((n) => orphanRetryDelay(n, { initialMs: 100, maxMs: 1000 }))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(orphanRetryDelay(0)).toBe(30_000);
    expect(orphanRetryDelay(100)).toBe(30 * 60_000);
  });

  test("a restarted controller resumes the orphans the last one recorded, until the broker lets go", async () => {
    const f = fixture();
    const first = f.make(40);
    await first.record("instance", "inst-1", "provision failed: boom");
    first.stop(); // the controller stops before the first retry
    expect(f.calls).toHaveLength(0);
    f.failWith(2);
    const second = f.make(40);
    await second.resume();
    await eventually(() => (f.orphans.size === 0 ? true : undefined), 5_000, "the orphan to be removed");
    expect(f.calls).toHaveLength(3);
    // after 1 failure 2 × 40 ms, after 2 failures 4 × 40 ms (timers never fire early)
    expect(f.calls[1]! - f.calls[0]!).toBeGreaterThanOrEqual(80 - 5);
    expect(f.calls[2]! - f.calls[1]!).toBeGreaterThanOrEqual(160 - 5);
    expect(f.ctx.instance.last_operation.description).toBe("provision failed: boom (the broker's partial resource was removed on a later attempt)");
    second.stop();
  });

  test("a record the user already deleted is dropped without calling the broker; a delete in progress is waited for", async () => {
    const busy = fixture(op("delete", "in progress"));
    const cleanup = busy.make(20);
    await cleanup.record("instance", "inst-1", "boom");
    await Bun.sleep(120);
    expect(busy.calls).toHaveLength(0);
    expect(busy.orphans.get("inst-1")?.attempts).toBe(0);
    busy.gone();
    await eventually(() => (busy.orphans.size === 0 ? true : undefined), 5_000, "the orphan of a deleted record to be dropped");
    expect(busy.calls).toHaveLength(0);
    cleanup.stop();
  });
});
