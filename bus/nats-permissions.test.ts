// Each component's NATS identity, against a real nats-server (issue 27), in both of skiff's ways in: an
// `authorization` block of users with passwords (the one-machine cluster) and operator mode, where each
// user's permissions ride in its JWT (a joined cluster, bus/nats-jwt.ts). What a role may not do is
// refused by the server (and logged by it), what it must do still works, replies included.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, type NatsServer } from "../tests/support/nats-server.ts";
import { connectBus, deaStartSubject, stagingStartSubject, Subjects, type Bus } from "./index.ts";
import { memoryLogger } from "./log.ts";
import { connect, credsAuthenticator } from "nats";
import { accountJwt, ClaimsUpdateSubject, createTrust, credsJwt, decodeJwt, issueSystemUser, issueUser, operatorConfig, type NatsTrust } from "./nats-jwt.ts";
import { authorizationBlock, inboxPrefixFor, natsServerConfig, permissionsFor, type NatsIdentity } from "./nats-permissions.ts";

const ids = {
  controller: { role: "controller", user: "controller.t" },
  health: { role: "health", user: "health.t" },
  router: { role: "router", user: "router.t" },
  agentA: { role: "agent", user: "agent.agent-a", agentId: "agent-a" },
  agentB: { role: "agent", user: "agent.agent-b", agentId: "agent-b" },
  registrar: { role: "route-registrar", user: "route-registrar.t" },
  operator: { role: "operator", user: "operator.t" },
} satisfies Record<string, NatsIdentity>;
type Name = keyof typeof ids;
type Mode = "users" | "operator";

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** One nats-server in `mode` with every identity connected. */
class Fixture {
  // made in start(): a filtered run (-t) constructs every describe's fixture but starts and stops only those it runs
  dir = "";
  conf = "";
  logFile = "";
  nats!: NatsServer;
  monitorPort = 0;
  trust?: NatsTrust;
  readonly buses = new Map<Name, Bus & { logLines: string[] }>();
  /** how nats-server names each user in its log: the user name, or a JWT user's public key */
  readonly labels = new Map<string, string>();

