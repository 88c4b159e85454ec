// The registrar's rules (issue 27): a join token is single-use (or bounded) and short-lived, a refused
// join changes nothing, a joined host gets a certificate for its own address from the cluster CA and a
// NATS user of its role alone; the units and env files are what systemd and the supervisor read.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { certInfo, createKeyAndCsr, signedBy } from "./cluster-ca.ts";
import { parseToken } from "./join-token.ts";
import { createCluster, JoinRefused, Registrar } from "./registrar.ts";
import { credsJwt, decodeJwt } from "../bus/nats-jwt.ts";
import { permissionsFor } from "../bus/nats-permissions.ts";
import { envFileText, parseEnvFile, parseUnit, unitSpec, unitText } from "./units.ts";

const dirs: string[] = [];
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), "skiff-registrar-"));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function cluster(now: { t: number }) {
  const dir = fresh();
  createCluster(dir, { name: "t", address: "198.18.0.20", domain: "skiff.test" });
  return new Registrar(dir, () => now.t);
}

const joinWith = (reg: Registrar, token: string, role: "agent" | "router" | "controller", name = "a1") => {
  const t = parseToken(token);
  return reg.join({ token_id: t.id, secret: t.secret, role, name, address: "198.18.0.31", csr: createKeyAndCsr(name).csrPem });
};

