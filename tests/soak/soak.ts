// The soak (issue 19): the one-machine cluster (scripts/local-cluster.ts) under constant load through the
// router for N minutes while apps are pushed, scaled, restarted and deleted on a schedule, instances are
// SIGKILLed, the NATS server is restarted once and route tables churn. It records every failed request
// with its cause, the RSS and open fds of every component every 10 s, and how long the platform took to
// reach the desired state again after each fault; then judges the run (see `verdict`) and writes
// soak.json, soak.md and soak.svg. `npm run soak -- --minutes N [--rate R] [--out DIR]`; exits 1 on a fail.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, createLogger, type Bus } from "../../bus/index.ts";
import { freeLoopbackPort } from "../../controller/broker/servers/managed-process.ts";
import { startLocalCluster, type Cluster } from "../../scripts/local-cluster.ts";
import { descendants, openFds, rssBytes, slope } from "./process-stats.ts";
import { soakChart, type Series } from "./soak-chart.ts";

export const repoRoot = resolve(import.meta.dir, "../..");

export interface SoakOptions {
  minutes: number;
  /** requests per second through the router, open loop */
  rate: number;
  outDir: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** What "inherent and bounded" means here: a request on an instance when it is SIGKILLed (bytes reached it, so the router must not retry it). */
export const RULES = {
  killWindowBeforeMs: 5000,
  killWindowAfterMs: 3000,
  maxInherentPerKill: 10,
  convergeTimeoutMs: 180_000,
  /** fitted RSS growth over the last half of the run, per component */
  maxRssGrowthMiB: 16,
  /** rise of the least open-fd count from the second quarter of the run to the last */
  maxFdGrowth: 5,
  sampleEveryMs: 10_000,
} as const;

export interface Failure {
  at: number;
  cause: string;
  /** the fault it is inherent to, when it is */
  fault?: number;
}
export interface Fault {
  id: number;
  kind: "sigkill-instance" | "nats-restart";
  at: number;
  detail: string;
  convergedMs: number | null;
}
export interface ChurnOp {
  at: number;
  command: string;
  ok: boolean;
  ms: number;
  output?: string;
}
export interface Sample {
  t: number;
  rss: Record<string, number>;
  fds: Record<string, number>;
}
export interface SoakResult {
  command: string;
  startedAt: string;
  minutes: number;
  rate: number;
  requests: number;
  served: number;
  failures: Failure[];
  /** requests the load loop skipped because 256 were in flight (its own stall; never sent to skiff) */
  notSent?: number;
  faults: Fault[];
  churn: ChurnOp[];
  routeChurn: { registered: number; unregistered: number };
  samples: Sample[];
  growth: Record<string, { rssMiBPerHour: number; rssGrowthMiB: number; fdsPerHour: number; fdGrowth: number }>;
  verdict: { pass: boolean; problems: string[] };
  /** what a reader of the report should know about this particular run */
  notes?: string[];
}

const COMPONENTS = ["nats", "controller", "health", "router", "agent"] as const;

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const log = opts.log ?? ((l: string) => console.log(`soak | ${l}`));
  const T = opts.minutes * 60_000;
  const dataDir = mkdtempSync(join(tmpdir(), "skiff-soak-"));
  const natsPort = await freeLoopbackPort();
  let cluster: Cluster | undefined;
  let nats: ChildProcess | undefined;
  let bus: Bus | undefined;
  const pids = new Map<string, number>();
  const result: SoakResult = {
    command: `npm run soak -- --minutes ${opts.minutes} --rate ${opts.rate}`,
    startedAt: new Date().toISOString(), minutes: opts.minutes, rate: opts.rate, requests: 0, served: 0,
    failures: [], faults: [], churn: [], routeChurn: { registered: 0, unregistered: 0 }, samples: [], growth: {}, verdict: { pass: false, problems: [] },
  };
  try {
    log(`starting the one-machine cluster in ${dataDir}`);
    cluster = await startLocalCluster({ dataDir, ports: { nats: natsPort }, services: false });
    for (const p of cluster.processes) pids.set(p.name, p.child.pid!);
    const c = cluster;
    const domain = c.domain;
    const host = `soak-hello.${domain}`;
    const routerUrl = `http://127.0.0.1:${c.routerPort}`;
    const statusAuth = "Basic " + Buffer.from(`${c.routerStatus.user}:${c.routerStatus.password}`).toString("base64");
    const cli = async (args: string[]) => c.cli(args);
    must(await cli(["login", "-a", c.controllerUrl, "-u", "admin", "-p", c.adminPassword]), "login");
    must(await cli(["push", join(repoRoot, "examples/hello"), "--name", "soak-hello", "-i", "2"]), "push soak-hello");
    const token = ((await (await fetch(`${c.controllerUrl}/v3/tokens`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: c.adminPassword }) })).json()) as { access_token: string }).access_token;
    const api = async (path: string) => (await fetch(c.controllerUrl + path, { headers: { authorization: `bearer ${token}` }, signal: AbortSignal.timeout(10_000) })).json() as Promise<any>;
    const guid = (await api("/v3/apps?names=soak-hello")).resources[0].guid as string;

    /** The running instances as the controller sees them, and the endpoints the router holds for the app. */
    const state = async () => {
      const inst = (await api(`/v3/apps/${guid}/instances`)).resources as { state: string; port: number | null; instance_id: string | null }[];
      const routes = (await (await fetch(`http://127.0.0.1:${c.routerStatusPort}/routes`, { headers: { authorization: statusAuth }, signal: AbortSignal.timeout(10_000) })).json()) as Record<string, { address: string }[]>;
      return { inst, endpoints: (routes[host] ?? []).map((e) => e.address) };
    };
    /** Waits until exactly `desired` instances run, none of `gone`, and the router routes to exactly them. */
    const converge = async (desired: number, gone: Set<string> = new Set(), extra?: () => Promise<boolean>): Promise<number | null> => {
      const t0 = performance.now();
      while (performance.now() - t0 < RULES.convergeTimeoutMs) {
        try {
          const s = await state();
          const running = s.inst.filter((i) => i.state === "RUNNING");
          const ports = new Set(running.map((i) => `127.0.0.1:${i.port}`));
          if (running.length === desired && s.inst.length === desired && !running.some((i) => gone.has(i.instance_id ?? "")) &&
            s.endpoints.length === desired && s.endpoints.every((e) => ports.has(e)) && (!extra || (await extra()))) return performance.now() - t0;
        } catch {}
        await Bun.sleep(250);
      }
      return null;
    };
    if ((await converge(2)) === null) throw new Error("soak-hello never ran 2 routed instances");
    log(`soak-hello runs 2 instances behind the router; ${opts.rate} req/s for ${opts.minutes} min`);

    // --- sampling
    const t0 = performance.now();
    const now = () => performance.now() - t0;
    const sample = () => {
      const s: Sample = { t: Math.round(now() / 1000), rss: {}, fds: {} };
      for (const name of COMPONENTS) {
        const pid = pids.get(name);
        const r = pid ? rssBytes(pid) : undefined;
        const f = pid ? openFds(pid) : undefined;
        if (r !== undefined) s.rss[name] = r;
        if (f !== undefined) s.fds[name] = f;
      }
      // the instances (and their sandboxes), summed: replaced on every fault, so shown but not judged
      let r = 0, f = 0;
      for (const pid of descendants(pids.get("agent")!)) (r += rssBytes(pid) ?? 0), (f += openFds(pid) ?? 0);
      s.rss.instances = r;
      s.fds.instances = f;
      result.samples.push(s);
    };
    sample();
    const sampler = setInterval(sample, RULES.sampleEveryMs);

    // --- load: open loop at `rate`, every request's outcome counted
    let stopping = false;
    let inFlight = 0;
    const loadDone: Promise<void>[] = [];
    const fire = async (n: number) => {
      const at = now();
      inFlight++;
      try {
        const res = await fetch(`${routerUrl}/?soak=${n}`, { headers: { host }, signal: AbortSignal.timeout(5000) });
        const body = await res.text();
        if (res.status === 200 && body.startsWith("hello from skiff")) result.served++;
        else result.failures.push({ at, cause: `${res.status} ${res.headers.get("x-cf-routererror") ?? ""}`.trim() });
      } catch (err) {
        result.failures.push({ at, cause: `${(err as Error).name}: ${(err as Error).message}`.slice(0, 200) });
      } finally {
        inFlight--;
      }
    };
    const loader = (async () => {
      const interval = 1000 / opts.rate;
      let next = now();
      while (!stopping && now() < T) {
        if (inFlight < 256) loadDone.push(fire(result.requests++));
        else result.failures.push({ at: now(), cause: "client: 256 requests already in flight (skipped)" });
        if (loadDone.length > 10_000) await Promise.all(loadDone.splice(0, loadDone.length));
        next += interval;
        const wait = next - now();
        if (wait > 0) await Bun.sleep(wait);
      }
    })();

    // --- route table churn: fake routes registered and unregistered over NATS, never requested
    const creds = JSON.parse(readFileSync(c.paths.natsCredentials, "utf8")) as { user: string; pass: string };
    bus = await connectBus({ servers: [c.natsUrl], name: "soak-churn", user: creds.user, pass: creds.pass }, createLogger("soak", "error"));
    const b = bus;
    let churnN = 0;
    const routeChurn = setInterval(() => {
      for (let i = 0; i < 10; i++) {
        const k = churnN++;
        b.publish("router.register", "router.register", { host: "127.0.0.1", port: 9, uris: [`churn-${k}.soak.${domain}`, `churn-${k}.soak.${domain}/p${k % 7}`], app: "soak-churn", private_instance_id: `churn-${k}` });
        result.routeChurn.registered++;
        if (k >= 500) {
          const old = k - 500;
          b.publish("router.unregister", "router.unregister", { host: "127.0.0.1", port: 9, uris: [`churn-${old}.soak.${domain}`, `churn-${old}.soak.${domain}/p${old % 7}`] });
          result.routeChurn.unregistered++;
        }
      }
    }, 200);

    // --- app churn: push, scale, restart, delete another app, cycle after cycle
    const appChurn = (async () => {
      const every = Math.max(30_000, T / 15);
      let cycle = 0;
      while (!stopping && now() < T - 20_000) {
        const began = now();
        for (const args of [["push", join(repoRoot, "examples/hello"), "--name", "soak-churn", "-i", "1"], ["scale", "soak-churn", "-i", "2"], ["restart", "soak-churn"], ["delete", "soak-churn", "-f"]]) {
          if (stopping) break;
          const at = now();
          const r = await cli(args);
          result.churn.push({ at, command: args.filter((a) => !a.includes("/")).join(" "), ok: r.code === 0, ms: now() - at, ...(r.code === 0 ? {} : { output: r.output.slice(-500) }) });
        }
        cycle++;
        const wait = began + every - now();
        if (wait > 0) await sleepUnless(wait, () => stopping);
      }
      log(`app churn: ${cycle} cycles`);
    })();

    // --- faults, at fixed fractions of the run
    const killsAt = opts.minutes >= 10 ? [0.15, 0.3, 0.55, 0.7, 0.85] : [0.25, 0.75];
    const schedule = [...killsAt.map((f) => ({ at: f * T, kind: "sigkill-instance" as const })), { at: 0.45 * T, kind: "nats-restart" as const }].sort((a, b) => a.at - b.at);
    for (const ev of schedule) {
      await sleepUnless(ev.at - now(), () => opts.signal?.aborted ?? false);
      if (opts.signal?.aborted) break;
      const id = result.faults.length;
      if (ev.kind === "sigkill-instance") {
        const s = await state();
        const victim = s.inst.find((i) => i.state === "RUNNING" && i.port);
        const pid = victim ? await listenerPid(victim.port!) : undefined;
        if (!victim || !pid) {
          result.faults.push({ id, kind: ev.kind, at: now(), detail: "no running instance to kill", convergedMs: null });
          continue;
        }
        const at = now();
        process.kill(pid, "SIGKILL");
        log(`fault ${id}: SIGKILL instance ${victim.instance_id} (pid ${pid}, port ${victim.port})`);
        const ms = await converge(2, new Set([victim.instance_id!]));
        result.faults.push({ id, kind: ev.kind, at, detail: `instance ${victim.instance_id} pid ${pid} port ${victim.port}`, convergedMs: ms });
        log(`fault ${id}: desired state again after ${ms === null ? "never" : `${(ms / 1000).toFixed(1)} s`}`);
      } else {
        const old = c.processes.find((p) => p.name === "nats")!;
        const at = now();
        await new Promise<void>((r) => {
          if (old.child.exitCode !== null) return r();
          old.child.once("exit", () => r());
          process.kill(old.child.pid!, "SIGTERM");
        });
        nats = spawn("nats-server", ["-c", c.paths.natsConfig, "--ports_file_dir", c.paths.natsDir], { stdio: "ignore", detached: true });
        pids.set("nats", nats.pid!);
        log(`fault ${id}: NATS restarted (pid ${old.child.pid} → ${nats.pid})`);
        // converged: the app's state as before, and the router hears the bus again (a route registered now is routed)
        const probe = `probe-${id}.soak.${domain}`;
        const ms = await converge(2, new Set(), async () => {
          b.publish("router.register", "router.register", { host: "127.0.0.1", port: 9, uris: [probe] });
          const routes = (await (await fetch(`http://127.0.0.1:${c.routerStatusPort}/routes`, { headers: { authorization: statusAuth } })).json()) as Record<string, unknown>;
          const health = (await (await fetch(`${c.controllerUrl}/healthz`)).json()) as { bus: string };
          return probe in routes && health.bus === "connected";
        });
        result.faults.push({ id, kind: ev.kind, at, detail: `nats-server pid ${old.child.pid} stopped, ${nats.pid} started on the same port`, convergedMs: ms });
        log(`fault ${id}: desired state again after ${ms === null ? "never" : `${(ms / 1000).toFixed(1)} s`}`);
      }
    }

    await sleepUnless(T - now(), () => opts.signal?.aborted ?? false);
    stopping = true;
    await loader;
    await Promise.all(loadDone);
    await appChurn;
    clearInterval(routeChurn);
    clearInterval(sampler);
    sample();
    log(`done: ${result.requests} requests, ${result.served} served, ${result.failures.length} failed`);
  } finally {
    await bus?.close().catch(() => {});
    await cluster?.stop().catch((err) => log(`stopping the cluster: ${err}`));
    if (nats && nats.exitCode === null) {
      await new Promise<void>((r) => {
        const timer = setTimeout(() => (nats!.exitCode === null && process.kill(nats!.pid!, "SIGKILL"), r()), 5000);
        nats!.once("exit", () => (clearTimeout(timer), r()));
        process.kill(nats!.pid!, "SIGTERM");
      });
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
  judge(result);
  writeResults(result, opts.outDir);
  return result;
}

function must(r: { code: number; output: string }, what: string): void {
  if (r.code !== 0) throw new Error(`${what} failed:\n${r.output.slice(-2000)}`);
}

async function sleepUnless(ms: number, stop: () => boolean): Promise<void> {
  const end = performance.now() + ms;
  while (!stop() && performance.now() < end) await Bun.sleep(Math.min(500, end - performance.now()));
}

/**
 * The pid listening on a loopback TCP port (the instance; `ss` reads it from the kernel). Asynchronous:
 * a spawnSync here stalled the load loop of the first 60-minute run for ~1.4 s at a fault.
 */
async function listenerPid(port: number): Promise<number | undefined> {
  const p = Bun.spawn(["ss", "-Hltnp", `sport = :${port}`], { stdout: "pipe", stderr: "ignore" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  const m = /pid=(\d+)/.exec(out);
  return m ? Number(m[1]) : undefined;
}

/** Attributes failures to faults, fits the memory and fd slopes, and lists every broken rule. */
/** A request the load loop did not send (its own event loop was behind): the client's, not skiff's. */
export const notSent = (f: Failure) => f.cause.startsWith("client:");

export function judge(r: SoakResult): void {
  const problems: string[] = [];
  const skipped = r.failures.filter(notSent);
  r.notSent = skipped.length;
  r.failures = r.failures.filter((f) => !notSent(f));
  // the load loop must have kept its rate: at most 0.1% of the requests it meant to send not sent
  if (skipped.length > (r.requests + skipped.length) / 1000) problems.push(`the load loop fell behind: ${skipped.length} requests not sent`);
  for (const f of r.failures) {
    const fault = r.faults.find((x) => x.kind === "sigkill-instance" && f.at >= x.at - RULES.killWindowBeforeMs && f.at <= x.at + RULES.killWindowAfterMs);
    if (fault && /^502 endpoint_failure$/.test(f.cause)) f.fault = fault.id;
  }
  const unexplained = r.failures.filter((f) => f.fault === undefined);
  if (unexplained.length) problems.push(`${unexplained.length} failed requests no fault explains: ${causes(unexplained)}`);
  for (const fault of r.faults) {
    const n = r.failures.filter((f) => f.fault === fault.id).length;
    if (n > RULES.maxInherentPerKill) problems.push(`fault ${fault.id} (${fault.kind}): ${n} failed requests, more than ${RULES.maxInherentPerKill}`);
    if (fault.convergedMs === null) problems.push(`fault ${fault.id} (${fault.kind}, ${fault.detail}): desired state not reached within ${RULES.convergeTimeoutMs / 1000} s`);
  }
  const restart = r.faults.find((f) => f.kind === "nats-restart");
  const failedOps = r.churn.filter((o) => !o.ok && !(restart && o.at + o.ms >= restart.at && o.at <= restart.at + (restart.convergedMs ?? 0)));
  if (failedOps.length) problems.push(`${failedOps.length} app-churn commands failed outside the NATS restart: ${failedOps.map((o) => o.command).join("; ")}`);
  const end = r.samples.at(-1)?.t ?? 0;
  const half = r.samples.filter((s) => s.t >= end / 2);
  for (const name of [...COMPONENTS, "instances"]) {
    const rss = half.filter((s) => s.rss[name] !== undefined).map((s) => [s.t, s.rss[name]! / 2 ** 20] as [number, number]);
    const fds = half.filter((s) => s.fds[name] !== undefined).map((s) => [s.t, s.fds[name]!] as [number, number]);
    const span = half.length > 1 ? half.at(-1)!.t - half[0]!.t : 0;
    // fds come and go with connections (spikes of 100 and more): a leak raises their floor, so compare the
    // least count in the last quarter of the run with the least in the second quarter
    const floor = (from: number, to: number) => Math.min(...r.samples.filter((s) => s.t >= from && s.t < to && s.fds[name] !== undefined).map((s) => s.fds[name]!));
    const fdFloorGrowth = floor((end * 3) / 4, end + 1) - floor(end / 4, end / 2);
    const g = { rssMiBPerHour: slope(rss) * 3600, rssGrowthMiB: slope(rss) * span, fdsPerHour: slope(fds) * 3600, fdGrowth: Number.isFinite(fdFloorGrowth) ? fdFloorGrowth : 0 };
    r.growth[name] = g;
    if (name === "instances") continue; // replaced by every fault: shown, not judged
    if (g.rssGrowthMiB > RULES.maxRssGrowthMiB) problems.push(`${name}: RSS grew ${g.rssGrowthMiB.toFixed(1)} MiB over the last half (${g.rssMiBPerHour.toFixed(1)} MiB/h), more than ${RULES.maxRssGrowthMiB}`);
    if (g.fdGrowth > RULES.maxFdGrowth) problems.push(`${name}: the least count of open fds rose by ${g.fdGrowth} from the second quarter to the last, more than ${RULES.maxFdGrowth}`);
  }
  if (r.requests === 0 || r.served === 0) problems.push("no request was served");
  r.verdict = { pass: problems.length === 0, problems };
}

function causes(f: Failure[]): string {
  const n = new Map<string, number>();
  for (const x of f) n.set(x.cause, (n.get(x.cause) ?? 0) + 1);
  return [...n].map(([k, v]) => `${v}× ${k}`).join(", ") || "none";
}

export function writeResults(r: SoakResult, outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "soak.json"), JSON.stringify({ ...r, samples: r.samples }, null, 1) + "\n");
  const series = (key: "rss" | "fds", scale: number): Series[] =>
    [...COMPONENTS, "instances"].map((name) => ({ name: name === "instances" ? "instances (sum)" : name, points: r.samples.filter((s) => s[key][name] !== undefined).map((s) => [s.t, s[key][name]! / scale] as [number, number]) }));
  const faultMarks = r.faults.map((f) => ({ t: f.at / 1000, label: `${f.kind}: ${f.detail}` }));
  writeFileSync(join(outDir, "soak.svg"), soakChart(`skiff soak: ${r.minutes} min at ${r.rate} req/s (${r.startedAt.slice(0, 16)}Z); dashed lines: faults`, series("rss", 2 ** 20), series("fds", 1), faultMarks));
  writeFileSync(join(outDir, "soak.md"), report(r));
}

function report(r: SoakResult): string {
  const inherent = r.failures.filter((f) => f.fault !== undefined);
  const fmt = (ms: number | null) => (ms === null ? "not reached" : `${(ms / 1000).toFixed(1)} s`);
  const rows = Object.entries(r.growth).map(([name, g]) => {
    const last = r.samples.at(-1)!;
    return `| ${name} | ${((last.rss[name] ?? 0) / 2 ** 20).toFixed(1)} | ${g.rssMiBPerHour.toFixed(1)} | ${g.rssGrowthMiB.toFixed(1)} | ${last.fds[name] ?? "—"} | ${g.fdsPerHour.toFixed(1)} | ${g.fdGrowth.toFixed(1)} |`;
  });
  return `# Soak: ${r.minutes} minutes under churn (issue 19)

${r.verdict.pass ? "**Pass.**" : `**Fail:**\n${r.verdict.problems.map((p) => `- ${p}`).join("\n")}`}

Command: \`${r.command}\` (started ${r.startedAt}; tests/soak/soak.ts). The one-machine cluster of
\`npm start\` (nats-server, controller, health manager, router, agent; no service servers) on a 2-core
machine; ${r.rate} req/s open-loop through the router to \`soak-hello\` (examples/hello, 2 instances);
meanwhile another app is pushed, scaled to 2, restarted and deleted, cycle after cycle; 10 fake routes
registered and 10 unregistered over NATS every 200 ms (500 live); instances SIGKILLed at fixed points and
the NATS server restarted once. RSS and open fds of every component sampled every ${RULES.sampleEveryMs / 1000} s.

![RSS and open fds over time](soak.svg)

## Requests

| sent | served (200 from the app) | failed | inherent to a SIGKILL | unexplained | not sent (client stall) |
| --- | --- | --- | --- | --- | --- |
| ${r.requests} | ${r.served} | ${r.failures.length} | ${inherent.length} | ${r.failures.length - inherent.length} | ${r.notSent ?? 0} |

Failed, by cause: ${causes(r.failures)}.${r.notSent ? ` Not sent: ${r.notSent} requests the load loop skipped because 256 of its own were already in flight — its event loop had stalled (see below); they never reached skiff, and at most 0.1% of the planned requests may be skipped so.` : ""}

Inherent means: a \`502 endpoint_failure\` sent at most ${RULES.killWindowBeforeMs / 1000} s before and
${RULES.killWindowAfterMs / 1000} s after an instance was SIGKILLed, at most ${RULES.maxInherentPerKill} per kill: a
request whose bytes reached the instance when it died, which the router must not retry. Nothing else may
fail: the NATS restart (the router keeps its table and suspends pruning), the app churn (another app) and
the route churn (other hosts) are allowed no failed request at all.

## Faults and convergence

| # | fault | at | detail | failed requests | desired state again after |
| --- | --- | --- | --- | --- | --- |
${r.faults.map((f) => `| ${f.id} | ${f.kind} | ${(f.at / 60_000).toFixed(1)} min | ${f.detail} | ${r.failures.filter((x) => x.fault === f.id).length} | ${fmt(f.convergedMs)} |`).join("\n")}

Desired state: 2 instances RUNNING (none of them the one killed), exactly those 2 addresses in the router's
table, and after the NATS restart also a route registered afterwards routed and the controller's bus
connected.

## App churn

${r.churn.length} commands, ${r.churn.filter((o) => !o.ok).length} failed${r.churn.some((o) => !o.ok) ? `: ${r.churn.filter((o) => !o.ok).map((o) => `${o.command} at ${(o.at / 60_000).toFixed(1)} min`).join("; ")}` : ""}. Route churn: ${r.routeChurn.registered} registrations, ${r.routeChurn.unregistered} unregistrations.

## Memory and file descriptors

Slopes are least-squares fits over the last half of the run. Open fds come and go with connections, so
their growth is the rise of their floor: the least count in the last quarter of the run against the least
in the second quarter. Pass: at most ${RULES.maxRssGrowthMiB} MiB of fitted RSS growth over the last half and a floor
rise of at most ${RULES.maxFdGrowth} fds, per component (the instances are replaced by every fault: shown, not judged).

| component | RSS at end (MiB) | RSS slope (MiB/h) | RSS growth, last half (MiB) | fds at end | fd slope, last half (/h) | fd floor rise |
| --- | --- | --- | --- | --- | --- | --- |
${rows.join("\n")}
${r.notes?.length ? `\n## Notes on this run\n\n${r.notes.map((n) => `- ${n}`).join("\n")}\n` : ""}`;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const arg = (name: string, def: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
  };
  const rejudge = arg("rejudge", "");
  if (rejudge) {
    // judge a recorded run again (the same data) and rewrite its report and chart
    const r = JSON.parse(readFileSync(rejudge, "utf8")) as SoakResult;
    judge(r);
    writeResults(r, resolve(arg("out", join(repoRoot, "bench/results"))));
    console.log(r.verdict.pass ? "soak: pass" : `soak: FAIL\n${r.verdict.problems.join("\n")}`);
    process.exit(r.verdict.pass ? 0 : 1);
  }
  const minutes = Number(arg("minutes", "60"));
  const rate = Number(arg("rate", "100"));
  if (!(minutes > 0) || !(rate > 0)) {
    console.error("usage: npm run soak -- [--minutes 60] [--rate 100] [--out bench/results]");
    process.exit(2);
  }
  const { onStopRequest } = await import("../../scripts/stop-request.ts");
  const abort = new AbortController();
  onStopRequest(() => abort.abort());
  const r = await runSoak({ minutes, rate, outDir: resolve(arg("out", join(repoRoot, "bench/results"))), signal: abort.signal });
  console.log(r.verdict.pass ? "soak: pass" : `soak: FAIL\n${r.verdict.problems.join("\n")}`);
  process.exit(r.verdict.pass ? 0 : 1);
}
