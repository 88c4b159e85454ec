// The sandboxes' inits are reaped by the agent, not left as zombies for the host's PID 1 (found by the
// npm start tests once instances ran in bwrap: every stopped sandbox left its init behind). Run in a
// process of its own: a subreaper test runner would collect every other test's orphans.

import { expect, test } from "bun:test";
import { join } from "node:path";
import { agentRuntimeEnv } from "./runtime-env.ts";

// each script runs as the agent's Bun does by default: without the JIT (bun:ffi refused to load there,
// so the agent was no subreaper at all once issue 17 turned the JIT off)
const asTheAgent = { ...process.env, ...agentRuntimeEnv({}) };

const bwrap = Bun.which("bwrap");
const script = `
import { becomeSubreaper, reapAllSandboxInits, sandboxInits } from ${JSON.stringify(join(import.meta.dir, "sandbox-reaper.ts"))};
const subreaper = becomeSubreaper(); // undefined: it is one; else why not
const runs = Array.from({ length: 3 }, () =>
  Bun.spawn([${JSON.stringify(bwrap)}, "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "sh", "-c", "sleep 0.05"], { stdio: ["ignore", "ignore", "ignore"] }));
await Promise.all(runs.map((r) => r.exited));
let seen = [];
for (let i = 0; i < 50 && seen.length < runs.length; i++) { seen = sandboxInits(); await Bun.sleep(20); }
await reapAllSandboxInits(2000);
console.log(JSON.stringify({ subreaper: subreaper ?? "yes", seen: seen.length, after: sandboxInits().length }));
`;

test.if(bwrap !== null)("a sandbox's orphaned init comes to the subreaper as a zombie, and is reaped", async () => {
  const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe", env: asTheAgent });
  const [out, err] = [await new Response(p.stdout).text(), await new Response(p.stderr).text()];
  expect(await p.exited, err).toBe(0);
  // bwrap's outer process was gone while its init lingered as our zombie; after reaping, none is left
  expect(JSON.parse(out)).toEqual({ subreaper: "yes", seen: 3, after: 0 });
});

// the agent's shutdown: its instances were just told to stop, and their outer bwraps still run
const shutdownScript = `
import { readdirSync, readFileSync } from "node:fs";
import { becomeSubreaper, reapAllSandboxInits } from ${JSON.stringify(join(import.meta.dir, "sandbox-reaper.ts"))};
becomeSubreaper();
for (let i = 0; i < 3; i++)
  Bun.spawn([${JSON.stringify(bwrap)}, "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "sh", "-c", "sleep 0.3"], { stdio: ["ignore", "ignore", "ignore"] });
await Bun.sleep(50);
await reapAllSandboxInits(3000);
const below = (pid) => readdirSync("/proc").filter((n) => /^\\d+$/.test(n)).filter((n) => {
  try { return /^PPid:\\s+(\\d+)/m.exec(readFileSync("/proc/" + n + "/status", "latin1"))?.[1] === String(pid); } catch { return false; }
});
console.log(JSON.stringify({ left: below(process.pid).length }));
`;

test.if(bwrap !== null)("an agent's last reap waits for the outer bwraps still running, so no init outlives it to the host's PID 1", async () => {
  const p = Bun.spawn([process.execPath, "-e", shutdownScript], { stdout: "pipe", stderr: "pipe", env: asTheAgent });
  const [out, err] = [await new Response(p.stdout).text(), await new Response(p.stderr).text()];
  expect(await p.exited, err).toBe(0);
  // before this fix the reap saw no init yet (each was still bwrap's child) and returned at once, three left
  expect(JSON.parse(out)).toEqual({ left: 0 });
});
