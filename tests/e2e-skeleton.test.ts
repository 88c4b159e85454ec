// Issue 3, the walking skeleton: a one-machine cluster of real processes (nats-server, controller,
// health manager, router, agent) serves an app pushed with the CLI, heals it after SIGKILL, and
// shrugs off garbage on every bus subject.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalCluster, repoRoot, type Cluster } from "../scripts/local-cluster.ts";
import { connectBus, Subjects, deaStartSubject, stagingStartSubject, logsSubject, memoryLogger, type Bus } from "../bus/index.ts";
import { eventually } from "./support/ports.ts";

let cluster: Cluster;
let dataDir: string;
let bus: Bus;
const host = () => `hello.${cluster.domain}`;

async function viaRouter(path = "/"): Promise<Response> {
  return fetch(`http://127.0.0.1:${cluster.routerPort}${path}`, { headers: { host: host() } });
}

/** The sample app answers with its pid, so the test can kill exactly the instance that served it. */
async function servedBy(): Promise<{ status: number; pid?: number; body: string }> {
  const res = await viaRouter();
  const body = await res.text();
  const m = /pid (\d+)/.exec(body);
  return { status: res.status, pid: m ? Number(m[1]) : undefined, body };
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "skiff-e2e-"));
  cluster = await startLocalCluster({ dataDir, echo: !!process.env.SKIFF_TEST_ECHO });
  const creds = await Bun.file(cluster.paths.natsCredentials).json();
  bus = await connectBus({ servers: [cluster.natsUrl], name: "e2e-test", user: creds.user, pass: creds.pass }, memoryLogger());
}, 60_000);

afterAll(async () => {
  await bus?.close();
  await cluster?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe("walking skeleton (issue 3)", () => {
  test("push examples/hello with the CLI and reach it through the router by Host header", async () => {
    const login = await cluster.cli(["login", "-a", cluster.controllerUrl, "-u", "admin", "-p", cluster.adminPassword]);
    expect(login.code, login.output).toBe(0);
    const t0 = performance.now();
    const push = await cluster.cli(["push", join(repoRoot, "examples/hello")]);
    expect(push.code, push.output).toBe(0);
    const first = await eventually(async () => {
      const r = await servedBy();
      return r.status === 200 ? r : undefined;
    }, 30_000, "first 200 through the router");
    const ms = performance.now() - t0;
    console.log(`push-to-first-200: ${ms.toFixed(0)} ms`);
    expect(first.body).toContain("hello from skiff");
    expect(first.pid).toBeGreaterThan(0);

    const apps = await cluster.cli(["apps"]);
    expect(apps.code, apps.output).toBe(0);
    expect(apps.output).toContain("hello");
  }, 90_000);

  test("an unknown host gets the router's 404 with X-Cf-Routererror", async () => {
    const res = await fetch(`http://127.0.0.1:${cluster.routerPort}/`, { headers: { host: "nope.example" } });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-cf-routererror")).toBe("unknown_route");
  });

  test("an instance killed with SIGKILL is restarted by the health manager and served again", async () => {
    const before = await servedBy();
    expect(before.status).toBe(200);
    process.kill(before.pid!, "SIGKILL");
    const t0 = performance.now();
    const after = await eventually(async () => {
      const r = await servedBy().catch(() => undefined);
      return r && r.status === 200 && r.pid !== before.pid ? r : undefined;
    }, 45_000, "a new instance serving after SIGKILL");
    console.log(`healed after SIGKILL in ${(performance.now() - t0).toFixed(0)} ms`);
    expect(after.body).toContain("hello from skiff");
  }, 60_000);

  test("scaled to 3 with the CLI, requests spread round-robin over all 3 instances (issue 7)", async () => {
    const scale = await cluster.cli(["scale", "hello", "-i", "3"]);
    expect(scale.code, scale.output).toBe(0);
    const pids = await eventually(async () => {
      const seen = new Set<number>();
      for (let i = 0; i < 12; i++) {
        const r = await servedBy();
        if (r.status === 200 && r.pid) seen.add(r.pid);
      }
      return seen.size === 3 ? seen : undefined;
    }, 45_000, "three distinct instances answering through the router");
    expect(pids.size).toBe(3);
    // round-robin: 30 requests over 3 instances give each exactly 10
    const counts = new Map<number, number>();
    for (let i = 0; i < 30; i++) {
      const r = await servedBy();
      counts.set(r.pid!, (counts.get(r.pid!) ?? 0) + 1);
    }
    expect([...counts.values()].sort()).toEqual([10, 10, 10]);
  }, 60_000);

  test("garbage and wrong-shaped CBOR on every subject leave every process running and serving", async () => {
    const agentId = await new Promise<string>((resolve) => {
      const sub = bus.subscribe(Subjects.deaAdvertise, "dea.advertise", (m) => {
        sub.unsubscribe();
        resolve(m.id);
      });
      bus.publish(Subjects.deaLocate, "dea.locate", {});
    });
    const subjects = [
      ...Object.values(Subjects).filter((s) => !s.includes("*")),
      deaStartSubject(agentId),
      stagingStartSubject(agentId),
      logsSubject("hello"),
    ];
    const garbage = [
      new Uint8Array([0xff, 0xfe, 0x00, 0x13, 0x37]),
      new Uint8Array([0xa1, 0x64, 0x68, 0x6f, 0x73, 0x74, 0x05]), // {"host": 5}
      new Uint8Array([0x83, 0x01, 0x02, 0x03]), // [1, 2, 3]
      new TextEncoder().encode('{"host":"10.0.0.9","port":"eighty","uris":"x"}'),
      new TextEncoder().encode("{truncated"),
    ];
    for (const s of subjects) for (const g of garbage) bus.publishRaw(s, g);
    await bus.flush();
    await Bun.sleep(500);

    for (const p of cluster.processes) expect(p.child.exitCode, `${p.name} is still running`).toBeNull();
    const r = await servedBy();
    expect(r.status).toBe(200);
    // Every component that subscribes logged the rejection with its subject (the counters' burst log).
    for (const name of ["router", "agent", "controller", "health"]) {
      const p = cluster.processes.find((x) => x.name === name)!;
      expect(p.output(), `${name} counted invalid messages`).toContain("invalid message rejected");
    }
    const metrics = await (await fetch(`http://127.0.0.1:${cluster.routerStatusPort}/metrics`)).text();
    expect(metrics).toMatch(/rejected/);
  }, 30_000);
});
