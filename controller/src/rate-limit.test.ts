import { describe, expect, test } from "bun:test";
import { FixedWindowLimiter } from "./rate-limit.ts";

describe("FixedWindowLimiter", () => {
  test("allows `limit` hits per window per key, then says when to come back", () => {
    const l = new FixedWindowLimiter({ limit: 3, windowMs: 60_000 });
    expect([l.hit("a", 0), l.hit("a", 10), l.hit("a", 20)].every((v) => v.ok)).toBe(true);
    expect(l.hit("a", 30_000)).toEqual({ ok: false, retryAfterMs: 30_000 });
    expect(l.hit("b", 30_000).ok).toBe(true); // another address has its own count
    expect(l.hit("a", 60_000).ok).toBe(true); // a new window
  });

  test("keeps at most maxKeys windows, dropping ended ones first", () => {
    const l = new FixedWindowLimiter({ limit: 1, windowMs: 1000, maxKeys: 4 });
    for (let i = 0; i < 4; i++) l.hit(`k${i}`, 0);
    l.hit("late", 500);
    expect(l.size).toBeLessThanOrEqual(4);
    for (let i = 0; i < 10; i++) l.hit(`n${i}`, 2000);
    expect(l.size).toBeLessThanOrEqual(4);
  });
});
