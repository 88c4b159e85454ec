import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseWrk, toMs, wrkScript } from "./wrk.ts";

const sample = `Running 2s test @ http://127.0.0.1:1/
  1 threads and 64 connections
  Latency Distribution
     50%  512.00us
     75%    1.02ms
     90%    2.00ms
     99%    3.50ms
  120000 requests in 2.00s, 10.00MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 7
Requests/sec:  60000.00
`;

test("parses rate, percentiles and every failure wrk reports", () => {
  const r = parseWrk(sample);
  expect(r).toMatchObject({ requests: 120000, rps: 60000, p50ms: 0.512, p99ms: 3.5, socketErrors: 10, non2xx: 7 });
});

test("durations in us, ms and s", () => {
  expect(toMs("250us")).toBe(0.25);
  expect(toMs("1.5s")).toBe(1500);
  expect(Number.isNaN(toMs("fast"))).toBe(true);
});

test("the done() hook's exact percentiles win over --latency's rounded ones, p99.9 included (issue 9)", () => {
  const r = parseWrk(`${sample}latency-us p50 511 p99 3497 p99.9 8120\n`);
  expect(r).toMatchObject({ p50ms: 0.511, p99ms: 3.497, p999ms: 8.12 });
  expect(Number.isNaN(parseWrk(sample).p999ms)).toBe(true);
});

test("wrkScript: a done() hook, and a POST body of the size asked", () => {
  const dir = mkdtempSync(join(tmpdir(), "skiff-wrk-"));
  try {
    const get = readFileSync(wrkScript(dir), "utf8");
    expect(get).toContain("latency:percentile(99.9)");
    expect(get).not.toContain("POST");
    expect(readFileSync(wrkScript(dir, { postBytes: 65536 }), "utf8")).toContain('string.rep("x", 65536)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
