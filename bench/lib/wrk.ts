// Runs wrk (a real load generator) and parses what it prints: rate, latency percentiles (p99.9 too,
// through a Lua done() hook: --latency stops at p99), and every kind of failure (socket errors and
// non-2xx/3xx responses).

import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { killOnStop } from "./stop-signals.ts";

export interface WrkResult {
  requests: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  /** NaN when wrk ran without the script of wrkScript() */
  p999ms: number;
  socketErrors: number;
  non2xx: number;
  raw: string;
}

export function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

/** The line the done() hook of wrkScript() prints: wrk's histogram percentiles in µs. */
const DONE_LINE = /^latency-us p50 (\d+) p99 (\d+) p99\.9 (\d+)$/m;

export function parseWrk(out: string): WrkResult {
  const e = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const done = DONE_LINE.exec(out);
  return {
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    // the hook's figures are exact µs; --latency's are rounded to 2 decimals of their unit
    p50ms: done ? Number(done[1]) / 1000 : toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ""),
    p99ms: done ? Number(done[2]) / 1000 : toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ""),
    p999ms: done ? Number(done[3]) / 1000 : NaN,
    socketErrors: e ? Number(e[1]) + Number(e[2]) + Number(e[3]) + Number(e[4]) : 0,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    raw: out,
  };
}

/**
 * Writes a wrk Lua script into `dir` and returns its path: a done() hook printing p50/p99/p99.9, and with
 * `postBytes`, every request a POST with a body of that size.
 */
export function wrkScript(dir: string, opts: { postBytes?: number } = {}): string {
  const file = join(dir, `wrk-${opts.postBytes ?? 0}.lua`);
  const post = opts.postBytes
    ? `wrk.method = "POST"\nwrk.body = string.rep("x", ${opts.postBytes})\nwrk.headers["Content-Type"] = "application/octet-stream"\n`
    : "";
  writeFileSync(
    file,
    post +
      `done = function(summary, latency, requests)\n` +
      `  io.write(string.format("latency-us p50 %d p99 %d p99.9 %d\\n", latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))\n` +
      `end\n`,
  );
  return file;
}

/** wrk -t1 for a bounded time; `taskset` pins it when a CPU list is given; `script` from wrkScript(). */
export function runWrk(opts: { url: string; connections: number; seconds: number; host?: string; cpus?: string; script?: string }): Promise<WrkResult> {
  const argv = [
    "-t1", `-c${opts.connections}`, `-d${opts.seconds}s`, "--latency",
    ...(opts.host ? ["-H", `Host: ${opts.host}`] : []),
    ...(opts.script ? ["-s", opts.script] : []),
    opts.url,
  ];
  const [cmd, args] = opts.cpus ? ["taskset", ["-c", opts.cpus, "wrk", ...argv]] : ["wrk", argv];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args as string[], { stdio: ["ignore", "pipe", "pipe"] });
    killOnStop(p);
    let s = "";
    p.stdout.on("data", (d) => (s += d));
    p.stderr.on("data", (d) => (s += d));
    p.on("exit", (code) => (code === 0 ? resolve(parseWrk(s)) : reject(new Error(`wrk failed (${code}): ${s}`))));
  });
}
