// Starts a real nats-server for a test on a port it picks itself (`-p -1` plus a ports file, as
// nats.js's own tests do), and stops exactly that process.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { stopChild } from "../../scripts/stop-child.ts";
import { stopsToRunBeforeExit } from "../../scripts/stop-request.ts";

export interface NatsServer {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** `port` reuses a known port (to restart a server in place); otherwise nats-server picks one. */
export async function startNatsServer(opts: { port?: number; args?: string[] } = {}): Promise<NatsServer> {
  const dir = mkdtempSync(join(tmpdir(), "skiff-nats-"));
  const args = ["-a", "127.0.0.1", "-p", String(opts.port ?? -1), "--ports_file_dir", dir, ...(opts.args ?? [])];
  const child = spawn("nats-server", args, {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const file = readdirSync(dir).find((f) => f.endsWith(".ports"));
    if (file) {
      const ports = JSON.parse(readFileSync(join(dir, file), "utf8")) as { nats: string[] };
      const url = ports.nats[0]!;
      const stopThis = () => (stopsToRunBeforeExit.delete(stopThis), stop(child, dir));
      stopsToRunBeforeExit.add(stopThis); // stopped too if the test run is stopped from outside
      return { url, port: Number(new URL(url).port), pid: child.pid!, stop: stopThis };
    }
    if (child.exitCode !== null) break;
    await Bun.sleep(20);
  }
  await stop(child, dir);
  throw new Error(`nats-server did not start: ${stderr}`);
}

async function stop(child: ChildProcess, dir: string): Promise<void> {
  await stopChild(child, { graceMs: 3000 }); // resolves once it has exited: its port is free again
  rmSync(dir, { recursive: true, force: true });
}
