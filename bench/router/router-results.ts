// The router bench's results as data: per-round runs summarised into one result per target, size and
// connection count, then shaped into tables (with their charts) and flat figures. Pure: the bench
// (router-bench.ts) measures, this file only arranges what it measured.

import type { ChartSpec, Table } from "../lib/report.ts";
import { figureWriter, spreadCell, summarize } from "../lib/stats.ts";

/** One wrk run of one target in one round. */
export interface Run {
  rps: number;
  p50ms: number;
  p99ms: number;
  p999ms: number;
  failures: number;
  /** the proxy's CPU µs per request (user + system), NaN for the backend direct */
  cpuUs: number;
  userUs: number;
  sysUs: number;
}

export interface Scenario {
  sizes: number[];
  /** request body bytes per POST; 0 = GET */
  post: number;
  /** extra routes loaded into a second skiff router ("skiff+routes") */
  routes: number;
  /** routes/s registered and unregistered on a third skiff router ("skiff+churn") while it is measured */
  churn: number;
  targets: string[];
  /** the workers axis (issue 16): every target at each of these worker counts (connections per worker) */
  workers?: number[];
}

export interface Result {
  target: string;
  size: number;
  connections: number;
  /** medians over the rounds */
  rps: number;
  p50ms: number;
  p99ms: number;
  p999ms: number;
  failures: number;
  cpuUsPerReq: number | null;
  userUsPerReq: number | null;
  sysUsPerReq: number | null;
  rssMiB: number | null;
  /** (max - min) / median over the rounds, as a fraction */
  rpsSpread: number;
  cpuSpread: number | null;
  rounds: Run[];
}

export const ROUTES_T = "skiff+routes";
export const CHURN_T = "skiff+churn";
/** routes in every skiff router's table besides the loaded ones: the bench host and 9 others */
export const BASE_ROUTES = 10;

const median = (xs: number[]) => summarize(xs).median;
const round1 = (n: number) => Math.round(n * 10) / 10;
/** a over b to two places; NaN where either is missing */
const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : NaN);

/** The columns every router table has after its throughput ones, and a result's cells for them. */
const LATENCY_CPU_COLUMNS = ["p50 ms", "p99 ms", "p99.9 ms", "failures", "proxy CPU µs/req", "CPU spread"];
const latencyCpuCells = (r: Result) => [r.p50ms, r.p99ms, r.p999ms, String(r.failures), r.cpuUsPerReq ?? NaN, spreadCell(r.cpuSpread)];
const rssCell = (r: Result) => (r.rssMiB === null ? NaN : String(r.rssMiB));

/** The medians and spreads of one target's rounds; `proxy` false for the backend direct (no proxy CPU). */
export function summarizeRuns(target: string, size: number, connections: number, runs: Run[], proxy: boolean, rssMiB: number | null): Result {
  return {
    target,
    size,
    connections,
    rps: Math.round(median(runs.map((x) => x.rps))),
    p50ms: median(runs.map((x) => x.p50ms)),
    p99ms: median(runs.map((x) => x.p99ms)),
    p999ms: median(runs.map((x) => x.p999ms)),
    failures: runs.reduce((n, x) => n + x.failures, 0),
    cpuUsPerReq: proxy ? round1(median(runs.map((x) => x.cpuUs))) : null,
    userUsPerReq: proxy ? round1(median(runs.map((x) => x.userUs))) : null,
    sysUsPerReq: proxy ? round1(median(runs.map((x) => x.sysUs))) : null,
    rssMiB: proxy ? rssMiB : null,
    rpsSpread: summarize(runs.map((x) => x.rps)).spread,
    cpuSpread: proxy ? summarize(runs.map((x) => x.cpuUs)).spread : null,
    rounds: runs,
  };
}

const withSkiffBase = (sc: Scenario) => sc.routes > 0 || sc.churn > 0;

/** What a target is called in the tables of a scenario. */
export function targetLabel(t: string, sc: Scenario): string {
  if (t === ROUTES_T) return `skiff +${sc.routes.toLocaleString("en-US")} routes`;
  if (t === CHURN_T) return `skiff, ${sc.churn.toLocaleString("en-US")} reg+unreg/s`;
  if (t === "skiff" && withSkiffBase(sc)) return `skiff (${BASE_ROUTES} routes)`;
  return t;
}