  constructor(readonly mode: Mode) {}

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), "skiff-nats-perm-"));
    this.conf = join(this.dir, "nats.conf");
    this.logFile = join(this.dir, "nats.log");
    if (this.mode === "operator") this.trust = createTrust();
    // bcrypt in the config for two of them: the server compares hashes as well as plain passwords
    const users = await Promise.all(
      (Object.keys(ids) as Name[]).map(async (n) => ({
        identity: ids[n] as NatsIdentity,
        password: n === "agentA" || n === "router" ? await Bun.password.hash(`pw-${n}`, { algorithm: "bcrypt", cost: 4 }) : `pw-${n}`,
      })),
    );
    this.writeConfig(users);
    this.monitorPort = 20000 + Math.floor(Math.random() * 20000);
    this.nats = await startNatsServer({ args: ["-c", this.conf, "-l", this.logFile, "-m", String(this.monitorPort)] });
    for (const n of Object.keys(ids) as Name[]) this.buses.set(n, await this.connect(n, ids[n]));
  }

  writeConfig(users: { identity: NatsIdentity; password: string }[] = []): void {
    const text = this.trust ? natsServerConfig({ listen: "127.0.0.1:-1", operator: operatorConfig(this.trust, accountJwt(this.trust, {}, Math.floor(Date.now() / 1000))), resolverDir: join(this.dir, "jwt") }) : natsServerConfig({ listen: "127.0.0.1:-1", users });
    writeFileSync(this.conf, text, { mode: 0o600 });
  }

  /** A bus as `identity`: its password, or a .creds file for a user JWT issued now. */
  async connect(key: string, identity: NatsIdentity): Promise<Bus & { logLines: string[] }> {
    const logger = memoryLogger();
    let auth: { pass?: string; credsFile?: string } = { pass: `pw-${key}` };
    this.labels.set(key, `User "${identity.user}"`);
    if (this.trust) {
      const user = issueUser(this.trust, identity.user, permissionsFor(identity));
      const credsFile = join(this.dir, `${key}.creds`);
      writeFileSync(credsFile, user.creds, { mode: 0o600 });
      auth = { credsFile };
      this.labels.set(key, `Nkey "${user.publicKey}"`);
    }
    const bus = await connectBus({ servers: [this.nats.url], name: `${identity.role}-test`, user: identity.user, ...auth }, logger);
    return Object.assign(bus, { logLines: logger.lines });
  }

  log(): string {
    return readFileSync(this.logFile, "utf8");
  }

  /** `what` Violation - <the user as nats-server names it>, Subject "<subject>" */
  violation(what: "Publish" | "Subscription", who: Name, subject: string): RegExp {
    return new RegExp(`${what} Violation - ${escape(this.labels.get(who)!)}, Subject "${escape(subject)}"`);
  }

  async reload(): Promise<void> {
    const reloads = this.log().split("Reloaded server configuration").length;
    process.kill(this.nats.pid, "SIGHUP");
    for (let i = 0; i < 200 && this.log().split("Reloaded server configuration").length === reloads; i++) await Bun.sleep(10);
    expect(this.log().split("Reloaded server configuration").length).toBe(reloads + 1);
  }

  async stop(): Promise<void> {
    for (const b of this.buses.values()) await b.close().catch(() => {});
    await this.nats?.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

const monitorUrl = (f: Fixture) => `http://127.0.0.1:${f.monitorPort}`;

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

for (const mode of ["users", "operator"] as const) describe(`NATS permissions per component (issue 27), ${mode === "users" ? "users with passwords" : "operator mode: user JWTs"}`, () => {
  const f = new Fixture(mode);
  const buses = f.buses;
  const natsLog = () => f.log();
  beforeAll(() => f.start());
  afterAll(() => f.stop());

  test("an agent's credentials cannot publish dea.stop or a start order; NATS logs it and the agent counts it", async () => {
    const agent = buses.get("agentA")!;
    const other = buses.get("agentB")!;
    expect(await heard(other, Subjects.deaStop, () => agent.publish(Subjects.deaStop, "dea.stop", { droplet: "victim-app" }))).toBe(0);
    expect(await heard(other, deaStartSubject("agent-b"), () => agent.publishRaw(deaStartSubject("agent-b"), new Uint8Array([0xa0])))).toBe(0);
    expect(natsLog()).toMatch(f.violation("Publish", "agentA", "dea.stop"));
    expect(agent.logLines.some((l) => /NATS refused this user/.test(l) && /denied_total/.test(l))).toBe(true);
    // the controller's own dea.stop does arrive: the refusal is the permission, not a broken probe
    expect(await heard(other, Subjects.deaStop, () => buses.get("controller")!.publish(Subjects.deaStop, "dea.stop", { droplet: "x" }))).toBe(1);
  });

  test("an agent cannot subscribe to another agent's subjects or to another component's replies", async () => {
    const agent = buses.get("agentA")!;
    const controller = buses.get("controller")!;
    for (const subject of [deaStartSubject("agent-b"), stagingStartSubject("agent-b"), `${inboxPrefixFor(ids.controller.user)}.>`, "_INBOX.>", "_INBOX.agent.>"]) {
      expect(await heard(agent, subject, () => controller.publishRaw(subject.replace(">", "x"), new Uint8Array([0xa0])))).toBe(0);
    }
    expect(natsLog()).toMatch(f.violation("Subscription", "agentA", "dea.agent-b.start"));
    // its own start subject does arrive
    expect(await heard(agent, deaStartSubject("agent-a"), () => controller.publishRaw(deaStartSubject("agent-a"), new Uint8Array([0xa0])))).toBe(1);
  });

  test("a router's credentials cannot publish router.register; the route-registrar's and an agent's can", async () => {
    const router = buses.get("router")!;
    const msg = { host: "198.18.0.9", port: 61001, uris: ["bank.example.com"], app: "evil", private_instance_id: "x", private_instance_index: "0", tags: {}, stale_threshold_in_seconds: 120 };
    expect(await heard(router, Subjects.routerRegister, () => router.publish(Subjects.routerRegister, "router.register", msg as never))).toBe(0);
    expect(natsLog()).toMatch(f.violation("Publish", "router", "router.register"));
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
    // and every component's announce at connect went through (the route-registrar's too)
    expect(natsLog()).not.toMatch(/Publish Violation - [^\n]*Subject "vcap\.component\.announce"/);
  });

  // Users with passwords: the one-machine cluster's nats-server is reloaded by nothing skiff does, but an
  // operator may. In operator mode nothing skiff does but a certificate rotation reloads a NATS host,
  // and nats-server 2.9.10 cannot re-check an nkey user's signature then: every client reconnects.
  if (mode === "users") test("a reply in flight survives a reload of the server's config (nats-server forgets allow_responses grants then)", async () => {
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
    expect(reply).toStartWith(`${inboxPrefixFor(ids.controller.user)}.`);
    await f.reload();
    agent.publish(reply!, "staging.reply", { task_id: "t2", phase: "done", droplet_sha: "ab".repeat(32) } as never);
    expect((await replies).map((r) => r.phase)).toEqual(["done"]);
    sub.unsubscribe();
  });

  test("an answerer's reply grants reach only the inboxes of those it answers: an agent cannot publish into another agent's or a router's", async () => {
    const agentA = buses.get("agentA")!;
    for (const [listener, inbox] of [["agentB", `${inboxPrefixFor(ids.agentB.user)}.x`], ["router", `${inboxPrefixFor(ids.router.user)}.x`]] as const)
      expect(await heard(buses.get(listener)!, inbox, () => agentA.publishRaw(inbox, new Uint8Array([0xa0])))).toBe(0);
    expect(natsLog()).toMatch(f.violation("Publish", "agentA", "_INBOX.agent.agent-b.x"));
    // the controller's inbox it may publish into (it answers the controller), and the router an agent's
    const controllerInbox = `${inboxPrefixFor(ids.controller.user)}.x`;
    expect(await heard(buses.get("controller")!, controllerInbox, () => agentA.publishRaw(controllerInbox, new Uint8Array([0xa0])))).toBe(1);
    const agentInbox = `${inboxPrefixFor(ids.agentA.user)}.x`;
    expect(await heard(agentA, agentInbox, () => buses.get("router")!.publishRaw(agentInbox, new Uint8Array([0xa0])))).toBe(1);
  });

  if (mode === "operator") {
    test("a reload (a certificate rotation) makes every client reconnect, and the bus carries on after it", async () => {
      const agent = buses.get("agentA")!;
      const controller = buses.get("controller")!;
      const before = (await (await fetch(`${monitorUrl(f)}/connz?limit=100`)).json()) as { connections: { cid: number; name: string }[] };
      await f.reload();
      let after = before;
      for (let i = 0; i < 100; i++) {
        after = (await (await fetch(`${monitorUrl(f)}/connz?limit=100`)).json()) as typeof before;
        if (after.connections.length === before.connections.length && after.connections.every((c) => !before.connections.some((b) => b.cid === c.cid))) break;
        await Bun.sleep(50);
      }
      expect(after.connections.length).toBe(before.connections.length);
      expect(after.connections.filter((c) => before.connections.some((b) => b.cid === c.cid))).toEqual([]);
      expect(await heard(agent, deaStartSubject("agent-a"), () => controller.publishRaw(deaStartSubject("agent-a"), new Uint8Array([0xa0])))).toBe(1);
    });

    test("a user issued after the server started gets in with no reload (a join changes no NATS host's config)", async () => {
      const reloads = natsLog().split("Reloaded server configuration").length;
      const late = await f.connect("agentC", { role: "agent", user: "agent.agent-c", agentId: "agent-c" });
      try {
        expect(await heard(late, deaStartSubject("agent-c"), () => buses.get("controller")!.publishRaw(deaStartSubject("agent-c"), new Uint8Array([0xa0])))).toBe(1);
        expect(await heard(late, Subjects.deaStop, () => late.publish(Subjects.deaStop, "dea.stop", { droplet: "x" }))).toBe(0);
        expect(natsLog().split("Reloaded server configuration").length).toBe(reloads);
      } finally {
        await late.close();
      }
    });

    test("a revoked user is put out by an account update on the bus (no reload) and cannot come back; the others stay", async () => {
      const leaving = await f.connect("agentD", { role: "agent", user: "agent.agent-d", agentId: "agent-d" });
      let toLeaving = 0;
      leaving.subscribeRaw(deaStartSubject("agent-d"), () => toLeaving++);
      await leaving.flush();
      const pub = decodeJwt(credsJwt(readFileSync(join(f.dir, "agentD.creds"), "utf8"))).sub as string;
      const reloads = natsLog().split("Reloaded server configuration").length;
      // as nats-sync does it (ops/skiff-node.ts pushAccountUpdate): a system user sends the new account JWT
      const sys = issueSystemUser(f.trust!, "nats-sync.t");
      const nc = await connect({ servers: [f.nats.url], authenticator: credsAuthenticator(new TextEncoder().encode(sys.creds)), inboxPrefix: "_INBOX.nats-sync.t" });
      const update = accountJwt(f.trust!, { [pub]: Math.ceil(Date.now() / 1000) }, Math.floor(Date.now() / 1000) + 1);
      const answer = JSON.parse(new TextDecoder().decode((await nc.request(ClaimsUpdateSubject, new TextEncoder().encode(update), { timeout: 3000 })).data));
      expect(answer.data?.code).toBe(200);
      // the system user may do nothing else
      expect(await heard(buses.get("agentA")!, deaStartSubject("agent-a"), () => nc.publish(deaStartSubject("agent-a")))).toBe(0);
      await nc.close();
      const controller = buses.get("controller")!;
      await Bun.sleep(300);
      controller.publishRaw(deaStartSubject("agent-d"), new Uint8Array([0xa0]));
      await controller.flush();
      await Bun.sleep(200);
      expect(toLeaving).toBe(0);
      expect(await heard(buses.get("agentA")!, deaStartSubject("agent-a"), () => controller.publishRaw(deaStartSubject("agent-a"), new Uint8Array([0xa0])))).toBe(1);
      expect(natsLog().split("Reloaded server configuration").length).toBe(reloads);
      // its connection is put out and refused at each reconnect: drain may wait on it, so close is bounded
      await Promise.race([leaving.close().catch(() => {}), Bun.sleep(1000)]);
      const again = connectBus({ servers: [f.nats.url], name: "agent-again", user: "agent.agent-d", credsFile: join(f.dir, "agentD.creds") }, memoryLogger());
      const outcome = await Promise.race([again.then((b) => (void b.close(), "connected"), (err: Error) => `refused: ${err.message}`), Bun.sleep(10_000).then(() => "no answer in 10 s")]);
      expect(outcome).toMatch(/^refused: .*[Aa]uthorization/);
    });
  }
});

describe("the generated permissions", () => {
  test("the users block lists each user once; each user reads its own inbox only, and answers into whole roles' inboxes", () => {
    const block = authorizationBlock([{ identity: ids.agentA, password: "p" }, { identity: ids.controller, password: "q" }]);
    expect(block).toContain(`"_INBOX.agent.agent-a.>"`);
    expect(block).not.toContain(`"_INBOX.>"`);
    for (const id of Object.values(ids).filter((i) => i.role !== "operator")) expect(permissionsFor(id).subscribe.filter((s) => s.startsWith("_INBOX"))).toEqual([`_INBOX.${id.user}.>`]);
    expect(permissionsFor(ids.agentA).publish.filter((s) => s.startsWith("_INBOX"))).toEqual(["_INBOX.controller.>", "_INBOX.operator.>"]);
    expect(() => authorizationBlock([{ identity: ids.agentA, password: "p" }, { identity: ids.agentA, password: "p" }])).toThrow(/twice/);
    expect(() => permissionsFor({ role: "agent", user: "agent.x", agentId: "a.>" })).toThrow(/subject token/);
  });

  test("a user must be named <role>.<name>: another role's inboxes can never be its own", () => {
    for (const user of ["agent-a", "controller.a", "agent", "agent.a.b", "agent.>"]) expect(() => permissionsFor({ role: "agent", user, agentId: "a" })).toThrow(/must be named agent\.<name>/);
    expect(() => permissionsFor({ role: "router", user: "router.r1" })).not.toThrow();
  });
});
