// Staging with a real agent and nats-server: each buildpack from fixtures, a failing detection, and
// the staging log on logs.<app>.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extractTarGz } from "../../agent/tarball.ts";
import { logsSubject, stagingStartSubject, type Bus, type StagingReply } from "../../bus/index.ts";
import { startBlobstore, type Blobstore } from "./blobstore.ts";
import { closeBus, collect, REPO, startAgent, startBus, startNatsServer, waitFor, type AgentUnderTest } from "./harness.ts";
import type { NatsServer } from "../support/nats-server.ts";

let nats: NatsServer;
let agent: AgentUnderTest;
let bus: Bus;
let blobs: Blobstore;

beforeAll(async () => {
  nats = await startNatsServer();
  blobs = startBlobstore();
  agent = await startAgent(nats);
  bus = await startBus(nats);
}, 30_000);

afterAll(async () => {
  await agent?.stop();
  await closeBus(bus);
  blobs?.stop();
  await nats?.stop();
}, 60_000);

async function stageDir(appId: string, dir: string, properties: Record<string, string> = {}): Promise<StagingReply[]> {
  const replies: StagingReply[] = [];
  const inbox = bus.inbox();
  bus.subscribe(inbox, "staging.reply", (m) => void replies.push(m));
  await bus.flush();
  bus.publish(
    stagingStartSubject(agent.id),
    "staging.start",
    { app_id: appId, task_id: `task-${appId}`, properties, download_uri: blobs.addPackage(appId, dir), upload_uri: blobs.uploadUri(appId) },
    { reply: inbox },
  );
  await waitFor(() => replies.find((r) => r.phase === "done"), 60_000, `staging of ${appId}`);
  return replies;
}

describe("staging", () => {
  test("examples/hello stages with the bun buildpack and uploads its droplet", async () => {
    const logs = collect(bus, logsSubject("hello"), "logs");
    const replies = await stageDir("hello", join(REPO, "examples/hello"));
    expect(replies[0]!.phase).toBe("started");
    const done = replies.find((r) => r.phase === "done")!;
    expect(done.error).toBeUndefined();
    expect(done.detected_buildpack).toBe("bun");
    expect(done.detected_start_command).toBe("bun run start");
    expect(blobs.droplets.has(done.droplet_sha!)).toBe(true);
    await waitFor(() => logs.some((l) => l.source === "STG" && /buildpack: bun/.test(l.line)), 5000, "staging log");
  }, 30_000);

  test.each([
    ["node-app", "node", "npm start"],
    ["static-site", "static", "bun .skiff/static-server.ts"],
    ["procfile-app", "procfile", "sh ./run.sh"],
    ["bun-procfile", "bun", "bun server.ts --from-procfile"],
  ])("fixture %s stages with the %s buildpack", async (fixture, buildpack, command) => {
    const replies = await stageDir(fixture, join(REPO, "agent/fixtures", fixture));
    const done = replies.find((r) => r.phase === "done")!;
    expect(done.error).toBeUndefined();
    expect(done.detected_buildpack).toBe(buildpack);
    expect(done.detected_start_command).toBe(command);
  }, 30_000);

  test.each([
    ["bun-deps", "bun", "bun run start"],
    ["node-deps", "node", "node server.js"],
  ])("fixture %s installs its (local) dependencies into the droplet", async (fixture, buildpack, command) => {
    const replies = await stageDir(fixture, join(REPO, "agent/fixtures", fixture));
    const done = replies.find((r) => r.phase === "done")!;
    expect(done.error).toBeUndefined();
    expect(done.detected_buildpack).toBe(buildpack);
    expect(done.detected_start_command).toBe(command);
    const out = mkdtempSync(join(tmpdir(), "skiff-droplet-"));
    try {
      extractTarGz(blobs.droplets.get(done.droplet_sha!)!, out, { maxBytes: 1 << 26 });
      expect(existsSync(join(out, "app/node_modules/greeting/index.js"))).toBe(true);
      expect(JSON.parse(readFileSync(join(out, "staging_info.json"), "utf8"))).toMatchObject({ start_command: command, detected_buildpack: buildpack });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);

  test("the manifest's start command wins", async () => {
    const replies = await stageDir("manifest-cmd", join(REPO, "examples/hello"), { start_command: "bun index.ts --manifest" });
    expect(replies.find((r) => r.phase === "done")!.detected_start_command).toBe("bun index.ts --manifest");
  }, 30_000);

  test("an app no buildpack detects fails with the reason", async () => {
    const replies = await stageDir("undetectable", join(REPO, "agent/fixtures/undetectable"));
    const done = replies.find((r) => r.phase === "done")!;
    expect(done.error).toMatch(/no buildpack detected/);
    expect(done.droplet_sha).toBeUndefined();
  }, 30_000);

  test("a failing compile fails staging with the reason", async () => {
    const replies = await stageDir("broken-deps", join(REPO, "agent/fixtures/broken-deps"), { buildpack: "node" });
    const done = replies.find((r) => r.phase === "done")!;
    expect(done.error).toMatch(/npm install failed/);
  }, 30_000);

  test("staging that takes too long times out and kills the build", async () => {
    const slow = await startAgent(nats, { SKIFF_AGENT_STAGING_TIMEOUT_S: "1" });
    try {
      const replies: StagingReply[] = [];
      const inbox = bus.inbox();
      bus.subscribe(inbox, "staging.reply", (m) => void replies.push(m));
      await bus.flush();
      const t0 = Date.now();
      bus.publish(stagingStartSubject(slow.id), "staging.start", {
        app_id: "slow",
        task_id: "task-slow",
        properties: {},
        download_uri: blobs.addPackage("slow", join(REPO, "agent/fixtures/slow-build")),
        upload_uri: blobs.uploadUri("slow"),
      }, { reply: inbox });
      const done = await waitFor(() => replies.find((r) => r.phase === "done"), 15_000, "timeout reply");
      expect(done.error).toMatch(/timed out after 1 s/);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await slow.stop();
    }
  }, 30_000);
});
