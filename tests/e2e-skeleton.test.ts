// Issue 3, the walking skeleton: a one-machine cluster of real processes (nats-server, controller,
// health manager, router, agent) serves an app pushed with the CLI, heals it after SIGKILL, and
// shrugs off garbage on every bus subject.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalCluster, repoRoot, type Cluster } from "../scripts/local-cluster.ts";
import {
  connectBus,
  discoverComponents,
  encode,
  Subjects,
  deaStartSubject,
  stagingStartSubject,
  logsSubject,
  memoryLogger,
  type Bus,
  type MessageKind,
} from "../bus/index.ts";
import { brokenMessage } from "../bus/fixtures.ts";
import { subjectMatches } from "../bus/memory-transport.ts";
import { eventually } from "./support/ports.ts";
import { helloHostPid } from "./support/instance-pid.ts";
import { alive, descendants, readProc, type Proc } from "./support/process-tree.ts";

let cluster: Cluster;
let dataDir: string;
let bus: Bus;
/** every instance pid that answered, so the last test can check none outlives the cluster */
const instancePids = new Set<number>();
let stopped = false;
const host = () => `hello.${cluster.domain}`;

async function viaRouter(path = "/"): Promise<Response> {
  return fetch(`http://127.0.0.1:${cluster.routerPort}${path}`, { headers: { host: host() } });
}

/** The sample app answers with its pid, so the test can kill exactly the instance that served it. */
async function servedBy(): Promise<{ status: number; pid?: number; body: string }> {
  const res = await viaRouter();
  const body = await res.text();
  const pid = helloHostPid(body);
  if (pid) instancePids.add(pid);
  return { status: res.status, pid, body };
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "skiff-e2e-"));
  cluster = await startLocalCluster({ dataDir, echo: !!process.env.SKIFF_TEST_ECHO });
  const creds = await Bun.file(cluster.paths.natsCredentials).json();
  bus = await connectBus({ servers: [cluster.natsUrl], name: "e2e-test", user: creds.user, pass: creds.pass }, memoryLogger());
}, 60_000);