/** The title of a scenario's table for one response size (also the key --merge replaces tables by). */
export function tableTitle(sc: Scenario, size: number): string {
  const kind = sc.post > 0 ? `POST ${sc.post.toLocaleString("en-US")}-byte bodies, ` : "";
  const versus = withSkiffBase(sc)
    ? `: ${BASE_ROUTES} routes${sc.routes > 0 ? ` vs +${sc.routes.toLocaleString("en-US")} routes` : ""}${sc.churn > 0 ? ` vs ${sc.churn.toLocaleString("en-US")} routes/s churn` : ""}`
    : "";
  return `${kind}${size}-byte responses${versus} (req/s)`;
}

/** Every router table draws the same three charts: throughput, latency percentiles, proxy CPU. */
export function routerCharts(title: string): ChartSpec[] {
  const what = title.replace(/ \(req\/s\)$/, "");
  return [
    { title: `${what}: throughput`, values: ["req/s"], groupBy: ["conns"], seriesBy: "target", axis: "requests per second, median of rounds (higher is better)" },
    { title: `${what}: latency`, values: ["p50 ms", "p99 ms", "p99.9 ms"], groupBy: ["conns", "target"], axis: "latency percentiles in ms, median of rounds (lower is better)" },
    { title: `${what}: proxy CPU per request`, values: ["proxy CPU µs/req"], groupBy: ["conns"], seriesBy: "target", axis: "proxy CPU µs per request, user + system (lower is better)" },
  ];
}

/** One table per response size: every target at every connection count, with ratios and spreads. */
export function routerTables(results: Result[], sc: Scenario, notes: string): Table[] {
  const find = (t: string, r: Result) => results.find((x) => x.target === t && x.size === r.size && x.connections === r.connections);
  const base = withSkiffBase(sc);
  return sc.sizes.map((size) => {
    const title = tableTitle(sc, size);
    return {
      title,
      columns: [
        "target", "conns", "req/s", "req/s spread", "× nginx req/s", "× direct req/s", ...(base ? ["× skiff req/s"] : []),
        ...LATENCY_CPU_COLUMNS, "user µs", "sys µs", "× nginx CPU", ...(base ? ["× skiff CPU"] : []), "RSS MiB",
      ],
      rows: results
        .filter((r) => r.size === size)
        .map((r) => [
          targetLabel(r.target, sc),
          String(r.connections),
          r.rps,
          spreadCell(r.rpsSpread),
          ratio(r.rps, find("nginx", r)?.rps),
          ratio(r.rps, find("direct", r)?.rps),
          ...(base ? [ratio(r.rps, find("skiff", r)?.rps)] : []),
          ...latencyCpuCells(r),
          r.userUsPerReq ?? NaN,
          r.sysUsPerReq ?? NaN,
          ratio(r.cpuUsPerReq, find("nginx", r)?.cpuUsPerReq),
          ...(base ? [ratio(r.cpuUsPerReq, find("skiff", r)?.cpuUsPerReq)] : []),
          rssCell(r),
        ]),
      notes,
      charts: routerCharts(title),
    };
  });
}

/** The figures every result has, first in its keys: req/s and its spread, p50/p99/p99.9, failures, proxy CPU and its spread. */
function putMedianFigures(put: ReturnType<typeof figureWriter>, r: Result): void {
  put("req_s", r.rps);
  put("req_s_spread", r.rpsSpread);
  put("p50_ms", r.p50ms);
  put("p99_ms", r.p99ms);
  put("p999_ms", r.p999ms);
  put("failures", r.failures);
  put("cpu_us_per_req", r.cpuUsPerReq);
  put("cpu_spread", r.cpuSpread);
}

/**
 * Flat figures: `[post<N>.]<target>.b<size>.c<conns>.<figure>` for the medians and spreads, and
 * `….round<i>.<figure>` for every round, so a reader of the JSON needs no table or note.
 */
export function routerFigures(results: Result[], sc: Scenario): Record<string, number> {
  const figures: Record<string, number> = {};
  const fk = sc.post > 0 ? `post${sc.post}.` : "";
  for (const r of results) {
    const t = r.target === ROUTES_T ? `skiff_routes${sc.routes}` : r.target === CHURN_T ? `skiff_churn${sc.churn}` : r.target;
    const k = `${fk}${t}.b${r.size}.c${r.connections}`;
    const put = figureWriter(figures, k);
    putMedianFigures(put, r);
    put("user_us_per_req", r.userUsPerReq);
    put("sys_us_per_req", r.sysUsPerReq);
    put("rss_mib", r.rssMiB);
    put("rounds", r.rounds.length);
    r.rounds.forEach((x, i) => {
      const putRound = figureWriter(figures, `${k}.round${i + 1}`);
      putRound("req_s", x.rps);
      putRound("p50_ms", x.p50ms);
      putRound("p99_ms", x.p99ms);
      putRound("p999_ms", x.p999ms);
      putRound("failures", x.failures);
      putRound("cpu_us_per_req", x.cpuUs);
    });
  }
  return figures;
}

