// Writes a benchmark's results: bench/results/<name>.json (machine, versions, command, every figure)
// and bench/results/<name>.md (readable tables and the command that produced them).

import { spawnSync } from "node:child_process";
import { cpus, release, totalmem } from "node:os";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export const benchRoot = resolve(dirname(new URL(import.meta.url).pathname), "..");
export const resultsDir = join(benchRoot, "results");

/**
 * A chart a table asks for, drawn as grouped horizontal bars (bench/lib/svg.ts). Each group is one
 * combination of the `groupBy` columns' values; its bars are the `values` columns, or, with `seriesBy`,
 * one bar per distinct value of that column (a pivot: `req/s` grouped by `conns`, one bar per `target`).
 * A column the table lacks is skipped, so a spec outlives a column added later.
 */
export interface ChartSpec {
  /** heading drawn above the bars (defaults to the table's title) */
  title?: string;
  values: string[];
  groupBy: string[];
  seriesBy?: string;
  /** the value axis title: what the bars measure, in which unit, and which way is better */
  axis: string;
}

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number)[][];
  notes?: string;
  /** the charts of this table; none given: one chart of its first numeric column; `[]`: no chart */
  charts?: ChartSpec[];
}

export interface BenchReport {
  bench: string;
  command: string;
  quick: boolean;
  tables: Table[];
  /** flat figures for machines: "router.c64.req_s" → 61234 */
  figures: Record<string, number>;
  notes?: string[];
}

/** What writeReport stores: the report plus when, where and with what it was measured. */
export interface StoredReport extends BenchReport {
  date: string;
  machine: ReturnType<typeof machine>;
  versions: Record<string, string>;
  /** the commit measured; dirty: the work tree had uncommitted changes */
  git?: { commit: string; dirty: boolean };
}

/** The first line a tool prints about its version, on stdout or stderr (nginx -v writes to stderr, wrk exits 1). */
function version(cmd: string, args: string[]): string {
  try {
    const r = spawnSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    if (r.error) return "not installed";
    const line = `${r.stdout ?? ""}\n${r.stderr ?? ""}`.split("\n").map((l) => l.trim()).find((l) => l !== "");
    return line ?? "unknown";
  } catch {
    return "not installed";
  }
}

export function machine() {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    cpu_model: cpu[0]?.model ?? "unknown",
    memory_gib: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: version("node", ["--version"]),
    bun: typeof Bun !== "undefined" ? Bun.version : "n/a",
  };
}

/** The uWebSockets.js the router runs: the npm alias's real package and version (BRIEF: a re-publish of uWS.js). */
export function uwsVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(benchRoot, "..", "node_modules", "uWebSockets.js", "package.json"), "utf8")) as { name: string; version: string };
    return `${pkg.name}@${pkg.version}`;
  } catch {
    return "not installed";
  }
}

export function gitState(): { commit: string; dirty: boolean } {
  const git = (args: string[]) => spawnSync("git", args, { cwd: benchRoot, encoding: "utf8" });
  const head = git(["rev-parse", "HEAD"]);
  if (head.status !== 0) return { commit: "unknown", dirty: false };
  return { commit: head.stdout.trim(), dirty: git(["status", "--porcelain", "--untracked-files=no"]).stdout.trim() !== "" };
}

export function peerVersions(): Record<string, string> {
  return {
    "uWebSockets.js": uwsVersion(),
    nginx: version("nginx", ["-v"]),
    haproxy: version("haproxy", ["-v"]),
    wrk: version("wrk", ["--version"]),
    "nats-server": version("nats-server", ["--version"]),
  };
}

function fmt(v: string | number | null): string {
  if (typeof v === "string") return v;
  if (v === null || !Number.isFinite(v)) return "—"; // NaN is stored as null in JSON
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString("en-US");
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** A table under its own heading; `above` (e.g. its charts) goes between the heading and the table. */
export function markdownTable(t: Table, level = 3, above: string[] = []): string {
  const head = `| ${t.columns.join(" | ")} |\n| ${t.columns.map(() => "---").join(" | ")} |`;
  const body = t.rows.map((r) => `| ${r.map(fmt).join(" | ")} |`).join("\n");
  return [`${"#".repeat(level)} ${t.title}`, "", ...above, `${head}\n${body}\n${t.notes ? `\n${t.notes}\n` : ""}`].join("\n");
}

/**
 * A stored report as Markdown: where and how it was measured, each table (with the lines `charts(table)`
 * gives between its heading and its rows), the notes. `level` is the heading level of the title.
 */
export function reportMarkdown(r: StoredReport, opts: { level?: number; charts?: (t: Table, i: number) => string[] } = {}): string {
  const level = opts.level ?? 1;
  const h = (n: number) => "#".repeat(level + n);
  const m = r.machine;
  const commit = r.git ? ` at commit ${r.git.commit.slice(0, 12)}${r.git.dirty ? " (with uncommitted changes)" : ""}` : "";
  const uws = r.versions["uWebSockets.js"] ? `, uWebSockets.js ${r.versions["uWebSockets.js"]}` : "";
  return [
    `${h(0)} ${r.bench} benchmark${r.quick ? " (quick mode: checks it works, figures not meaningful)" : ""}`,
    "",
    `Measured ${r.date}${commit} on ${m.cpus} × ${m.cpu_model}, ${m.memory_gib} GiB, Linux ${m.kernel}, Node ${m.node}, Bun ${m.bun}${uws}.`,
    "",
    "Command:",
    "",
    "```sh",
    r.command,
    "```",
    "",
    ...r.tables.map((t, i) => markdownTable(t, level + 2, opts.charts?.(t, i))),
    ...(r.notes?.length ? [`${h(1)} Notes`, "", ...r.notes.map((n) => `- ${n}`), ""] : []),
  ].join("\n");
}

/** Writes <dir>/<bench>[.quick].json with the machine, versions and commit, and the Markdown beside it. */
export function writeReport(report: BenchReport, dir = resultsDir): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const full: StoredReport = { ...report, date: new Date().toISOString(), machine: machine(), versions: peerVersions(), git: gitState() };
  const suffix = report.quick ? ".quick" : "";
  const json = join(dir, `${report.bench}${suffix}.json`);
  const md = join(dir, `${report.bench}${suffix}.md`);
  writeFileSync(json, JSON.stringify(full, null, 2) + "\n");
  writeFileSync(md, reportMarkdown(full));
  return { json, md };
}
