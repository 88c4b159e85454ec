// Each component's NATS identity, against a real nats-server running the generated authorization
// block (issue 27): what a role may not do is refused by the server (and logged by it), what it must do
// still works, replies included.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, type NatsServer } from "../tests/support/nats-server.ts";
import { connectBus, deaStartSubject, stagingStartSubject, Subjects, type Bus } from "./index.ts";
import { memoryLogger } from "./log.ts";
import { authorizationBlock, inboxPrefixFor, natsServerConfig, permissionsFor, type NatsIdentity } from "./nats-permissions.ts";

const ids = {
  controller: { role: "controller", user: "controller" },
  health: { role: "health", user: "health" },
  router: { role: "router", user: "router" },
  agentA: { role: "agent", user: "agent-a", agentId: "agent-a" },
  agentB: { role: "agent", user: "agent-b", agentId: "agent-b" },
  registrar: { role: "route-registrar", user: "route-registrar" },
  operator: { role: "operator", user: "operator" },
} satisfies Record<string, NatsIdentity>;
type Name = keyof typeof ids;

let dir: string;
let nats: NatsServer;
let logFile: string;
const buses = new Map<Name, Bus & { logLines: string[] }>();

async function as(name: Name): Promise<Bus & { logLines: string[] }> {
  const logger = memoryLogger();
  const bus = await connectBus({ servers: [nats.url], name: `${name}-test`, user: ids[name].user, pass: `pw-${name}` }, logger);
  const b = Object.assign(bus, { logLines: logger.lines });
  buses.set(name, b);
  return b;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "skiff-nats-perm-"));
  const conf = join(dir, "nats.conf");
  logFile = join(dir, "nats.log");
  // bcrypt in the config for two of them: the server compares hashes as well as plain passwords
  const users = await Promise.all(
    (Object.keys(ids) as Name[]).map(async (n) => ({
      identity: ids[n],
      password: n === "agentA" || n === "router" ? await Bun.password.hash(`pw-${n}`, { algorithm: "bcrypt", cost: 4 }) : `pw-${n}`,
    })),
  );
  writeFileSync(conf, natsServerConfig({ listen: "127.0.0.1:-1", users }), { mode: 0o600 });
  nats = await startNatsServer({ args: ["-c", conf, "-l", logFile] });
  for (const n of Object.keys(ids) as Name[]) await as(n);
});