/** A target at a number of workers in the scaling scenario: `skiff@2`. */
export const atWorkers = (target: string, workers: number) => `${target}@${workers}`;
export function splitWorkers(key: string): { target: string; workers: number } {
  const at = key.lastIndexOf("@");
  return at < 0 ? { target: key, workers: 1 } : { target: key.slice(0, at), workers: Number(key.slice(at + 1)) };
}

/** The same proxy at one worker with the same connections per worker: the baseline of `r`'s efficiency. */
function atOneWorker(results: Result[], r: Result, target: string, workers: number): Result | undefined {
  return results.find((x) => x.size === r.size && x.target === atWorkers(target, 1) && x.connections * workers === r.connections);
}

export function scalingTitle(size: number): string {
  return `Workers: ${size}-byte responses at 1, 2, … workers (req/s, CPU per request, scaling efficiency)`;
}

/**
 * One table per response size: every proxy at every worker count, with its CPU per request, its
 * ratios to nginx at the same count, and its scaling efficiency: req/s at W ÷ (W × req/s at 1 worker).
 * `pins` names the CPUs each worker count was pinned to.
 */
export function scalingTables(results: Result[], sizes: number[], pins: Record<number, string>, notes: string): Table[] {
  return sizes.map((size) => {
    const rows = results
      .filter((r) => r.size === size)
      .map((r) => {
        const { target, workers } = splitWorkers(r.target);
        const one = atOneWorker(results, r, target, workers);
        const nginx = results.find((x) => x.size === size && x.connections === r.connections && x.target === atWorkers("nginx", workers));
        return [
          target,
          String(workers),
          pins[workers] ?? "",
          String(r.connections),
          r.rps,
          spreadCell(r.rpsSpread),
          ratio(r.rps, nginx?.rps),
          workers === 1 ? NaN : one ? Math.round((r.rps / (workers * one.rps)) * 100) / 100 : NaN,
          ...latencyCpuCells(r),
          ratio(r.cpuUsPerReq, nginx?.cpuUsPerReq),
          rssCell(r),
        ];
      });
    return {
      title: scalingTitle(size),
      columns: ["target", "workers", "CPUs", "conns", "req/s", "req/s spread", "× nginx req/s", "scaling efficiency", ...LATENCY_CPU_COLUMNS, "× nginx CPU", "RSS MiB"],
      rows,
      notes,
      charts: [
        { title: `Workers, ${size}-byte responses: throughput`, values: ["req/s"], groupBy: ["workers"], seriesBy: "target", axis: "requests per second, median of rounds (higher is better)" },
        { title: `Workers, ${size}-byte responses: proxy CPU per request`, values: ["proxy CPU µs/req"], groupBy: ["workers"], seriesBy: "target", axis: "proxy CPU µs per request, user + system, all of its threads or processes (lower is better)" },
        { title: `Workers, ${size}-byte responses: scaling efficiency`, values: ["scaling efficiency"], groupBy: ["workers"], seriesBy: "target", axis: "req/s at W workers ÷ (W × req/s at 1) (1 is perfect)" },
      ],
    };
  });
}

/** Flat figures of the scaling scenario: `scaling.<target>.w<W>.b<size>.c<conns>.*`, with `.efficiency` for W > 1. */
export function scalingFigures(results: Result[]): Record<string, number> {
  const figures: Record<string, number> = {};
  for (const r of results) {
    const { target, workers } = splitWorkers(r.target);
    const k = `scaling.${target}.w${workers}.b${r.size}.c${r.connections}`;
    const put = figureWriter(figures, k);
    putMedianFigures(put, r);
    put("rss_mib", r.rssMiB);
    const one = atOneWorker(results, r, target, workers);
    if (workers > 1 && one) put("efficiency", Math.round((r.rps / (workers * one.rps)) * 1000) / 1000);
    r.rounds.forEach((x, i) => {
      put(`round${i + 1}.req_s`, x.rps);
      put(`round${i + 1}.cpu_us_per_req`, x.cpuUs);
    });
  }
  return figures;
}
