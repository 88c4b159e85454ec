// Property-based tests of the manifest and YAML parsers (issue 19): the short form of
// tests/fuzz/targets/manifest.ts, and what fuzzing found, each as a regression test.

import { describe, expect, test } from "bun:test";
import * as fc from "fast-check";
import { checkManifest, manifestInput } from "../../tests/fuzz/targets/manifest.ts";

test("issue 19: any text is a ManifestError or apps of the documented shape; written apps read back", () => {
  fc.assert(fc.property(manifestInput, (i) => checkManifest(i)), { numRuns: 3000 });
}, 60_000);

describe("issue 19: what fuzzing found in the manifest parser", () => {
  test("an env var named __proto__ (or constructor) is kept, not turned into a prototype or a duplicate", async () => {
    const { parseManifest } = await import("./manifest.ts");
    const { apps } = parseManifest("applications:\n- name: a\n  env:\n    __proto__: x\n    constructor: y\n    toString: z\n");
    expect(Object.getPrototypeOf(apps[0]!.env)).toBe(Object.prototype);
    expect(Object.entries(apps[0]!.env!)).toEqual([["__proto__", "x"], ["constructor", "y"], ["toString", "z"]]);
  });
  test('a double-quoted value with an escaped quote before " #" is not cut at the "comment"', async () => {
    const { parseManifest } = await import("./manifest.ts");
    const { apps } = parseManifest('applications:\n- name: a\n  command: "echo \\" #not a comment" # a comment\n');
    expect(apps[0]!.command).toBe('echo " #not a comment');
  });
  test("flow lists nested 50,000 deep are refused at once instead of taking seconds and overflowing the stack", async () => {
    const { parseManifest, ManifestError } = await import("./manifest.ts");
    const t0 = performance.now();
    expect(() => parseManifest(`applications: ${"[".repeat(50_000)}1${"]".repeat(50_000)}`)).toThrow(ManifestError);
    expect(() => parseManifest(`applications: ${"{a: ".repeat(50_000)}1${"}".repeat(50_000)}`)).toThrow(/nested deeper than 64/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
  test("block mappings nested past 64 levels are refused with the line", async () => {
    const { parseYaml } = await import("./yaml.ts");
    const text = Array.from({ length: 70 }, (_, i) => `${" ".repeat(i)}k:`).join("\n");
    expect(() => parseYaml(text)).toThrow(/line 65: lists and maps nested deeper than 64/);
  });
});