afterAll(async () => {
  if (!stopped) {
    await bus?.close();
    await cluster?.stop();
  }
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

  test("garbage and wrong-shaped CBOR on every subject: every process keeps running and serving, and its counters show them", async () => {
    const agentId = await new Promise<string>((resolve) => {
      const sub = bus.subscribe(Subjects.deaAdvertise, "dea.advertise", (m) => {
        sub.unsubscribe();
        resolve(m.id);
      });
      bus.publish(Subjects.deaLocate, "dea.locate", {});
    });
    // Every subject a component listens on, with the message kind it expects there.
    const targets: [string, MessageKind][] = [
      [Subjects.routerStart, "router.start"],
      [Subjects.routerGreet, "router.greet"],
      [Subjects.routerRegister, "router.register"],
      [Subjects.routerUnregister, "router.unregister"],
      [Subjects.deaAdvertise, "dea.advertise"],
      [Subjects.deaLocate, "dea.locate"],
      [Subjects.deaStop, "dea.stop"],
      [Subjects.deaUpdate, "dea.update"],
      [Subjects.deaFindDroplet, "dea.find.droplet"],
      [Subjects.deaHeartbeat, "dea.heartbeat"],
      [Subjects.deaShutdown, "dea.shutdown"],
      [Subjects.deaLogsRecent, "dea.logs.recent"],
      [Subjects.dropletExited, "droplet.exited"],
      [Subjects.healthManagerStart, "healthmanager.start"],
      [Subjects.componentDiscover, "vcap.component.discover"],
      [Subjects.componentAnnounce, "vcap.component.announce"],
      [deaStartSubject(agentId), "dea.start"],
      [stagingStartSubject(agentId), "staging.start"],
      [logsSubject("hello"), "logs"],
    ];
    // Invalid for every kind: not CBOR, a CBOR array, broken JSON. The other two are invalid for most.
    const alwaysInvalid = [
      new Uint8Array([0xff, 0xfe, 0x00, 0x13, 0x37]),
      new Uint8Array([0x83, 0x01, 0x02, 0x03]), // [1, 2, 3]
      new TextEncoder().encode("{truncated"),
    ];
    const mostlyInvalid = [
      new Uint8Array([0xa1, 0x64, 0x68, 0x6f, 0x73, 0x74, 0x05]), // {"host": 5}
      new TextEncoder().encode('{"host":"10.0.0.9","port":"eighty","uris":"x"}'),
    ];
    const minRejected = new Map<string, number>();
    for (const [subject, kind] of targets) {
      for (const g of [...alwaysInvalid, ...mostlyInvalid]) bus.publishRaw(subject, g);
      const broken = brokenMessage(kind);
      if (broken) bus.publishRaw(subject, encode(kind, broken as never)); // valid CBOR, one field of the wrong type
      minRejected.set(subject, alwaysInvalid.length + (broken ? 1 : 0));
    }
    await bus.flush();

    // Each component answers vcap.component.discover with its counters: every subscription that got
    // this garbage counts at least the payloads that are invalid for its kind.
    const expectedSubscriptions: Record<string, string[]> = {
      router: [Subjects.routerRegister, Subjects.routerUnregister, Subjects.routerGreet],
      agent: [Subjects.deaLocate, Subjects.deaStop, Subjects.deaUpdate, Subjects.deaFindDroplet, Subjects.routerStart, deaStartSubject(agentId), stagingStartSubject(agentId)],
      controller: [Subjects.deaAdvertise],
      health: [Subjects.deaHeartbeat, Subjects.dropletExited],
    };
    const reports = await eventually(async () => {
      const all = await discoverComponents(bus, 1_000);
      const byType = new Map(all.map((a) => [a.type, a]));
      for (const type of Object.keys(expectedSubscriptions)) {
        const r = byType.get(type);
        if (!r) return undefined;
        for (const [pattern, rejected] of Object.entries(r.bus.rejected)) {
          const hits = targets.filter(([subject]) => subjectMatches(pattern.split("."), subject.split(".")));
          const want = hits.reduce((n, [subject]) => n + minRejected.get(subject)!, 0);
          if (rejected < want) return undefined; // the router decodes in time slices: wait for it
        }
      }
      return byType;
    }, 10_000, "every component's counters to show the garbage");
    for (const [type, subjects] of Object.entries(expectedSubscriptions)) {
      const r = reports.get(type)!;
      for (const subject of subjects) expect(r.bus.rejected[subject], `${type} rejected on ${subject}`).toBeGreaterThanOrEqual(minRejected.get(subject)!);
      expect(Object.values(r.bus.handler_errors).reduce((a, b) => a + b, 0), `${type} handler errors`).toBe(0);
    }

    for (const p of cluster.processes) {
      expect(p.child.exitCode, `${p.name} is still running`).toBeNull();
      expect(p.child.signalCode, `${p.name} was not killed`).toBeNull();
    }
    // Still serving: the router proxies, the controller answers the CLI; the next test has the agent
    // and the health manager heal a killed instance.
    expect((await servedBy()).status).toBe(200);
    const apps = await cluster.cli(["apps"]);
    expect(apps.code, apps.output).toBe(0);
    expect(apps.output).toContain("hello");
    const { user, password } = cluster.routerStatus;
    expect((await fetch(`http://127.0.0.1:${cluster.routerStatusPort}/metrics`)).status).toBe(401);
    const metrics = await (await fetch(`http://127.0.0.1:${cluster.routerStatusPort}/metrics`, { headers: { authorization: `Basic ${btoa(`${user}:${password}`)}` } })).text();
    expect(metrics).toMatch(/rejected/);
  }, 30_000);

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

  test("stopping the cluster leaves none of its processes running, instances included", async () => {
    const components = cluster.processes.map((p) => p.child.pid!);
    const byPid = new Map<number, Proc>();
    for (const pid of [...components, ...instancePids]) {
      const p = readProc(pid);
      if (p) byPid.set(pid, p);
    }
    for (const pid of components) for (const p of descendants(pid)) byPid.set(p.pid, p);
    expect(instancePids.size).toBeGreaterThanOrEqual(3); // the instances seen by the tests above
    stopped = true;
    await bus.close();
    await cluster.stop();
    const started = [...byPid.values()];
    const left = await eventually(() => {
      const running = started.filter(alive);
      return running.length === 0 ? running : undefined;
    }, 10_000, "every process of the cluster to end").catch(() => started.filter(alive));
    expect(left.map((p) => `${p.pid} ${p.cmdline}`), "still running").toEqual([]);
  }, 90_000);
});
