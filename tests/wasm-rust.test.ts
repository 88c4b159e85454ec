// The matcher crate's own Rust tests (trie, FFI layer) run on the host with Debian's rustc, as part of
// the suite: the differential tests in router/src/matcher/ cover the compiled wasm, these the pieces.

import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const wasmDir = resolve(import.meta.dir, "../wasm");
const bin = (name: string) => (existsSync(`/usr/bin/${name}`) ? `/usr/bin/${name}` : (Bun.which(name) ?? name));

test("cargo test passes for the matcher crate, with nothing ignored", async () => {
  const proc = Bun.spawn([bin("cargo"), "test", "--offline"], {
    cwd: wasmDir,
    env: { ...process.env, RUSTC: bin("rustc"), CARGO_TARGET_DIR: join(wasmDir, "target") },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code, `${out}\n${err}`).toBe(0);
  const results = [...out.matchAll(/test result: ok\. (\d+) passed; (\d+) failed; (\d+) ignored/g)];
  expect(results.length).toBeGreaterThan(0);
  expect(results.reduce((n, m) => n + Number(m[1]), 0)).toBeGreaterThanOrEqual(14);
  for (const m of results) expect([m[2], m[3]]).toEqual(["0", "0"]);
}, 300_000);