describe("the registrar (issue 27)", () => {
  test("a token joins once: a reused token is refused, and so is an expired one", async () => {
    const now = { t: Date.now() };
    const reg = cluster(now);
    const token = reg.createToken({ ttlMs: 60_000, uses: 1, roles: ["agent"] });
    const ok = await joinWith(reg, token, "agent");
    expect(ok.env.SKIFF_NATS_USER).toBe("agent.a1");
    expect(ok.env.SKIFF_AGENT_ID).toBe("a1");
    expect(signedBy(ok.cert_pem, ok.ca_pem)).toBe(true);
    expect(certInfo(ok.cert_pem).altNames).toContain("IP Address:198.18.0.31");
    await expect(joinWith(reg, token, "agent", "a2")).rejects.toThrow(/used already|unknown join token/);
    const later = reg.createToken({ ttlMs: 60_000, uses: 5, roles: ["agent"] });
    now.t += 61_000;
    await expect(joinWith(reg, later, "agent", "a3")).rejects.toThrow(JoinRefused);
    await expect(joinWith(reg, later, "agent", "a3")).rejects.toThrow(/expired/);
    expect(reg.state().members.map((m) => m.name)).toEqual(["a1"]);
  });

  test("a bounded token joins its number of hosts, for its roles only; a forged secret is refused", async () => {
    const reg = cluster({ t: Date.now() });
    const token = reg.createToken({ ttlMs: 60_000, uses: 2, roles: ["router"] });
    await expect(joinWith(reg, token, "agent")).rejects.toThrow(/not agent/);
    await joinWith(reg, token, "router", "r1");
    await joinWith(reg, token, "router", "r2");
    await expect(joinWith(reg, token, "router", "r3")).rejects.toThrow(JoinRefused);
    const forged = token.replace(/\.[^.]+$/, ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    const other = reg.createToken({ ttlMs: 60_000, uses: 1, roles: ["router"] });
    const t = parseToken(other);
    await expect(reg.join({ token_id: t.id, secret: "x".repeat(40), role: "router", name: "r4", address: "198.18.0.9", csr: createKeyAndCsr("r4").csrPem })).rejects.toThrow(/unknown/);
    expect(forged).not.toBe(token);
  });

  test("a joined component gets a user JWT of its role's permissions signed by the account; NATS hosts' config holds no secret and does not change", async () => {
    const reg = cluster({ t: Date.now() });
    const token = reg.createToken({ ttlMs: 60_000, uses: 3, roles: ["agent", "router", "controller"] });
    const before = reg.natsConfig();
    const a = await joinWith(reg, token, "agent", "a1");
    const r = await joinWith(reg, token, "router", "r1");
    const cfg = reg.natsConfig();
    // joins bump nothing NATS hosts reload for
    expect(cfg.version).toBe(before.version);
    const user = decodeJwt(credsJwt(a.nats_creds!));
    const account = Object.keys(cfg.operator.accounts).find((k) => k !== cfg.operator.systemAccount)!;
    expect(user.iss).toBe(account);
    expect(user.name).toBe("agent.a1");
    expect(user.nats.pub.allow).toEqual(permissionsFor({ role: "agent", user: "agent.a1", agentId: "a1" }).publish);
    expect(user.nats.pub.allow).not.toContain("dea.stop");
    expect(decodeJwt(credsJwt(r.nats_creds!)).nats.pub.allow).not.toContain("router.register");
    // the seeds reach only the member; what NATS hosts get is public
    const seed = /SU[A-Z2-7]{56}/.exec(a.nats_creds!)![0];
    expect(JSON.stringify(cfg)).not.toContain(seed);
    expect(JSON.stringify(cfg)).not.toMatch(/S[OAU][A-Z2-7]{56}/);
    expect(reg.state().members.find((m) => m.name === "a1")!.natsPublicKey).toBe(user.sub);
  });

  test("leaving, and joining again under the same name, revoke the old NATS user for every NATS host", async () => {
    const now = { t: Date.now() };
    const reg = cluster(now);
    const token = reg.createToken({ ttlMs: 60_000, uses: 3, roles: ["agent"] });
    const first = await joinWith(reg, token, "agent", "a1");
    const v0 = reg.natsConfig().version;
    const second = await joinWith(reg, token, "agent", "a1");
    const revoked = () => decodeJwt(Object.entries(reg.natsConfig().operator.accounts).find(([k]) => k !== reg.natsConfig().operator.systemAccount)![1]).nats.revocations ?? {};
    expect(reg.natsConfig().version).toBe(v0 + 1);
    expect(Object.keys(revoked())).toEqual([decodeJwt(credsJwt(first.nats_creds!)).sub]);
    await reg.leave("a1", "agent", second.node_secret);
    expect(Object.keys(revoked()).sort()).toEqual([decodeJwt(credsJwt(first.nats_creds!)).sub, decodeJwt(credsJwt(second.nats_creds!)).sub].sort());
    expect(reg.natsConfig().version).toBe(v0 + 2);
  });

  test("credentials for an operator or a route-registrar: a NATS user of that role, a client certificate, revocable; never a host's role", async () => {
    const reg = cluster({ t: Date.now() });
    const c = await reg.issueCredentials({ role: "route-registrar", name: "lb-routes", csr: createKeyAndCsr("lb-routes").csrPem });
    expect(c.env.SKIFF_NATS_USER).toBe("route-registrar.lb-routes");
    expect(decodeJwt(credsJwt(c.nats_creds!)).nats.pub.allow).toEqual(permissionsFor({ role: "route-registrar", user: "route-registrar.lb-routes" }).publish);
    expect(signedBy(c.cert_pem, c.ca_pem)).toBe(true);
    await expect(reg.issueCredentials({ role: "agent" as never, name: "x", csr: createKeyAndCsr("x").csrPem })).rejects.toThrow(/credentials are for/);
    expect(await reg.revokeCredentials("route-registrar", "lb-routes")).toBe(true);
    expect(reg.state().natsRevoked).toHaveProperty(decodeJwt(credsJwt(c.nats_creds!)).sub);
    expect(await reg.revokeCredentials("route-registrar", "lb-routes")).toBe(false);
  });

  test("renewing gives a new certificate for the same names; a wrong node secret gets nothing", async () => {
    const reg = cluster({ t: Date.now() });
    const a = await joinWith(reg, reg.createToken({ ttlMs: 60_000, uses: 1, roles: ["agent"] }), "agent", "a1");
    const renewed = reg.renew("a1", a.node_secret, createKeyAndCsr("a1").csrPem);
    expect(certInfo(renewed.cert_pem).serial).not.toBe(certInfo(a.cert_pem).serial);
    expect(certInfo(renewed.cert_pem).altNames).toBe(certInfo(a.cert_pem).altNames);
    expect(() => reg.renew("a1", "nope", createKeyAndCsr("a1").csrPem)).toThrow(/node secret/);
  });
});

describe("units and env files", () => {
  const paths = { home: "/opt/skiff", bun: "/opt/skiff/bun", node: "/usr/bin/node", natsServer: "/usr/sbin/nats-server", envFile: (c: string) => `/etc/skiff/${c}.env`, natsConfig: "/etc/skiff/nats.conf", skiffNode: ["/opt/skiff/bun", "/opt/skiff/ops/skiff-node.ts"] };
  test("a unit restarts on failure, logs to the journal, orders after NATS, and parses back", () => {
    const text = unitText(unitSpec("agent", paths));
    expect(text).toContain("Restart=on-failure");
    expect(text).toContain("StandardOutput=journal");
    expect(text).toContain("EnvironmentFile=/etc/skiff/agent.env");
    const u = parseUnit("skiff-agent.service", text);
    expect(u.execStart).toEqual(["/opt/skiff/bun", "agent/main.ts"]);
    expect(u.after).toContain("skiff-nats.service");
    expect(u.restart).toBe("on-failure");
    expect(parseUnit("skiff-nats.service", unitText(unitSpec("nats", paths))).reloadSignal).toBe("SIGHUP");
  });
  test("env files round-trip values with quotes and dollars", () => {
    const env = { SKIFF_NATS_CREDS: 'a"b$c\\d', SKIFF_X: "plain" };
    expect(parseEnvFile(envFileText(env, "t"))).toEqual(env);
    expect(() => envFileText({ "bad-name": "x" }, "t")).toThrow();
  });
});
