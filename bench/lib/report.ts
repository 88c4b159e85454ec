// Writes a benchmark's results: bench/results/<name>.json (machine, versions, command, every figure)
// and bench/results/<name>.md (readable tables and the command that produced them).

import { spawnSync } from "node:child_process";
import { cpus, release, totalmem } from "node:os";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export const benchRoot = resolve(dirname(new URL(import.meta.url).pathname), "..");
export const resultsDir = join(benchRoot, "results");

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number)[][];
  notes?: string;
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

export function peerVersions(): Record<string, string> {
  return {
    nginx: version("nginx", ["-v"]),
    haproxy: version("haproxy", ["-v"]),
    wrk: version("wrk", ["--version"]),
    "nats-server": version("nats-server", ["--version"]),
  };
}

function fmt(v: string | number): string {
  if (typeof v === "string") return v;
  if (!Number.isFinite(v)) return "—";
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString("en-US");
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function markdownTable(t: Table): string {
  const head = `| ${t.columns.join(" | ")} |\n| ${t.columns.map(() => "---").join(" | ")} |`;
  const body = t.rows.map((r) => `| ${r.map(fmt).join(" | ")} |`).join("\n");
  return `### ${t.title}\n\n${head}\n${body}\n${t.notes ? `\n${t.notes}\n` : ""}`;
}

export function writeReport(report: BenchReport): { json: string; md: string } {
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString();
  const full = { ...report, date: stamp, machine: machine(), versions: peerVersions() };
  const suffix = report.quick ? ".quick" : "";
  const json = join(resultsDir, `${report.bench}${suffix}.json`);
  const md = join(resultsDir, `${report.bench}${suffix}.md`);
  writeFileSync(json, JSON.stringify(full, null, 2) + "\n");
  const m = full.machine;
  writeFileSync(
    md,
    [
      `# ${report.bench} benchmark${report.quick ? " (quick mode: checks it works, figures not meaningful)" : ""}`,
      "",
      `Measured ${stamp} on ${m.cpus} × ${m.cpu_model}, ${m.memory_gib} GiB, Linux ${m.kernel}, Node ${m.node}, Bun ${m.bun}.`,
      "",
      "Command:",
      "",
      "```sh",
      report.command,
      "```",
      "",
      ...report.tables.map(markdownTable),
      ...(report.notes?.length ? ["## Notes", "", ...report.notes.map((n) => `- ${n}`), ""] : []),
    ].join("\n"),
  );
  return { json, md };
}