afterAll(async () => {
  for (const b of buses.values()) await b.close().catch(() => {});
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Subscribes `listener` to `subject`, runs `act`, and returns how many messages arrived. */
async function heard(listener: Bus, subject: string, act: () => void | Promise<void>): Promise<number> {
  let n = 0;
  const sub = listener.subscribeRaw(subject, () => n++);
  await listener.flush();
  await act();
  await Bun.sleep(150);
  sub.unsubscribe();
  return n;
}

const natsLog = () => readFileSync(logFile, "utf8");

describe("NATS permissions per component (issue 27)", () => {
  test("an agent's credentials cannot publish dea.stop or a start order; NATS logs it and the agent counts it", async () => {
    const agent = buses.get("agentA")!;
    const other = buses.get("agentB")!;
    expect(await heard(other, Subjects.deaStop, () => agent.publish(Subjects.deaStop, "dea.stop", { droplet: "victim-app" }))).toBe(0);
    expect(await heard(other, deaStartSubject("agent-b"), () => agent.publishRaw(deaStartSubject("agent-b"), new Uint8Array([0xa0])))).toBe(0);
    expect(natsLog()).toMatch(/Publish Violation - User "agent-a", Subject "dea\.stop"/);
    expect(agent.logLines.some((l) => /NATS refused this user/.test(l) && /denied_total/.test(l))).toBe(true);
    // the controller's own dea.stop does arrive: the refusal is the permission, not a broken probe
    expect(await heard(other, Subjects.deaStop, () => buses.get("controller")!.publish(Subjects.deaStop, "dea.stop", { droplet: "x" }))).toBe(1);
  });

  test("an agent cannot subscribe to another agent's subjects or to another component's replies", async () => {
    const agent = buses.get("agentA")!;
    const controller = buses.get("controller")!;
    for (const subject of [deaStartSubject("agent-b"), stagingStartSubject("agent-b"), `${inboxPrefixFor("controller")}.>`, "_INBOX.>"]) {
      expect(await heard(agent, subject, () => controller.publishRaw(subject.replace(">", "x"), new Uint8Array([0xa0])))).toBe(0);
    }
    expect(natsLog()).toMatch(/Subscription Violation - User "agent-a", Subject "dea\.agent-b\.start"/);
    // its own start subject does arrive
    expect(await heard(agent, deaStartSubject("agent-a"), () => controller.publishRaw(deaStartSubject("agent-a"), new Uint8Array([0xa0])))).toBe(1);
  });

  test("a router's credentials cannot publish router.register; the route-registrar's and an agent's can", async () => {
    const router = buses.get("router")!;
    const msg = { host: "198.18.0.9", port: 61001, uris: ["bank.example.com"], app: "evil", private_instance_id: "x", private_instance_index: "0", tags: {}, stale_threshold_in_seconds: 120 };
    expect(await heard(router, Subjects.routerRegister, () => router.publish(Subjects.routerRegister, "router.register", msg as never))).toBe(0);
    expect(natsLog()).toMatch(/Publish Violation - User "router", Subject "router\.register"/);
    expect(await heard(router, Subjects.routerRegister, () => buses.get("registrar")!.publishRaw(Subjects.routerRegister, new TextEncoder().encode(JSON.stringify(msg))))).toBe(1);
    expect(await heard(router, Subjects.routerRegister, () => buses.get("agentA")!.publish(Subjects.routerRegister, "router.register", msg as never))).toBe(1);
  });

  test("only the controller and health manager may start and stop instances", async () => {
    const agent = buses.get("agentA")!;
    for (const who of ["router", "registrar", "agentB"] as const) {
      expect(await heard(agent, Subjects.deaStop, () => buses.get(who)!.publish(Subjects.deaStop, "dea.stop", { droplet: "a" }))).toBe(0);
    }
    expect(await heard(agent, Subjects.deaStop, () => buses.get("health")!.publish(Subjects.deaStop, "dea.stop", { droplet: "a" }))).toBe(1);
  });

  test("the protocol still works: staging streams replies, find.droplet answers, routers greet, discovery answers", async () => {
    const agent = buses.get("agentA")!;
    const controller = buses.get("controller")!;
    const router = buses.get("router")!;
    const sub = agent.subscribe(stagingStartSubject("agent-a"), "staging.start", (m, meta) => {
      for (const phase of ["started", "started", "done"] as const) agent.publish(meta.reply!, "staging.reply", { task_id: m.task_id, phase, droplet_sha: "ab".repeat(32) } as never);
    });
    await agent.flush();
    const start = { app_id: "app1", task_id: "t1", properties: { buildpack: null, env: {}, resources: { memory: 256, disk: 1024 } }, download_uri: "https://x/p", upload_uri: "https://x/d" };
    const replies = await controller.requestMany(stagingStartSubject("agent-a"), "staging.start", start as never, "staging.reply", { timeoutMs: 500 });
    expect(replies.length).toBe(3);
    sub.unsubscribe();
    const routerStart = router.subscribe(Subjects.routerGreet, "router.greet", (_m, meta) => router.publish(meta.reply!, "router.start", { id: "r1", hosts: ["198.18.0.9"], minimumRegisterIntervalInSeconds: 20, pruneThresholdInSeconds: 120 }));
    await router.flush();
    const greeting = await agent.request(Subjects.routerGreet, "router.greet", {}, "router.start", { timeoutMs: 1000 });
    expect(greeting.id).toBe("r1");
    // the controller learns routers the same way (the console's metrics history), and hears router.start
    expect((await controller.request(Subjects.routerGreet, "router.greet", {}, "router.start", { timeoutMs: 1000 })).id).toBe("r1");
    expect(await heard(controller, Subjects.routerStart, () => router.publish(Subjects.routerStart, "router.start", { id: "r1", hosts: ["198.18.0.9"], minimumRegisterIntervalInSeconds: 20, pruneThresholdInSeconds: 120 }))).toBe(1);
    routerStart.unsubscribe();
    // everyone answers vcap.component.discover; only the operator (tests, debugging) may ask
    const { discoverComponents } = await import("./component-discovery.ts");
    expect((await discoverComponents(buses.get("operator")!, 300)).length).toBe(Object.keys(ids).length);
    expect(await discoverComponents(controller, 300)).toEqual([]);
  });

  test("a reply in flight survives a reload of the server's config (nats-server forgets allow_responses grants then; skiff-node reloads on every join)", async () => {
    const agent = buses.get("agentA")!;
    const controller = buses.get("controller")!;
    let reply: string | undefined;
    const sub = agent.subscribe(stagingStartSubject("agent-a"), "staging.start", (_m, meta) => {
      reply = meta.reply;
    });
    await agent.flush();
    const start = { app_id: "app1", task_id: "t2", properties: { buildpack: null, env: {}, resources: { memory: 256, disk: 1024 } }, download_uri: "https://x/p", upload_uri: "https://x/d" };
    const replies = controller.requestMany(stagingStartSubject("agent-a"), "staging.start", start as never, "staging.reply", { timeoutMs: 1500 });
    for (let i = 0; i < 50 && !reply; i++) await Bun.sleep(10);
    expect(reply).toStartWith(`${inboxPrefixFor("controller")}.`);
    const reloads = natsLog().split("Reloaded server configuration").length;
    process.kill(nats.pid, "SIGHUP");
    for (let i = 0; i < 100 && natsLog().split("Reloaded server configuration").length === reloads; i++) await Bun.sleep(10);
    expect(natsLog().split("Reloaded server configuration").length).toBe(reloads + 1);
    agent.publish(reply!, "staging.reply", { task_id: "t2", phase: "done", droplet_sha: "ab".repeat(32) } as never);
    expect((await replies).map((r) => r.phase)).toEqual(["done"]);
    sub.unsubscribe();
  });

  test("an answerer's reply grants reach only the inboxes of those it answers: an agent cannot publish into another agent's or a router's", async () => {
    const agentA = buses.get("agentA")!;
    for (const [listener, inbox] of [["agentB", `${inboxPrefixFor("agent-b")}.x`], ["router", `${inboxPrefixFor("router")}.x`]] as const)
      expect(await heard(buses.get(listener)!, inbox, () => agentA.publishRaw(inbox, new Uint8Array([0xa0])))).toBe(0);
    expect(natsLog()).toMatch(/Publish Violation - User "agent-a", Subject "_INBOX\.agent-b\.x"/);
    // the controller's inbox it may publish into (it answers the controller), and the router an agent's
    expect(await heard(buses.get("controller")!, `${inboxPrefixFor("controller")}.x`, () => agentA.publishRaw(`${inboxPrefixFor("controller")}.x`, new Uint8Array([0xa0])))).toBe(1);
    expect(await heard(agentA, `${inboxPrefixFor("agent-a")}.x`, () => buses.get("router")!.publishRaw(`${inboxPrefixFor("agent-a")}.x`, new Uint8Array([0xa0])))).toBe(1);
  });

  test("the generated block lists each user once, with its own inbox and no wildcard inbox", () => {
    const block = authorizationBlock([{ identity: ids.agentA, password: "p" }, { identity: ids.controller, password: "q" }]);
    expect(block).toContain(`"_INBOX.agent-a.>"`);
    expect(block).not.toContain(`"_INBOX.>"`);
    for (const id of Object.values(ids).filter((i) => i.role !== "operator")) expect(permissionsFor(id).subscribe.filter((s) => s.startsWith("_INBOX"))).toEqual([`_INBOX.${id.user}.>`]);
    expect(() => authorizationBlock([{ identity: ids.agentA, password: "p" }, { identity: ids.agentA, password: "p" }])).toThrow(/twice/);
    expect(() => permissionsFor({ role: "agent", user: "agent-x", agentId: "a.>" })).toThrow(/subject token/);
  });
});
