// Issue 9: every benchmark still works. Each runs in --quick mode (a second or two of load) as its own
// process; its figures are not judged here, only that it runs to the end and writes its results.
// The multi-router scenario also exits non-zero on any failed request, so that promise is checked.
// The runner (bench/run.ts) is run too, on the cheapest bench.

import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { BENCHES } from "../bench/benches.ts";

const repo = resolve(import.meta.dir, "..");
const results = join(repo, "bench/results");

function procStat(pid: number): { pid: number; ppid: number; state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { pid, ppid: Number(f[1]), state: f[0]!, startTime: f[19]! };
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return ""; // gone meanwhile
  }
}

/** Every live descendant of `root`, from /proc. */
function descendants(root: number) {
  const all = readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map((n) => procStat(Number(n))).filter((p) => p !== undefined);
  const out: typeof all = [];
  const walk = (pid: number) => all.filter((p) => p.ppid === pid).forEach((c) => (out.push(c), walk(c.pid)));
  walk(root);
  return out;
}

async function run(argv: string[]) {
  const proc = Bun.spawn([process.execPath, ...argv], { cwd: repo, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { out, err, code };
}

describe("bench --quick (issue 9)", () => {
  test.each(BENCHES.map((b) => [b.name, b.script] as const))("%s runs and writes its results", async (name, script) => {
    const started = Date.now();
    const { out, err, code } = await run([join(repo, "bench", script), "--quick"]);
    expect(code, `${name} failed:\n${out.slice(-3000)}\n${err.slice(-3000)}`).toBe(0);
    const result = join(results, `${name}.quick.json`);
    expect(existsSync(result), `${result} written`).toBe(true);
    expect(statSync(result).mtimeMs).toBeGreaterThanOrEqual(started - 1000);
    const r = JSON.parse(readFileSync(result, "utf8"));
    expect(r.git?.commit, "the commit measured").toMatch(/^[0-9a-f]{40}$/);
    if (name === "router") {
      // every scenario of a full run, briefly: GET, 64 KiB POST, loaded routes and churn, each with p99.9
      for (const k of ["skiff.b0.c64", "post65536.skiff.b0.c64", "skiff_routes1000.b0.c64", "skiff_churn100.b0.c64"]) {
        expect(r.figures[`${k}.p999_ms`], `${k}.p999_ms`).toBeGreaterThan(0);
        expect(r.figures[`${k}.round1.req_s`], `${k}.round1.req_s`).toBeGreaterThan(0);
      }
      for (const t of r.tables) expect(t.columns).toContain("p99.9 ms");
    }
    if (name === "router-profile") {
      // the samples of wrk's window, split into kinds that add up to all of them
      const shares = Object.entries(r.figures).filter(([k]) => k.startsWith("share.")).map(([, v]) => v as number);
      expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(100, 0);
      expect(r.figures["share.upstream_write"]).toBeGreaterThan(0);
      expect(r.figures["share.skiff_js"]).toBeGreaterThan(0);
      expect(r.figures.cpu_us_per_request).toBeGreaterThan(0);
    }
  }, 240_000);

  test("the runner runs a named bench in quick mode and leaves the README alone (issue 9)", async () => {
    const readme = join(repo, "bench/README.md");
    const before = statSync(readme).mtimeMs;
    const started = Date.now();
    const { out, err, code } = await run(["bench/run.ts", "--quick", "bus"]);
    expect(code, `${out.slice(-3000)}\n${err.slice(-3000)}`).toBe(0);
    expect(out).toContain("=== bench bus: done");
    expect(out).not.toContain("=== bench router");
    expect(statSync(join(results, "bus.quick.json")).mtimeMs).toBeGreaterThanOrEqual(started - 1000);
    expect(statSync(readme).mtimeMs).toBe(before); // quick figures are not the README's
  }, 120_000);

  test("a multi-router run that fails stops everything it started, its nats-server included (issue 9)", async () => {
    // routers that refuse to start (a bad setting) make the run fail early
    const proc = Bun.spawn([process.execPath, "bench/multi-router/multi-router-bench.ts", "--quick", "--variant", "no-retry"], {
      cwd: repo, stdout: "pipe", stderr: "pipe", env: { ...process.env, SKIFF_ROUTER_MAX_HEADER_BYTES: "1" },
    });
    const seen = new Map<number, string>(); // pid → start time, of every descendant seen while it ran
    let code: number | undefined;
    void proc.exited.then((c) => (code = c));
    while (code === undefined) {
      for (const p of descendants(proc.pid)) seen.set(p.pid, p.startTime);
      await Bun.sleep(20);
    }
    const err = await new Response(proc.stderr).text();
    expect(code).toBe(1);
    expect(err).toContain("r1 exited (1) before it listened");
    expect([...seen.values()].length, "it started processes").toBeGreaterThan(0);
    expect([...seen].filter(([pid, start]) => procStat(pid)?.startTime === start && procStat(pid)?.state !== "Z")).toEqual([]);
  }, 60_000);

  test("a bench stopped with SIGTERM or Ctrl-C stops every process it started first", async () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const proc = Bun.spawn([process.execPath, "bench/router/router-bench.ts", "--quick"], { cwd: repo, stdout: "pipe", stderr: "pipe" });
      const seen = new Map<number, string>(); // pid → start time, of every descendant seen while it ran
      const deadline = Date.now() + 60_000;
      // wait until the load generator runs: the proxies, the backend and a NATS server are up by then
      while (Date.now() < deadline && ![...descendants(proc.pid)].some((p) => cmdline(p.pid).startsWith("wrk"))) await Bun.sleep(50);
      for (const p of descendants(proc.pid)) seen.set(p.pid, p.startTime);
      expect(seen.size, "it started its processes").toBeGreaterThan(3);
      proc.kill(signal);
      expect(await proc.exited).toBe(signal === "SIGTERM" ? 143 : 130);
      const left = [...seen].filter(([pid, start]) => procStat(pid)?.startTime === start && procStat(pid)?.state !== "Z");
      expect(left, `left running after ${signal}`).toEqual([]);
    }
  }, 150_000);

  test("the runner refuses an unknown bench or option, running nothing", async () => {
    const bench = await run(["bench/run.ts", "--quick", "nope"]);
    expect(bench.code).toBe(2);
    expect(bench.err).toContain("unknown bench: nope; choose from bus, matcher");
    const option = await run(["bench/run.ts", "--fast"]);
    expect(option.code).toBe(2);
    expect(option.err).toContain("unknown option --fast");
    expect(bench.out + option.out).not.toContain("=== bench");
  });
});
