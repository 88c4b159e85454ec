import { expect, test } from "bun:test";
import { parseWrk, toMs } from "./wrk.ts";

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
