// What the suites that run the real `skiff` binary share: an in-process controller listening on a free
// loopback port (memory bus, fake agent) in a temporary folder, and the binary run to completion with
// a config folder of its own.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createBus, MemoryBroker, memoryLogger, type Bus } from "../../bus/index.ts";
import { startController, type RunningController } from "../../controller/main.ts";
import { FakeAgent } from "./fake-agent.ts";

export const skiffBin = join(resolve(import.meta.dir, "../.."), "cli/bin/skiff");

export interface CliController {
  /** the temporary folder: the controller's data in `c/`, and room for CLI homes and app folders */
  dir: string;
  c: RunningController;
  /** the agent's side of the memory bus */
  bus: Bus;
  agent: FakeAgent;
  /** ends the agent, stops the controller and removes the folder */
  stop(): Promise<void>;
}

/** The controller (domain skiff.test, admin's password adminpass, an embedded health manager) and one fake agent, in a new folder named by `prefix`. */
export async function startCliController(prefix: string): Promise<CliController> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const broker = new MemoryBroker();
  const bus = createBus(broker.transport(), memoryLogger());
  let c: RunningController;
  try {
    c = await startController(
      { natsUrl: "", port: 0, dataDir: join(dir, "c"), domain: "skiff.test", adminPassword: "adminpass", embedHealthManager: true, health: { intervalMs: 100, startGraceMs: 0 }, findTimeoutMs: 200 },
      { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger() },
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const agent = new FakeAgent(bus, "agent1", (req) => c.app.handle(req)).begin();
  return {
    dir,
    c,
    bus,
    agent,
    async stop() {
      agent.end();
      await c.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The CLI's environment: its config in `home`, no controller URL from the caller's. */
export const skiffEnv = (home: string) => ({ ...process.env, SKIFF_HOME: home, SKIFF_CONTROLLER_URL: "" });

/** Runs the CLI to completion (killed after 60 s) with its config in `home`. */
export async function runSkiff(home: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = Bun.spawn([skiffBin, ...args], { env: skiffEnv(home), stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const timer = setTimeout(() => p.kill(), 60_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out, err };
}
