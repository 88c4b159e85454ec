// A real backend for benchmarks: uWS.js under Node answering every request with a fixed body.
// Started as its own process so it never shares an event loop with what is measured.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const repo = resolve(import.meta.dir, "../..");

export function startHelloBackend(port: number, cpus?: string): ChildProcess {
  const dir = mkdtempSync(join(tmpdir(), "skiff-backend-"));
  const file = join(dir, "backend.cjs");
  writeFileSync(
    file,
    `const uws = require(${JSON.stringify(join(repo, "node_modules/uWebSockets.js"))});
     uws.App().any("/*", (res) => { res.end("hello"); }).listen("127.0.0.1", ${port}, 1, (s) => { if (!s) process.exit(3); console.log("ready"); });`,
  );
  const [cmd, args] = cpus ? ["taskset", ["-c", cpus, "node", file]] : ["node", [file]];
  const child = spawn(cmd, args as string[], { stdio: ["ignore", "pipe", "inherit"] });
  // the script's folder goes with the process (node has read the file by the time it answers)
  child.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return child;
}
