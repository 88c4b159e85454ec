// Real processes for cross-component tests: started with a name, their output kept (and shown on
// failure), ended by pid, with their whole process group when they own one, and waited for.

import { spawn, type ChildProcess } from "node:child_process";
import { stopChild } from "../../scripts/stop-child.ts";
import { stopsToRunBeforeExit } from "../../scripts/stop-request.ts";

export interface TestProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  output(): string;
  /** Resolves with the first output line matching the pattern. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

const running = new Set<TestProcess>();

export function startProcess(
  name: string,
  command: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; echo?: boolean } = {},
): TestProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, so stop() reaches its children too
  });
  let out = "";
  const waiters: { pattern: RegExp; resolve: (l: string) => void }[] = [];
  const onData = (d: Buffer) => {
    const text = d.toString();
    out += text;
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
    if (opts.echo || process.env.SKIFF_TEST_ECHO) process.stdout.write(text.replace(/^(?=.)/gm, `[${name}] `));
    for (const line of text.split("\n"))
      for (let i = waiters.length - 1; i >= 0; i--)
        if (waiters[i]!.pattern.test(line)) waiters.splice(i, 1)[0]!.resolve(line);
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const p: TestProcess = {
    name,
    pid: child.pid!,
    child,
    exited,
    output: () => out,
    waitForLine(pattern, timeoutMs = 15_000) {
      const seen = out.split("\n").find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = {
          pattern,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(w);
        const timer = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) {
            waiters.splice(i, 1);
            reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms. Output:\n${out.slice(-4000)}`));
          }
        }, timeoutMs);
      });
    },
    async stop(signal = "SIGTERM", graceMs = 5000) {
      running.delete(p);
      // the group, then SIGKILL after the grace; resolves once the process and its group are gone
      await stopChild(child, { signal, graceMs, group: true });
    },
  };
  running.add(p);
  return p;
}

/** Stops every process this test file started that is still running. */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}
// and every one of them if the test run is stopped from outside
stopsToRunBeforeExit.add(stopAllProcesses);
