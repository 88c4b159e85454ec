import { expect, test } from "bun:test";
import { limitedPlan, planLimit } from "./plan-limits.ts";

test("a limited plan shows the figures it enforces in its description, bullets and metadata (issue 22)", () => {
  const plan = limitedPlan({
    id: "p1", name: "shared", summary: "A database on a shared server",
    limits: { connections_per_binding: { value: 10, reads: "connections per binding", how: "CONNECTION LIMIT" } },
  });
  expect(plan.description).toBe("A database on a shared server; at most 10 connections per binding");
  expect(plan.metadata).toEqual({ displayName: "shared", bullets: ["A database on a shared server", "10 connections per binding (CONNECTION LIMIT)"], limits: { connections_per_binding: 10 } });
  expect(planLimit(plan, "connections_per_binding")).toBe(10);
  expect(planLimit(plan, "queues")).toBeUndefined();
  expect(planLimit({ id: "gone", name: "gone", description: "(no longer in the catalog)" }, "connections_per_binding")).toBeUndefined();
});
