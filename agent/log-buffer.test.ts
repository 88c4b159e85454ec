import { describe, expect, test } from "bun:test";
import type { LogLine } from "../bus/index.ts";
import { AppLogBuffers, LineRateLimit, LineSplitter, LogRing, MAX_LINE_CHARS } from "./log-buffer.ts";

const line = (app: string, text: string, ts = 1): LogLine => ({ app, source: "APP", index: 0, stream: "out", ts, line: text });

describe("LogRing", () => {
  test("keeps the newest lines, oldest first", () => {
    const r = new LogRing(3);
    for (const t of ["a", "b", "c", "d", "e"]) r.push(line("x", t));
    expect(r.recent().map((l) => l.line)).toEqual(["c", "d", "e"]);
    expect(r.recent(2).map((l) => l.line)).toEqual(["d", "e"]);
  });
  test("per app, and prunable", () => {
    const b = new AppLogBuffers(10);
    b.push(line("a", "1", 10));
    b.push(line("b", "2", 20));
    expect(b.recent("a").map((l) => l.line)).toEqual(["1"]);
    b.prune(() => false, 15);
    expect(b.recent("a")).toEqual([]);
    expect(b.recent("b")).toHaveLength(1);
  });
});

describe("LineSplitter", () => {
  test("joins chunks into lines, strips CR, flushes the tail at the end", () => {
    const out: string[] = [];
    const s = new LineSplitter((l) => out.push(l));
    const enc = new TextEncoder();
    s.write(enc.encode("hel"));
    s.write(enc.encode("lo\r\nwor"));
    s.write(enc.encode("ld\n\nlast"));
    s.end();
    expect(out).toEqual(["hello", "world", "", "last"]);
  });
  test("cuts very long lines and keeps multi-byte characters whole across chunks", () => {
    const out: string[] = [];
    const s = new LineSplitter((l) => out.push(l));
    const bytes = new TextEncoder().encode("é".repeat(3) + "\n");
    s.write(bytes.subarray(0, 3));
    s.write(bytes.subarray(3));
    s.write(new TextEncoder().encode("x".repeat(MAX_LINE_CHARS * 2 + 5) + "\n"));
    expect(out[0]).toBe("ééé");
    expect(out.slice(1).map((l) => l.length)).toEqual([MAX_LINE_CHARS, MAX_LINE_CHARS, 5]);
  });
});

describe("LineRateLimit", () => {
  test("lets a burst through, then the steady rate, and counts what it drops", () => {
    const r = new LineRateLimit(10, 5, 0);
    const passed = Array.from({ length: 8 }, () => r.take(0)).filter(Boolean).length;
    expect(passed).toBe(5);
    expect(r.dropped()).toBe(3);
    expect(r.dropped()).toBe(0);
    expect(r.take(100)).toBe(true); // 0.1 s at 10/s = one more line
    expect(r.take(100)).toBe(false);
  });
});
