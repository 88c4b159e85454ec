// The matcher's build is reproducible (issue 4): two copies of the crate at different paths, built
// into different target directories, give the same bytes, and they are the bytes the other tests
// load from wasm/dist/. Each copy builds with its own copy of wasm/build.sh in a temporary
// directory, so wasm/dist and wasm/target, which other tests and the router read, are never
// touched. A build takes a few seconds here (the crate has no dependencies).

import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { findMatcherWasm } from "./wasm-matcher.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/** Copies the crate into `dir`/wasm and builds it there: the path of the matcher.wasm made. */
function build(dir: string): string {
  for (const part of ["build.sh", "Cargo.toml", "Cargo.lock", "src"]) cpSync(join(root, "wasm", part), join(dir, "wasm", part), { recursive: true });
  const out = join(dir, "matcher.wasm");
  const result = spawnSync("bash", [join(dir, "wasm/build.sh")], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, CARGO_TARGET_DIR: join(dir, "target"), SKIFF_WASM_OUT: out },
  });
  if (result.status !== 0) throw new Error(`wasm/build.sh failed (${result.signal ?? `exit ${result.status}`}): ${result.stderr}`);
  return out;
}

describe("matcher.wasm build", () => {
  test("two builds at different paths are byte-identical, and wasm/dist holds the same (issue 4)", () => {
    const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), "skiff-wasm-build-")));
    try {
      const [first, second] = dirs.map(build);
      expect(sha256(first!)).toBe(sha256(second!));
      // A mismatch here means the sources changed since wasm/dist was built: the other tests would
      // be testing old code. Run `bash wasm/build.sh`.
      expect(sha256(findMatcherWasm())).toBe(sha256(first!));
    } finally {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
