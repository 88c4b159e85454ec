// The sandboxes' inits are reaped by the agent, not left as zombies for the host's PID 1 (found by the
// npm start tests once instances ran in bwrap: every stopped sandbox left its init behind). Run in a
// process of its own: a subreaper test runner would collect every other test's orphans.

import { expect, test } from "bun:test";
import { join } from "node:path";

const bwrap = Bun.which("bwrap");
const script = `
import { becomeSubreaper, reapAllSandboxInits, sandboxInits } from ${JSON.stringify(join(import.meta.dir, "sandbox-reaper.ts"))};
const subreaper = becomeSubreaper();
const runs = Array.from({ length: 3 }, () =>
  Bun.spawn([${JSON.stringify(bwrap)}, "--unshare-pid", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "sh", "-c", "sleep 0.05"], { stdio: ["ignore", "ignore", "ignore"] }));
await Promise.all(runs.map((r) => r.exited));
let seen = [];
for (let i = 0; i < 50 && seen.length < runs.length; i++) { seen = sandboxInits(); await Bun.sleep(20); }
await reapAllSandboxInits(2000);
console.log(JSON.stringify({ subreaper, seen: seen.length, after: sandboxInits().length }));
`;

test.if(bwrap !== null)("a sandbox's orphaned init comes to the subreaper as a zombie, and is reaped", async () => {
  const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = [await new Response(p.stdout).text(), await new Response(p.stderr).text()];
  expect(await p.exited, err).toBe(0);
  // bwrap's outer process was gone while its init lingered as our zombie; after reaping, none is left
  expect(JSON.parse(out)).toEqual({ subreaper: true, seen: 3, after: 0 });
});
