import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { join } from "node:path";

const bun = process.execPath;
// A process that reports its one stop request and exits.
const reporter = `
  import { onStopRequest } from ${JSON.stringify(join(import.meta.dir, "stop-request.ts"))};
  onStopRequest((r) => { console.log("stop", r.kind, r.kind === "signal" ? r.signal : r.parentPid, r.exitCode); process.exit(0); }, { parentPollMs: 50 });
  console.log("ready");
  setInterval(() => {}, 1000);
`;

/** Starts `argv`, resolves with a reader of its whole output once it printed `ready`. */
async function start(argv: string[]) {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const closed = new Promise((r) => child.stdout!.once("close", r));
  while (!out.includes("ready")) await Bun.sleep(10);
  return { child, out: () => out, closed };
}

describe("onStopRequest (issue 23)", () => {
  test.each([
    ["SIGTERM", 143],
    ["SIGINT", 130],
    ["SIGHUP", 129],
  ] as const)("%s is a stop request, exit code %d", async (signal, code) => {
    const p = await start([bun, "-e", reporter]);
    p.child.kill(signal);
    await p.closed;
    expect(p.out()).toContain(`stop signal ${signal} ${code}`);
  });

  test("the parent gone without a signal (SIGKILL) is a stop request", async () => {
    // sh starts the reporter and waits; SIGKILL ends sh alone and the reporter is re-parented
    const p = await start(["sh", "-c", `${bun} -e '${reporter.replaceAll("'", "'\\''")}' & wait`]);
    const t0 = performance.now();
    p.child.kill("SIGKILL");
    await p.closed; // the reporter holds the pipe until it exits
    expect(p.out()).toContain(`stop parent-gone ${p.child.pid} 129`);
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  test("under nohup, neither SIGHUP nor the parent's end stops it", async () => {
    const p = await start(["nohup", bun, "-e", reporter]);
    p.child.kill("SIGHUP");
    await Bun.sleep(300);
    expect(p.out()).not.toContain("stop");
    p.child.kill("SIGTERM");
    await p.closed;
    expect(p.out()).toContain("stop signal SIGTERM 143");
  });
});
