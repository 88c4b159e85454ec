// The targets table is judged from measurements, not written by hand: check the judging and the
// README splice on made-up figures.

import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { emptyMeasurement, type Measurement } from "./measure-contender.ts";
import { judgeTargets, README_END, README_START, writeBetweenMarkers } from "./targets.ts";

function measurement(contender: Measurement["contender"], size: number, lookup: Partial<Measurement["lookup_ns"]>, rest: Partial<Measurement> = {}): Measurement {
  const m = emptyMeasurement("node v20.20.2", contender, size);
  return { ...m, routes: size, lookup_ns: { ...m.lookup_ns, ...lookup }, ...rest };
}

describe("issue 4's targets", () => {
  test("are judged at the largest size measured, with factors of 1 or more where met", () => {
    const results = [
      measurement("wasm", 10, { exact: 10 }),
      measurement("wasm", 1_000_000, { hot: 60, exact: 300 }, { insert_per_s: 1_200_000, bulk_insert_per_s: 900_000, table_bytes_per_route: 90, linear_memory_bytes_per_route: 140, key_bytes_per_route: 25, heap_bytes_per_route: 0.5 }),
      measurement("reference", 1_000_000, { hot: 600, exact: 450 }, { heap_bytes_per_route: 120 }),
    ];
    const { size, rows } = judgeTargets(results);
    expect(size).toBe(1_000_000);
    const row = (prefix: string) => rows.find((r) => r[0]!.startsWith(prefix))!;
    expect(row("≤ 150 ns per lookup, crossing included: hot").slice(2)).toEqual(["60 ns", "2.50×", "yes"]);
    expect(row("≤ 150 ns per lookup, crossing included: exact").slice(2)).toEqual(["300 ns", "0.50×", "no"]);
    expect(row("≥ 2× the TypeScript reference: hot").slice(2)).toEqual(["600 / 60 ns = 10.00×", "5.00×", "yes"]);
    expect(row("≥ 2× the TypeScript reference: exact").slice(2)).toEqual(["450 / 300 ns = 1.50×", "0.75×", "no"]);
    expect(row("≥ 1M inserts/s: insert").slice(3)).toEqual(["1.20×", "yes"]);
    expect(row("≥ 1M inserts/s: insertMany").slice(3)).toEqual(["0.90×", "no"]);
    expect(row("≤ 100 B/route beyond the key's 25.0 B: the table").slice(2)).toEqual(["90.0 − 25.0 = 65.0 B", "1.54×", "yes"]);
    expect(row("≤ 100 B/route beyond the key's 25.0 B: all of linear").slice(2)).toEqual(["140.0 − 25.0 = 115.0 B", "0.87×", "no"]);
    expect(row("JS heap does not grow").slice(2)).toEqual(["0.50 B/route (reference 120)", "—", "yes"]);
    // Sets the run did not measure (path, wildcard, ...) have no row.
    expect(rows.some((r) => r[0]!.includes("wildcard"))).toBe(false);
  });

  test("the README's table is replaced between its markers, and only there", () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-targets-"));
    try {
      const readme = join(dir, "README.md");
      writeFileSync(readme, `# title\n\nbefore\n${README_START}\nold table\n${README_END}\nafter\n`);
      expect(writeBetweenMarkers(readme, "new table")).toBe(true);
      expect(readFileSync(readme, "utf8")).toBe(`# title\n\nbefore\n${README_START}\nnew table\n${README_END}\nafter\n`);
      writeFileSync(readme, "no markers\n");
      expect(writeBetweenMarkers(readme, "new table")).toBe(false);
      expect(readFileSync(readme, "utf8")).toBe("no markers\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
