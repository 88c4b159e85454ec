// Runs wrk (a real load generator) and parses what it prints: rate, latency percentiles, and every
// kind of failure (socket errors and non-2xx/3xx responses).

import { spawn } from "node:child_process";

export interface WrkResult {
  requests: number;
  rps: number;
  p50ms: number;
  p99ms: number;
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

export function parseWrk(out: string): WrkResult {
  const e = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50ms: toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ""),
    p99ms: toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ""),
    socketErrors: e ? Number(e[1]) + Number(e[2]) + Number(e[3]) + Number(e[4]) : 0,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    raw: out,
  };
}

/** wrk -t1 for a bounded time; `taskset` pins it when a CPU list is given. */
export function runWrk(opts: { url: string; connections: number; seconds: number; host?: string; cpus?: string }): Promise<WrkResult> {
  const argv = ["-t1", `-c${opts.connections}`, `-d${opts.seconds}s`, "--latency", ...(opts.host ? ["-H", `Host: ${opts.host}`] : []), opts.url];
  const [cmd, args] = opts.cpus ? ["taskset", ["-c", opts.cpus, "wrk", ...argv]] : ["wrk", argv];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args as string[], { stdio: ["ignore", "pipe", "pipe"] });
    let s = "";
    p.stdout.on("data", (d) => (s += d));
    p.stderr.on("data", (d) => (s += d));
    p.on("exit", (code) => (code === 0 ? resolve(parseWrk(s)) : reject(new Error(`wrk failed (${code}): ${s}`))));
  });
}
