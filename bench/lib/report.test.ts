import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { markdownTable, writeReport, type StoredReport } from "./report.ts";

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

test("a stored report names the git commit (and whether the tree was dirty) and the uWebSockets.js it ran (issue 9)", () => {
  dir = mkdtempSync(join(tmpdir(), "skiff-report-"));
  const { json, md } = writeReport({ bench: "demo", command: "bun demo.ts", quick: true, tables: [], figures: { x: 1 } }, dir);
  expect(json).toBe(join(dir, "demo.quick.json"));
  const r = JSON.parse(readFileSync(json, "utf8")) as StoredReport;
  expect(r.git!.commit).toMatch(/^[0-9a-f]{40}$/);
  expect(typeof r.git!.dirty).toBe("boolean");
  expect(r.versions["uWebSockets.js"]).toMatch(/uws.*@20\.30\./);
  expect(readFileSync(md, "utf8")).toContain(`at commit ${r.git!.commit.slice(0, 12)}`);
});

test("Markdown cells: whole numbers without decimals, NaN and null as a dash", () => {
  const t = markdownTable({ title: "t", columns: ["a", "b", "c", "d", "e"], rows: [[0, 1234, 0.5, NaN, null as unknown as number]] });
  expect(t).toContain("| 0 | 1,234 | 0.50 | — | — |");
});
