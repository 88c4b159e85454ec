// Staging with a real agent and nats-server: each buildpack from fixtures, a failing detection, and
// the staging log on logs.<app>.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { extractTarGz, writeTar } from "../../agent/tarball.ts";
import { isGone } from "../../agent/process-tree.ts";
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

/** Sends one staging request and waits for its done reply; every reply in order. */
async function stage(
  appId: string,
  uris: { download: string; upload?: string },
  properties: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<StagingReply[]> {
  const replies: StagingReply[] = [];
  const inbox = bus.inbox();
  bus.subscribe(inbox, "staging.reply", (m) => void replies.push(m));
  await bus.flush();
  bus.publish(
    stagingStartSubject(agent.id),
    "staging.start",
    { app_id: appId, task_id: `task-${appId}`, properties, download_uri: uris.download, upload_uri: uris.upload ?? blobs.uploadUri(appId) },
    { reply: inbox },
  );
  await waitFor(() => replies.find((r) => r.phase === "done"), timeoutMs, `staging of ${appId}`);
  return replies;
}

const stageDir = (appId: string, dir: string, properties: Record<string, string> = {}) =>
  stage(appId, { download: blobs.addPackage(appId, dir) }, properties);

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
    ["procfile-app", "binary", "sh ./run.sh"], // issue 17: the procfile buildpack is now binary (procfile stays an alias)
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
      await extractTarGz(blobs.droplets.get(done.droplet_sha!)!, out, { maxBytes: 1 << 26 });
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

  test.each([
    ["a uid of its own", {}],
    ["the agent's user: found by its tag", { SKIFF_AGENT_RUN_AS: "" }],
  ])("staging that takes too long times out and kills the build, run as %s (issue 6)", async (_as, env) => {
    const slow = await startAgent(nats, { SKIFF_AGENT_STAGING_TIMEOUT_S: "1", ...env });
    const building = () => processesWithCwdUnder(join(slow.dataDir, "staging"));
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
      // npm runs the package's preinstall (sleep 30) in the app dir: the build is really running
      const seen = await waitFor(() => (building().length > 0 ? building() : undefined), 10_000, "the build running");
      const done = await waitFor(() => replies.find((r) => r.phase === "done"), 15_000, "timeout reply");
      expect(done.error).toMatch(/timed out after 1 s/);
      expect(Date.now() - t0).toBeLessThan(5000);
      // the reply goes out once the build is swept: none of its processes is left
      expect(building()).toEqual([]);
      expect(seen.filter((p) => !isGone(p))).toEqual([]);
    } finally {
      await slow.stop();
    }
  }, 30_000);

  // App packages that try to make the root agent read or write outside the task dir: a `.skiff` link
  // chain (the static buildpack copied its server through it, as root), package.json or Procfile as
  // links (root read them to detect the buildpack).
  const chain = [
    { name: "z/", type: "5" as const },
    { name: "a/b/c/", type: "5" as const },
    { name: "a/b/c/d", type: "2" as const, linkname: "../../../z" },
  ];
  test.each([
    [".skiff as a link chain leading out", [{ name: "index.html", data: "<p>hi</p>" }, ...chain, { name: ".skiff", type: "2" as const, linkname: "a/b/c/d/../../../.." }], /resolves outside/],
    [".skiff as a link inside", [{ name: "index.html", data: "<p>hi</p>" }, { name: "z/", type: "5" as const }, { name: ".skiff", type: "2" as const, linkname: "z" }], /\.skiff is a symlink/],
    ["package.json as a link", [{ name: "real.json", data: "{}" }, { name: "package.json", type: "2" as const, linkname: "real.json" }], /package.json is a symlink/],
    ["Procfile as a link", [{ name: "real", data: "web: sleep 1" }, { name: "Procfile", type: "2" as const, linkname: "real" }], /Procfile is a symlink/],
  ])("a hostile package with %s fails staging and nothing is written outside (issue 6)", async (_what, entries, why) => {
    const stagingDir = join(agent.dataDir, "staging");
    const before = statSync(agent.dataDir);
    const appId = `hostile${Math.random().toString(36).slice(2, 8)}`;
    const replies = await stage(appId, { download: blobs.addPackageBytes(appId, new Uint8Array(gzipSync(writeTar(entries)))) }, {}, 30_000);
    const done = replies.find((r) => r.phase === "done")!;
    expect(done.error).toMatch(why);
    expect(done.droplet_sha).toBeUndefined();
    // the chain led to the staging dir: the static server would have landed there
    expect(existsSync(join(stagingDir, "static-server.ts"))).toBe(false);
    expect(readdirSync(agent.dataDir).filter((f) => f.endsWith(".ts"))).toEqual([]);
    expect(existsSync(stagingDir) ? readdirSync(stagingDir) : []).toEqual([]);
    expect(statSync(agent.dataDir).uid).toBe(before.uid);
  }, 30_000);

  test.each([
    ["answers 500", () => blobs.failingUploadUri(500), /uploading the droplet answered 500/],
    ["is unreachable", () => "http://127.0.0.1:1/upload/nowhere", /could not upload the droplet/],
  ])("a droplet upload that %s fails staging with the reason and caches nothing (issue 6)", async (_what, uploadUri, why) => {
    const appId = `upload${Math.random().toString(36).slice(2, 8)}`;
    const cached = () => readdirSync(join(agent.dataDir, "droplets")).filter((f) => f.endsWith(".tgz")).sort();
    const before = cached();
    const replies = await stage(appId, { download: blobs.addPackage(appId, join(REPO, "examples/hello")), upload: uploadUri() }, { start_command: `bun index.ts --${appId}` }, 30_000);
    const done = replies.find((r) => r.phase === "done")!;
    expect(done.error).toMatch(why);
    expect(done.droplet_sha).toBeUndefined();
    expect(cached()).toEqual(before);
    expect(readdirSync(join(agent.dataDir, "staging"))).toEqual([]);
  }, 30_000);
});

/** Pids whose working directory is under `dir`. */
function processesWithCwdUnder(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/cwd`).startsWith(dir + "/")) out.push(Number(name));
    } catch {}
  }
  return out;
}
