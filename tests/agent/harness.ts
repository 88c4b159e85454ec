// Starts a real agent process (bun agent/main.ts) against a real nats-server for agent tests, with a
// bus client for the test to play controller, router and health manager.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, createLogger, type Bus, type DeaStart, type MessageKind, type MessageKinds } from "../../bus/index.ts";
import { startNatsServer, type NatsServer } from "../support/nats-server.ts";
import { hostPidOf } from "../support/instance-pid.ts";
import { startProcess, type TestProcess } from "../support/processes.ts";

export const REPO = resolve(import.meta.dir, "../..");
export const BUN = process.execPath;

export interface AgentUnderTest {
  id: string;
  dataDir: string;
  proc: TestProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startAgent(nats: NatsServer, env: Record<string, string> = {}, id = `t${Math.random().toString(36).slice(2, 10)}`): Promise<AgentUnderTest> {
  const dataDir = env.SKIFF_DATA_DIR ?? mkdtempSync(join(tmpdir(), "skiff-agent-"));
  const proc = startProcess(`agent-${id}`, BUN, [join(REPO, "agent/main.ts")], {
    cwd: REPO,
    env: {
      SKIFF_NATS_URL: nats.url,
      SKIFF_DATA_DIR: dataDir,
      SKIFF_AGENT_ID: id,
      SKIFF_AGENT_STOP_GRACE_MS: "2000",
      SKIFF_AGENT_EVACUATION_MS: "300",
      SKIFF_AGENT_SAMPLE_MS: "250",
      ...env,
    },
  });
  await proc.waitForLine(/agent: ready/, 15_000);
  return {
    id,
    dataDir,
    proc,
    async stop(signal = "SIGINT") {
      await proc.stop(signal, 15_000);
      if (!env.SKIFF_DATA_DIR) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Closes a test's bus without letting a slow drain hold up the suite. */
export async function closeBus(bus: Bus | undefined): Promise<void> {
  if (bus) await Promise.race([bus.close().catch(() => {}), Bun.sleep(2000)]);
}

export async function startBus(nats: NatsServer): Promise<Bus> {
  return connectBus({ servers: [nats.url], name: "agent-test" }, createLogger("test", "warn"));
}

/** Collects every message of one kind on a subject, for assertions. */
export function collect<K extends MessageKind>(bus: Bus, subject: string, kind: K): MessageKinds[K][] {
  const seen: MessageKinds[K][] = [];
  bus.subscribe(subject, kind, (m) => void seen.push(m));
  return seen;
}

export function startMessage(overrides: Partial<DeaStart> & Pick<DeaStart, "droplet_uri" | "droplet_sha256">): DeaStart {
  return {
    droplet: "app1",
    version: overrides.droplet_sha256,
    index: 0,
    name: "hello",
    uris: ["hello.skiff.localhost"],
    limits: { mem: 256, disk: 1024, fds: 1024 },
    env: {},
    services: [],
    start_command: "",
    health_check: { type: "port", timeout: 20 },
    vcap_application: {},
    ...overrides,
  };
}

export async function waitFor<T>(probe: () => T | undefined, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    await Bun.sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export { startNatsServer };

export { hostPidOf };

/** hostPidOf the process a line such as the behaviours app's "pid=N … uid=U" names. */
export function hostPid(line: string, key = "pid"): number {
  const m = new RegExp(`${key}=(\\d+).* uid=(\\d+)`).exec(line);
  if (!m) throw new Error(`no ${key}= and uid= in ${JSON.stringify(line)}`);
  return hostPidOf(Number(m[1]), Number(m[2]));
}

/** hostPid of the first "pid=" line in `lines`. */
export const pidFromLogs = (lines: readonly { line: string }[]): number => hostPid(lines.find((l) => l.line.startsWith("pid="))!.line);
